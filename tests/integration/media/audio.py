"""Audio checks for the end-to-end media test (python3 stdlib only).

  - read_wav(): the 16-bit PCM of a WAV file, even one whose header was never
    finished (a recorder killed mid-call): the data chunk runs to the end;
  - ulaw_decode(): G.711 mu-law bytes to linear samples (PCMU payloads);
  - tone_ratio(): how much of a window's power sits at one frequency
    (Goertzel), 0..1: about 1 for a clean sine at that frequency, under a
    few per cent for other tones, noise or ciphertext;
  - tone_seconds(): for how long a recording holds a tone.
"""

import math
import struct

# Analysis window: 50 ms at 8 kHz. Every tone used here (multiples of 20 Hz)
# has a whole number of periods in it, so a clean sine scores about 1.0.
WINDOW = 400
# A window quieter than this RMS (full scale 32767) is silence: not scored.
MIN_RMS = 200.0
# A window holds the tone when at least this share of its power is at the
# tone's frequency. A mu-law coded sine scores > 0.95; a frame joined to a
# concealed or shifted one still > 0.7; a different tone, noise or random
# bytes < 0.05.
MIN_RATIO = 0.6


def read_wav(path):
    """(sample rate, channels, [int16 samples]) of a 16-bit PCM WAV file."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("%s: not a RIFF/WAVE file" % path)
    pos, rate, channels, bits = 12, None, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = pos + 8
        if cid == b"fmt ":
            fmt, channels, rate = struct.unpack("<HHI", data[body:body + 8])
            bits = struct.unpack("<H", data[body + 14:body + 16])[0]
            if fmt not in (1, 0xFFFE) or bits != 16:
                raise ValueError("%s: not 16-bit PCM (format %d, %d bits)" % (path, fmt, bits))
        elif cid == b"data":
            if rate is None:
                raise ValueError("%s: data chunk before fmt chunk" % path)
            # size may be 0 or stale in a header that was never finished
            raw = data[body:]
            if 0 < size <= len(raw):
                raw = raw[:size]
            raw = raw[:len(raw) - len(raw) % 2]
            return rate, channels, list(struct.unpack("<%dh" % (len(raw) // 2), raw))
        pos = body + size + (size & 1)
    raise ValueError("%s: no data chunk" % path)


def _ulaw_table():
    table = []
    for b in range(256):
        u = ~b & 0xFF
        sign, exponent, mantissa = u & 0x80, (u >> 4) & 7, u & 0x0F
        magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
        table.append(-magnitude if sign else magnitude)
    return table


ULAW = _ulaw_table()


def ulaw_decode(payload):
    return [ULAW[b] for b in payload]


def tone_ratio(samples, rate, freq):
    """Share (0..1) of the power of samples that is at freq (Goertzel)."""
    n = len(samples)
    if n == 0:
        return 0.0
    mean = sum(samples) / n
    coeff = 2.0 * math.cos(2.0 * math.pi * freq / rate)
    s1 = s2 = 0.0
    energy = 0.0
    for x in samples:
        x -= mean
        energy += x * x
        s0 = x + coeff * s1 - s2
        s2, s1 = s1, s0
    if energy <= 0.0:
        return 0.0
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2  # |X(freq)|^2
    # a sine of amplitude A: |X|^2 = (A n / 2)^2 and energy = A^2 n / 2
    return min(1.0, 2.0 * power / (n * energy))


def rms(samples):
    return math.sqrt(sum(x * x for x in samples) / len(samples)) if samples else 0.0


def windows(samples, size=WINDOW):
    for i in range(0, len(samples) - size + 1, size):
        yield samples[i:i + size]


def analyse(samples, rate, freqs, size=WINDOW, min_rms=MIN_RMS, min_ratio=MIN_RATIO):
    """A summary of a recording: its length, how much of it is silence, and
    for each frequency how many seconds of windows hold that tone."""
    total = loud = 0
    held = {f: 0 for f in freqs}
    for w in windows(samples, size):
        total += 1
        if rms(w) < min_rms:
            continue
        loud += 1
        for f in freqs:
            if tone_ratio(w, rate, f) >= min_ratio:
                held[f] += 1
    sec = size / float(rate)
    return {"seconds": round(len(samples) / float(rate), 2),
            "loud_seconds": round(loud * sec, 2),
            "tone_seconds": {f: round(n * sec, 2) for f, n in held.items()}}


def _ulaw_encode(sample):
    """G.711 mu-law of one linear sample (the classic BIAS/CLIP coder)."""
    sign = 0x80 if sample < 0 else 0
    if sample < 0:
        sample = -sample
    sample = min(sample, 32635) + 0x84
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not sample & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def ulaw_encode(samples):
    return bytes(_ulaw_encode(s) for s in samples)


def ulaw_frames(samples, size=160):
    """The PCMU payloads (size bytes each) a sender makes of samples, the
    samples its encoder was given (baresip's -enc.wav)."""
    return {ulaw_encode(samples[i:i + size]) for i in range(0, len(samples) - size + 1, size)}
