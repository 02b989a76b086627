"""Every srtpprobe fault switch through the daemon, with its expected verdict
and what srtpbridgectl must show (issue 12): the field's silent-call causes
made on purpose on the SRTP carrier's side, in both call directions.

    carrier -> IVR:  srtpprobe call FAULT (SRTP) -> srtpbridge -> srtpprobe answer (RTP)
    IVR -> carrier:  srtpprobe call (RTP) -> srtpbridge -> srtpprobe answer FAULT (SRTP)

The verdict is the faulty side's: it sends tone A (caller) or B/C
(answerer) and learns from the tone it hears, and from the far probe's
account in its BYE or 200, whether the far end heard it. Faults that break
what the carrier sends (wrong tag length, wrong key, plain RTP, nothing,
silence) are `far end does not hear us`; the ones srtpbridge tolerates
(a peer that keeps its old key after a re-INVITE, a rollover counter reset
at a re-key, a sequence that starts near the wrap, SRTCP sent unencrypted,
no RTCP, media from another port, hold and resume) are `two-way audio`.
After each call, srtpbridgectl's view of it (read while it was up) must
show RTP and RTCP decrypt failures where the fault makes some, and none
where it does not (None: not asserted, with the reason in the table).
And a call where neither side hears the other (a wrong key one way, no
media the other): only the answerer can tell, from the caller's account in
its BYE (the trunks pass X-Srtpprobe-Heard), and says `no audio`.

All calls of a direction run at the same time against one daemon; each is
told apart in srtpbridgectl by its [route:*] rule. Skipped when srtpprobe is
not built."""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402
import probe  # noqa: E402
from test_probe_matrix import ProbeMatrixCase, verdict  # noqa: E402

HEARD_NOT = "far end does not hear us"
TWO_WAY = "two-way audio"
SOME = "some"

# name: (switches, verdict of the faulty side, RTP decrypt failures on the
# carrier leg, RTCP decrypt failures on the carrier leg). None = not asserted.
FAULTS = {
    "none": ([], TWO_WAY, 0, 0),
    # The 32-bit tag where 80 was agreed: every RTP packet fails. SRTCP's
    # tag is 80 bits with both (RFC 4568 6.2.1... libsrtp's _32 policies
    # keep an 80-bit SRTCP tag), so RTCP may pass: not asserted.
    "tag_mismatch": (["--tag-mismatch"], HEARD_NOT, SOME, None),
    "wrong_key": (["--wrong-key"], HEARD_NOT, SOME, SOME),
    "send_plain": (["--send-plain"], HEARD_NOT, SOME, SOME),
    "no_media": (["--no-media"], HEARD_NOT, 0, 0),
    "silence": (["--silence"], HEARD_NOT, 0, 0),
    "no_rekey": (["--no-rekey"], TWO_WAY, 0, 0),
    "roc_reset": (["--roc-reset"], TWO_WAY, 0, 0),
    "seq_start": (["--seq-start", "65500"], TWO_WAY, 0, 0),
    "plain_rtcp": (["--plain-rtcp"], TWO_WAY, 0, SOME),
    "no_rtcp": (["--no-rtcp"], TWO_WAY, 0, 0),
    "rtp_from": (["--rtp-from", "@RTP_FROM@"], TWO_WAY, 0, 0),
    "hold_resume": (["--hold-resume"], TWO_WAY, 0, 0),
}
# Faults that act at a re-key need a call long enough for it and the
# audio after it.
LONG = {"no_rekey", "roc_reset", "hold_resume"}


def switches(name):
    args = list(FAULTS[name][0])
    if "@RTP_FROM@" in args:
        args[args.index("@RTP_FROM@")] = str(harness.free_block(2))
    return args + (["--duration", "6"] if name in LONG else [])


@unittest.skipUnless(probe.exists(), "srtpprobe is not built")
class FaultsTest(ProbeMatrixCase):
    def check(self, name, result, view, faulty_report):
        want_verdict, want_rtp, want_rtcp = FAULTS[name][1:]
        rc, rep, err = result
        msg = "%s: %s\n%s\nsrtpbridgectl: %s" % (name, probe.describe(faulty_report),
                                                 err[-1500:], view)
        self.assertEqual(verdict(faulty_report), want_verdict, msg)
        self.assertIsNotNone(view, msg)
        for field, want in (("rtp_decrypt_failures", want_rtp),
                            ("rtcp_decrypt_failures", want_rtcp)):
            if want == SOME:
                self.assertGreater(view[field], 0, "%s: %s" % (field, msg))
            elif want is not None:
                self.assertEqual(view[field], want, "%s: %s" % (field, msg))

    def test_faults_on_the_calling_carrier(self):
        b = self.b
        _, plain = self.answerer("--srtp", "off")
        # neither side heard: the caller's key is wrong and the IVR sends
        # nothing; only the answerer can tell (the caller's BYE says it
        # heard nothing): `no audio`
        mute, mute_port = self.answerer("--srtp", "off", "--no-media")
        b.trunk("carrier", plain, route="ivr")
        b.trunk("ivr", plain, srtp="off")
        b.trunk("ivr_mute", mute_port, srtp="off")
        b.rule("no_audio", "carrier", "^no_audio$", "ivr_mute")
        for n in FAULTS:
            b.rule(n, "carrier", "^%s$" % n, "ivr")
        b.start(calls=len(FAULTS) + 1)
        calls = {n: self.call("carrier", n, ["--srtp", "mandatory"] + switches(n))
                 for n in FAULTS}
        calls["no_audio"] = self.call("carrier", "no_audio", ["--srtp", "mandatory",
                                                              "--wrong-key"])
        results, views = self.watch(calls)
        for n in FAULTS:
            self.check(n, results[n], views.get(n), results[n][1])
        rc, rep, err = results["no_audio"]
        self.assertEqual(verdict(rep), "we do not hear the far end", probe.describe(rep))
        self.assertEqual(rc, 1)
        self.assertGreater(views["no_audio"]["rtp_decrypt_failures"], 0, views["no_audio"])
        far = mute.wait_reports(1)[0]
        self.assertEqual(verdict(far), "no audio", probe.describe(far))
        self.assertEqual(far["exit_status"], 1, probe.describe(far))

    def test_faults_on_the_answering_carrier(self):
        b = self.b
        faulty = {}
        for n in FAULTS:
            # the answerer's own switches; the re-INVITEs come from the caller
            args = [a for a in switches(n) if a != "--hold-resume"]
            if "--duration" in args:
                i = args.index("--duration")
                del args[i:i + 2]
            faulty[n], port = self.answerer("--srtp", "mandatory", *args)
            b.trunk("c_" + n, port)
            b.rule(n, "ivr", "^%s$" % n, "c_" + n)
        b.trunk("ivr", harness.quiet_port(), srtp="off")
        b.start(calls=len(FAULTS))
        calls = {}
        for n in FAULTS:
            # in this direction the caller asks for hold and resume (new
            # keys each way), so that the answerer's no-rekey, roc-reset
            # and hold-resume have a re-key to act on
            extra = ["--duration", "6", "--hold-resume"] if n in LONG else []
            calls[n] = self.call("ivr", n, ["--srtp", "off"] + extra)
        results, views = self.watch(calls)
        for n in FAULTS:
            self.check(n, results[n], views.get(n), faulty[n].wait_reports(1)[0])


if __name__ == "__main__":
    harness.main()
