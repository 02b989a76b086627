"""The daemon's lifecycle against its contract: --check, --version, sd_notify
(READY, RELOADING + MONOTONIC_USEC, STOPPING, WATCHDOG), SIGHUP reload that
keeps the running config on a bad file, restart-only keys, the journal
priority prefix, and SIGTERM/SIGINT drain with exit status 0."""

import os
import re
import shutil
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase, binary, run  # noqa: E402

# A FILE:LINE: problem on a line of its own (the --check output contract).
CHECK_LINE = re.compile(r"^(?P<file>[^:\s][^:]*):(?P<line>\d+): (?P<message>.+)$")


def check(config):
    """srtpbridge --check -c CONFIG -> CompletedProcess (text)."""
    return run([binary(), "--check", "-c", config], timeout=30)


def problems_in(stderr):
    return [m.groupdict() for m in map(CHECK_LINE.match, stderr.splitlines()) if m]


def bad_config_text(values):
    """MINIMAL_CONFIG plus an unknown key in [global]; returns (text, its line)."""
    text = harness.render(harness.MINIMAL_CONFIG, **dict(values, GLOBAL_EXTRA="bogus = 1\n"))
    return text, harness.line_of(text, "bogus = 1")


class CheckTest(DaemonTestCase):
    """srtpbridge --check and --version: no daemon is started."""

    def test_version(self):
        r = run([binary(), "--version"])
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.strip()
        m = re.fullmatch(r"srtpbridge (\d+\.\d+\.\d+) \(libsrtp2 2\.5\.0, openssl\)", out)
        self.assertIsNotNone(m, "--version printed %r (stderr %r)" % (out, r.stderr))
        self.assertEqual(m.group(1), harness.project_version(), "version is not the project's")

    def test_check_accepts_shipped_config(self):
        path = os.path.join(harness.SOURCE_DIR, "conf", "srtpbridge.ini")
        r = check(path)
        self.assertEqual(r.returncode, 0, "--check %s failed:\n%s" % (path, r.stderr))
        self.assertEqual(problems_in(r.stderr), [])

    def test_check_accepts_minimal_config(self):
        path, _ = self.minimal_config()
        r = check(path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(problems_in(r.stderr), [])

    def test_check_accepts_carrier_tls_example(self):
        """The TLS example validates once its certificate and key exist."""
        openssl = shutil.which("openssl")
        if openssl is None:
            self.skipTest("openssl CLI not installed")
        src = os.path.join(harness.SOURCE_DIR, "conf", "examples", "carrier-tls.ini")
        with open(src, encoding="utf-8") as f:
            text = f.read()
        cert, key = self.tmp.join("gen", "cert.pem"), self.tmp.join("gen", "key.pem")
        os.makedirs(os.path.dirname(cert))
        r = run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-days", "30", "-subj", "/CN=sbc.test",
                 "-addext", "subjectAltName=DNS:sbc.test,IP:127.0.0.1",
                 "-keyout", key, "-out", cert])
        self.assertEqual(r.returncode, 0, r.stderr)
        # Put a file at every /etc/srtpbridge/ path the example names: the
        # private key where a key is expected, the (self-signed, so also CA)
        # certificate everywhere else.
        root = self.tmp.path + "/"
        placed = []
        for line in text.splitlines():
            m = re.match(r"\s*([a-z_]+)\s*=\s*(/etc/srtpbridge/\S+)", line)
            if not m:
                continue
            name, path = m.groups()
            dest = root + path[len("/etc/srtpbridge/"):]
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copyfile(key if "key" in name else cert, dest)
            os.chmod(dest, 0o600 if "key" in name else 0o644)
            placed.append(name)
        self.assertIn("tls_certificate", placed, "the example names no certificate")
        self.assertIn("tls_private_key", placed, "the example names no private key")
        path = self.tmp.write("carrier-tls.ini", text.replace("/etc/srtpbridge/", root))
        r = check(path)
        self.assertEqual(r.returncode, 0, "--check %s failed:\n%s" % (path, r.stderr))
        self.assertEqual(problems_in(r.stderr), [])

    def test_check_rejects_unknown_key_with_file_and_line(self):
        values = harness.minimal_values(self.tmp)
        text, line = bad_config_text(values)
        path = self.tmp.write("bad.ini", text)
        r = check(path)
        self.assertEqual(r.returncode, 1, "stdout %r stderr %r" % (r.stdout, r.stderr))
        problems = problems_in(r.stderr)
        self.assertTrue(problems, "no FILE:LINE: message line on stderr:\n%s" % r.stderr)
        self.assertIn((path, str(line)), [(p["file"], p["line"]) for p in problems],
                      "no problem reported at %s:%d:\n%s" % (path, line, r.stderr))
        self.assertTrue(any("bogus" in p["message"] for p in problems), r.stderr)


class LifecycleTest(DaemonTestCase):
    """The running daemon, with a fake NOTIFY_SOCKET."""

    def assert_clean_stop(self, d, sig=signal.SIGTERM, notify=None):
        mark = d.log_mark()
        nmark = notify.mark() if notify else 0
        d.send_signal(sig)
        if notify is not None:
            notify.wait_for("STOPPING=1", since=nmark)
        d.wait_for_log(msg="draining", level="info", since=mark)
        d.wait_for_log(msg="stopped", level="info", since=mark)
        self.assertEqual(d.wait(), 0, "exit status after %s" % signal.Signals(sig).name)
        self.assert_logfmt(d)

    def test_ready_reload_stop(self):
        notify = self.notify_socket()
        path, _ = self.minimal_config()
        d = self.start_daemon(path, notify=notify)

        ready = notify.wait_for("READY=1")
        self.assertEqual(ready["_pid"], d.pid, "READY=1 not sent by the main process")
        self.assertIn("STATUS", ready, "READY=1 without STATUS=: %r" % ready["_raw"])
        starting = d.wait_for_log(msg="starting", level="info")
        up = d.wait_for_log(msg="ready", level="info")
        self.assertLess(starting["_index"], up["_index"])
        self.assertEqual(up.get("module"), "main")

        # SIGHUP: RELOADING=1 with MONOTONIC_USEC (CLOCK_MONOTONIC, µs), then READY=1.
        nmark, mark = notify.mark(), d.log_mark()
        before = time.monotonic()
        d.reload()
        reloading = notify.wait_for("RELOADING=1", since=nmark)
        after = time.monotonic()
        self.assertEqual(reloading["_pid"], d.pid)
        usec = reloading.get("MONOTONIC_USEC")
        self.assertIsNotNone(usec, "RELOADING=1 without MONOTONIC_USEC: %r" % reloading["_raw"])
        self.assertRegex(usec, r"^\d+$")
        # Python's time.monotonic() is CLOCK_MONOTONIC on Linux: same clock.
        self.assertGreaterEqual(int(usec), int(before * 1e6) - 1000)
        self.assertLessEqual(int(usec), int(after * 1e6) + 1000)
        again = notify.wait_for("READY=1", since=reloading["_index"] + 1)
        self.assertEqual(again["_pid"], d.pid)
        d.wait_for_log(msg="config reloaded", level="info", since=mark)
        self.assertFalse(notify.find("STOPPING=1"), "STOPPING=1 before SIGTERM")

        self.assert_clean_stop(d, signal.SIGTERM, notify)
        # Nothing after STOPPING=1 but possibly status lines: never READY=1 again.
        stopping = notify.find("STOPPING=1")[0]
        self.assertFalse(notify.find("READY=1", since=stopping["_index"] + 1))

    def test_watchdog(self):
        notify = self.notify_socket()
        path, _ = self.minimal_config()
        d = self.start_daemon(path, notify=notify, watchdog_usec=200000)
        notify.wait_for("READY=1")
        mark = notify.mark()
        t0 = time.monotonic()
        third = notify.wait_for("WATCHDOG=1", since=mark, count=3, timeout=2.0)
        self.assertLessEqual(third["_time"] - t0, 2.0)
        pings = notify.find("WATCHDOG=1")
        self.assertTrue(all(p["_pid"] == d.pid for p in pings), "WATCHDOG=1 from another pid")
        self.assert_clean_stop(d, signal.SIGTERM, notify)

    def test_sigint_drains(self):
        notify = self.notify_socket(abstract=True)  # '@name': the abstract namespace
        path, _ = self.minimal_config()
        d = self.start_daemon(path, notify=notify)
        d.wait_ready(notify)
        self.assert_clean_stop(d, signal.SIGINT, notify)

    def test_bad_reload_keeps_running_config(self):
        """A key's effect (log_level) shows which snapshot is live."""
        notify = self.notify_socket()
        values = harness.minimal_values(self.tmp, LOG_LEVEL="info")
        path = harness.write_config(self.tmp.join("srtpbridge.ini"), harness.MINIMAL_CONFIG,
                                    **values)
        d = self.start_daemon(path, notify=notify)
        d.wait_ready(notify)
        self.assertFalse(d.find_logs(level="debug"), "debug lines at log_level=info")

        def sighup_and_wait_outcome():
            """SIGHUP; returns (records since, outcome record, READY=1 after RELOADING=1)."""
            mark, nmark = d.log_mark(), notify.mark()
            d.reload()
            outcome = d.wait_for_log(
                lambda r: r.get("msg") in ("config reloaded",
                                           "reload failed; keeping the running config"),
                since=mark)
            reloading = notify.wait_for("RELOADING=1", since=nmark)
            notify.wait_for("READY=1", since=reloading["_index"] + 1)
            return d.logs(mark), outcome

        # 1. log_level = debug applies.
        harness.write_config(path, harness.MINIMAL_CONFIG, **dict(values, LOG_LEVEL="debug"))
        _, outcome = sighup_and_wait_outcome()
        self.assertEqual(outcome["msg"], "config reloaded")
        self.assertEqual(outcome["level"], "info")

        # 2. A bad file (log_level = info and an unknown key) is refused.
        text, line = bad_config_text(dict(values, LOG_LEVEL="info"))
        harness.write_file(path, text)
        recs, outcome = sighup_and_wait_outcome()
        self.assertEqual(outcome["msg"], "reload failed; keeping the running config",
                         "a file with an unknown key was applied")
        self.assertEqual(outcome["level"], "error")
        self.assertEqual(outcome.get("errors"), "1", outcome["_raw"])
        per_problem = [r for r in recs if r.get("level") == "error"
                       and str(r.get("msg", "")).startswith("%s:%d:" % (path, line))]
        self.assertEqual(len(per_problem), 1,
                         "no error line with msg=%s:%d: ...\n%s" % (path, line, d.log.tail()))
        self.assertLess(per_problem[0]["_index"], outcome["_index"])
        requested = [r for r in recs if r.get("msg") == "reload requested"]
        self.assertEqual([r.get("level") for r in requested], ["debug"],
                         "debug (from step 1) should show 'reload requested' once")
        self.assertLess(requested[0]["_index"], per_problem[0]["_index"])

        # 3. Debug is still on: the bad file did not replace the running config.
        recs, outcome = sighup_and_wait_outcome()
        self.assertEqual(outcome["msg"], "reload failed; keeping the running config")
        self.assertEqual([r.get("msg") for r in recs if r.get("level") == "debug"
                          and r.get("msg") == "reload requested"], ["reload requested"],
                         "log_level=debug was lost by a refused reload")

        # 4. A good file with log_level = info applies ...
        harness.write_config(path, harness.MINIMAL_CONFIG, **dict(values, LOG_LEVEL="info"))
        _, outcome = sighup_and_wait_outcome()
        self.assertEqual(outcome["msg"], "config reloaded")

        # 5. ... so the next SIGHUP logs no debug line at all.
        recs, outcome = sighup_and_wait_outcome()
        self.assertEqual(outcome["msg"], "config reloaded")
        before = [r for r in recs if r["_index"] < outcome["_index"]]
        self.assertFalse([r for r in before if r.get("msg") == "reload requested"],
                         "'reload requested' logged at log_level=info")
        self.assertFalse([r for r in recs if r.get("level") == "debug"],
                         "debug lines at log_level=info")

        self.assert_clean_stop(d, signal.SIGTERM, notify)

    def test_restart_key_is_reported(self):
        notify = self.notify_socket()
        values = harness.minimal_values(self.tmp)
        path = harness.write_config(self.tmp.join("srtpbridge.ini"), harness.MINIMAL_CONFIG,
                                    **values)
        d = self.start_daemon(path, notify=notify)
        d.wait_ready(notify)

        harness.write_config(path, harness.MINIMAL_CONFIG,
                             **dict(values, CARRIER_LISTEN=harness.free_port()))
        mark = d.log_mark()
        d.reload()
        warn = d.wait_for_log(msg="changed key needs a restart", since=mark)
        self.assertEqual(warn.get("level"), "warn", warn["_raw"])
        self.assertEqual(warn.get("key"), "trunk:carrier.listen", warn["_raw"])
        outcome = d.wait_for_log(
            lambda r: r.get("msg") in ("config reloaded",
                                       "reload failed; keeping the running config"),
            since=mark)
        self.assertEqual(outcome["msg"], "config reloaded",
                         "a restart-only change should not fail the reload")
        others = [r for r in d.find_logs(msg="changed key needs a restart", since=mark)
                  if r.get("key") != "trunk:carrier.listen"]
        self.assertEqual(others, [], "restart warnings for keys that did not change")
        self.assert_clean_stop(d, signal.SIGTERM, notify)


class JournalPrefixTest(DaemonTestCase):
    """<N> priority prefixes only when JOURNAL_STREAM names the daemon's own stderr."""

    def run_daemon(self, journal_stream):
        values = harness.minimal_values(self.tmp, LOG_LEVEL="debug")
        path = harness.write_config(self.tmp.join("srtpbridge.ini"), harness.MINIMAL_CONFIG,
                                    **values)
        d = self.start_daemon(path, journal_stream=journal_stream)
        d.wait_for_log(msg="ready")
        # A refused reload adds error lines; debug adds <7> lines.
        text, _ = bad_config_text(dict(values, LOG_LEVEL="debug"))
        harness.write_file(path, text)
        mark = d.log_mark()
        d.reload()
        d.wait_for_log(msg="reload failed; keeping the running config", since=mark)
        self.assertEqual(d.stop(), 0)
        self.assert_logfmt(d)
        return d

    def test_prefix_when_stderr_is_the_journal_stream(self):
        d = self.run_daemon(journal_stream=True)
        seen = set()
        for rec in d.logs():
            self.assertIn("_priority", rec, "line without <N> prefix: %r" % rec["_raw"])
            self.assertEqual(rec["_priority"], harness.LEVEL_PRIORITY[rec["level"]],
                             "wrong priority for level=%s: %r" % (rec["level"], rec["_raw"]))
            seen.add(rec["_priority"])
        self.assertTrue({3, 6, 7} <= seen, "priorities seen: %s" % sorted(seen))

    def test_no_prefix_when_journal_stream_is_another_file(self):
        # As if inherited from a parent whose stderr was the journal.
        d = self.run_daemon(journal_stream="1:1")
        prefixed = [r["_raw"] for r in d.logs() if "_priority" in r or r["_raw"].startswith("<")]
        self.assertEqual(prefixed, [])
        self.assertTrue(d.find_logs(level="debug"))


if __name__ == "__main__":
    harness.main()
