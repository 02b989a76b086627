"""Self-test of harness.py, with no srtpbridge binary: the logfmt parser,
port picking, templates, the fake NOTIFY_SOCKET and process handling
(against small Python child processes)."""

import os
import signal
import socket
import sys
import textwrap
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import LogfmtError, parse_logfmt  # noqa: E402


class LogfmtTest(unittest.TestCase):
    def test_plain_and_quoted(self):
        rec = parse_logfmt('ts=2026-11-21T23:08:00.123Z level=info module=main msg="ready" trunks=2')
        self.assertEqual(rec, {"ts": "2026-11-21T23:08:00.123Z", "level": "info",
                               "module": "main", "msg": "ready", "trunks": "2"})
        self.assertEqual(harness.logfmt_problems(dict(rec, _raw="")), [])

    def test_escapes(self):
        rec = parse_logfmt(r'msg="say \"hi\" to C:\\dir" x="a=b c" nl="1\n2"')
        self.assertEqual(rec["msg"], 'say "hi" to C:\\dir')
        self.assertEqual(rec["x"], "a=b c")
        self.assertEqual(rec["nl"], "1\n2")

    def test_empty_bare_and_spacing(self):
        rec = parse_logfmt('  a= b="" flag  c=3 ')
        self.assertEqual(rec, {"a": "", "b": "", "flag": True, "c": "3"})

    def test_journal_priority(self):
        rec = parse_logfmt("<3>level=error msg=x")
        self.assertEqual(rec["_priority"], 3)
        self.assertEqual(rec["level"], "error")
        self.assertNotIn("_priority", parse_logfmt("level=info msg=<6>"))

    def test_errors(self):
        for bad in ('msg="open', 'msg="x"y', "=x", 'a=b"c', 'msg="x\\', "a=1 a=2", 'k"=1'):
            with self.assertRaises(LogfmtError, msg=bad):
                parse_logfmt(bad)

    def test_problems(self):
        rec = dict(parse_logfmt("ts=yesterday level=loud msg=x"), _raw="")
        problems = harness.logfmt_problems(rec)
        self.assertEqual(len(problems), 3, problems)  # no module, bad ts, bad level


class PortsAndTemplatesTest(unittest.TestCase):
    def test_free_ports_are_distinct_and_free_for_udp_and_tcp(self):
        ports = harness.free_ports(20)
        self.assertEqual(len(set(ports)), 20)
        for port in ports:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind((harness.LOOPBACK, port))

    def test_render(self):
        text = harness.render("a = @A@\nmatch = ^80[0-9]{2}$ @B@\n", A=1, B="x")
        self.assertEqual(text, "a = 1\nmatch = ^80[0-9]{2}$ x\n")
        with self.assertRaises(KeyError):
            harness.render("@MISSING@")

    def test_minimal_config_line_of(self):
        with harness.TempDir() as tmp:
            values = harness.minimal_values(tmp, GLOBAL_EXTRA="bogus = 1\n")
            text = harness.render(harness.MINIMAL_CONFIG, **values)
            self.assertEqual(harness.line_of(text, "bogus"), 6)
            self.assertNotIn("@", text)
            path = harness.write_config(tmp.join("x.ini"), harness.MINIMAL_CONFIG, **values)
            self.assertTrue(os.path.exists(path))
        self.assertFalse(os.path.exists(tmp.path))


SENDER = textwrap.dedent("""
    import os, socket, sys
    addr = sys.argv[1]
    if addr.startswith("@"):
        addr = "\\0" + addr[1:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    for msg in sys.argv[2:]:
        s.sendto(msg.encode(), addr)
""")

FAKE = textwrap.dedent("""
    import os, signal, sys, time
    st = os.fstat(2)
    mine = "%d:%d" % (st.st_dev, st.st_ino)
    journal = os.environ.get("JOURNAL_STREAM") == mine
    def log(line):
        os.write(2, (("<6>" if journal else "") + line + "\\n").encode())
    signal.signal(signal.SIGTERM, lambda *a: (log('msg=stopped'), sys.exit(0)))
    log('msg="starting" journal=%s' % ("yes" if journal else "no"))
    time.sleep(0.3)
    if "--stubborn" in sys.argv:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    log('ts=2026-11-21T23:08:00.123Z level=info module=main msg=ready trunks=2')
    if "--exit" in sys.argv:
        sys.exit(4)
    while True:
        time.sleep(1)
""")


class NotifyAndDaemonTest(harness.DaemonTestCase):
    def fake(self, *args, **kw):
        return self.start_daemon(None, program=sys.executable, args=["-c", FAKE] + list(args),
                                 **kw)

    def test_notify_socket_path_and_abstract(self):
        for abstract in (False, True):
            notify = self.notify_socket(abstract=abstract)
            self.assertEqual(notify.address.startswith("@"), abstract)
            mark = notify.mark()
            harness.run([sys.executable, "-c", SENDER, notify.address,
                         "READY=1\nSTATUS=up", "WATCHDOG=1", "WATCHDOG=1"])
            ready = notify.wait_for("READY=1", since=mark)
            self.assertEqual(ready["STATUS"], "up")
            self.assertIsInstance(ready["_pid"], int)
            notify.wait_for("WATCHDOG=1", count=2, since=mark)
            with self.assertRaises(AssertionError):
                notify.wait_for("WATCHDOG=1", count=3, since=mark, timeout=0.2)
            notify.close()

    def test_wait_for_log_and_stop(self):
        d = self.fake()
        t0 = time.monotonic()
        rec = d.wait_for_log(msg="ready", level="info")
        self.assertGreaterEqual(time.monotonic() - t0, 0.2)  # it waited for the line
        self.assertEqual(rec["trunks"], "2")
        self.assertEqual(d.find_logs(msg="starting")[0]["journal"], "no")
        self.assertEqual(d.stop(), 0)
        d.wait_for_log(msg="stopped")

    def test_wait_fails_fast_when_the_process_exits(self):
        notify = self.notify_socket()
        d = self.fake("--exit", notify=notify)
        t0 = time.monotonic()
        with self.assertRaisesRegex(AssertionError, "ended"):
            d.wait_for_log(msg="never", timeout=30)
        with self.assertRaisesRegex(AssertionError, "exited with status 4"):
            notify.wait_for("READY=1", timeout=30)
        self.assertLess(time.monotonic() - t0, 5)

    def test_journal_stream_names_our_pipe(self):
        d = self.fake(journal_stream=True)
        rec = d.wait_for_log(msg="starting")
        self.assertEqual(rec["journal"], "yes")
        self.assertEqual(rec["_priority"], 6)
        d2 = self.fake(journal_stream="1:1")
        self.assertEqual(d2.wait_for_log(msg="starting")["journal"], "no")

    def test_kill_escalates_to_sigkill(self):
        d = self.fake("--stubborn")
        d.wait_for_log(msg="ready")
        t0 = time.monotonic()
        d.kill(grace=0.3)
        self.assertEqual(d.proc.returncode, -signal.SIGKILL)
        self.assertLess(time.monotonic() - t0, 3)


if __name__ == "__main__":
    harness.main()
