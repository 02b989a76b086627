/* a=crypto parse/print, the suite table, and cross-checks that do not only
 * test our code against itself: libsrtp2's known-answer packets through our
 * suite table, and SRTP packets recorded from rtpengine and baresip with the
 * key each signalled, decrypted through our parser and suite table. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <srtp2/srtp.h>

#include "srtpbridge/sdes.h"
#include "srtpbridge/srtplib.h"
#include "srtpbridge/suite.h"

#include "kat_fixture.h"

static int parse(struct sdes_crypto *c, const char *line, char *why)
{
	return sdes_parse(c, slice_from(line), why, 256);
}

static void roundtrip(const struct sdes_crypto *c, bool pad)
{
	char buf[SDES_LINE_MAX], why[256];
	struct sdes_crypto back;
	size_t n = sdes_print(buf, sizeof(buf), c, pad);

	assert_true(n > 0);
	if (parse(&back, buf, why))
		fail_msg("printed line does not parse: %s", why);
	assert_int_equal(back.tag, c->tag);
	assert_int_equal(back.suite, c->suite);
	assert_int_equal(back.nkeys, c->nkeys);
	for (size_t i = 0; i < c->nkeys; i++) {
		assert_true(secret_equal(&back.keys[i].keysalt, &c->keys[i].keysalt));
		assert_int_equal(back.keys[i].lifetime, c->keys[i].lifetime);
		assert_int_equal(back.keys[i].lifetime_pow2, c->keys[i].lifetime_pow2);
		assert_int_equal(back.keys[i].has_mki, c->keys[i].has_mki);
		assert_int_equal(back.keys[i].mki, c->keys[i].mki);
		assert_int_equal(back.keys[i].mki_len, c->keys[i].mki_len);
	}
	assert_int_equal(back.unencrypted_srtp, c->unencrypted_srtp);
	assert_int_equal(back.unencrypted_srtcp, c->unencrypted_srtcp);
	assert_int_equal(back.unauthenticated_srtp, c->unauthenticated_srtp);
	assert_int_equal(back.kdr, c->kdr);
	assert_int_equal(back.fec_order, c->fec_order);
	assert_int_equal(back.nfec_keys, c->nfec_keys);
	assert_int_equal(back.wsh, c->wsh);
	assert_int_equal(back.nextensions, c->nextensions);
	for (size_t i = 0; i < c->nextensions; i++)
		assert_string_equal(back.extensions[i], c->extensions[i]);
	/* and printing the parsed line again gives the same text */
	{
		char again[SDES_LINE_MAX];

		assert_int_equal(sdes_print(again, sizeof(again), &back, pad), n);
		assert_string_equal(again, buf);
	}
	sdes_wipe(&back);
}

/* RFC 4568's own examples (sections 4, 6.1, 8.1 and 9.1). */
static void test_rfc4568_examples(void **state)
{
	static const char *const lines[] = {
		"1 AES_CM_128_HMAC_SHA1_80 "
		"inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4",
		"1 AES_CM_128_HMAC_SHA1_32 "
		"inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32",
		"1 AES_CM_128_HMAC_SHA1_80 "
		"inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|2^20|1:32",
		"1 AES_CM_128_HMAC_SHA1_80 "
		"inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4 "
		"FEC_ORDER=FEC_SRTP",
		"1 AES_CM_128_HMAC_SHA1_80 inline:YUJDZGVmZ2hpSktMbW9QUXJzVHVWd1l6MTIzNDU2|1066:4",
		"1 AES_CM_128_HMAC_SHA1_80 "
		"inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|2^20|1:32;"
		"inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|2:32",
		"1 AES_CM_128_HMAC_SHA1_80 "
		"inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4 "
		"FEC_ORDER=FEC_SRTP "
		"FEC_KEY=inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4",
	};
	struct sdes_crypto c;
	char why[256];

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		if (parse(&c, lines[i], why))
			fail_msg("RFC 4568 example %zu refused: %s", i, why);
		roundtrip(&c, true);
		sdes_wipe(&c);
	}
	assert_int_equal(parse(&c, lines[0], why), 0);
	assert_int_equal(c.tag, 1);
	assert_int_equal(c.suite, SUITE_AES_CM_128_HMAC_SHA1_80);
	assert_int_equal(c.nkeys, 1);
	assert_int_equal(c.keys[0].keysalt.len, 30);
	assert_int_equal(c.keys[0].lifetime, 1 << 20);
	assert_true(c.keys[0].lifetime_pow2);
	assert_true(c.keys[0].has_mki);
	assert_int_equal(c.keys[0].mki, 1);
	assert_int_equal(c.keys[0].mki_len, 4);
	assert_int_equal(c.kdr, -1);
	/* the printer gives back the RFC's text exactly */
	{
		char buf[SDES_LINE_MAX];

		sdes_print(buf, sizeof(buf), &c, true);
		assert_string_equal(buf, lines[0]);
	}
	assert_int_equal(parse(&c, lines[4], why), 0);
	assert_false(c.keys[0].lifetime);
	assert_int_equal(c.keys[0].mki, 1066);
	assert_int_equal(parse(&c, lines[5], why), 0);
	assert_int_equal(c.nkeys, 2);
	assert_int_equal(c.keys[1].mki, 2);
	assert_int_equal(parse(&c, lines[6], why), 0);
	assert_int_equal(c.fec_order, SDES_FEC_FEC_SRTP);
	assert_int_equal(c.nfec_keys, 1);
	sdes_wipe(&c);
}

static void test_session_params(void **state)
{
	struct sdes_crypto c;
	char why[256];

	assert_int_equal(parse(&c,
			       "7 AEAD_AES_256_GCM inline:"
			       "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKis="
			       " KDR=0 UNENCRYPTED_SRTCP UNENCRYPTED_SRTP UNAUTHENTICATED_SRTP"
			       " WSH=128 -x-optional X-MANDATORY",
			       why),
			 0);
	assert_int_equal(c.suite, SUITE_AEAD_AES_256_GCM);
	assert_int_equal(c.keys[0].keysalt.len, 44);
	assert_int_equal(c.kdr, 0);
	assert_true(c.unencrypted_srtcp && c.unencrypted_srtp && c.unauthenticated_srtp);
	assert_int_equal(c.wsh, 128);
	assert_int_equal(c.nextensions, 2);
	assert_string_equal(c.extensions[0], "-x-optional");
	assert_true(c.unknown_mandatory);
	roundtrip(&c, true);
	sdes_wipe(&c);
	/* an optional extension alone is not mandatory */
	assert_int_equal(parse(&c,
			       "1 AES_CM_128_HMAC_SHA1_80 "
			       "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR -ext",
			       why),
			 0);
	assert_false(c.unknown_mandatory);
	/* tolerated white space: several blanks, a tab, a trailing CRLF */
	assert_int_equal(parse(&c,
			       "1  AES_CM_128_HMAC_SHA1_80\tinline:PS1uQCVeeCFCanVmcjkpPywjNW"
			       "hcYD0mXXtxaVBR  UNENCRYPTED_SRTCP \r\n",
			       why),
			 0);
	assert_true(c.unencrypted_srtcp);
	sdes_wipe(&c);
}

/* Every suite: key lengths, base64 with and without '=', round trips. */
static void test_every_suite_and_padding(void **state)
{
	/* decoded length -> base64 length padded, unpadded */
	static const struct {
		unsigned len, padded, unpadded;
	} b64[] = {
		{ 28, 40, 38 }, { 30, 40, 40 }, { 38, 52, 51 }, { 44, 60, 59 }, { 46, 64, 62 }
	};

	for (int s = 0; s < SUITE_COUNT; s++) {
		struct sdes_crypto c = {
			.tag = (uint32_t)s + 1, .suite = (enum suite_id)s, .kdr = -1, .nkeys = 1
		};
		unsigned len = suite_keysalt_len((enum suite_id)s);
		char buf[SDES_LINE_MAX], why[256];
		struct sdes_crypto back;
		bool found = false;

		assert_int_equal(secret_random(&c.keys[0].keysalt, len), 0);
		for (int pad = 0; pad < 2; pad++) {
			const char *key, *end;

			assert_true(sdes_print(buf, sizeof(buf), &c, pad) > 0);
			key = strstr(buf, "inline:") + 7;
			end = key + strcspn(key, "| ");
			for (size_t i = 0; i < sizeof(b64) / sizeof(b64[0]); i++) {
				if (b64[i].len != len)
					continue;
				found = true;
				assert_int_equal(end - key, pad ? b64[i].padded : b64[i].unpadded);
			}
			/* both forms parse to the same key */
			assert_int_equal(parse(&back, buf, why), 0);
			assert_true(secret_equal(&back.keys[0].keysalt, &c.keys[0].keysalt));
			sdes_wipe(&back);
			roundtrip(&c, pad);
		}
		assert_true(found);
		/* one byte short or long is refused with the lengths, not the key */
		c.keys[0].keysalt.len = len - 1;
		sdes_print(buf, sizeof(buf), &c, true);
		assert_int_equal(parse(&back, buf, why), EBADMSG);
		snprintf(buf, sizeof(buf), "decodes to %u bytes; %s needs %u", len - 1,
			 suite_name((enum suite_id)s), len);
		assert_non_null(strstr(why, buf));
		sdes_wipe(&c);
	}
}

struct bad {
	const char *line;
	const char *reason;
};

#define K30 "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"

static void test_malformed(void **state)
{
	static const struct bad cases[] = {
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVB!",
		  "a=crypto inline key is not valid base64 (possible SIP ALG mangling)" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFC=nVmcjkpPywjNWhcYD0mXXtxaVBR",
		  "a=crypto inline key is not valid base64 (possible SIP ALG mangling)" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVB",
		  "a=crypto inline key is not valid base64 (possible SIP ALG mangling)" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtx",
		  "a=crypto inline key decodes to 27 bytes; AES_CM_128_HMAC_SHA1_80 needs 30 "
		  "(possible SIP ALG mangling)" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:" K30 "AAAA",
		  "a=crypto inline key decodes to 33 bytes; AES_CM_128_HMAC_SHA1_80 needs 30 "
		  "(possible SIP ALG mangling)" },
		/* trailing bits that a canonical encoder leaves zero */
		{ "1 AEAD_AES_128_GCM inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVB=",
		  "a=crypto inline key is not valid base64 (possible SIP ALG mangling)" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:" K30 "|2^49",
		  "a=crypto lifetime 2^49 is beyond RFC 3711's limit of 2^48 packets" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:" K30 "|281474976710657",
		  "a=crypto lifetime 281474976710657 is out of range 1 to 2^48 packets (RFC "
		  "3711)" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:" K30 "|0",
		  "a=crypto lifetime 0 is out of range 1 to 2^48 packets (RFC 3711)" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:" K30 "|2^x",
		  "a=crypto lifetime must be 2^N or a decimal number" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:" K30 "|1:0",
		  "a=crypto MKI length 0 is out of range 1 to 128" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:" K30 "|1:129",
		  "a=crypto MKI length 129 is out of range 1 to 128" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:" K30 "|256:1",
		  "a=crypto MKI value does not fit in its 1 bytes" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:" K30 "|1:4|2^20",
		  "a=crypto lifetime must come once, before the MKI" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:" K30 "|2^20|2^20",
		  "a=crypto lifetime must come once, before the MKI" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:" K30 "|", "a=crypto key-params end with '|'" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:" K30 "||1:4",
		  "a=crypto key-params have an empty field between '|'" },
		{ "1234567890 AES_CM_128_HMAC_SHA1_80 inline:" K30,
		  "a=crypto tag must be 1 to 9 digits" },
		{ "x AES_CM_128_HMAC_SHA1_80 inline:" K30, "a=crypto tag must be 1 to 9 digits" },
		{ "1 AES_CM_128_HMAC_SHA1_80 " K30, "a=crypto key-params must start with inline:" },
		{ "1 AES_CM_128_HMAC_SHA1_80 INLINE:" K30,
		  "a=crypto key-params must start with inline:" },
		{ "1 AES_CM_128_HMAC_SHA1_80", "a=crypto has no key-params (inline:...)" },
		{ "1", "a=crypto has no crypto suite" },
		{ "", "a=crypto tag must be 1 to 9 digits" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:", "a=crypto inline key is empty" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:" K30 ";inline:" K30,
		  "a=crypto with several keys needs an MKI of one length on each" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:" K30 "|1:4;inline:" K30 "|2:2",
		  "a=crypto with several keys needs an MKI of one length on each" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:" K30 " KDR=25",
		  "a=crypto KDR must be 0 to 24" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:" K30 " WSH=63",
		  "a=crypto WSH must be 64 to 32767" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:" K30 " FEC_ORDER=FEC",
		  "a=crypto FEC_ORDER must be FEC_SRTP or SRTP_FEC" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:" K30 " UNENCRYPTED_SRTCP UNENCRYPTED_SRTCP",
		  "a=crypto repeats session parameter UNENCRYPTED_SRTCP" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:" K30 " FEC_KEY=inline:AAAA",
		  "a=crypto inline key decodes to 3 bytes; AES_CM_128_HMAC_SHA1_80 needs 30 "
		  "(possible SIP ALG mangling)" },
	};
	struct sdes_crypto c;
	char why[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int err = parse(&c, cases[i].line, why);

		if (err != EBADMSG)
			fail_msg("case %zu accepted or wrong error (%d): %s", i, err,
				 cases[i].line);
		if (strcmp(why, cases[i].reason) != 0)
			fail_msg("case %zu: reason '%s', want '%s'", i, why, cases[i].reason);
		/* never any piece of the key in a reason */
		assert_null(strstr(why, "PS1u"));
		/* and nothing of it left in the struct */
		for (size_t b = 0; b < sizeof(c); b++)
			assert_int_equal(((unsigned char *)&c)[b], 0);
	}
	assert_int_equal(parse(&c, "1 F8_128_HMAC_SHA1_80 inline:" K30, why), ENOTSUP);
	assert_string_equal(why,
			    "a=crypto suite 'F8_128_HMAC_SHA1_80' is not one srtpbridge knows");
}

static void test_nul_and_limits(void **state)
{
	static const char nul[] = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVe\0CFCanVmcjkpPywjNWhcYD"
				  "0mXXtxaVBR";
	struct sdes_crypto c;
	char why[256], *big;
	size_t n = 0;

	assert_int_equal(sdes_parse(&c, (struct slice){ nul, sizeof(nul) - 1 }, why, sizeof(why)),
			 EBADMSG);
	assert_string_equal(why, "a=crypto attribute contains a NUL byte");

	/* 17 keys: one more than libsrtp2 takes */
	big = malloc(8192);
	assert_non_null(big);
	n += (size_t)sprintf(big, "1 AES_CM_128_HMAC_SHA1_80 ");
	for (int i = 0; i < 17; i++)
		n += (size_t)sprintf(big + n, "%sinline:" K30 "|%d:2", i ? ";" : "", i + 1);
	assert_int_equal(parse(&c, big, why), EBADMSG);
	assert_string_equal(why, "a=crypto has more than 16 keys");
	memset(big, '1', 5000);
	big[5000] = '\0';
	assert_int_equal(parse(&c, big, why), EBADMSG);
	assert_string_equal(why, "a=crypto attribute is longer than 4096 bytes");
	free(big);

	/* a buffer too small for the line gets nothing, not a cut key */
	assert_int_equal(parse(&c, "1 AES_CM_128_HMAC_SHA1_80 inline:" K30, why), 0);
	{
		char small[40];

		assert_int_equal(sdes_print(small, sizeof(small), &c, true), 0);
		for (size_t i = 0; i < sizeof(small); i++)
			assert_int_equal(small[i], 0);
	}
	sdes_wipe(&c);
}

static void test_base64_decoder(void **state)
{
	uint8_t out[8];
	size_t len;

	assert_int_equal(sdes_base64_decode(SLICE_LIT("TWFu"), out, 8, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(out, "Man", 3);
	assert_int_equal(sdes_base64_decode(SLICE_LIT("TWE="), out, 8, &len), 0);
	assert_int_equal(len, 2);
	assert_int_equal(sdes_base64_decode(SLICE_LIT("TWE"), out, 8, &len), 0);
	assert_int_equal(len, 2);
	assert_int_equal(sdes_base64_decode(SLICE_LIT("TQ=="), out, 8, &len), 0);
	assert_int_equal(len, 1);
	assert_int_equal(sdes_base64_decode(SLICE_LIT("TQ"), out, 8, &len), 0);
	assert_int_equal(sdes_base64_decode(SLICE_LIT("TQ="), out, 8, &len), EBADMSG);
	assert_int_equal(sdes_base64_decode(SLICE_LIT("T"), out, 8, &len), EBADMSG);
	assert_int_equal(sdes_base64_decode(SLICE_LIT("TR=="), out, 8, &len), EBADMSG);
	assert_int_equal(sdes_base64_decode(SLICE_LIT("TQ==="), out, 8, &len), EBADMSG);
	assert_int_equal(sdes_base64_decode(SLICE_LIT("T-=="), out, 8, &len), EBADMSG);
	assert_int_equal(sdes_base64_decode(SLICE_LIT("AAAAAAAAAAAA"), out, 8, &len), EBADMSG);
}

/* The suite table against libsrtp2's own policy for each suite, and each
 * suite really protecting and unprotecting with the libsrtp2 we link. */
static void test_suite_table_with_libsrtp(void **state)
{
	assert_int_equal(srtplib_init(), 0);
	for (int s = 0; s < SUITE_COUNT; s++) {
		const struct suite_info *si = suite_get((enum suite_id)s);
		srtp_policy_t tx, rx;
		srtp_t stx = NULL, srx = NULL;
		uint8_t key[64], pkt[12 + 160 + SRTP_MAX_TRAILER_LEN + 4], ref[12 + 160];
		int len = 12 + 160;

		memset(&tx, 0, sizeof(tx));
		suite_srtp_policies((enum suite_id)s, &tx.rtp, &tx.rtcp);
		assert_int_equal(tx.rtp.cipher_key_len, si->key_len + si->salt_len);
		assert_int_equal(tx.rtp.auth_tag_len, si->aead ? 16 : si->rtp_tag_len);
		assert_int_equal(tx.rtcp.auth_tag_len, si->aead ? 16 : si->rtcp_tag_len);
		if (si->rtp_tag_len == 4)
			assert_int_equal(tx.rtcp.auth_tag_len, 10); /* RFC 3711 7.5 */
		for (size_t i = 0; i < sizeof(key); i++)
			key[i] = (uint8_t)(i * 7 + (unsigned)s);
		tx.key = key;
		tx.ssrc.type = ssrc_any_outbound;
		rx = tx;
		rx.ssrc.type = ssrc_any_inbound;
		assert_int_equal(srtp_create(&stx, &tx), srtp_err_status_ok);
		assert_int_equal(srtp_create(&srx, &rx), srtp_err_status_ok);
		memset(pkt, 0, sizeof(pkt));
		pkt[0] = 0x80;
		pkt[3] = 1;
		pkt[8] = 0x12;
		for (int i = 12; i < len; i++)
			pkt[i] = (uint8_t)i;
		memcpy(ref, pkt, sizeof(ref));
		assert_int_equal(srtp_protect(stx, pkt, &len), srtp_err_status_ok);
		assert_int_equal(len, 12 + 160 + (int)si->rtp_tag_len);
		assert_int_equal(srtp_unprotect(srx, pkt, &len), srtp_err_status_ok);
		assert_int_equal(len, 12 + 160);
		assert_memory_equal(pkt, ref, sizeof(ref));
		srtp_dealloc(stx);
		srtp_dealloc(srx);
	}
}

/* ---- data files: key = value lines (kat_fixture.h) ---- */

/* libsrtp2's known answers: protect through our suite table must give the
 * recorded ciphertext byte for byte, and unprotect must give it back. */
static void test_libsrtp_known_answers(void **state)
{
	FILE *f = fopen(TEST_DATA_DIR "/kat/libsrtp-2.5.0.txt", "r");
	struct vec v;
	unsigned n = 0;

	assert_non_null(f);
	assert_int_equal(srtplib_init(), 0);
	while (read_vec(f, &v)) {
		enum suite_id id;
		srtp_policy_t pol;
		srtp_t tx = NULL, rx = NULL;

		assert_int_equal(suite_from_name(v.suite, strlen(v.suite), &id), 0);
		assert_int_equal(v.keylen, suite_keysalt_len(id));
		memset(&pol, 0, sizeof(pol));
		suite_srtp_policies(id, &pol.rtp, &pol.rtcp);
		pol.ssrc.type = ssrc_specific;
		pol.ssrc.value = 0xcafebabe;
		pol.key = v.key;
		pol.window_size = 128;
		assert_int_equal(srtp_create(&tx, &pol), srtp_err_status_ok);
		assert_int_equal(srtp_create(&rx, &pol), srtp_err_status_ok);
		for (size_t i = 0; i < v.npkts; i++) {
			uint8_t buf[600];
			int len;

			assert_true(v.pkts[i].nplain && v.pkts[i].nprot);
			memcpy(buf, v.pkts[i].plain, v.pkts[i].nplain);
			len = (int)v.pkts[i].nplain;
			assert_int_equal(v.pkts[i].rtcp ? srtp_protect_rtcp(tx, buf, &len)
							: srtp_protect(tx, buf, &len),
					 srtp_err_status_ok);
			assert_int_equal(len, (int)v.pkts[i].nprot);
			assert_memory_equal(buf, v.pkts[i].prot, v.pkts[i].nprot);
			assert_int_equal(v.pkts[i].rtcp ? srtp_unprotect_rtcp(rx, buf, &len)
							: srtp_unprotect(rx, buf, &len),
					 srtp_err_status_ok);
			assert_int_equal(len, (int)v.pkts[i].nplain);
			assert_memory_equal(buf, v.pkts[i].plain, v.pkts[i].nplain);
			n++;
		}
		srtp_dealloc(tx);
		srtp_dealloc(rx);
	}
	fclose(f);
	assert_int_equal(n, 5); /* 3 RTP and 2 RTCP vectors */
}

static size_t rtp_header_len(const uint8_t *p, size_t n)
{
	size_t h = 12 + 4 * (size_t)(p[0] & 0x0f);

	if ((p[0] & 0x10) && n >= h + 4)
		h += 4 + 4 * (size_t)((p[h + 2] << 8) | p[h + 3]);
	return h;
}

/* Packets recorded from rtpengine and baresip (tests/unit/data/srtp/README.md):
 * their a=crypto goes through our parser, their packets through our suite
 * table into libsrtp2, and must come out as the payload they were fed. */
static void test_foreign_fixtures(void **state)
{
	DIR *d = opendir(TEST_DATA_DIR "/srtp");
	struct dirent *de;
	bool rtpengine[SUITE_COUNT] = { false };
	unsigned files = 0, packets = 0, unusable = 0;

	if (!d)
		fail_msg("no fixtures in " TEST_DATA_DIR "/srtp");
	assert_int_equal(srtplib_init(), 0);
	while ((de = readdir(d))) {
		char path[1024], why[256];
		struct sdes_crypto c;
		struct vec v;
		srtp_policy_t pol;
		srtp_t rx = NULL;
		FILE *f;

		if (!strstr(de->d_name, ".txt"))
			continue;
		snprintf(path, sizeof(path), "%s/srtp/%s", TEST_DATA_DIR, de->d_name);
		f = fopen(path, "r");
		assert_non_null(f);
		assert_true(read_vec(f, &v));
		fclose(f);
		if (sdes_parse(&c, slice_from(v.crypto), why, sizeof(why)))
			fail_msg("%s: their a=crypto does not parse: %s", de->d_name, why);
		assert_string_equal(suite_name(c.suite), v.suite);
		memset(&pol, 0, sizeof(pol));
		suite_srtp_policies(c.suite, &pol.rtp, &pol.rtcp);
		pol.ssrc.type = ssrc_any_inbound;
		pol.key = c.keys[0].keysalt.bytes;
		pol.window_size = 128;
		assert_int_equal(srtp_create(&rx, &pol), srtp_err_status_ok);
		for (size_t i = 0; i < v.npkts; i++) {
			uint8_t buf[600];
			int len = (int)v.pkts[i].nprot;
			srtp_err_status_t st;

			memcpy(buf, v.pkts[i].prot, v.pkts[i].nprot);
			st = v.pkts[i].rtcp ? srtp_unprotect_rtcp(rx, buf, &len)
					    : srtp_unprotect(rx, buf, &len);
			/* A libsrtp2 without the RFC 6188 fix must fail here: that
			 * is why such a build refuses the suite in its config. */
			if (!suite_usable(c.suite, NULL)) {
				assert_int_not_equal(st, srtp_err_status_ok);
				unusable++;
				continue;
			}
			if (st != srtp_err_status_ok)
				fail_msg("%s: packet %zu does not decrypt (%d)", de->d_name, i, st);
			if (v.pkts[i].rtcp && !v.pkts[i].nplain) {
				/* baresip's report: its plain text is not known in
				 * advance; an SR (PT 200) from the RTP stream's SSRC,
				 * then an SDES (PT 202) */
				size_t sr = 4 * ((size_t)((buf[2] << 8) | buf[3]) + 1);

				assert_true((size_t)len > sr + 1);
				assert_int_equal(buf[1], 200);
				assert_memory_equal(buf + 4, v.pkts[0].prot + 8, 4);
				assert_int_equal(buf[sr + 1], 202);
			} else if (v.pkts[i].rtcp) {
				assert_int_equal(len, (int)v.pkts[i].nplain);
				assert_memory_equal(buf, v.pkts[i].plain, v.pkts[i].nplain);
			} else {
				size_t h = rtp_header_len(buf, (size_t)len);

				assert_int_equal((size_t)len - h, v.pkts[i].nplain);
				assert_memory_equal(buf + h, v.pkts[i].plain, v.pkts[i].nplain);
			}
			packets++;
		}
		assert_true(v.npkts >= 5);
		if (strncmp(de->d_name, "rtpengine-", 10) == 0)
			rtpengine[c.suite] = true;
		srtp_dealloc(rx);
		sdes_wipe(&c);
		files++;
	}
	closedir(d);
	/* rtpengine covers every suite; baresip adds the ones it has */
	for (int s = 0; s < SUITE_COUNT; s++)
		if (!rtpengine[s])
			fail_msg("no rtpengine fixture for %s", suite_name((enum suite_id)s));
	assert_true(files > SUITE_COUNT);
	assert_true(packets + unusable >= 5 * files);
	/* this build decrypts every fixture, or refuses the suites it cannot
	 * (an unfixed system libsrtp2 and AES-192) */
	for (int s = 0; s < SUITE_COUNT; s++)
		if (!suite_usable((enum suite_id)s, NULL))
			assert_true(unusable > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4568_examples),
		cmocka_unit_test(test_session_params),
		cmocka_unit_test(test_every_suite_and_padding),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_nul_and_limits),
		cmocka_unit_test(test_base64_decoder),
		cmocka_unit_test(test_suite_table_with_libsrtp),
		cmocka_unit_test(test_libsrtp_known_answers),
		cmocka_unit_test(test_foreign_fixtures),
	};
	int rc = cmocka_run_group_tests_name("sdes", tests, NULL, NULL);

	srtplib_shutdown();
	return rc;
}
