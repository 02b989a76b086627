"""Out of file descriptors, the daemon's listeners pause instead of spinning:
connections to the SIP TCP listener and the control socket use up its
RLIMIT_NOFILE, after which each listener logs one warning (not one per failed
accept()), the main loop stays idle enough to answer SIP over UDP, and once
descriptors are free again both listeners take connections and
`srtpbridgectl stats` counts the pauses. And the media port pool, out of
descriptors, closes the sockets of pairs that serve no call (quarantined
ones stay quarantined) so that a new call gets its own; only with every
open pair in use does a call get 503, with a Warning that says why.
Everything on 127.0.0.1 and unix sockets in a temporary directory."""

import json
import os
import re
import resource
import select
import socket
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase, binary, run  # noqa: E402
from sipua import Carrier, Peer, parse, respond, status  # noqa: E402

# harness.PLAIN_TCP_CONFIG: the calls of MediaFdTest need no keys. Quarantine
# (60 s) outlasts every test.
GLOBAL_EXTRA = "media_port_quarantine = 60\n"

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


class FdTestCase(DaemonTestCase):
    """The daemon on harness.PLAIN_TCP_CONFIG, ready, its SIP TCP listener too."""

    def setUp(self):
        super().setUp()
        self.port, self.peer, self.ivr, self.ivr_peer = harness.free_ports(4)
        self.sock = self.tmp.join("ctl.sock")
        text = harness.render(harness.PLAIN_TCP_CONFIG, CONTROL_SOCKET=self.sock,
                              PORT=self.port, PEER=self.peer, IVR=self.ivr,
                              IVR_PEER=self.ivr_peer, GLOBAL_EXTRA=GLOBAL_EXTRA,
                              MEDIA_PORTS=harness.free_media_range(32))
        self.daemon = self.start_daemon(self.tmp.write("sbc.ini", text))
        self.daemon.wait_ready()
        self.daemon.wait_for_log(msg="listening", listen="tcp:127.0.0.1:%d" % self.port)


class FdExhaustionTest(FdTestCase):
    def setUp(self):
        super().setUp()
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


PLAIN_OFFER = ("v=0\r\no=carrier 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
               "t=0 0\r\nm=audio 40000 RTP/AVP 0\r\n")
PLAIN_ANSWER = ("v=0\r\no=ivr 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                "t=0 0\r\nm=audio 40002 RTP/AVP 0\r\n")


class MediaFdTest(FdTestCase):
    """Calls under a descriptor limit that holds two calls' media sockets
    (four a call) and no more."""

    def setUp(self):
        super().setUp()
        self.carrier_sock = Peer(self, "udp", self.peer)
        self.ivr_sock = Peer(self, "udp", self.ivr_peer)

    def call(self):
        """(carrier, final status, Warning, leg A's media port): the call is
        answered on leg B if it gets there, whichever comes first."""
        carrier = Carrier(self.carrier_sock, self.port)
        carrier.invite(body=PLAIN_OFFER)
        deadline = time.monotonic() + 5
        inv = None
        while inv is None:
            left = deadline - time.monotonic()
            self.assertGreater(left, 0, "neither a final response nor an INVITE on leg B")
            ready, _, _ = select.select([self.carrier_sock.sock, self.ivr_sock.sock], [], [],
                                        left)
            if self.carrier_sock.sock in ready:
                first, hdrs, _ = parse(self.carrier_sock.recv())
                if (status(first) or 0) >= 200:
                    carrier.to_tag = re.search(r"tag=([^;>\s]+)", hdrs["to"][0]).group(1)
                    carrier.ack()
                    return carrier, status(first), hdrs.get("warning", [""])[0], None
            if self.ivr_sock.sock in ready:
                raw = self.ivr_sock.recv()
                if parse(raw)[0].startswith("INVITE "):
                    inv = raw
        self.ivr_sock.send(respond(inv, 200, "OK", "ivr1",
                                   "Contact: <sip:ivr@127.0.0.1:%d>" % self.ivr_peer,
                                   PLAIN_ANSWER))
        self.ivr_sock.expect(lambda f, h, b: f.startswith("ACK "), "ACK on leg B")
        _, first, _, body = carrier.final()
        self.assertEqual(status(first), 200)
        carrier.ack()
        return carrier, 200, None, int(re.search(r"m=audio (\d+)", body).group(1))

    def stats_when_idle(self):
        """srtpbridgectl stats once no port is in use: an ended call's pairs
        reach the pool when its media worker has let go of them, a moment
        after the BYE's 200."""
        deadline = time.monotonic() + 5
        while True:
            r = run([binary("srtpbridgectl"), "-s", self.sock, "--json", "stats"], timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            st = json.loads(r.stdout)
            if st["ports"]["in_use"] == 0 or time.monotonic() > deadline:
                return st
            time.sleep(0.02)

    def wait_fds(self, n):
        """Until the daemon has n descriptors open (srtpbridgectl's gone)."""
        deadline = time.monotonic() + 5
        while len(os.listdir("/proc/%d/fd" % self.daemon.pid)) != n:
            self.assertLess(time.monotonic(), deadline, "the daemon keeps other descriptors")
            time.sleep(0.02)

    def hang_up(self, carrier):
        _, first, _, _ = carrier.bye()
        self.assertEqual(status(first), 200)
        bye, _, _, _ = self.ivr_sock.expect(lambda f, h, b: f.startswith("BYE "), "BYE on leg B")
        self.ivr_sock.send(respond(bye, 200, "OK"))

    def test_idle_sockets_make_room_for_new_calls(self):
        d = self.daemon
        pid = d.pid
        # Room for two calls' sockets. Only the soft limit: the daemon raises
        # it at start only, and lowering the hard one could not be undone.
        before = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        limit = len(os.listdir("/proc/%d/fd" % pid)) + 8
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, before[1]))
        ports = []
        for _ in range(2):  # the descriptors fill up, and stay with quarantine
            carrier, code, _, port = self.call()
            self.assertEqual(code, 200)
            ports.append(port)
            self.hang_up(carrier)
        self.assertEqual(len(os.listdir("/proc/%d/fd" % pid)), limit)
        # both calls' pairs in quarantine (asked with room for the question)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, before)
        self.assertEqual(self.stats_when_idle()["ports"]["quarantined"], 8)
        self.wait_fds(limit)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, before[1]))
        # the first call's quarantined sockets make room: not its ports
        third, code, warning, port = self.call()
        self.assertEqual(code, 200, warning)
        self.assertNotIn(port, ports)
        fourth, code, warning, port = self.call()  # the second call's, likewise
        self.assertEqual(code, 200, warning)
        self.assertNotIn(port, ports)
        # both calls up, nothing idle left: refused, in words, and nothing lost
        _, code, warning, _ = self.call()
        self.assertEqual(code, 503)
        self.assertIn("out of file descriptors for media sockets", warning)
        self.assertEqual(len(os.listdir("/proc/%d/fd" % pid)), limit)
        self.hang_up(third)
        self.hang_up(fourth)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, before)
        st = self.stats_when_idle()
        self.assertEqual(st["ports"]["fd_reclaims"], 4)  # two pairs a call, twice
        self.assertEqual(st["ports"]["quarantined"], 16)  # four calls, four ports each
        self.assertEqual(st["ports"]["open"], 8)
        self.assertEqual(st["calls_active"], 0)
        self.assertEqual(st["calls"]["answered"], 4)


if __name__ == "__main__":
    unittest.main(verbosity=2)
