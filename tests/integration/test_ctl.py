"""srtpbridgectl against the running daemon: the control socket's mode, each
command's output and exit status (0 ok, 1 refused, 2 unreachable, 3 usage),
log-level taking effect, reload, and drain ending the daemon with status 0."""

import json
import os
import socket
import stat
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase, binary, run  # noqa: E402


def ctl(sock, *args):
    """srtpbridgectl -s SOCK ARGS... -> CompletedProcess (text)."""
    return run([binary("srtpbridgectl"), "-s", sock] + list(args), timeout=30)


class CtlTest(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.sock = self.tmp.join("control.sock")
        values = harness.minimal_values(self.tmp, CONTROL_SOCKET=self.sock)
        self.config = harness.write_config(self.tmp.join("srtpbridge.ini"),
                                           harness.MINIMAL_CONFIG, **values)
        self.daemon = self.start_daemon(self.config)
        self.daemon.wait_ready()

    def test_socket_mode(self):
        st = os.lstat(self.sock)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)

    def test_stats(self):
        r = ctl(self.sock, "stats")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = dict(line.split(" ", 1) for line in r.stdout.splitlines())
        self.assertEqual(lines["calls_active"], "0")
        self.assertEqual(lines["trunks"], "2")
        self.assertEqual(lines["config"], self.config)
        self.assertEqual(lines["version"], harness.project_version())
        self.assertEqual(lines["state"], "running")
        self.assertGreaterEqual(int(lines["uptime_seconds"]), 0)
        for key in ("sip.requests", "sip.responses", "sip.unknown_source", "sip.malformed",
                    "sip.keepalives", "sip.responses_sent.2xx", "sip.transactions",
                    "ports.fd_reclaims"):
            self.assertRegex(lines[key], r"^\d+$", key)
        self.assertEqual(lines["ports.fd_reclaims"], "0")
        # the descriptors the daemon has open (listeners, workers' epoll and
        # eventfds, the log...) and its soft limit, raised to the hard one
        with open("/proc/%d/limits" % self.daemon.pid) as f:
            soft = next(int(line.split()[3]) for line in f
                        if line.startswith("Max open files"))
        self.assertEqual(int(lines["fds.limit"]), soft)
        self.assertGreater(int(lines["fds.open"]), 4)
        self.assertLess(int(lines["fds.open"]), soft)
        # counted while srtpbridgectl's connection was open; it may or may
        # not be closed yet
        self.assertIn(int(lines["fds.open"]) - len(os.listdir("/proc/%d/fd" % self.daemon.pid)),
                      (0, 1))

    def test_stats_json(self):
        r = ctl(self.sock, "--json", "stats")
        self.assertEqual(r.returncode, 0, r.stderr)
        reply = json.loads(r.stdout)
        self.assertIs(reply["ok"], True)
        self.assertEqual(reply["calls_active"], 0)
        self.assertEqual(reply["trunks"], 2)
        self.assertIsInstance(reply["sip"]["requests"], int)

    def test_calls(self):
        r = ctl(self.sock, "calls")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "no calls\n")
        r = ctl(self.sock, "--json", "calls")
        self.assertEqual(json.loads(r.stdout), {"ok": True, "calls": []})

    def test_call_refused(self):
        mark = self.daemon.log_mark()
        r = ctl(self.sock, "call", "nosuch")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("no call with id nosuch", r.stderr)
        r = ctl(self.sock, "--json", "call", "nosuch")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(json.loads(r.stdout),
                         {"ok": False, "error": "no call with id nosuch"})
        # One log line per refusal, with its reason.
        self.daemon.wait_for_log(module="ctl", msg="request refused", cmd="call",
                                 reason="no call with id nosuch", since=mark)

    def test_log_level_then_reload(self):
        mark = self.daemon.log_mark()
        r = ctl(self.sock, "log-level", "debug")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "log level debug (was info)\n")
        r = ctl(self.sock, "reload")
        self.assertEqual(r.returncode, 0, r.stderr)
        # The debug line only shows because log-level took effect.
        self.daemon.wait_for_log(level="debug", msg="reload requested", since=mark)
        self.daemon.wait_for_log(msg="config reloaded", since=mark)
        r = ctl(self.sock, "log-level", "loud")
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown log level", r.stderr)

    def test_reload_with_errors(self):
        with open(self.config, "a", encoding="utf-8") as f:
            f.write("[global]\nbogus = 1\n")
        r = ctl(self.sock, "reload")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("the config has errors: see the log", r.stderr)
        self.assertTrue(self.daemon.running())

    def test_drain_exits_daemon(self):
        r = ctl(self.sock, "drain")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.daemon.wait(), 0)
        self.assertFalse(os.path.exists(self.sock), "the socket file outlived the daemon")
        self.assert_logfmt(self.daemon)

    def test_unreachable(self):
        r = ctl(self.tmp.join("nosuch.sock"), "stats")
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot reach the daemon", r.stderr)

    def test_usage(self):
        for args in ([], ["bogus"], ["call"], ["stats", "extra"], ["log-level"],
                     ["--nosuch", "stats"]):
            r = ctl(self.sock, *args)
            self.assertEqual(r.returncode, 3, "%s: %s" % (args, r.stderr))
            self.assertIn("usage:", r.stderr)
        r = run([binary("srtpbridgectl"), "--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage:", r.stdout)


class CtlSocketFileTest(DaemonTestCase):
    def test_missing_directory_is_not_fatal(self):
        sock = self.tmp.join("nodir", "control.sock")
        config, _ = self.minimal_config(CONTROL_SOCKET=sock)
        d = self.start_daemon(config)
        d.wait_ready()
        d.wait_for_log(level="warn", msg="running without the control socket", path=sock)
        self.assertEqual(d.stop(), 0)

    def test_stale_socket_replaced_live_one_kept(self):
        sock = self.tmp.join("control.sock")
        # What a crashed daemon leaves: a socket file nobody listens on.
        s = socket.socket(socket.AF_UNIX)
        s.bind(sock)
        s.close()
        config, _ = self.minimal_config(CONTROL_SOCKET=sock)
        first = self.start_daemon(config)
        first.wait_ready()
        self.assertEqual(ctl(sock, "stats").returncode, 0)
        # A second daemon does not steal the live socket (its SIP ports differ).
        config2, _ = self.minimal_config(name="second.ini", CONTROL_SOCKET=sock)
        second = self.start_daemon(config2)
        second.wait_ready()
        second.wait_for_log(msg="running without the control socket",
                            reason="another process is listening on %s" % sock)
        self.assertEqual(second.stop(), 0)
        r = ctl(sock, "--json", "stats")
        self.assertEqual(json.loads(r.stdout)["config"], config)


if __name__ == "__main__":
    harness.main()
