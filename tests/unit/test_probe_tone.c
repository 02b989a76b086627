/* test_probe_tone.c: G.711, the tone generator and the Goertzel detector of
 * srtpprobe (tools/srtpprobe/tone.h). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tone.h"

#define N TONE_FRAME

static void test_g711_known_values(void **state)
{
	(void)state;
	/* digital silence */
	assert_int_equal(tone_ulaw_encode(0), 0xFF);
	assert_int_equal(tone_alaw_encode(0), 0xD5);
	assert_int_equal(tone_ulaw_decode(0xFF), 0);
	assert_int_equal(tone_ulaw_decode(0x7F), 0); /* mu-law's negative zero */
	assert_int_equal(tone_alaw_decode(0xD5), 8); /* A-law has no zero: +-8 */
	assert_int_equal(tone_alaw_decode(0x55), -8);
	assert_int_equal(tone_silence_byte(false), 0xFF);
	assert_int_equal(tone_silence_byte(true), 0xD5);
	/* the ends of the scales */
	assert_int_equal(tone_ulaw_decode(0x80), 32124);
	assert_int_equal(tone_ulaw_decode(0x00), -32124);
	assert_int_equal(tone_alaw_decode(0xAA), 32256);
	assert_int_equal(tone_alaw_decode(0x2A), -32256);
	assert_int_equal(tone_ulaw_encode(32767), 0x80);
	assert_int_equal(tone_ulaw_encode(-32768), 0x00);
	assert_int_equal(tone_alaw_encode(32767), 0xAA);
	assert_int_equal(tone_alaw_encode(-32768), 0x2A);
	/* the first codes of segment 1 (ITU-T G.711 tables 2a/2b, in the
	 * 16-bit scale: mu-law 33 * 4, A-law 33 * 8) */
	assert_int_equal(tone_ulaw_decode(0xEF), 132);
	assert_int_equal(tone_ulaw_decode(0xEE), 148);
	assert_int_equal(tone_ulaw_decode(0xDF), 396);
	assert_int_equal(tone_alaw_decode(0xC5), 264);
	assert_int_equal(tone_alaw_decode(0xD4), 24);
}

/* Every code decodes to a value that encodes back to it (mu-law's negative
 * zero, 0x7F, gives +0's 0xFF). */
static void test_g711_codes_round_trip(void **state)
{
	(void)state;
	for (int c = 0; c < 256; c++) {
		if (c != 0x7F)
			assert_int_equal(tone_ulaw_encode(tone_ulaw_decode((uint8_t)c)), c);
		assert_int_equal(tone_alaw_encode(tone_alaw_decode((uint8_t)c)), c);
	}
}

/* Over the whole 16-bit range: the error stays within a quantisation step
 * (1/32 of the magnitude plus the rounding of the segment's first bits in
 * the log segments; 16 in the linear ones), beyond the clip level at most
 * the clipping, and the round trip is monotonic. */
static void test_g711_full_range_error(void **state)
{
	int prev_u = -40000, prev_a = -40000;

	(void)state;
	for (int x = -32768; x <= 32767; x++) {
		int u = tone_ulaw_decode(tone_ulaw_encode((int16_t)x));
		int a = tone_alaw_decode(tone_alaw_encode((int16_t)x));
		int ax = abs(x);
		int ulim = ax > 32635 ? ax - 32124 + 1 : (ax + 0x84) / 32 + 1;
		int alim = ax > 32256 ? ax - 32256 + 1 : (ax < 512 ? 16 : ax / 32 + 16);

		if (abs(u - x) > ulim)
			fail_msg("mu-law %d -> %d: error %d > %d", x, u, abs(u - x), ulim);
		if (abs(a - x) > alim)
			fail_msg("A-law %d -> %d: error %d > %d", x, a, abs(a - x), alim);
		assert_true(u >= prev_u);
		assert_true(a >= prev_a);
		/* the sign survives (mu-law's tiny negatives become 0) */
		assert_true(x >= 0 ? u >= 0 : u <= 0);
		prev_u = u;
		prev_a = a;
	}
}

static void test_generator_continuous_phase(void **state)
{
	struct tone_gen g1, g2;
	int16_t whole[3 * N], parts[3 * N];

	(void)state;
	tone_gen_init(&g1, TONE_A_HZ, TONE_AMPLITUDE);
	tone_gen_init(&g2, TONE_A_HZ, TONE_AMPLITUDE);
	tone_gen_fill(&g1, whole, 3 * N);
	for (int k = 0; k < 3; k++)
		tone_gen_fill(&g2, parts + k * N, N);
	assert_memory_equal(whole, parts, sizeof(whole));
	/* a 600 Hz tone has 12 whole periods in a frame: at a frame edge the
	 * step from the last sample to the next is as small as anywhere */
	for (int i = 1; i < 3 * N; i++)
		assert_true(abs(whole[i] - whole[i - 1]) <= 3400);
	/* the level: -10 dBm0-ish */
	{
		int peak = 0;

		for (int i = 0; i < 3 * N; i++)
			peak = abs(whole[i]) > peak ? abs(whole[i]) : peak;
		assert_in_range(peak, TONE_AMPLITUDE - 200, TONE_AMPLITUDE);
	}
	/* a change of frequency keeps the phase: no jump at the change */
	tone_gen_set(&g1, TONE_C_HZ);
	{
		int16_t next[N];
		double last = whole[3 * N - 1];

		tone_gen_fill(&g1, next, N);
		assert_true(fabs(next[0] - last) <= 7000); /* <= one 1500 Hz step */
	}
	/* an hour of frames later (the phasor is renormalised every frame)
	 * the level is the same */
	tone_gen_init(&g2, TONE_B_HZ, TONE_AMPLITUDE);
	for (int k = 0; k < 180000; k++)
		tone_gen_fill(&g2, parts, N);
	{
		int peak = 0;

		for (int i = 0; i < N; i++)
			peak = abs(parts[i]) > peak ? abs(parts[i]) : peak;
		assert_in_range(peak, TONE_AMPLITUDE - 10, TONE_AMPLITUDE);
		assert_int_equal(tone_classify(parts, N), TONE_B);
	}
	/* 0 Hz is silence */
	tone_gen_init(&g1, 0, TONE_AMPLITUDE);
	tone_gen_fill(&g1, whole, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(whole[i], 0);
}

/* Through the codec, as the far end hears it. */
static void through(bool alaw, int16_t *pcm, size_t n)
{
	uint8_t b[4 * N];

	tone_encode(alaw, pcm, b, n);
	tone_decode(alaw, b, pcm, n);
}

static void sine(int16_t *out, size_t n, double hz, double amp, double phase)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (int16_t)lrint(amp * sin(phase + 2 * M_PI * hz * (double)i / TONE_RATE));
}

static void test_classify_our_tones(void **state)
{
	static const enum tone_class tones[] = { TONE_A, TONE_B, TONE_C };
	int16_t pcm[N];

	(void)state;
	for (int codec = 0; codec < 3; codec++) {
		for (int t = 0; t < 3; t++) {
			for (int ph = 0; ph < 16; ph++) {
				/* -10 dBm0, and 20 dB quieter still */
				for (double amp = TONE_AMPLITUDE; amp > 600; amp /= 10) {
					sine(pcm, N, tone_hz(tones[t]), amp, ph * 0.4);
					if (codec)
						through(codec == 2, pcm, N);
					assert_int_equal(tone_classify(pcm, N), tones[t]);
				}
			}
		}
	}
	/* a few Hz off (a resampling device) still counts */
	sine(pcm, N, TONE_B_HZ + 8, TONE_AMPLITUDE, 0.3);
	assert_int_equal(tone_classify(pcm, N), TONE_B);
	/* the generator's frames, one after another, through both codecs */
	for (int alaw = 0; alaw < 2; alaw++) {
		struct tone_gen g;

		tone_gen_init(&g, TONE_C_HZ, TONE_AMPLITUDE);
		for (int f = 0; f < 50; f++) {
			tone_gen_fill(&g, pcm, N);
			through(alaw, pcm, N);
			assert_int_equal(tone_classify(pcm, N), TONE_C);
		}
	}
	/* other frame lengths: 10 ms and 30 ms */
	sine(pcm, 80, TONE_A_HZ, TONE_AMPLITUDE, 1);
	assert_int_equal(tone_classify(pcm, 80), TONE_A);
	{
		int16_t big[240];

		sine(big, 240, TONE_C_HZ, TONE_AMPLITUDE, 1);
		assert_int_equal(tone_classify(big, 240), TONE_C);
	}
	assert_int_equal(tone_classify(pcm, 40), TONE_OTHER); /* too short */
}

static void test_classify_silence(void **state)
{
	uint8_t b[N];
	int16_t pcm[N];

	(void)state;
	memset(pcm, 0, sizeof(pcm));
	assert_int_equal(tone_classify(pcm, N), TONE_SILENCE);
	memset(b, 0xFF, sizeof(b));
	tone_decode(false, b, pcm, N);
	assert_int_equal(tone_classify(pcm, N), TONE_SILENCE);
	memset(b, 0xD5, sizeof(b));
	tone_decode(true, b, pcm, N);
	assert_int_equal(tone_classify(pcm, N), TONE_SILENCE);
	/* a tone 50 dB below ours is below the floor */
	sine(pcm, N, TONE_A_HZ, TONE_AMPLITUDE / 316.0, 0);
	assert_int_equal(tone_classify(pcm, N), TONE_SILENCE);
	/* low noise, as an idle line */
	srand(7);
	for (int i = 0; i < N; i++)
		pcm[i] = (int16_t)(rand() % 41 - 20);
	assert_int_equal(tone_classify(pcm, N), TONE_SILENCE);
}

/* A frame that straddles a change from one tone to another (phase running
 * on, as the generator does it) reads as one of the two or OTHER, never as
 * the third; mostly one tone reads as that tone. */
static void test_classify_straddle(void **state)
{
	static const enum tone_class pairs[][3] = {
		{ TONE_A, TONE_B, TONE_C }, { TONE_B, TONE_C, TONE_A }, { TONE_C, TONE_B, TONE_A },
		{ TONE_A, TONE_C, TONE_B }, { TONE_B, TONE_A, TONE_C }, { TONE_C, TONE_A, TONE_B }
	};

	(void)state;
	for (size_t p = 0; p < sizeof(pairs) / sizeof(pairs[0]); p++) {
		for (int m = 0; m <= N; m += 4) {
			for (int alaw = 0; alaw < 2; alaw++) {
				struct tone_gen g;
				int16_t pcm[N];
				enum tone_class c;

				tone_gen_init(&g, tone_hz(pairs[p][0]), TONE_AMPLITUDE);
				tone_gen_fill(&g, pcm, (size_t)m);
				tone_gen_set(&g, tone_hz(pairs[p][1]));
				tone_gen_fill(&g, pcm + m, (size_t)(N - m));
				through(alaw, pcm, N);
				c = tone_classify(pcm, N);
				if (c == pairs[p][2] || c == TONE_SILENCE)
					fail_msg("%s->%s at %d: %s", tone_class_name(pairs[p][0]),
						 tone_class_name(pairs[p][1]), m,
						 tone_class_name(c));
				if (m >= N - 12)
					assert_int_equal(c, pairs[p][0]);
				if (m <= 12)
					assert_int_equal(c, pairs[p][1]);
			}
		}
	}
}

/* Two of our tones at once (a bridge that mixes), or at 6 dB apart: OTHER. */
static void test_classify_mix_is_other(void **state)
{
	static const unsigned hz[] = { TONE_A_HZ, TONE_B_HZ, TONE_C_HZ };
	int16_t pcm[N], b[N];

	(void)state;
	for (int i = 0; i < 3; i++) {
		for (int j = i + 1; j < 3; j++) {
			for (int ph = 0; ph < 8; ph++) {
				for (double ratio = 1.0; ratio >= 0.5; ratio -= 0.5) {
					sine(pcm, N, hz[i], TONE_AMPLITUDE / 2, ph * 0.7);
					sine(b, N, hz[j], TONE_AMPLITUDE / 2 * ratio, ph * 0.3);
					for (int k = 0; k < N; k++)
						pcm[k] = (int16_t)(pcm[k] + b[k]);
					through(ph & 1, pcm, N);
					assert_int_equal(tone_classify(pcm, N), TONE_OTHER);
				}
			}
		}
	}
	/* all three */
	sine(pcm, N, TONE_A_HZ, 3000, 0);
	for (int j = 1; j < 3; j++) {
		sine(b, N, hz[j], 3000, j);
		for (int k = 0; k < N; k++)
			pcm[k] = (int16_t)(pcm[k] + b[k]);
	}
	assert_int_equal(tone_classify(pcm, N), TONE_OTHER);
}

static void test_classify_noise_is_other(void **state)
{
	int16_t pcm[N];

	(void)state;
	srand(12345);
	for (int f = 0; f < 500; f++) {
		int amp = 1000 + f * 40;

		for (int i = 0; i < N; i++)
			pcm[i] = (int16_t)(rand() % (2 * amp + 1) - amp);
		through(f & 1, pcm, N);
		assert_int_equal(tone_classify(pcm, N), TONE_OTHER);
	}
	/* a tone under louder noise is not ours either */
	sine(pcm, N, TONE_A_HZ, TONE_AMPLITUDE, 0);
	for (int i = 0; i < N; i++)
		pcm[i] = (int16_t)(pcm[i] + rand() % 28001 - 14000);
	assert_int_equal(tone_classify(pcm, N), TONE_OTHER);
}

/* A frequency we did not send is OTHER: 700 Hz, and a sweep over the band
 * that keeps 40 Hz away from ours. */
static void test_classify_foreign_tone(void **state)
{
	int16_t pcm[N];

	(void)state;
	sine(pcm, N, 700, TONE_AMPLITUDE, 0.5);
	assert_int_equal(tone_classify(pcm, N), TONE_OTHER);
	through(false, pcm, N);
	assert_int_equal(tone_classify(pcm, N), TONE_OTHER);
	for (int hz = 100; hz < 3950; hz += 10) {
		if (abs(hz - TONE_A_HZ) < 40 || abs(hz - TONE_B_HZ) < 40 ||
		    abs(hz - TONE_C_HZ) < 40)
			continue;
		for (int ph = 0; ph < 4; ph++) {
			enum tone_class c;

			sine(pcm, N, hz, TONE_AMPLITUDE, ph * 0.8);
			through(ph & 1, pcm, N);
			c = tone_classify(pcm, N);
			if (c != TONE_OTHER)
				fail_msg("%d Hz read as %s", hz, tone_class_name(c));
		}
	}
	/* a 200 Hz square wave: its third harmonic is at 600 Hz, with 9 % of
	 * the energy: OTHER, not A */
	for (int i = 0; i < N; i++)
		pcm[i] = (int16_t)((i / 20) % 2 ? 5000 : -5000);
	assert_int_equal(tone_classify(pcm, N), TONE_OTHER);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(tone_class_name(TONE_A), "A");
	assert_string_equal(tone_class_name(TONE_SILENCE), "silence");
	assert_string_equal(tone_class_name(TONE_OTHER), "other");
	assert_string_equal(tone_class_name((enum tone_class)99), "?");
	assert_int_equal(tone_hz(TONE_B), 1000);
	assert_int_equal(tone_hz(TONE_OTHER), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_g711_known_values),
		cmocka_unit_test(test_g711_codes_round_trip),
		cmocka_unit_test(test_g711_full_range_error),
		cmocka_unit_test(test_generator_continuous_phase),
		cmocka_unit_test(test_classify_our_tones),
		cmocka_unit_test(test_classify_silence),
		cmocka_unit_test(test_classify_straddle),
		cmocka_unit_test(test_classify_mix_is_other),
		cmocka_unit_test(test_classify_noise_is_other),
		cmocka_unit_test(test_classify_foreign_tone),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
