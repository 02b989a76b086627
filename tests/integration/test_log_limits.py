"""What anyone who can reach a SIP socket can make the daemon log is limited:
a flood of datagrams that are not SIP, of TCP connections over the
per-source limit, of connections opened and closed, leaves a burst of lines
and then one a second, each line after a gap saying how many it stands for
(suppressed=N), while `srtpbridgectl stats` counts every event and the lines
left out. The flood comes from 127.0.0.2, which no trunk lists. Everything
on loopback and unix sockets in a temporary directory."""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase  # noqa: E402
from sipua import ctl  # noqa: E402

# harness.PLAIN_TCP_CONFIG with unknown_source = 403: a stranger's
# connections are taken (for their requests' 403), so that the per-source
# limit is what refuses them.
GLOBAL_EXTRA = "unknown_source = 403\n"

BURST = 10  # LOG_LIMIT_BURST
FLOOD = 400
PER_SOURCE = 64  # TRANSPORT_MAX_CONNS_PER_SOURCE
STRANGER = "127.0.0.2"


class LogLimitTest(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.port, peer, ivr, ivr_peer = harness.free_ports(4)
        self.sock = self.tmp.join("ctl.sock")
        text = harness.render(harness.PLAIN_TCP_CONFIG, CONTROL_SOCKET=self.sock,
                              PORT=self.port, PEER=peer, IVR=ivr, IVR_PEER=ivr_peer,
                              GLOBAL_EXTRA=GLOBAL_EXTRA, MEDIA_PORTS=harness.free_media_range(8))
        self.daemon = self.start_daemon(self.tmp.write("sbc.ini", text))
        self.daemon.wait_ready()
        self.daemon.wait_for_log(msg="listening", listen="tcp:127.0.0.1:%d" % self.port)

    def stats(self):
        rc, st = ctl(self.sock, "stats")
        self.assertEqual(rc, 0)
        return st

    def wait_stat(self, path, want):
        deadline = time.monotonic() + harness.TIMEOUT
        while True:
            st = self.stats()
            got = st
            for key in path:
                got = got[key]
            if got >= want or time.monotonic() > deadline:
                self.assertEqual(got, want, "stats %s" % ".".join(path))
                return st
            time.sleep(0.05)

    def lines(self, msg, since):
        return self.daemon.find_logs(msg=msg, since=since)

    def check_flood(self, msg, since, events, started, trigger, settled, before):
        """The burst and then at most one line a second; then trigger() until
        a line that tells of a gap comes. Once settled() says the daemon has
        taken every event, the lines written and the lines left out
        (log.suppressed since `before`) add up to every event, and the counts
        the lines carry are among those left out."""
        self.daemon.wait_for_log(msg=msg, since=since, count=BURST)
        elapsed = time.monotonic() - started
        during = self.lines(msg, since)
        self.assertLessEqual(len(during), BURST + int(elapsed) + 1,
                             "%d lines in %.1f s" % (len(during), elapsed))
        self.assertTrue(all("suppressed" not in r for r in during[:BURST]))
        deadline = time.monotonic() + harness.TIMEOUT
        while not [r for r in self.lines(msg, since)[len(during):] if "suppressed" in r]:
            self.assertLess(time.monotonic(), deadline, "no line after the flood")
            trigger()
            events += 1
            time.sleep(0.1)
        settled(events)
        # the daemon wrote its lines before it counted; the reader catches up
        deadline = time.monotonic() + harness.TIMEOUT
        while True:
            left_out = self.stats()["log"]["suppressed"] - before["log"]["suppressed"]
            recs = self.lines(msg, since)
            if len(recs) + left_out == events or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(len(recs) + left_out, events,
                         "lines %d, left out %d, events %d" % (len(recs), left_out, events))
        told = sum(int(r.get("suppressed", "0")) for r in recs)
        self.assertGreater(told, 0)
        self.assertLessEqual(told, left_out)
        return recs, events

    def test_datagrams_that_are_not_sip(self):
        d = self.daemon
        mark = d.log_mark()
        before = self.stats()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        s.bind((STRANGER, 0))

        def garbage():
            s.sendto(b"not SIP at all", ("127.0.0.1", self.port))

        started = time.monotonic()
        for _ in range(FLOOD):
            garbage()
        self.wait_stat(("sip", "malformed"), before["sip"]["malformed"] + FLOOD)
        recs, events = self.check_flood(
            "bad datagram", mark, FLOOD, started, garbage,
            lambda n: self.wait_stat(("sip", "malformed"), before["sip"]["malformed"] + n),
            before)
        self.assertEqual(recs[0]["source"], "%s:%d" % (STRANGER, s.getsockname()[1]))
        self.assertEqual(recs[0]["reason"], "the header does not end with an empty line")
        # a real request is still answered
        ok = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(ok.close)
        ok.bind(("127.0.0.1", 0))
        ok.settimeout(5)
        ok.sendto(("OPTIONS sip:ping@127.0.0.1:%d SIP/2.0\r\n"
                   "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKloglimit1;rport\r\n"
                   "Max-Forwards: 70\r\nFrom: <sip:t@127.0.0.1>;tag=1\r\n"
                   "To: <sip:ping@127.0.0.1>\r\nCall-ID: loglimit@test\r\n"
                   "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
                   % (self.port, ok.getsockname()[1])).encode(), ("127.0.0.1", self.port))
        self.assertTrue(ok.recv(65536).startswith(b"SIP/2.0 200 "))

    def test_connections_over_the_limit_and_closed(self):
        d = self.daemon
        mark = d.log_mark()
        before = self.stats()
        held = []

        def close_held():
            for c in held:
                c.close()
            held.clear()

        self.addCleanup(close_held)

        def connect():
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.bind((STRANGER, 0))
            c.settimeout(10)
            c.connect(("127.0.0.1", self.port))
            return c

        for _ in range(PER_SOURCE):
            held.append(connect())
        self.wait_stat(("sip", "connections"), PER_SOURCE)

        def refused():
            c = connect()
            # the daemon closes it at once: EOF (or a reset) on the first read
            try:
                self.assertEqual(c.recv(1), b"")
            except ConnectionResetError:
                pass
            c.close()

        started = time.monotonic()
        for _ in range(FLOOD):
            refused()
        self.wait_stat(("sip", "connections_refused"),
                       before["sip"]["connections_refused"] + FLOOD)
        recs, events = self.check_flood(
            "connection refused: too many connections", mark, FLOOD, started, refused,
            lambda n: self.wait_stat(("sip", "connections_refused"),
                                     before["sip"]["connections_refused"] + n),
            before)
        self.assertEqual(recs[0]["peer"].split(":")[0], STRANGER)
        self.assertEqual(recs[0]["listen"], "tcp:127.0.0.1:%d" % self.port)

        # The held ones closed by their peer: a "connection closed" each,
        # through a limit too.
        mark = d.log_mark()
        before = self.stats()
        started = time.monotonic()
        close_held()
        self.wait_stat(("sip", "connections"), 0)

        def open_and_close():
            c = connect()
            c.close()

        self.check_flood("connection closed", mark, PER_SOURCE, started, open_and_close,
                         lambda n: self.wait_stat(("sip", "connections"), 0), before)


if __name__ == "__main__":
    harness.main()
