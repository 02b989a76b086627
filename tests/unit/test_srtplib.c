/* test_srtplib.c: the linked libsrtp2 is the build cmake chose, and it really protects packets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <srtp2/srtp.h>

#include "srtpbridge/srtplib.h"

#ifndef SRTPBRIDGE_SRTP_BACKEND_EXPECTED
#error "SRTPBRIDGE_SRTP_BACKEND_EXPECTED comes with srtpbridge::srtp2 (cmake/Libsrtp2.cmake)"
#endif

#define RTP_HEADER_LEN	12
#define RTP_PAYLOAD_LEN 160
#define RTP_PACKET_LEN	(RTP_HEADER_LEN + RTP_PAYLOAD_LEN)

/* Long enough for every suite: AES-256 key || 14-byte salt. */
static const uint8_t fixed_key[46] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b,
	0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
	0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23,
	0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d,
};

static int setup_init(void **state)
{
	(void)state;
	return srtplib_init() == 0 ? 0 : -1;
}

static int teardown_group(void **state)
{
	(void)state;
	srtplib_shutdown();
	return 0;
}

/* Runs first, before any setup has initialised libsrtp. */
static void test_lifecycle(void **state)
{
	(void)state;
	assert_string_equal(srtplib_backend(), "unknown");
	assert_int_equal(srtplib_init(), 0);
	assert_int_equal(srtplib_init(), 0);
	assert_string_equal(srtplib_backend(), SRTPBRIDGE_SRTP_BACKEND_EXPECTED);
	srtplib_shutdown();
	srtplib_shutdown();
	assert_string_equal(srtplib_backend(), SRTPBRIDGE_SRTP_BACKEND_EXPECTED);
	assert_int_equal(srtplib_init(), 0);
	assert_string_equal(srtplib_backend(), SRTPBRIDGE_SRTP_BACKEND_EXPECTED);
}

/* An OpenSSL build that silently fell back to the system NSS library (or the
 * reverse) fails here rather than in a benchmark. */
static void test_backend(void **state)
{
	(void)state;
	assert_string_equal(srtplib_backend(), SRTPBRIDGE_SRTP_BACKEND_EXPECTED);
}

static void test_version(void **state)
{
	const char *v = srtplib_version();

	(void)state;
	assert_non_null(v);
	assert_int_equal(strncmp(v, "libsrtp2 ", 9), 0);
	assert_true(strlen(v) > 9);
}

/* srtp_validate() in libsrtp's test/srtp_driver.c: AES_CM_128_HMAC_SHA1_80,
 * SSRC 0xcafebabe, seq 0x1234. */
static void test_known_answer(void **state)
{
	static const uint8_t test_key[46] = {
		0xe1, 0xf9, 0x7a, 0x0d, 0x3e, 0x01, 0x8b, 0xe0, 0xd6, 0x4f, 0xa3, 0x2c,
		0x06, 0xde, 0x41, 0x39, 0x0e, 0xc6, 0x75, 0xad, 0x49, 0x8a, 0xfe, 0xeb,
		0xb6, 0x96, 0x0b, 0x3a, 0xab, 0xe6, 0xc1, 0x73, 0xc3, 0x17, 0xf2, 0xda,
		0xbe, 0x35, 0x77, 0x93, 0xb6, 0x96, 0x0b, 0x3a, 0xab, 0xe6,
	};
	static const uint8_t srtp_plaintext_ref[28] = {
		0x80, 0x0f, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe, 0xba, 0xbe, 0xab, 0xab,
		0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
	};
	static const uint8_t srtp_ciphertext[38] = {
		0x80, 0x0f, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe, 0xba, 0xbe, 0x4e,
		0x55, 0xdc, 0x4c, 0xe7, 0x99, 0x78, 0xd8, 0x8c, 0xa4, 0xd2, 0x15, 0x94, 0x9d,
		0x24, 0x02, 0xb7, 0x8d, 0x6a, 0xcc, 0x99, 0xea, 0x17, 0x9b, 0x8d, 0xbb,
	};
	_Alignas(8) uint8_t buf[sizeof(srtp_plaintext_ref) + SRTP_MAX_TRAILER_LEN];
	srtp_policy_t policy;
	srtp_t tx, rx;
	int len;

	(void)state;
	memset(&policy, 0, sizeof(policy));
	srtp_crypto_policy_set_rtp_default(&policy.rtp);
	srtp_crypto_policy_set_rtcp_default(&policy.rtcp);
	policy.ssrc.type = ssrc_specific;
	policy.ssrc.value = 0xcafebabe;
	policy.key = (unsigned char *)test_key;
	policy.window_size = 128;

	assert_int_equal(srtp_create(&tx, &policy), srtp_err_status_ok);
	memcpy(buf, srtp_plaintext_ref, sizeof(srtp_plaintext_ref));
	len = (int)sizeof(srtp_plaintext_ref);
	assert_int_equal(srtp_protect(tx, buf, &len), srtp_err_status_ok);
	assert_int_equal(len, sizeof(srtp_ciphertext));
	assert_memory_equal(buf, srtp_ciphertext, sizeof(srtp_ciphertext));

	assert_int_equal(srtp_create(&rx, &policy), srtp_err_status_ok);
	assert_int_equal(srtp_unprotect(rx, buf, &len), srtp_err_status_ok);
	assert_int_equal(len, sizeof(srtp_plaintext_ref));
	assert_memory_equal(buf, srtp_plaintext_ref, sizeof(srtp_plaintext_ref));

	assert_int_equal(srtp_dealloc(tx), srtp_err_status_ok);
	assert_int_equal(srtp_dealloc(rx), srtp_err_status_ok);
}

static void build_rtp(uint8_t *p)
{
	static const uint8_t header[RTP_HEADER_LEN] = {
		0x80, 0x00, 0x12, 0x34, /* V=2, PT 0 (PCMU), seq 0x1234 */
		0xde, 0xca, 0xfb, 0xad, /* timestamp */
		0xca, 0xfe, 0xba, 0xbe, /* SSRC */
	};
	size_t i;

	memcpy(p, header, sizeof(header));
	for (i = 0; i < RTP_PAYLOAD_LEN; i++)
		p[RTP_HEADER_LEN + i] = (uint8_t)(i * 7 + 3);
}

static void round_trip(void (*set_policy)(srtp_crypto_policy_t *), int trailer_len)
{
	_Alignas(8) uint8_t plain[RTP_PACKET_LEN];
	_Alignas(8) uint8_t prot[RTP_PACKET_LEN + SRTP_MAX_TRAILER_LEN];
	_Alignas(8) uint8_t bad[sizeof(prot)];
	srtp_policy_t out_policy, in_policy;
	srtp_t tx, rx;
	int len, bad_len;

	memset(&out_policy, 0, sizeof(out_policy));
	set_policy(&out_policy.rtp);
	set_policy(&out_policy.rtcp);
	out_policy.ssrc.type = ssrc_any_outbound;
	out_policy.key = (unsigned char *)fixed_key;
	out_policy.window_size = 128;
	in_policy = out_policy;
	in_policy.ssrc.type = ssrc_any_inbound;
	assert_int_equal(srtp_create(&tx, &out_policy), srtp_err_status_ok);
	assert_int_equal(srtp_create(&rx, &in_policy), srtp_err_status_ok);

	build_rtp(plain);
	memcpy(prot, plain, sizeof(plain));
	len = RTP_PACKET_LEN;
	assert_int_equal(srtp_protect(tx, prot, &len), srtp_err_status_ok);
	assert_int_equal(len, RTP_PACKET_LEN + trailer_len);
	assert_memory_equal(prot, plain, RTP_HEADER_LEN);
	assert_memory_not_equal(prot + RTP_HEADER_LEN, plain + RTP_HEADER_LEN, RTP_PAYLOAD_LEN);

	/* Before the genuine packet: a failed check must not enter the replay
	 * window, or the genuine one would then be refused as a replay. */
	memcpy(bad, prot, (size_t)len);
	bad[RTP_HEADER_LEN + 40] ^= 0x01;
	bad_len = len;
	assert_int_equal(srtp_unprotect(rx, bad, &bad_len), srtp_err_status_auth_fail);

	assert_int_equal(srtp_unprotect(rx, prot, &len), srtp_err_status_ok);
	assert_int_equal(len, RTP_PACKET_LEN);
	assert_memory_equal(prot, plain, RTP_PACKET_LEN);

	assert_int_equal(srtp_dealloc(tx), srtp_err_status_ok);
	assert_int_equal(srtp_dealloc(rx), srtp_err_status_ok);
}

static void test_round_trip_aes_cm_128_hmac_sha1_80(void **state)
{
	(void)state;
	/* srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80 is a function-like macro for this one. */
	round_trip(srtp_crypto_policy_set_rtp_default, 10);
}

static void test_round_trip_aead_aes_256_gcm(void **state)
{
	(void)state;
	round_trip(srtp_crypto_policy_set_aes_gcm_256_16_auth, 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifecycle),
		cmocka_unit_test_setup(test_backend, setup_init),
		cmocka_unit_test(test_version),
		cmocka_unit_test_setup(test_known_answer, setup_init),
		cmocka_unit_test_setup(test_round_trip_aes_cm_128_hmac_sha1_80, setup_init),
		cmocka_unit_test_setup(test_round_trip_aead_aes_256_gcm, setup_init),
	};

	return cmocka_run_group_tests_name("srtplib", tests, NULL, teardown_group);
}
