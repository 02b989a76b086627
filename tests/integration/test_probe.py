"""srtpprobe through srtpbridge: `srtpprobe call` on the carrier trunk (SRTP)
and `srtpprobe answer` as the IVR (plain RTP) prove two-way audio with SIP
over UDP, TCP and TLS, with a report whose JSON fields the test matrix
relies on (docs/srtpprobe.md); hold and resume with new keys; a suite the
trunk does not allow gets 488 with its Warning (exit 2); the reverse
direction (a plain caller on the IVR side, an SRTP answerer as the carrier);
the answerer's --once exit status; usage errors (exit 3)."""

import json
import os
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import probe  # noqa: E402
from harness import run  # noqa: E402

OPENSSL = shutil.which("openssl")
PROBE = harness.binary("srtpprobe")

CONFIG = """[global]
log_level = info
control_socket = @CTL@
metrics_listen =
media_ports = @MEDIA@
media_port_quarantine = 0

[trunk:carrier]
listen = udp:127.0.0.1:@PORT@, tcp:127.0.0.1:@PORT@@TLS_LISTEN@
peers = udp:127.0.0.1:@CARRIER_PEER@
sources = 127.0.0.1/32
options_interval = 0
@TLS_KEYS@
route = ivr

[trunk:ivr]
listen = udp:127.0.0.1:@IVR@
peers = udp:127.0.0.1:@IVR_PEER@
options_interval = 0
srtp = off
route = carrier
"""


def answerer(test, *args):
    """srtpprobe answer, ready; its listen addresses are taken from args."""
    listen = [args[i + 1] for i, a in enumerate(args) if a == "--listen"]
    rest = [a for i, a in enumerate(args)
            if a != "--listen" and (i == 0 or args[i - 1] != "--listen")]
    return probe.Answerer(test, listen, rest)


def call(*args, timeout=60):
    """srtpprobe call with --json; returns (exit status, report or None, stderr)."""
    r = run([PROBE, "call", "--json", *args], timeout=timeout)
    report = json.loads(r.stdout) if r.stdout.strip() else None
    return r.returncode, report, r.stderr


@unittest.skipUnless(os.path.exists(PROBE), "srtpprobe is not built")
class ProbeThroughDaemonTest(harness.DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.port, self.carrier_peer, self.ivr, self.ivr_peer = harness.free_ports(4)
        self.tls = harness.free_port() if OPENSSL else None
        tls_listen, tls_keys = "", ""
        if self.tls:
            probe.tls_certs(self.tmp.path)
            tls_listen = ", tls:127.0.0.1:%d" % self.tls
            tls_keys = ("tls_certificate = %s/server.pem\ntls_private_key = %s/server.key"
                        % (self.tmp.path, self.tmp.path))
        self.ctl_sock = self.tmp.join("ctl.sock")
        text = harness.render(CONFIG, CTL=self.ctl_sock, MEDIA=harness.free_media_range(64),
                              PORT=self.port, CARRIER_PEER=self.carrier_peer, IVR=self.ivr,
                              IVR_PEER=self.ivr_peer, TLS_LISTEN=tls_listen,
                              TLS_KEYS=tls_keys)
        self.daemon = self.start_daemon(self.tmp.write("sbc.ini", text))
        self.daemon.wait_ready()

    def ivr_answerer(self):
        return answerer(self, "--listen", "udp:127.0.0.1:%d" % self.ivr_peer, "--srtp", "off")

    def assert_two_way(self, rep, transport, suite="AES_CM_128_HMAC_SHA1_80"):
        self.assertEqual(rep["verdict"], "two-way audio", rep)
        self.assertEqual(rep["exit_status"], 0)
        self.assertEqual(rep["role"], "caller")
        self.assertEqual(rep["sip"]["transport"], transport)
        self.assertEqual(rep["sip"]["status"], 200)
        self.assertIsNone(rep["sip"]["failure"])
        self.assertGreaterEqual(rep["sip"]["setup_ms"], 0)
        self.assertEqual(rep["sip"]["ended_by"], "us")
        self.assertEqual(rep["sip"]["bye_status"], 200)
        self.assertIs(rep["srtp"], True)
        self.assertEqual(rep["suite"], suite)
        self.assertEqual(rep["codec"], "PCMU")
        self.assertEqual(rep["direction"], "sendrecv")
        self.assertRegex(rep["local_media"], r"^127\.0\.0\.1:\d+$")
        self.assertRegex(rep["remote_media"], r"^127\.0\.0\.1:\d+$")
        # keys never appear, fingerprints do, and they differ
        self.assertRegex(rep["key_fingerprints"]["ours"], r"^k:[0-9a-f]{12}$")
        self.assertNotEqual(rep["key_fingerprints"]["ours"], rep["key_fingerprints"]["peer"])
        self.assertGreater(rep["tx"]["packets"], 50)
        self.assertEqual(rep["tx"]["tone"], "A")
        self.assertGreater(rep["rx"]["packets"], 50)
        self.assertEqual(rep["rx"]["lost"], 0)
        self.assertEqual(rep["rx"]["loss_pct"], 0)
        self.assertGreaterEqual(rep["rx"]["jitter_ms"], 0)
        self.assertGreater(rep["rx"]["max_gap_ms"], 0)
        self.assertEqual(rep["decrypt_failures"]["total"], 0)
        self.assertEqual(rep["decrypt_failures"]["rtp"]["auth"], 0)
        self.assertEqual(rep["decrypt_failures"]["rtcp"]["total"], 0)
        self.assertGreater(rep["rtcp"]["sent"], 0)
        self.assertGreater(rep["rtcp"]["received"], 0)
        self.assertEqual(rep["heard"]["tone"], "B")
        self.assertEqual(rep["heard"]["class"], "far")
        self.assertGreaterEqual(rep["heard"]["frames"], 25)
        self.assertEqual(rep["faults"], [])

    def test_two_way_audio_over_udp_tcp_and_tls(self):
        ivr = self.ivr_answerer()
        to = "sip:100@127.0.0.1:%d" % self.port
        argvs = [["--to", to, "--duration", "2"],
                 ["--to", to, "--transport", "tcp", "--duration", "2"]]
        if self.tls:
            argvs.append(["--to", "sip:100@127.0.0.1:%d" % self.tls, "--transport", "tls",
                          "--ca", self.tmp.join("ca.pem"), "--duration", "2"])
        procs = [probe.Call(self, a[1], a[2:]) for a in argvs]
        reps = {}
        for p in procs:
            rc, rep, err = p.result()
            self.assertEqual(rc, 0, err + probe.describe(rep))
            reps[rep["sip"]["transport"]] = rep
        for tp in ("udp", "tcp", "tls") if self.tls else ("udp", "tcp"):
            self.assert_two_way(reps[tp], tp)
        # the IVR side: plain RTP, our tone A heard; the caller's account does
        # not cross srtpbridge (the daemon ends each leg's BYE itself)
        for rep in ivr.wait_reports(len(procs)):
            self.assertEqual(rep["role"], "answerer")
            self.assertEqual(rep["verdict"], "we hear the far end", rep)
            self.assertEqual(rep["exit_status"], 0)
            self.assertIs(rep["srtp"], False)
            self.assertEqual(rep["suite"], "RTP")
            self.assertEqual(rep["heard"]["tone"], "A")
            self.assertEqual(rep["tx"]["tone"], "B")
            self.assertEqual(rep["rx"]["loss_pct"], 0)
            self.assertEqual(rep["sip"]["ended_by"], "far end")
            self.assertIsNone(rep["far_end"])
        if not self.tls:
            self.skipTest("openssl CLI not installed: TLS not tried")

    def test_hold_and_resume_with_new_keys(self):
        self.ivr_answerer()
        rc, rep, err = call("--to", "sip:100@127.0.0.1:%d" % self.port, "--hold-resume",
                            "--duration", "4")
        self.assertEqual(rc, 0, err)
        self.assertEqual(rep["verdict"], "two-way audio")
        self.assertEqual([(r["purpose"], r["status"]) for r in rep["sip"]["reinvites"]],
                         [("hold", 200), ("resume", 200)])
        self.assertEqual(rep["direction"], "sendrecv")
        self.assertEqual(rep["decrypt_failures"]["total"], 0)
        self.assertEqual(rep["faults"], ["hold-resume"])

    def test_suite_the_trunk_does_not_allow_gets_488(self):
        rc, rep, err = call("--to", "sip:100@127.0.0.1:%d" % self.port,
                            "--suites", "AEAD_AES_128_GCM")
        self.assertEqual(rc, 2, err)
        self.assertEqual(rep["verdict"], "SIP failure")
        self.assertEqual(rep["exit_status"], 2)
        self.assertEqual(rep["sip"]["status"], 488)
        self.assertIn("no common crypto suite", rep["sip"]["warning"])
        self.assertIn("AEAD_AES_128_GCM", rep["sip"]["warning"])
        self.assertIsNone(rep["suite"])
        self.assertEqual(rep["faults"], ["suites"])

    def test_reverse_direction_plain_caller_srtp_answerer(self):
        carrier = answerer(self, "--listen", "udp:127.0.0.1:%d" % self.carrier_peer,
                           "--srtp", "mandatory")
        rc, rep, err = call("--to", "sip:200@127.0.0.1:%d" % self.ivr, "--srtp", "off",
                            "--duration", "2")
        self.assertEqual(rc, 0, err)
        self.assertEqual(rep["verdict"], "two-way audio")
        self.assertIs(rep["srtp"], False)
        self.assertEqual(rep["suite"], "RTP")
        self.assertEqual(rep["rx"]["loss_pct"], 0)
        (ans,) = carrier.wait_reports(1)
        self.assertIs(ans["srtp"], True)
        # the daemon's preference among the suites the answerer takes
        self.assertEqual(ans["suite"], "AES_CM_128_HMAC_SHA1_80")
        self.assertEqual(ans["heard"]["tone"], "A")
        self.assertEqual(ans["decrypt_failures"]["total"], 0)


@unittest.skipUnless(os.path.exists(PROBE), "srtpprobe is not built")
class ProbeToProbeTest(harness.DaemonTestCase):
    """Two probes without the daemon: each tells the other what it heard."""

    def test_answer_once_exits_with_the_call_status(self):
        port = harness.free_port()
        ans = answerer(self, "--listen", "udp:127.0.0.1:%d" % port, "--once",
                       "--srtp", "mandatory", "--suites", "AES_CM_128_HMAC_SHA1_32")
        rc, rep, err = call("--to", "sip:300@127.0.0.1:%d" % port, "--duration", "2")
        self.assertEqual(rc, 0, err)
        self.assertEqual(ans.wait(timeout=10), 0)
        (arep,) = ans.wait_reports(1)
        # the answerer's choice: its only suite, the caller's second
        self.assertEqual(rep["suite"], "AES_CM_128_HMAC_SHA1_32")
        self.assertEqual(arep["suite"], "AES_CM_128_HMAC_SHA1_32")
        self.assertEqual(rep["far_end"]["tone"], "A")
        self.assertEqual(arep["far_end"]["tone"], "B")
        self.assertEqual(arep["verdict"], "two-way audio")
        self.assertEqual(rep["tx"]["far_end_packets"], arep["rx"]["packets"])

    def test_answer_once_exits_2_after_a_refusal(self):
        port = harness.free_port()
        ans = answerer(self, "--listen", "tcp:127.0.0.1:%d" % port, "--once", "--srtp", "off")
        rc, rep, err = call("--to", "sip:300@127.0.0.1:%d;transport=tcp" % port)
        self.assertEqual(rc, 2, err)
        self.assertEqual(rep["sip"]["status"], 488)
        self.assertIn("srtp is off", rep["sip"]["warning"])
        self.assertEqual(ans.wait(timeout=10), 2)
        (arep,) = ans.wait_reports(1)
        self.assertEqual(arep["sip"]["status"], 488)
        self.assertEqual(arep["verdict"], "SIP failure")

    def test_usage_errors_exit_3(self):
        for args in (["--to", "sip:1@127.0.0.1", "--tag-mismatch", "--suites",
                      "AEAD_AES_128_GCM"],
                     ["--to", "sip:1@127.0.0.1", "--srtp", "off", "--wrong-key"],
                     ["--to", "http://example"],
                     ["--to", "sip:1@127.0.0.1", "--suites", "AES_CM_128_HMAC_SHA1_99"],
                     ["--to", "sip:1@127.0.0.1", "--bogus"],
                     ["--to", "sip:1@127.0.0.1", "--hold-resume", "--duration", "2"]):
            r = run([PROBE, "call", *args])
            self.assertEqual(r.returncode, 3, (args, r.stderr))
            self.assertIn("srtpprobe: ", r.stderr)
        r = run([PROBE, "answer", "--listen", "tls:127.0.0.1:5999"])
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("--cert", r.stderr)


if __name__ == "__main__":
    harness.main()
