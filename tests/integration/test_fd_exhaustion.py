"""Out of file descriptors, the daemon's listeners pause instead of spinning:
connections to the SIP TCP listener and the control socket use up its
RLIMIT_NOFILE, after which each listener logs one warning (not one per failed
accept()), the main loop stays idle enough to answer SIP over UDP, and once
descriptors are free again both listeners take connections and
`srtpbridgectl stats` counts the pauses. Everything on 127.0.0.1 and unix
sockets in a temporary directory."""

import json
import os
import resource
import socket
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase, binary, run  # noqa: E402

CONFIG = """[global]
log_level = info
control_socket = @CONTROL_SOCKET@
metrics_listen =
media_ports = @MEDIA_PORTS@

[trunk:carrier]
listen = udp:127.0.0.1:@PORT@, tcp:127.0.0.1:@PORT@
peers = udp:127.0.0.1:@PEER@
options_interval = 0
sources = 127.0.0.1/32
route = ivr

[trunk:ivr]
listen = udp:127.0.0.1:@IVR@
peers = udp:127.0.0.1:@IVR_PEER@
options_interval = 0
sources = 127.0.0.9/32
srtp = off
route = carrier
"""

# Descriptors left to the daemon under its lowered limit: the first SIP
# connections take them, the next ones find none.
SPARE_FDS = 8
# How long the descriptors stay used up while SIP over UDP is exercised; a
# loop spinning on accept() would burn about as much CPU time.
EXHAUSTED_S = 1.5
PAUSE_S = 0.25  # ACCEPT_BACKOFF_PAUSE_MS


def options(port, transport):
    branch = "z9hG4bK" + uuid.uuid4().hex[:16]
    return ("OPTIONS sip:ping@127.0.0.1:%d SIP/2.0\r\n"
            "Via: SIP/2.0/%s 127.0.0.1:5999;branch=%s;rport\r\n"
            "Max-Forwards: 70\r\n"
            "From: <sip:test@127.0.0.1>;tag=%s\r\n"
            "To: <sip:ping@127.0.0.1>\r\n"
            "Call-ID: %s@test\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
            % (port, transport, branch, uuid.uuid4().hex[:8], uuid.uuid4().hex)).encode()


def status_of(data):
    parts = data.split(b"\r\n", 1)[0].decode(errors="replace").split(" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[0] == "SIP/2.0" else None


def cpu_seconds(pid):
    """utime + stime of a process (every thread), from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid, encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def is_accept_warning(rec):
    return rec.get("level") == "warn" and rec.get("msg", "").startswith("cannot accept")


def accept_warning(listen):
    return lambda rec: is_accept_warning(rec) and rec.get("listen") == listen


class FdExhaustionTest(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.port, self.peer, self.ivr, self.ivr_peer = harness.free_ports(4)
        self.sock = self.tmp.join("ctl.sock")
        text = harness.render(CONFIG, CONTROL_SOCKET=self.sock, PORT=self.port, PEER=self.peer,
                              IVR=self.ivr, IVR_PEER=self.ivr_peer,
                              MEDIA_PORTS=harness.free_media_range(16))
        self.daemon = self.start_daemon(self.tmp.write("sbc.ini", text))
        self.daemon.wait_ready()
        self.daemon.wait_for_log(msg="listening", listen="tcp:127.0.0.1:%d" % self.port)
        self.held = []

    def close_held(self):
        for s in self.held:
            s.close()
        self.held = []

    def hold(self, family, address):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(5)
        self.held.append(s)
        s.connect(address)
        return s

    def open_fds(self):
        return len(os.listdir("/proc/%d/fd" % self.daemon.pid))

    def udp_options(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        s.sendto(options(self.port, "UDP"), ("127.0.0.1", self.port))
        return status_of(s.recv(65536))

    def tcp_options(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.addCleanup(s.close)
        s.sendall(options(self.port, "TCP"))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            self.assertTrue(chunk, "the daemon closed the TCP connection without answering")
            data += chunk
        return status_of(data)

    def test_listeners_pause_and_recover(self):
        d = self.daemon
        self.addCleanup(self.close_held)
        # Both the soft and the hard limit: the daemon raises its soft limit
        # to the hard one at start, and must not find room to do it again.
        limit = self.open_fds() + SPARE_FDS
        resource.prlimit(d.pid, resource.RLIMIT_NOFILE, (limit, limit))
        mark = d.log_mark()

        # The SIP listener accepts until none is left, then pauses; the
        # connections beyond wait in its backlog (128). Twice the spare
        # descriptors, in case the daemon closed some of its own meanwhile.
        for _ in range(2 * SPARE_FDS + 4):
            self.hold(socket.AF_INET, ("127.0.0.1", self.port))
        sip = d.wait_for_log(accept_warning("tcp:127.0.0.1:%d" % self.port), since=mark)
        self.assertEqual(sip["msg"],
                         "cannot accept connections: out of file descriptors; accepting paused")
        self.assertEqual(sip["fd_limit"], str(limit))
        self.assertEqual(sip["error"], "Too many open files")
        # The control socket (backlog 16) finds none either.
        for _ in range(3):
            self.hold(socket.AF_UNIX, self.sock)
        ctl = d.wait_for_log(accept_warning("control:" + self.sock), since=mark)
        self.assertEqual(ctl["fd_limit"], str(limit))

        # Meanwhile the loop is free: SIP over UDP is answered, and the
        # daemon's CPU time grows by far less than the time that passes.
        start_cpu, start = cpu_seconds(d.pid), time.monotonic()
        answered = 0
        while time.monotonic() - start < EXHAUSTED_S:
            self.assertEqual(self.udp_options(), 200)
            answered += 1
            time.sleep(0.1)
        elapsed = time.monotonic() - start
        used = cpu_seconds(d.pid) - start_cpu
        self.assertLess(used, elapsed / 2,
                        "the daemon used %.2f s of CPU in %.2f s out of descriptors"
                        % (used, elapsed))
        self.assertGreaterEqual(answered, 3)

        # Descriptors back: each listener takes connections again.
        self.close_held()
        again = d.wait_for_log(msg="accepting connections again", since=mark,
                               listen="tcp:127.0.0.1:%d" % self.port)
        d.wait_for_log(msg="accepting connections again", since=mark,
                       listen="control:" + self.sock)
        r = run([binary("srtpbridgectl"), "-s", self.sock, "--json", "stats"], timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        pauses = json.loads(r.stdout)["sip"]["accept_pauses"]
        # One failed accept() per pause, at most one every PAUSE_S while the
        # SIP listener was out of descriptors (a spinning loop fails
        # thousands a second); three to spare for when the log was read.
        self.assertGreaterEqual(pauses, 1)
        self.assertLessEqual(pauses, (again["_time"] - sip["_time"]) / PAUSE_S + 3, r.stdout)
        self.assertEqual(self.tcp_options(), 200)

        # A line per listener and per 10 s at most, none of libevent's own.
        warnings = d.find_logs(is_accept_warning, since=mark)
        self.assertLessEqual(len(warnings), 4, [w["_raw"] for w in warnings])
        self.assertEqual(
            [r["_raw"] for r in d.logs(since=mark) if "accept()" in r["_raw"]], [])
        self.assert_logfmt(d, since=mark)


if __name__ == "__main__":
    unittest.main(verbosity=2)
