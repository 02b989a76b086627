"""Audio end to end through the daemon, with an SRTP implementation that is
not ours: baresip (Debian's baresip-core, libre's SRTP) is the carrier, with
SRTP mandatory, and a second baresip with SRTP off is the IVR. Each sends
its own sine tone (carrier 1000 Hz, IVR 1500 Hz: a loop back, or audio
crossing the wrong way, cannot pass) and records what it receives.

What each call must show:
  - signalling: the call is established on both phones through the daemon,
    SRTP on the carrier phone with the expected suite, none on the IVR's;
  - audio both ways: each phone's recording holds the other's tone for at
    least MIN_TONE_SECONDS (Goertzel, media/audio.py) and not its own;
  - the carrier leg is really SRTP (a capture on lo, media/capture.py):
    every RTP packet is header + the plain side's payload length + the
    suite's tag (10 bytes for AES_CM_128_HMAC_SHA1_80, 4 for _32), no
    payload is, or holds, a PCMU frame of either tone as sent in plain RTP
    (those frames are known exactly: the phones' encoder input, and the IVR
    leg), none decodes to a tone, and the daemon's RTCP to the carrier is
    SRTCP with the E flag and an 80-bit tag; the same check run on the
    plain IVR leg must find the tone there (it can see plain audio when
    there is some).

The phone's own RTCP is not checked: baresip sends its first RTCP (an APP
"PINGPONG") in plain before SRTP is up, and with the _32 suites libre puts
a 4-byte tag on SRTCP where RFC 4568 keeps 80 bits (as libsrtp and the
daemon do), so that baresip and the daemon refuse each other's SRTCP with
_32. Neither touches the audio (RTP) that this test is about.

DirectTest is the same call without the daemon (baresip to baresip, SRTP
both sides): a known-good path for the phones, the tone detector and the
capture checks. Skipped without baresip; the capture checks are skipped
(with the reason) where an AF_PACKET socket cannot be opened (not root).
On a failure the message has the evidence: the daemon's log (debug),
srtpbridgectl's view of the call, what the capture saw on each leg, and
the phones' SRTP lines and recordings. SRTPBRIDGE_KEEP_TMP=1 keeps the
recordings, the phones' logs and capture.pcap (for tshark/wireshark).
"""

import json
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "media"))
import harness  # noqa: E402
from harness import DaemonTestCase, binary, run  # noqa: E402

import audio  # noqa: E402  (media/audio.py)
import baresip  # noqa: E402  (media/baresip.py)
import capture  # noqa: E402  (media/capture.py)

S80 = "AES_CM_128_HMAC_SHA1_80"
S32 = "AES_CM_128_HMAC_SHA1_32"
CARRIER_TONE = 1000
IVR_TONE = 1500
CARRIER_USER = "5550100"
IVR_USER = "8011000"
# Audio each phone must have received (decoded) before the call is hung up,
# and how much of it must hold the far end's tone.
AUDIO_SECONDS = 3.0
MIN_TONE_SECONDS = 2.0
# How long to wait for AUDIO_SECONDS of audio: calls with audio get it in
# about AUDIO_SECONDS; without, the wait ends here and the checks say why.
AUDIO_WAIT = max(4 * AUDIO_SECONDS, harness.TIMEOUT)
# PCMU at 20 ms
PAYLOAD_LEN = 160

CONFIG = """\
[global]
log_level = debug
control_socket = @CONTROL_SOCKET@
metrics_listen =
media_ports = @MEDIA_PORTS@
media_port_quarantine = 0

[trunk:carrier]
listen = udp:127.0.0.1:@CARRIER_LISTEN@
peers = udp:127.0.0.1:@CARRIER_PEER@
srtp = mandatory
options_interval = 0
route = ivr
@CARRIER_EXTRA@

[trunk:ivr]
listen = udp:127.0.0.1:@IVR_LISTEN@
peers = udp:127.0.0.1:@IVR_PEER@
srtp = off
options_interval = 0
route = carrier
"""

BARESIP_MISSING = baresip.unavailable()
CAPTURE_MISSING = capture.available()


def tone_in(payload):
    """True when a PCMU payload decodes to either tone (it is plain audio)."""
    samples = audio.ulaw_decode(payload)
    return audio.rms(samples) >= audio.MIN_RMS and any(
        audio.tone_ratio(samples, 8000, f) >= 0.3 for f in (CARRIER_TONE, IVR_TONE))


@unittest.skipIf(BARESIP_MISSING, BARESIP_MISSING)
class MediaTestCase(DaemonTestCase):
    daemon = None
    cap = None

    def setUp(self):
        super().setUp()
        self.addCleanup(harness.release_ports)
        if os.environ.get("SRTPBRIDGE_KEEP_TMP") == "1":
            self.addCleanup(self.save_daemon_log)

    def save_daemon_log(self):
        if self.daemon is not None:
            harness.write_file(self.tmp.join("daemon.log"),
                               "".join(r["_raw"] + "\n" for r in self.daemon.logs()))

    def phones(self, carrier_srtp=True, ivr_srtp=False):
        self.carrier = baresip.Baresip(self, "carrier", CARRIER_USER, CARRIER_TONE,
                                       srtp=carrier_srtp).start()
        self.ivr = baresip.Baresip(self, "ivr", IVR_USER, IVR_TONE, srtp=ivr_srtp).start()

    def start_capture(self, ports):
        if CAPTURE_MISSING:
            return
        self.cap = capture.LoopbackCapture(ports).start()
        self.addCleanup(self.cap.stop)
        if os.environ.get("SRTPBRIDGE_KEEP_TMP") == "1":
            self.addCleanup(lambda: self.cap.save_pcap(self.tmp.join("capture.pcap")))

    # -- the daemon

    def start_daemon_for(self, carrier_extra=""):
        """The daemon between self.carrier and self.ivr (retried when a port
        picked free was taken before it bound it, as test_call.py does)."""
        def launch():
            q = harness.quiet_port
            self.v = {"CONTROL_SOCKET": self.tmp.join("ctl.sock"),
                      "MEDIA_PORTS": harness.free_media_range(32),
                      "CARRIER_LISTEN": q(), "IVR_LISTEN": q(),
                      "CARRIER_PEER": self.carrier.sip_port, "IVR_PEER": self.ivr.sip_port,
                      "CARRIER_EXTRA": carrier_extra}
            path = harness.write_config(self.tmp.join("srtpbridge.ini"), CONFIG, **self.v)
            harness.release_ports(self.v["CARRIER_LISTEN"], self.v["IVR_LISTEN"])
            self.daemon = self.start_daemon(path)
            return self.daemon

        harness.start_with_fresh_ports(launch)
        low, high = self.v["MEDIA_PORTS"].split("-")
        self.media = range(int(low), int(high) + 1)

    def ctl(self, *args):
        r = run([binary("srtpbridgectl"), "-s", self.v["CONTROL_SOCKET"], "--json"] + list(args),
                timeout=10)
        try:
            return json.loads(r.stdout)
        except ValueError:
            return {"ok": False, "stdout": r.stdout, "stderr": r.stderr}

    # -- the call

    def call(self, caller, callee, uri):
        """caller dials uri; both phones must establish the call; waits for
        AUDIO_SECONDS of received audio on both (or AUDIO_WAIT), lets the
        caller hang up and both quit. Returns {'audio_wait': seconds or None}."""
        caller.command("dial", uri)
        for phone in (caller, callee):
            try:
                phone.wait_event("CALL_ESTABLISHED", timeout=harness.TIMEOUT)
            except AssertionError as e:
                raise AssertionError("the call was not established on %s: %s\n%s"
                                     % (phone.name, e, self.evidence())) from None
        if self.daemon is not None:
            self.ctl_calls = self.ctl("calls")
        start = time.monotonic()
        waited = None
        while time.monotonic() - start < AUDIO_WAIT:
            if all(p.received_seconds() >= AUDIO_SECONDS for p in (caller, callee)):
                waited = round(time.monotonic() - start, 2)
                break
            for p in (caller, callee):
                if p.find_events("CALL_CLOSED"):
                    self.fail("the call ended early on %s: %s\n%s" % (
                        p.name, p.find_events("CALL_CLOSED"), self.evidence()))
            time.sleep(0.1)
        if self.daemon is not None:
            self.ctl_call = {}
            calls = self.ctl("calls").get("calls") or []
            if calls:
                self.ctl_call = self.ctl("call", calls[0]["id"])
        caller.command("hangup")
        for phone in (caller, callee):
            phone.wait_event("CALL_CLOSED", timeout=harness.TIMEOUT)
        for phone in (caller, callee):
            self.assertEqual(phone.quit(), 0, "baresip %s's exit status" % phone.name)
        if self.cap is not None:
            self.cap.stop()
        return {"audio_wait": waited}

    # -- checks

    def heard(self, phone):
        path = phone.recording()
        if path is None:
            return {"seconds": 0.0, "loud_seconds": 0.0,
                    "tone_seconds": {CARRIER_TONE: 0.0, IVR_TONE: 0.0}}
        rate, channels, samples = audio.read_wav(path)
        self.assertEqual((rate, channels), (8000, 1), path)
        return audio.analyse(samples, rate, (CARRIER_TONE, IVR_TONE))

    def check_audio(self, phone, far_tone, own_tone):
        got = self.heard(phone)
        self.assertGreaterEqual(
            got["tone_seconds"][far_tone], MIN_TONE_SECONDS,
            "%s did not hear the far end's %d Hz tone for %.1f s: %s\n%s"
            % (phone.name, far_tone, MIN_TONE_SECONDS, got, self.evidence()))
        self.assertLess(got["tone_seconds"][own_tone], 0.5,
                        "%s hears its own %d Hz tone (a loop): %s" % (phone.name, own_tone, got))
        return got

    def plain_frames(self):
        """Every PCMU frame of the tones as the phones sent them in plain RTP:
        their encoders' input (baresip's -enc.wav) coded as PCMU."""
        frames = set()
        for phone in (self.carrier, self.ivr):
            path = phone.recording("enc")
            self.assertIsNotNone(path, "%s recorded nothing it sent" % phone.name)
            rate, channels, samples = audio.read_wav(path)
            self.assertEqual((rate, channels), (8000, 1), path)
            frames |= audio.ulaw_frames(samples, PAYLOAD_LEN)
        return frames

    def check_secure_leg(self, leg, suite, srtcp_senders, plain_frames):
        """leg: the carrier leg's packets. Each RTP packet is SRTP of suite."""
        problems, counts = capture.srtp_problems(leg, suite, PAYLOAD_LEN, plain_frames, tone_in,
                                                 srtcp_senders=srtcp_senders)
        kinds = {}
        for kind, p, detail in problems:
            kinds.setdefault(kind, []).append("%r: %s" % (p, detail))
        self.assertEqual(kinds, {}, "carrier leg (%s, %d-byte tag): %s\n%s" % (
            suite, capture.SRTP_TAG[suite],
            {k: "%d packets, e.g. %s" % (len(v), v[:3]) for k, v in kinds.items()},
            self.evidence()))
        return counts

    def report(self, what, value):
        """One line on stderr for the record (ctest -V shows it)."""
        if value is not None:
            sys.stderr.write("  %s %s: %s\n" % (self.id().split(".")[-1], what, value))

    def evidence(self):
        """What happened where, for a failure message."""
        out = []
        if self.daemon is not None:
            out.append("--- srtpbridgectl calls (call up): %s" % getattr(self, "ctl_calls", None))
            out.append("--- srtpbridgectl call (before hangup): %s"
                       % getattr(self, "ctl_call", None))
            recs = [r for r in self.daemon.logs()
                    if r.get("module") in ("media", "relay", "srtp")
                    or r.get("level") in ("warn", "error")]
            out.append("--- daemon media/warn/error log (last 40 of %d):" % len(recs))
            out += ["  " + r["_raw"] for r in recs[-40:]]
            out.append("--- daemon log (last 25):\n" + self.daemon.log.tail(n=25))
        if getattr(self, "cap", None) is not None:
            pk = self.cap.snapshot()
            cr, ir = self.carrier.rtp_range, self.ivr.rtp_range
            if self.daemon is not None:
                out.append("--- capture (%d packets):" % len(pk))
                out += ["  " + l for l in capture.summary(
                    capture.leg_packets(pk, cr, self.media), cr, "carrier phone")]
                out += ["  " + l for l in capture.summary(
                    capture.leg_packets(pk, ir, self.media), ir, "ivr phone")]
            else:
                out += ["  " + l for l in capture.summary(
                    capture.leg_packets(pk, cr, ir), cr, "carrier phone")]
        for phone in (self.carrier, self.ivr):
            try:
                heard = self.heard(phone)
            except (ValueError, OSError) as e:
                heard = "unreadable recording: %s" % e
            out.append("--- %s phone: heard %s; events %s" % (
                phone.name, heard, [e.get("type") for e in phone.events.snapshot()]))
            out.append(phone.log_tail(12, grep="srtp"))
            out.append(phone.log_tail(6, grep="stream"))
        return "\n".join(out)

    def check_capture(self, suite, through_daemon):
        """The capture checks: skipped (as a subtest) without a capture."""
        with self.subTest("capture of the carrier leg"):
            if self.cap is None:
                self.skipTest(CAPTURE_MISSING)
            pk = self.cap.snapshot()
            cr, ir = self.carrier.rtp_range, self.ivr.rtp_range
            frames = self.plain_frames()
            far = self.media if through_daemon else ir
            leg = capture.leg_packets(pk, cr, far)
            for direction, pred in (("from the carrier phone", lambda p: p.sport in cr),
                                    ("to the carrier phone", lambda p: p.dport in cr)):
                n = sum(1 for p in leg if pred(p) and capture.rtp_header_len(p.data))
                self.assertGreaterEqual(n, 50 * AUDIO_SECONDS * 0.8,
                                        "RTP %s: %d packets\n%s" % (direction, n, self.evidence()))
            counts = self.check_secure_leg(leg, suite, srtcp_senders=far if through_daemon else (),
                                           plain_frames=frames)
            if not through_daemon:
                return counts
            # The same check on the plain IVR leg must flag it: it sees plain
            # audio when there is some (and the frames known are the real ones).
            ivr_leg = capture.leg_packets(pk, ir, self.media)
            from_ivr = [p for p in ivr_leg if p.sport in ir and capture.rtp_header_len(p.data)]
            self.assertGreater(len(from_ivr), 50, "the IVR phone sent no RTP?\n" + self.evidence())
            problems, _ = capture.srtp_problems(from_ivr, suite, PAYLOAD_LEN, frames, tone_in)
            plain = [p for kind, p, _ in problems if kind == "plain-frame"]
            self.assertGreater(len(plain), 0.9 * len(from_ivr),
                               "the plain IVR leg's RTP should hold known plain frames")
            sizes = {len(p.data) - capture.rtp_header_len(p.data) for p in from_ivr}
            self.assertEqual(sizes, {PAYLOAD_LEN}, "the IVR phone's payload lengths")
            return counts


class DirectTest(MediaTestCase):
    """No daemon: a known-good path for the phones and the checks."""

    def test_srtp_between_two_baresips(self):
        self.phones(carrier_srtp=True, ivr_srtp=True)
        self.start_capture(list(self.carrier.rtp_range) + list(self.ivr.rtp_range))
        self.call(self.carrier, self.ivr, self.ivr.aor)
        menc = self.carrier.find_events("CALL_MENC")
        self.assertEqual([e.get("param") for e in menc], ["0,audio,%s" % S80])
        self.report("ivr", self.check_audio(self.ivr, CARRIER_TONE, IVR_TONE))
        self.report("carrier", self.check_audio(self.carrier, IVR_TONE, CARRIER_TONE))
        self.report("carrier leg", self.check_capture(S80, through_daemon=False))


class ThroughDaemonTest(MediaTestCase):
    def through(self, suite, carrier_calls, carrier_extra=""):
        self.phones()
        self.start_daemon_for(carrier_extra)
        self.start_capture(list(self.carrier.rtp_range) + list(self.ivr.rtp_range)
                           + list(self.media))
        if carrier_calls:
            caller, callee = self.carrier, self.ivr
            uri = "sip:%s@127.0.0.1:%d" % (IVR_USER, self.v["CARRIER_LISTEN"])
        else:
            caller, callee = self.ivr, self.carrier
            uri = "sip:%s@127.0.0.1:%d" % (CARRIER_USER, self.v["IVR_LISTEN"])
        result = self.call(caller, callee, uri)

        # signalling through the daemon
        calls = (self.ctl_calls or {}).get("calls")
        self.assertEqual(len(calls or []), 1, "srtpbridgectl calls: %s" % self.ctl_calls)
        self.assertEqual((calls[0].get("trunk_in"), calls[0].get("trunk_out")),
                         ("carrier", "ivr") if carrier_calls else ("ivr", "carrier"), calls)
        menc = self.carrier.find_events("CALL_MENC")
        self.assertEqual([e.get("param") for e in menc], ["0,audio,%s" % suite],
                         "the carrier phone's SRTP suite")
        self.assertEqual(self.ivr.find_events("CALL_MENC"), [], "the IVR phone is plain RTP")

        # audio both ways, then the carrier leg's packets
        with self.subTest("audio"):
            self.assertIsNotNone(result["audio_wait"], "%.1f s of audio did not arrive at both "
                                 "phones in %.0f s\n%s" % (AUDIO_SECONDS, AUDIO_WAIT,
                                                           self.evidence()))
            self.report("ivr", self.check_audio(self.ivr, CARRIER_TONE, IVR_TONE))
            self.report("carrier", self.check_audio(self.carrier, IVR_TONE, CARRIER_TONE))
            # what the daemon counted on the carrier leg (where it reports it)
            shown = self.ctl_call.get("call") or {}
            legs = [shown[k] for k in ("leg_a", "leg_b")
                    if isinstance(shown.get(k), dict) and shown[k].get("trunk") == "carrier"]
            for stream in (legs[0] if legs else {}).get("streams", []):
                rtp_in = stream.get("rtp_in") or {}
                self.assertEqual((rtp_in.get("auth_fail", 0), rtp_in.get("replay_fail", 0)),
                                 (0, 0), "SRTP from the carrier phone that the daemon refused: "
                                 "%s\n%s" % (stream, self.evidence()))
        self.report("carrier leg", self.check_capture(suite, through_daemon=True))
        self.assertEqual(self.daemon.stop(), 0, "the daemon's exit status (SIGTERM, no call up)")

    def test_carrier_calls_ivr_80(self):
        """baresip offers AES_CM_128_HMAC_SHA1_80 (the only suite it offers)."""
        self.through(S80, carrier_calls=True)

    def test_ivr_calls_carrier_32(self):
        """The daemon offers only AES_CM_128_HMAC_SHA1_32 to the carrier
        phone, which takes it: 4-byte tags on the carrier leg."""
        self.through(S32, carrier_calls=False, carrier_extra="crypto_suites = " + S32)


if __name__ == "__main__":
    harness.main()
