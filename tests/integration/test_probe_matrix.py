"""The end-to-end matrix through the daemon, srtpprobe at both ends (issue
12): audio proven by tones, in both call directions.

    carrier -> IVR:  srtpprobe call (SRTP) -> [carrier] srtpbridge [ivr] -> srtpprobe answer (RTP)
    IVR -> carrier:  srtpprobe call (RTP)  -> [ivr] srtpbridge [carrier] -> srtpprobe answer (SRTP)

- every suite the build has, each way; an 80+32 offer against an 80-only
  and a 32-only trunk (the trunk's one is chosen); a 32-only offer to an
  80-only trunk: 488 with a Warning, no call reaches the IVR;
- hold and resume with new keys, audio judged after the resume;
- SIP over TLS on the carrier side, each way;
- failover to a second IVR (and a second carrier) when the first is dead.

The fault switches are test_probe_faults.py; test_probe_peers.py has the
same calls with SRTP that is not ours. Calls that share a daemon run at the
same time, so the file stays short; each is told apart in srtpbridgectl by
its [route:*] rule, which the dialled number picks (peers/bridge.py).
Answerers listen on ports the kernel picks. Skipped when srtpprobe is not
built."""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "peers"))
import bridge  # noqa: E402
import harness  # noqa: E402
import probe  # noqa: E402
from harness import DaemonTestCase  # noqa: E402

DURATION = 3
S80, S32 = "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"


def verdict(report):
    return report and report.get("verdict")


class ProbeMatrixCase(DaemonTestCase):
    """A daemon of trunks and rules (self.b, a peers/bridge.py Bridge);
    probes placed through it, watched in srtpbridgectl by rule."""

    def setUp(self):
        super().setUp()
        self.addCleanup(harness.release_ports)
        self.b = bridge.Bridge(self)

    def answerer(self, *args, listen="udp"):
        """srtpprobe answer on a port the kernel picks: (answerer, port)."""
        ans = probe.Answerer(self, ["%s:127.0.0.1:0" % listen], list(args))
        return ans, ans.port

    def call(self, trunk, user, args, transport="udp"):
        """A probe call to user at trunk's listen address (its SIP port its
        own pick)."""
        uri = "sip:%s@127.0.0.1:%d" % (user, self.b.listen_on[trunk][transport])
        duration = DURATION
        if "--duration" in args:
            duration = int(args[args.index("--duration") + 1])
        else:
            args = ["--duration", str(DURATION)] + list(args)
        if transport != "udp":
            args = ["--transport", transport] + list(args)
        return probe.Call(self, uri, args, timeout=duration + 30)

    def watch(self, calls):
        """{rule: call} -> ({rule: (exit, report, stderr)}, {rule: the last
        srtpbridgectl view of its call: counters only grow})."""
        views = self.b.watch(lambda: any(c.proc.poll() is None for c in calls.values()),
                             detail=False)
        return {n: c.result() for n, c in calls.items()}, views

    def expect_two_way(self, name, result, view, suite=None):
        rc, rep, err = result
        msg = "%s: %s\n%s\n%s" % (name, probe.describe(rep), err[-2000:],
                                  "\n".join(r["_raw"] for r in self.b.daemon.logs()[-30:]))
        self.assertEqual(verdict(rep), "two-way audio", msg)
        self.assertEqual(rc, 0, msg)
        if suite:
            self.assertEqual(rep["suite"], suite, msg)
        self.assertIsNotNone(view, msg)
        self.assertEqual(view["decrypt_failures"], 0, "%s: %s" % (name, view))
        self.assertGreater(view["packets_in"], 0, "%s: %s" % (name, view))
        if suite:
            self.assertEqual(view["suite"], suite, "%s: %s" % (name, view))


@unittest.skipUnless(probe.exists(), "srtpprobe is not built")
class SuitesTest(ProbeMatrixCase):
    def test_every_suite_carrier_to_ivr_and_back(self):
        suites = bridge.build_suites()
        self.assertIn(S80, suites)
        b = self.b
        _, plain = self.answerer("--srtp", "off")
        _, srtp = self.answerer("--srtp", "mandatory", "--suites", ",".join(suites))
        b.trunk("carrier", srtp, suites=suites, route="ivr")
        b.trunk("ivr", plain, srtp="off", route="carrier")
        # IVR -> carrier: a carrier trunk per suite, so that the daemon
        # offers exactly that one to the SRTP answerer
        for i, s in enumerate(suites):
            b.trunk("c%d" % i, srtp, suites=[s])
            b.rule("in_%d" % i, "carrier", "^in%d$" % i, "ivr")
            b.rule("out_%d" % i, "ivr", "^out%d$" % i, "c%d" % i)
        b.start(calls=2 * len(suites))
        calls = {}
        for i, s in enumerate(suites):
            calls["in_%d" % i] = self.call("carrier", "in%d" % i,
                                           ["--srtp", "mandatory", "--suites", s])
            calls["out_%d" % i] = self.call("ivr", "out%d" % i, ["--srtp", "off"])
        results, views = self.watch(calls)
        for i, s in enumerate(suites):
            self.expect_two_way("%s carrier->IVR" % s, results["in_%d" % i],
                                views.get("in_%d" % i), suite=s)
            self.expect_two_way("%s IVR->carrier" % s, results["out_%d" % i],
                                views.get("out_%d" % i))
            self.assertEqual(views["out_%d" % i]["suite"], s)

    def test_tag_lengths_chosen_by_the_trunk_and_488_without_a_common_suite(self):
        b = self.b
        answerer, plain = self.answerer("--srtp", "off")
        b.trunk("c80", plain, suites=[S80], route="ivr")
        b.trunk("c32", plain, suites=[S32], route="ivr")
        b.trunk("ivr", plain, srtp="off")
        b.rule("both_80", "c80", "^a$", "ivr")
        b.rule("both_32", "c32", "^b$", "ivr")
        b.rule("refused", "c80", "^c$", "ivr")
        b.start(calls=3)
        both = "%s,%s" % (S80, S32)
        results, views = self.watch({
            "both_80": self.call("c80", "a", ["--srtp", "mandatory", "--suites", both]),
            "both_32": self.call("c32", "b", ["--srtp", "mandatory", "--suites", both]),
            "refused": self.call("c80", "c", ["--srtp", "mandatory", "--suites", S32])})
        self.expect_two_way("80+32 to an 80-only trunk", results["both_80"],
                            views.get("both_80"), suite=S80)
        self.expect_two_way("80+32 to a 32-only trunk", results["both_32"],
                            views.get("both_32"), suite=S32)
        rc, rep, err = results["refused"]
        self.assertEqual(rc, 2, probe.describe(rep) + err)
        self.assertEqual(rep["sip"]["status"], 488, probe.describe(rep))
        self.assertIn(S32, rep["sip"].get("warning") or "", probe.describe(rep))
        self.assertNotIn("refused", views)
        # no call reached the IVR for the refused offer: the answerer's
        # reports are the two calls above (the refused one ended first)
        self.assertEqual(len(answerer.wait_reports(2)), 2)
        self.assertEqual(len(answerer.reports()), 2, answerer.reports())


@unittest.skipUnless(probe.exists(), "srtpprobe is not built")
class CallLifeTest(ProbeMatrixCase):
    def test_hold_resume_tls_and_failover_each_way(self):
        ca, cert, key = probe.tls_certs(self.tmp.path)
        tls = "tls_certificate = %s\ntls_private_key = %s\ntls_ca = %s\n" % (cert, key, ca)
        b = self.b
        _, plain = self.answerer("--srtp", "off")
        _, srtp = self.answerer("--srtp", "mandatory")
        _, srtp_tls = self.answerer("--srtp", "mandatory", "--cert", cert, "--key", key,
                                    listen="tls")
        dead, dead2 = harness.quiet_port(), harness.quiet_port()  # held: nobody answers
        b.trunk("carrier", srtp, route="ivr", listen=("udp", "tls"), extra=tls)
        b.trunk("ivr", plain, srtp="off", route="carrier")
        b.trunk("ivr_failover", "udp:127.0.0.1:%d | udp:127.0.0.1:%d" % (dead, plain),
                srtp="off")
        # a trunk sends TLS from a tls listen address of its own
        b.trunk("carrier_tls", "tls:127.0.0.1:%d" % srtp_tls, listen=("tls",), extra=tls)
        b.trunk("carrier_failover", "udp:127.0.0.1:%d | udp:127.0.0.1:%d" % (dead2, srtp))
        b.rule("hold_in", "carrier", "^hold$", "ivr")
        b.rule("tls_in", "carrier", "^tls$", "ivr")
        b.rule("failover_in", "carrier", "^failover$", "ivr_failover")
        b.rule("hold_out", "ivr", "^hold$", "carrier")
        b.rule("tls_out", "ivr", "^tls$", "carrier_tls")
        b.rule("failover_out", "ivr", "^failover$", "carrier_failover")
        b.start(calls=6)
        srtp_args = ["--srtp", "mandatory"]
        hold = ["--hold-resume", "--duration", "6"]
        results, views = self.watch({
            "hold_in": self.call("carrier", "hold", srtp_args + hold),
            "tls_in": self.call("carrier", "tls", srtp_args + ["--ca", ca], transport="tls"),
            "failover_in": self.call("carrier", "failover", srtp_args),
            "hold_out": self.call("ivr", "hold", ["--srtp", "off"] + hold),
            "tls_out": self.call("ivr", "tls", ["--srtp", "off"]),
            "failover_out": self.call("ivr", "failover", ["--srtp", "off"])})
        for n in results:
            self.expect_two_way(n, results[n], views.get(n))
        for n in ("hold_in", "hold_out"):
            rep = results[n][1]
            self.assertEqual([(r["purpose"], r["status"]) for r in rep["sip"]["reinvites"]],
                             [("hold", 200), ("resume", 200)], probe.describe(rep))
        self.assertEqual(results["tls_in"][1]["sip"]["transport"], "tls")


if __name__ == "__main__":
    harness.main()
