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

The fault switches are test_probe_faults.py. Calls that share a daemon run
at the same time (each probe on its own ports), so the file stays short;
each case is told apart in srtpbridgectl by its [route:*] rule, which the
dialled number picks. Skipped when srtpprobe is not built."""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402
import probe  # noqa: E402
from harness import DaemonTestCase  # noqa: E402
from sipua import ctl  # noqa: E402

ALL_SUITES = ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32",
              "AES_192_CM_HMAC_SHA1_80", "AES_192_CM_HMAC_SHA1_32",
              "AES_256_CM_HMAC_SHA1_80", "AES_256_CM_HMAC_SHA1_32",
              "AEAD_AES_128_GCM", "AEAD_AES_256_GCM"]
DURATION = 3

GLOBAL = """[global]
log_level = debug
control_socket = @CTL@
metrics_listen =
media_ports = @MEDIA@
media_port_quarantine = 0
"""


def trunk(name, listen, peers, srtp="mandatory", suites=None, route=None, extra=""):
    # X-Srtpprobe-Heard: each probe's account of what it heard, in its
    # BYE, reaches the other probe (the answerer's verdict needs it).
    text = ("[trunk:%s]\nlisten = %s\npeers = %s\nsources = 127.0.0.1/32\n"
            "options_interval = 0\nfailover_timeout = 1\nsrtp = %s\n"
            "pass_headers = User-to-User, X-Srtpprobe-Heard\n" % (name, listen, peers, srtp))
    if suites:
        text += "crypto_suites = %s\n" % ", ".join(suites)
    if route:
        text += "route = %s\n" % route
    return text + extra + "\n"


def rule(name, frm, match, to):
    return "[route:%s]\nfrom = %s\nmatch = %s\nto = %s\n\n" % (name, frm, match, to)


_suites_cache = []


def build_suites():
    """The suites this build's libsrtp2 can carry: the daemon's --check
    refuses AES-192 on a libsrtp2 that derives its keys wrongly."""
    if _suites_cache:
        return list(_suites_cache)
    tmp = harness.TempDir()
    try:
        for s in ALL_SUITES:
            port = harness.free_port()
            text = (GLOBAL.replace("@CTL@", tmp.join("c.sock")).replace("@MEDIA@", "40000-40099")
                    + trunk("t", "udp:127.0.0.1:%d" % port, "udp:127.0.0.1:%d" % port,
                            suites=[s]))
            r = harness.run([harness.binary(), "--check", "-c", tmp.write("c.ini", text)])
            if r.returncode == 0:
                _suites_cache.append(s)
    finally:
        tmp.cleanup()
    return list(_suites_cache)


def verdict(report):
    return report and report.get("verdict")


def suite_of(report):
    return report and report.get("suite")


def sip_status(report):
    return report and report.get("sip", {}).get("status")


class ProbeMatrixCase(DaemonTestCase):
    """A daemon built from trunks and rules; probes placed through it."""

    def start(self, sections, media=48):
        self.ctl_sock = self.tmp.join("ctl.sock")
        text = (harness.render(GLOBAL, CTL=self.ctl_sock, MEDIA=harness.free_media_range(media))
                + "".join(sections))
        self.config_text = text
        self.daemon = self.start_daemon(self.tmp.write("sbc.ini", text))
        self.daemon.wait_ready()

    def call(self, port, user, args, listen_port=None, timeout=60):
        """A probe call to user@127.0.0.1:port from its own listen port."""
        lp = listen_port or harness.free_port()
        transport = "udp"
        if "--transport" in args:
            transport = args[args.index("--transport") + 1]
        argv = ["--listen", "%s:127.0.0.1:%d" % (transport, lp), "--duration", str(DURATION)]
        return probe.Call(self, "sip:%s@127.0.0.1:%d" % (user, port), argv + list(args),
                          timeout=timeout)

    def calls_view(self):
        """srtpbridgectl calls, by route rule name."""
        rc, out = ctl(self.ctl_sock, "calls")
        self.assertEqual(rc, 0, out)
        return {c["route"]: c for c in out["calls"]}

    def watch(self, calls, names):
        """Waits for the calls to end while keeping srtpbridgectl's last view
        of each rule's call (counters only grow): returns (results, views)."""
        views = {}
        pending = dict(zip(names, calls))
        results = {}
        while pending:
            for name, c in list(pending.items()):
                if c.proc.poll() is not None:
                    results[name] = c.result()
                    del pending[name]
            try:
                for route, view in self.calls_view().items():
                    if route in names:
                        views[route] = view
            except AssertionError:
                pass
            time.sleep(0.25)
        return results, views

    def expect_two_way(self, name, result, view=None, suite=None):
        rc, rep, err = result
        msg = "%s: %s\n%s\n%s" % (name, probe.describe(rep), err[-2000:],
                                  "\n".join(r["_raw"] for r in self.daemon.logs()[-30:]))
        self.assertEqual(verdict(rep), "two-way audio", msg)
        self.assertEqual(rc, 0, msg)
        if suite:
            self.assertEqual(suite_of(rep), suite, msg)
        if view is not None:
            self.assertEqual(view["decrypt_failures"], 0, "%s: %s" % (name, view))
            self.assertGreater(view["packets_in"], 0, "%s: %s" % (name, view))
            if suite:
                self.assertEqual(view["suite"], suite, "%s: %s" % (name, view))


@unittest.skipUnless(probe.exists(), "srtpprobe is not built")
class SuitesTest(ProbeMatrixCase):
    def test_every_suite_carrier_to_ivr_and_back(self):
        suites = build_suites()
        self.assertIn("AES_CM_128_HMAC_SHA1_80", suites)
        car, ivr, plain_ans, srtp_ans = harness.free_ports(4)
        sections = [trunk("carrier", "udp:127.0.0.1:%d" % car,
                          "udp:127.0.0.1:%d" % srtp_ans, suites=suites, route="ivr"),
                    trunk("ivr", "udp:127.0.0.1:%d" % ivr, "udp:127.0.0.1:%d" % plain_ans,
                          srtp="off", route="carrier")]
        # IVR -> carrier: one carrier trunk per suite, so that the daemon
        # offers exactly that one to the SRTP answerer.
        for i, s in enumerate(suites):
            sections.append(trunk("c%d" % i, "udp:127.0.0.1:%d" % harness.free_port(),
                                  "udp:127.0.0.1:%d" % srtp_ans, suites=[s]))
            sections.append(rule("in_%d" % i, "carrier", "^in%d$" % i, "ivr"))
            sections.append(rule("out_%d" % i, "ivr", "^out%d$" % i, "c%d" % i))
        self.start(sections, media=4 * 2 * len(suites) + 16)
        probe.Answerer(self, ["udp:127.0.0.1:%d" % plain_ans], ["--srtp", "off"])
        probe.Answerer(self, ["udp:127.0.0.1:%d" % srtp_ans],
                       ["--srtp", "mandatory", "--suites", ",".join(suites)])
        names, calls = [], []
        for i, s in enumerate(suites):
            names.append("in_%d" % i)
            calls.append(self.call(car, "in%d" % i, ["--srtp", "mandatory", "--suites", s]))
            names.append("out_%d" % i)
            calls.append(self.call(ivr, "out%d" % i, ["--srtp", "off"]))
        results, views = self.watch(calls, names)
        for i, s in enumerate(suites):
            self.expect_two_way("%s carrier->IVR" % s, results["in_%d" % i],
                                views.get("in_%d" % i), suite=s)
            self.expect_two_way("%s IVR->carrier" % s, results["out_%d" % i],
                                views.get("out_%d" % i))
            self.assertEqual(views["out_%d" % i]["suite"], s)

    def test_tag_lengths_chosen_by_the_trunk_and_488_without_a_common_suite(self):
        c80, c32, ivr, ans = harness.free_ports(4)
        self.start([trunk("c80", "udp:127.0.0.1:%d" % c80, "udp:127.0.0.1:%d" % c80,
                          suites=["AES_CM_128_HMAC_SHA1_80"], route="ivr"),
                    trunk("c32", "udp:127.0.0.1:%d" % c32, "udp:127.0.0.1:%d" % c32,
                          suites=["AES_CM_128_HMAC_SHA1_32"], route="ivr"),
                    trunk("ivr", "udp:127.0.0.1:%d" % ivr, "udp:127.0.0.1:%d" % ans,
                          srtp="off")])
        answerer = probe.Answerer(self, ["udp:127.0.0.1:%d" % ans], ["--srtp", "off"])
        both = "AES_CM_128_HMAC_SHA1_80,AES_CM_128_HMAC_SHA1_32"
        calls = [self.call(c80, "a", ["--srtp", "mandatory", "--suites", both]),
                 self.call(c32, "b", ["--srtp", "mandatory", "--suites", both]),
                 self.call(c80, "c", ["--srtp", "mandatory",
                                      "--suites", "AES_CM_128_HMAC_SHA1_32"])]
        results, views = self.watch(calls, ["c80", "c32", "refused"])
        self.expect_two_way("80+32 to an 80-only trunk", results["c80"],
                            suite="AES_CM_128_HMAC_SHA1_80")
        self.expect_two_way("80+32 to a 32-only trunk", results["c32"],
                            suite="AES_CM_128_HMAC_SHA1_32")
        rc, rep, err = results["refused"]
        self.assertEqual(rc, 2, probe.describe(rep) + err)
        self.assertEqual(sip_status(rep), 488, probe.describe(rep))
        self.assertIn("AES_CM_128_HMAC_SHA1_32", rep["sip"].get("warning", ""),
                      probe.describe(rep))
        # No call reached the IVR for the refused offer: the answerer's
        # reports are the two calls above (the refused one ended first).
        self.assertEqual(len(answerer.wait_reports(2)), 2)
        self.assertEqual(len(answerer.reports()), 2, answerer.reports())


@unittest.skipUnless(probe.exists(), "srtpprobe is not built")
class CallLifeTest(ProbeMatrixCase):
    def test_hold_resume_tls_and_failover_each_way(self):
        ca, cert, key = probe.tls_certs(self.tmp.path)
        car, car_tls, ivr, plain_ans, srtp_ans, srtp_ans_tls, dead, dead2 = \
            harness.free_ports(8)
        tls = ("tls_certificate = %s\ntls_private_key = %s\ntls_ca = %s\n" % (cert, key, ca))
        self.start([
            trunk("carrier", "udp:127.0.0.1:%d, tls:127.0.0.1:%d" % (car, car_tls),
                  "udp:127.0.0.1:%d" % srtp_ans, route="ivr", extra=tls),
            trunk("ivr", "udp:127.0.0.1:%d" % ivr, "udp:127.0.0.1:%d" % plain_ans,
                  srtp="off", route="carrier"),
            trunk("ivr_failover", "udp:127.0.0.1:%d" % harness.free_port(),
                  "udp:127.0.0.1:%d | udp:127.0.0.1:%d" % (dead, plain_ans), srtp="off"),
            # a trunk sends TLS from a tls listen address of its own
            trunk("carrier_tls", "tls:127.0.0.1:%d" % harness.free_port(),
                  "tls:127.0.0.1:%d" % srtp_ans_tls, extra=tls),
            trunk("carrier_failover", "udp:127.0.0.1:%d" % harness.free_port(),
                  "udp:127.0.0.1:%d | udp:127.0.0.1:%d" % (dead2, srtp_ans)),
            rule("hold_in", "carrier", "^hold$", "ivr"),
            rule("tls_in", "carrier", "^tls$", "ivr"),
            rule("failover_in", "carrier", "^failover$", "ivr_failover"),
            rule("hold_out", "ivr", "^hold$", "carrier"),
            rule("tls_out", "ivr", "^tls$", "carrier_tls"),
            rule("failover_out", "ivr", "^failover$", "carrier_failover"),
        ])
        probe.Answerer(self, ["udp:127.0.0.1:%d" % plain_ans], ["--srtp", "off"])
        probe.Answerer(self, ["udp:127.0.0.1:%d" % srtp_ans], ["--srtp", "mandatory"])
        probe.Answerer(self, ["tls:127.0.0.1:%d" % srtp_ans_tls],
                       ["--srtp", "mandatory", "--cert", cert, "--key", key])
        srtp = ["--srtp", "mandatory"]
        hold = ["--hold-resume", "--duration", "6"]
        names = ["hold_in", "tls_in", "failover_in", "hold_out", "tls_out", "failover_out"]
        calls = [self.call(car, "hold", srtp + hold),
                 self.call(car_tls, "tls", srtp + ["--transport", "tls", "--ca", ca]),
                 self.call(car, "failover", srtp),
                 self.call(ivr, "hold", ["--srtp", "off"] + hold),
                 self.call(ivr, "tls", ["--srtp", "off"]),
                 self.call(ivr, "failover", ["--srtp", "off"])]
        results, views = self.watch(calls, names)
        for n in names:
            self.expect_two_way(n, results[n], views.get(n))
        for n in ("hold_in", "hold_out"):
            rep = results[n][1]
            self.assertTrue(rep["sip"].get("reinvites"), probe.describe(rep))
            for r in rep["sip"]["reinvites"]:
                self.assertEqual(r.get("status"), 200, probe.describe(rep))


if __name__ == "__main__":
    harness.main()
