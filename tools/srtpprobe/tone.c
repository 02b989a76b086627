/* tone.c: G.711, the probe's sine generator and its Goertzel detector. */
#include "tone.h"

#include <math.h>

#define TWO_PI 6.283185307179586

/* --- G.711 (the segment/quantisation tables of ITU-T G.711, in the
 * arithmetic form of the reference coders) --- */

#define ULAW_BIAS 0x84
#define ULAW_CLIP 32635

uint8_t tone_ulaw_encode(int16_t x)
{
	int v = x, seg = 0;
	uint8_t mask = 0xFF;

	if (v < 0) {
		v = -v;
		mask = 0x7F;
	}
	if (v > ULAW_CLIP)
		v = ULAW_CLIP;
	v += ULAW_BIAS;
	/* the segment is the position of the highest bit above bit 7 */
	for (int t = v >> 8; t; t >>= 1)
		seg++;
	return (uint8_t)(((seg << 4) | ((v >> (seg + 3)) & 0x0F)) ^ mask);
}

int16_t tone_ulaw_decode(uint8_t u)
{
	int t;

	u = (uint8_t)~u;
	t = ((u & 0x0F) << 3) + ULAW_BIAS;
	t <<= (u & 0x70) >> 4;
	return (int16_t)((u & 0x80) ? ULAW_BIAS - t : t - ULAW_BIAS);
}

uint8_t tone_alaw_encode(int16_t x)
{
	int v = x >> 3, seg = 0; /* 13-bit */
	uint8_t mask = 0xD5, aval;

	if (v < 0) {
		mask = 0x55;
		v = -v - 1;
	}
	for (int t = v >> 5; t; t >>= 1)
		seg++;
	if (seg >= 8)
		return (uint8_t)(0x7F ^ mask);
	aval = (uint8_t)(seg << 4);
	aval |= (uint8_t)((seg < 2 ? v >> 1 : v >> seg) & 0x0F);
	return (uint8_t)(aval ^ mask);
}

int16_t tone_alaw_decode(uint8_t a)
{
	int t, seg;

	a ^= 0x55;
	t = (a & 0x0F) << 4;
	seg = (a & 0x70) >> 4;
	if (seg == 0)
		t += 8;
	else
		t = (t + 0x108) << (seg - 1);
	return (int16_t)((a & 0x80) ? t : -t);
}

void tone_decode(bool alaw, const uint8_t *in, int16_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = alaw ? tone_alaw_decode(in[i]) : tone_ulaw_decode(in[i]);
}

void tone_encode(bool alaw, const int16_t *in, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = alaw ? tone_alaw_encode(in[i]) : tone_ulaw_encode(in[i]);
}

uint8_t tone_silence_byte(bool alaw)
{
	return alaw ? 0xD5 : 0xFF;
}

/* --- generator --- */

void tone_gen_init(struct tone_gen *g, unsigned hz, double amplitude)
{
	g->re = 1;
	g->im = 0;
	g->amplitude = amplitude;
	tone_gen_set(g, hz);
}

void tone_gen_set(struct tone_gen *g, unsigned hz)
{
	double w = TWO_PI * (double)hz / TONE_RATE;

	g->step_cos = cos(w);
	g->step_sin = sin(w);
	g->on = hz != 0;
}

void tone_gen_fill(struct tone_gen *g, int16_t *out, size_t n)
{
	double re = g->re, im = g->im, norm;

	for (size_t i = 0; i < n; i++) {
		double v = g->on ? g->amplitude * im : 0, t;

		if (v > 32767)
			v = 32767;
		if (v < -32768)
			v = -32768;
		out[i] = (int16_t)lrint(v);
		t = re * g->step_cos - im * g->step_sin;
		im = im * g->step_cos + re * g->step_sin;
		re = t;
	}
	/* rounding would let the phasor's length drift over a long call */
	norm = sqrt(re * re + im * im);
	if (norm > 0) {
		g->re = re / norm;
		g->im = im / norm;
	} else {
		g->re = 1;
		g->im = 0;
	}
}

unsigned tone_hz(enum tone_class c)
{
	switch (c) {
	case TONE_A:
		return TONE_A_HZ;
	case TONE_B:
		return TONE_B_HZ;
	case TONE_C:
		return TONE_C_HZ;
	default:
		return 0;
	}
}

/* --- detector --- */

/* Mean square below which a frame is silence: a sine of peak 45 (RMS 32),
 * about -54 dBm0; G.711's own idle noise on a line is far below. */
#define SILENCE_MEAN_SQUARE 1000.0
/* Share of the frame's energy in our tone's bin for it to count (a pure
 * tone at an exact bin gives 1; 0.6 allows ~18 Hz of offset and a frame
 * whose last fifth is another tone), and the most any other of our bins
 * may hold (two equal tones give 0.5 each). */
#define TONE_SHARE_MIN	0.6
#define OTHER_SHARE_MAX 0.15

enum tone_class tone_classify(const int16_t *pcm, size_t n)
{
	/* 2 cos(2 pi f / 8000) for TONE_A_HZ, TONE_B_HZ, TONE_C_HZ: one pass computes the energy and
	 * the three Goertzel filters */
	static const double coeff[3] = { 1.7820130483767358, 1.4142135623730951,
					 0.7653668647301797 };
	double energy = 0, s1[3] = { 0, 0, 0 }, s2[3] = { 0, 0, 0 }, share[3];
	int best = 0;

	if (n < TONE_FRAME / 2)
		return TONE_OTHER;
	for (size_t i = 0; i < n; i++) {
		double x = pcm[i];

		energy += x * x;
		for (int k = 0; k < 3; k++) {
			double s0 = x + coeff[k] * s1[k] - s2[k];

			s2[k] = s1[k];
			s1[k] = s0;
		}
	}
	if (energy / (double)n < SILENCE_MEAN_SQUARE)
		return TONE_SILENCE;
	/* the power at each tone as a share of the frame's energy:
	 * 2 |X(f)|^2 / (n * sum x^2), 1 for a pure sine at an exact bin */
	for (int k = 0; k < 3; k++) {
		double power = s1[k] * s1[k] + s2[k] * s2[k] - coeff[k] * s1[k] * s2[k];

		share[k] = 2.0 * power / ((double)n * energy);
		if (share[k] > share[best])
			best = k;
	}
	if (share[best] < TONE_SHARE_MIN)
		return TONE_OTHER;
	for (int k = 0; k < 3; k++)
		if (k != best && share[k] > OTHER_SHARE_MAX)
			return TONE_OTHER;
	return (enum tone_class)best;
}

const char *tone_class_name(enum tone_class c)
{
	static const char *const names[TONE_CLASS_COUNT] = { "A", "B", "C", "silence", "other" };

	return (unsigned)c < TONE_CLASS_COUNT ? names[c] : "?";
}
