/* tone.h: srtpprobe's audio: G.711 (ITU-T G.711 mu-law and A-law), a sine
 * generator whose phase runs on across 20 ms frames, and a Goertzel
 * detector that tells which of the probe's three tones a frame carries.
 *
 * Three frequencies, one per meaning, each an exact Goertzel bin of a
 * 160-sample frame at 8 kHz (50 Hz bins): A (600 Hz) is the caller's; B
 * (1000 Hz) the answerer's while it hears A; C (1500 Hz) the answerer's
 * while it does not. A bridge that loops audio back cannot pass for the far
 * end, because the caller would hear A, not B. Pure functions; nothing is
 * allocated. */
#ifndef SRTPPROBE_TONE_H
#define SRTPPROBE_TONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TONE_RATE  8000 /* samples per second */
#define TONE_FRAME 160	/* samples per 20 ms frame */
#define TONE_A_HZ  600
#define TONE_B_HZ  1000
#define TONE_C_HZ  1500
/* Peak amplitude (16-bit linear) of the tones sent: about -10 dBm0 (a
 * 0 dBm0 sine peaks at 22 714 in G.711's 16-bit scale, 3.17 dB below full
 * scale). */
#define TONE_AMPLITUDE 7180

enum tone_class {
	TONE_A = 0,
	TONE_B,
	TONE_C,
	TONE_SILENCE, /* digital silence, or energy below the floor (~ -50 dBm0) */
	TONE_OTHER,   /* speech, noise, several tones, a frequency we did not send */
	TONE_CLASS_COUNT
};

/* ITU-T G.711, with 16-bit linear samples (the 14-bit mu-law and 13-bit
 * A-law ranges scaled up, as every softphone does). Encoding 0 gives 0xFF
 * (mu-law) and 0xD5 (A-law): each codec's digital silence. */
uint8_t tone_ulaw_encode(int16_t x);
int16_t tone_ulaw_decode(uint8_t u);
uint8_t tone_alaw_encode(int16_t x);
int16_t tone_alaw_decode(uint8_t a);
/* n bytes of G.711 to n samples, or n samples to n bytes. */
void tone_decode(bool alaw, const uint8_t *in, int16_t *out, size_t n);
void tone_encode(bool alaw, const int16_t *in, uint8_t *out, size_t n);
/* The byte of digital silence: 0xFF mu-law, 0xD5 A-law. */
uint8_t tone_silence_byte(bool alaw);

/* A sine whose phase runs on from one frame to the next, so a tone split in
 * frames has no click at the frame edges (a click would read as OTHER). */
struct tone_gen {
	/* a unit phasor turned by (cos, sin) of the step each sample: no sin()
	 * per sample (srtpprobe load runs hundreds of streams on one core) */
	double re, im;
	double step_cos, step_sin;
	double amplitude;
	bool on; /* hz 0: silence */
};

/* hz 0 is silence. */
void tone_gen_init(struct tone_gen *g, unsigned hz, double amplitude);
/* Changes the frequency, keeping the phase (no click at the change). */
void tone_gen_set(struct tone_gen *g, unsigned hz);
/* The next n samples. */
void tone_gen_fill(struct tone_gen *g, int16_t *out, size_t n);

/* The hz of A, B or C; 0 for the others. */
unsigned tone_hz(enum tone_class c);

/* Classifies one frame of n samples (n = TONE_FRAME for exact bins; any
 * n >= 80 works, with leakage). One of our tones when its Goertzel power
 * carries most of the frame's energy and the other two tones' bins carry
 * little: a frame that straddles a change from one tone to the next reads
 * as one of the two (the one that fills most of it) or OTHER, never the
 * third. n < 80 is OTHER. */
enum tone_class tone_classify(const int16_t *pcm, size_t n);

/* "A", "B", "C", "silence", "other". */
const char *tone_class_name(enum tone_class c);

#endif
