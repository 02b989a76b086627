"""Integration test harness for srtpbridge (python3 stdlib only).

What it gives a test:
  - free_port() / free_ports(n): a port number free on 127.0.0.1 for both UDP
    and TCP, never handed out twice in one process;
  - TempDir: a temporary directory per test (kept when SRTPBRIDGE_KEEP_TMP=1);
  - render() / write_config(): config files from templates with @NAME@
    placeholders (INI values may hold '$' and '{}' in regexes);
  - parse_logfmt(): a logfmt parser (quoted values with \\" and \\\\ escapes,
    a leading journal priority such as <6> is split off into '_priority');
  - Daemon: the daemon as a subprocess, stderr read by a thread into parsed
    records, wait_for_log(pred, timeout) on a condition variable;
  - NotifySocket: a fake $NOTIFY_SOCKET (unix datagram, path or abstract)
    that records every datagram with the sender's pid;
  - DaemonTestCase: unittest.TestCase with a temp dir and cleanups.

Cleanup: every process started here is killed at the end of its test
(SIGTERM, SIGKILL after a grace period), again at exit (atexit), and, where
util-linux setpriv exists, by the kernel when the test process dies
(PR_SET_PDEATHSIG), so a ctest timeout leaves no daemon behind.

Nothing here binds anything but 127.0.0.1 (or a unix socket in a temp dir).
"""

import atexit
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("SRTPBRIDGE_SOURCE") or os.path.dirname(os.path.dirname(HERE))
BIN_DIR = os.environ.get("SRTPBRIDGE_BIN") or os.path.join(SOURCE_DIR, "build", "bin")
BUILD_DIR = os.environ.get("SRTPBRIDGE_BUILD") or os.path.dirname(BIN_DIR)
LOOPBACK = "127.0.0.1"

# Default time to wait for anything the daemon should do promptly.
TIMEOUT = float(os.environ.get("SRTPBRIDGE_TEST_TIMEOUT", "10"))
# Between SIGTERM and SIGKILL at cleanup.
KILL_GRACE = 3.0


def binary(name="srtpbridge"):
    """Path of an executable in the build's bin/ directory."""
    return os.path.join(BIN_DIR, name)


def project_version():
    """X.Y.Z from the top CMakeLists.txt's project(... VERSION X.Y.Z)."""
    with open(os.path.join(SOURCE_DIR, "CMakeLists.txt"), encoding="utf-8") as f:
        m = re.search(r"project\s*\(\s*srtpbridge\s+VERSION\s+(\d+\.\d+\.\d+)", f.read())
    return m.group(1) if m else None


# --------------------------------------------------------------------------
# Cleanup registry

_live_procs = []
_live_dirs = []
_registry_lock = threading.Lock()


def _kill_process(proc, grace=KILL_GRACE):
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    except ProcessLookupError:
        pass


def _cleanup_all():
    with _registry_lock:
        procs, dirs = list(_live_procs), list(_live_dirs)
        _live_procs.clear()
        _live_dirs.clear()
    for p in procs:
        _kill_process(p)
    for d in dirs:
        d.cleanup()


atexit.register(_cleanup_all)


def _on_fatal_signal(signum, frame):
    _cleanup_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


for _sig in (signal.SIGTERM, signal.SIGHUP):
    try:
        signal.signal(_sig, _on_fatal_signal)
    except (ValueError, OSError):  # not the main thread
        pass

_SETPRIV = shutil.which("setpriv")


def _pdeathsig_prefix():
    """A command prefix that makes the kernel SIGKILL the child when we die.

    PR_SET_PDEATHSIG survives exec, so the daemon keeps our pid as its pid."""
    if _SETPRIV is None or threading.current_thread() is not threading.main_thread():
        # The signal fires when the *thread* that forked exits: only safe
        # from the main thread.
        return []
    return [_SETPRIV, "--pdeathsig", "KILL", "--"]


# --------------------------------------------------------------------------
# Ports

_handed_out = set()
_ports_lock = threading.Lock()


def free_port():
    """A port number that is free on 127.0.0.1 for both TCP and UDP right now,
    from below the kernel's ephemeral range (QUIET_PORTS): there no bind(0)
    or outgoing connection of another process takes it before the daemon
    binds it."""
    return free_block(1, tcp=True)


def free_ports(n):
    return [free_port() for _ in range(n)]


# --------------------------------------------------------------------------
# Temporary directories


class TempDir:
    """A temporary directory; removed by cleanup() unless SRTPBRIDGE_KEEP_TMP=1."""

    def __init__(self, prefix="srtpbridge-it-"):
        # Short paths: unix socket paths are limited to 107 bytes.
        base = os.environ.get("SRTPBRIDGE_TMPDIR") or "/tmp"
        self.path = tempfile.mkdtemp(prefix=prefix, dir=base)
        with _registry_lock:
            _live_dirs.append(self)

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    def write(self, name, text, mode=None):
        return write_file(self.join(name), text, mode)

    def cleanup(self):
        with _registry_lock:
            if self in _live_dirs:
                _live_dirs.remove(self)
        if os.environ.get("SRTPBRIDGE_KEEP_TMP") == "1":
            sys.stderr.write("harness: keeping %s\n" % self.path)
            return
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    def __str__(self):
        return self.path


def write_file(path, text, mode=None):
    """Writes text atomically (temp file + rename): a reload never reads half a file."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = "%s.tmp-%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    if mode is not None:
        os.chmod(tmp, mode)
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------
# Config templates

_PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")


def render(template, **values):
    """Replaces each @NAME@ with values[NAME]; a missing value is an error."""

    def sub(m):
        name = m.group(1)
        if name not in values:
            raise KeyError("template placeholder @%s@ has no value" % name)
        return str(values[name])

    return _PLACEHOLDER.sub(sub, template)


def write_config(path, template, **values):
    return write_file(path, render(template, **values))


# The minimal valid config of the foundation daemon: two trunks on loopback.
MINIMAL_CONFIG = """\
[global]
log_level = @LOG_LEVEL@
control_socket = @CONTROL_SOCKET@
metrics_listen =
media_ports = @MEDIA_PORTS@
@GLOBAL_EXTRA@
[trunk:carrier]
listen = udp:127.0.0.1:@CARRIER_LISTEN@
peers = udp:127.0.0.1:@CARRIER_PEER@
options_interval = 0
route = ivr

[trunk:ivr]
listen = udp:127.0.0.1:@IVR_LISTEN@
peers = udp:127.0.0.1:@IVR_PEER@
options_interval = 0
srtp = off
route = carrier
"""


# Plain RTP on both legs (calls need no keys), the carrier on UDP and TCP at
# @PORT@, both trunks' sources 127.0.0.1.
PLAIN_TCP_CONFIG = """\
[global]
log_level = info
control_socket = @CONTROL_SOCKET@
metrics_listen =
media_ports = @MEDIA_PORTS@
@GLOBAL_EXTRA@
[trunk:carrier]
listen = udp:127.0.0.1:@PORT@, tcp:127.0.0.1:@PORT@
peers = udp:127.0.0.1:@PEER@
options_interval = 0
sources = 127.0.0.1/32
srtp = off
route = ivr

[trunk:ivr]
listen = udp:127.0.0.1:@IVR@
peers = udp:127.0.0.1:@IVR_PEER@
options_interval = 0
sources = 127.0.0.1/32
srtp = off
route = carrier
"""


def minimal_values(tmp, **overrides):
    """Values for MINIMAL_CONFIG with fresh ports; overrides win."""
    values = {
        "LOG_LEVEL": "info",
        "CONTROL_SOCKET": os.path.join(str(tmp), "control.sock"),
        "MEDIA_PORTS": "30000-30999",
        "GLOBAL_EXTRA": "",
    }
    for name in ("CARRIER_LISTEN", "CARRIER_PEER", "IVR_LISTEN", "IVR_PEER"):
        values[name] = free_port()
    values.update(overrides)
    return values


def line_of(text, needle):
    """1-based number of the first line of text that contains needle."""
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise ValueError("%r not in text" % needle)


# --------------------------------------------------------------------------
# logfmt


class LogfmtError(ValueError):
    pass


_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}
_PRIORITY = re.compile(r"^<([0-7])>")


def parse_logfmt(line):
    """Parses one logfmt line into a dict (str -> str, in line order).

    key=value, key="quoted value" (escapes \\" \\\\ \\n \\t \\r), key= (empty),
    and a bare key (logfmt's boolean: value True). A leading syslog priority
    such as "<6>" (journal stream) is removed and stored as '_priority' (int).
    Raises LogfmtError on malformed input."""
    rec = {}
    m = _PRIORITY.match(line)
    if m:
        rec["_priority"] = int(m.group(1))
        line = line[m.end():]
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n:
            break
        start = i
        while i < n and line[i] not in ' \t="':
            i += 1
        key = line[start:i]
        if not key:
            raise LogfmtError("expected a key at column %d: %r" % (start + 1, line))
        if i < n and line[i] == '"':
            raise LogfmtError("quote inside key %r: %r" % (key, line))
        if i >= n or line[i] != "=":
            rec[key] = True
            continue
        i += 1  # '='
        if i < n and line[i] == '"':
            i += 1
            out = []
            while True:
                if i >= n:
                    raise LogfmtError("unterminated quoted value of %r: %r" % (key, line))
                c = line[i]
                if c == "\\":
                    if i + 1 >= n:
                        raise LogfmtError("dangling backslash in %r: %r" % (key, line))
                    e = line[i + 1]
                    out.append(_ESCAPES.get(e, "\\" + e))
                    i += 2
                elif c == '"':
                    i += 1
                    break
                else:
                    out.append(c)
                    i += 1
            if i < n and line[i] not in " \t":
                raise LogfmtError("garbage after quoted value of %r: %r" % (key, line))
            value = "".join(out)
        else:
            start = i
            while i < n and line[i] not in " \t":
                i += 1
            value = line[start:i]
            if '"' in value:
                raise LogfmtError("stray quote in value of %r: %r" % (key, line))
        if key in rec:
            raise LogfmtError("duplicate key %r: %r" % (key, line))
        rec[key] = value
    return rec


# Journal priority of each level (syslog: 3 err, 4 warning, 6 info, 7 debug).
LEVEL_PRIORITY = {"error": 3, "warn": 4, "info": 6, "debug": 7}
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def logfmt_problems(rec):
    """What is wrong with one parsed daemon log record (empty list: nothing)."""
    if "_error" in rec:
        return ["not logfmt (%s): %r" % (rec["_error"], rec["_raw"])]
    problems = []
    for key in ("ts", "level", "module", "msg"):
        if key not in rec:
            problems.append("no %s= in %r" % (key, rec["_raw"]))
    if "ts" in rec and not TS_RE.match(str(rec["ts"])):
        problems.append("ts=%r is not YYYY-MM-DDTHH:MM:SS.mmmZ" % rec["ts"])
    if "level" in rec and rec["level"] not in LEVEL_PRIORITY:
        problems.append("unknown level=%r in %r" % (rec["level"], rec["_raw"]))
    return problems


# --------------------------------------------------------------------------
# Predicates (for Daemon.wait_for_log and NotifySocket.wait_for)


def _value_matches(want, got):
    if callable(want) and not isinstance(want, (str, bytes)):
        return got is not None and bool(want(got))
    if isinstance(want, re.Pattern):
        return isinstance(got, str) and want.search(got) is not None
    return got == want


def matcher(pred=None, **fields):
    """A predicate over a record: a callable, a dict, or field=value keywords.

    A value may be a string (equal), a compiled regex (search) or a callable."""
    if pred is not None and fields:
        raise TypeError("give a predicate or fields, not both")
    if pred is None:
        pred = fields
    if callable(pred):
        return pred
    want = dict(pred)
    return lambda rec: all(_value_matches(v, rec.get(k)) for k, v in want.items())


class _Recorder:
    """An append-only list of records and a condition variable to wait on."""

    def __init__(self, what):
        self.what = what
        self.records = []
        self.cond = threading.Condition()
        self.closed = False  # no record will ever come (EOF)
        # Optional: a callable telling (with a reason) that the producer is gone
        # although the stream is not closed (a dead daemon and its notify socket).
        self.gone = None

    def append(self, rec):
        with self.cond:
            self.records.append(rec)
            self.cond.notify_all()

    def close(self):
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def mark(self):
        with self.cond:
            return len(self.records)

    def snapshot(self, since=0):
        with self.cond:
            return list(self.records[since:])

    def find(self, pred=None, since=0, **fields):
        match = matcher(pred, **fields)
        return [r for r in self.snapshot(since) if match(r)]

    def wait_for(self, pred=None, timeout=None, since=0, count=1, **fields):
        """Waits until count records from index `since` on match; returns the
        last of them (its index is rec['_index']). Fails the test (AssertionError)
        on timeout or when the stream ended without a match."""
        match = matcher(pred, **fields)
        timeout = TIMEOUT if timeout is None else timeout
        deadline = time.monotonic() + timeout
        found = 0
        i = since
        gone_reason = None
        with self.cond:
            while True:
                while i < len(self.records):
                    if match(self.records[i]):
                        found += 1
                        if found >= count:
                            return self.records[i]
                    i += 1
                if self.closed:
                    reason = "the %s ended" % self.what
                    break
                if gone_reason is None and self.gone is not None:
                    gone_reason = self.gone()
                    if gone_reason:
                        # What it sent just before dying may still be in flight.
                        deadline = min(deadline, time.monotonic() + 0.5)
                left = deadline - time.monotonic()
                if left <= 0:
                    reason = gone_reason or "timed out after %.1f s" % timeout
                    break
                # Liveness is polled: wake up now and then when it is watched.
                self.cond.wait(left if self.gone is None else min(left, 0.1))
        raise AssertionError(
            "%s: %d of %d wanted records matched %s since #%d\nlast records:\n%s"
            % (reason, found, count, _describe(pred, fields), since, self.tail(since))
        )

    def tail(self, since=0, n=40):
        recs = self.snapshot(since)[-n:]
        return "\n".join("  " + str(r.get("_raw", r)) for r in recs) or "  (none)"


def _describe(pred, fields):
    if fields:
        return repr(fields)
    if isinstance(pred, dict):
        return repr(pred)
    return getattr(pred, "__name__", repr(pred))


# --------------------------------------------------------------------------
# Fake NOTIFY_SOCKET


class NotifySocket:
    """A fake systemd notification socket.

    Each datagram becomes a record: {'_raw': text, '_pid': sender pid,
    '_time': monotonic seconds, '_index': n, KEY: VALUE for each line}.
    `address` is what goes into $NOTIFY_SOCKET ('@name' when abstract)."""

    def __init__(self, directory, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        if abstract:
            name = "srtpbridge-test-%d-%s" % (os.getpid(), os.urandom(6).hex())
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            path = os.path.join(str(directory), "notify.sock")
            self.sock.bind(path)
            self.address = path
        # The kernel attaches the sender's credentials (NotifyAccess=main).
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.messages = _Recorder("notify socket")
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
        self._thread.start()

    def _run(self):
        ucred = struct.Struct("iII")
        try:
            while True:
                r, _, _ = select.select([self.sock, self._stop_r], [], [])
                if self._stop_r in r:
                    break
                data, anc, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(ucred.size))
                pid = None
                for level, typ, cdata in anc:
                    if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                        pid = ucred.unpack(cdata[: ucred.size])[0]
                text = data.decode("utf-8", "replace")
                rec = {"_raw": text, "_pid": pid, "_time": time.monotonic()}
                for line in text.split("\n"):
                    if "=" in line:
                        k, v = line.split("=", 1)
                        rec[k] = v
                rec["_index"] = self.messages.mark()
                self.messages.append(rec)
        except OSError:
            pass
        finally:
            self.messages.close()

    # Waiting and looking: a predicate may also be the text "KEY=VALUE".
    @staticmethod
    def _pred(pred, fields):
        if isinstance(pred, str):
            k, v = pred.split("=", 1)
            return {k: v}
        return pred

    def attach(self, daemon):
        """Waits fail at once (not at their timeout) when this daemon has exited."""

        def gone():
            rc = daemon.proc.poll() if daemon.proc is not None else None
            return None if rc is None else "the daemon exited with status %d" % rc

        self.messages.gone = gone

    def mark(self):
        return self.messages.mark()

    def wait_for(self, pred=None, timeout=None, since=0, count=1, **fields):
        return self.messages.wait_for(self._pred(pred, fields), timeout, since, count, **fields)

    def find(self, pred=None, since=0, **fields):
        return self.messages.find(self._pred(pred, fields), since, **fields)

    def close(self):
        if self._stop_w is not None:
            os.write(self._stop_w, b"x")
            self._thread.join(timeout=5)
            os.close(self._stop_w)
            os.close(self._stop_r)
            self._stop_w = None
            self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------
# The daemon as a subprocess


class Daemon:
    """srtpbridge -c CONFIG as a child process.

    stderr is a pipe of our own (so its st_dev:st_ino is known before exec:
    journal_stream=True sets JOURNAL_STREAM to it; a string sets it as is).
    Its lines are parsed as logfmt into self.log (a _Recorder); each record
    also has '_raw' (the line), '_index', '_time', and '_error' when it is
    not logfmt. stdout lines go to self.stdout (records with '_raw').
    """

    def __init__(self, config, args=None, env=None, notify=None, watchdog_usec=None,
                 journal_stream=None, program=None):
        self.config = config
        self.argv = [program or binary("srtpbridge")] + (["-c", config] if config else [])
        self.argv += list(args or [])
        self.env = dict(os.environ)
        for var in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM",
                    "LISTEN_FDS", "LISTEN_PID"):
            self.env.pop(var, None)
        if isinstance(notify, NotifySocket):
            self.env["NOTIFY_SOCKET"] = notify.address
            notify.attach(self)
        elif notify is not None:
            self.env["NOTIFY_SOCKET"] = notify
        if watchdog_usec is not None:
            self.env["WATCHDOG_USEC"] = str(watchdog_usec)
        self.env.update(env or {})
        self.journal_stream = journal_stream
        self.proc = None
        self.log = _Recorder("daemon's stderr")
        self.stdout = _Recorder("daemon's stdout")
        self._threads = []

    # -- process
    def start(self):
        err_r, err_w = os.pipe()
        out_r, out_w = os.pipe()
        try:
            env = dict(self.env)
            if self.journal_stream is True:
                st = os.fstat(err_w)
                env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
            elif self.journal_stream:
                env["JOURNAL_STREAM"] = self.journal_stream
            self.env = env
            self.proc = subprocess.Popen(
                _pdeathsig_prefix() + self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                env=env,
                close_fds=True,
            )
        finally:
            os.close(err_w)
            os.close(out_w)
        with _registry_lock:
            _live_procs.append(self.proc)
        for fd, rec, parse in ((err_r, self.log, True), (out_r, self.stdout, False)):
            t = threading.Thread(target=self._reader, args=(fd, rec, parse), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def _reader(self, fd, rec, parse):
        with os.fdopen(fd, "rb") as f:
            for raw in f:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                if os.environ.get("SRTPBRIDGE_TEST_ECHO") == "1":
                    sys.stderr.write("[%d] %s\n" % (self.proc.pid, line))
                item = {}
                if parse:
                    try:
                        item = parse_logfmt(line)
                    except LogfmtError as e:
                        item = {"_error": str(e)}
                item["_raw"] = line
                item["_time"] = time.monotonic()
                item["_index"] = rec.mark()
                rec.append(item)
        rec.close()

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self):
        self.send_signal(signal.SIGHUP)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout=None):
        """Waits for exit (and for stderr/stdout to be read to EOF); returns the status."""
        timeout = TIMEOUT if timeout is None else timeout
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                "daemon %d still running after %.1f s\nlast log lines:\n%s"
                % (self.pid, timeout, self.log.tail())
            ) from None
        for t in self._threads:
            t.join(timeout=5)
        return rc

    def stop(self, sig=signal.SIGTERM, timeout=None):
        self.send_signal(sig)
        return self.wait(timeout)

    def kill(self, grace=KILL_GRACE):
        if self.proc is None:
            return
        _kill_process(self.proc, grace)
        with _registry_lock:
            if self.proc in _live_procs:
                _live_procs.remove(self.proc)
        for t in self._threads:
            t.join(timeout=5)

    # -- logs
    def log_mark(self):
        return self.log.mark()

    def wait_for_log(self, pred=None, timeout=None, since=0, count=1, **fields):
        return self.log.wait_for(pred, timeout, since, count, **fields)

    def find_logs(self, pred=None, since=0, **fields):
        return self.log.find(pred, since, **fields)

    def logs(self, since=0):
        return self.log.snapshot(since)

    def wait_ready(self, notify=None, timeout=None):
        """Waits for msg=ready in the log (and READY=1 when a NotifySocket is given)."""
        rec = self.wait_for_log(msg="ready", timeout=timeout)
        if notify is not None:
            notify.wait_for("READY=1", timeout=timeout)
        return rec

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.kill()


def run(argv, timeout=None, **kw):
    """subprocess.run with text output captured; fails the test on a hang."""
    timeout = 60 if timeout is None else timeout
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("%s did not finish in %s s" % (argv, timeout)) from e


# --------------------------------------------------------------------------
# unittest glue


class DaemonTestCase(unittest.TestCase):
    """A TestCase with self.tmp (a TempDir) and daemons/sockets cleaned up."""

    def setUp(self):
        super().setUp()
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)

    def notify_socket(self, abstract=False):
        sock = NotifySocket(self.tmp, abstract=abstract)
        self.addCleanup(sock.close)
        return sock

    def start_daemon(self, config, **kw):
        d = Daemon(config, **kw)
        self.addCleanup(d.kill)
        return d.start()

    def minimal_config(self, name="srtpbridge.ini", **overrides):
        """Writes MINIMAL_CONFIG with fresh ports; returns (path, values)."""
        values = minimal_values(self.tmp, **overrides)
        return write_config(self.tmp.join(name), MINIMAL_CONFIG, **values), values

    def assert_logfmt(self, daemon, since=0):
        """Every stderr line so far is a well-formed daemon log record."""
        problems = []
        for rec in daemon.logs(since):
            problems += logfmt_problems(rec)
        self.assertEqual(problems, [], "malformed log lines")


def main():
    """unittest.main() that ends with unittest's summary and exits 1 on failure."""
    unittest.main(verbosity=2)


# --------------------------------------------------------------------------
# sipp as a SIP peer (the carrier or the IVR of a call through the daemon)

SIPP = shutil.which("sipp")
SIPP_DIR = os.path.join(HERE, "sipp")


def _udp_inodes(port, host=LOOPBACK):
    """Socket inodes bound to UDP host:port or *:port (IPv4), from /proc/net/udp."""
    want = "%08X:%04X" % (struct.unpack("<I", socket.inet_aton(host))[0], port)
    anyaddr = "00000000:%04X" % port
    out = set()
    try:
        with open("/proc/net/udp", encoding="ascii") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1] in (want, anyaddr):
                    out.add(fields[9])
    except OSError:
        pass
    return out


def udp_bound(port, host=LOOPBACK, pid=None):
    """True when a socket of this host (of process pid, if given) is bound
    to UDP host:port."""
    inodes = _udp_inodes(port, host)
    if not inodes or pid is None:
        return bool(inodes)
    fd_dir = "/proc/%d/fd" % pid
    try:
        for fd in os.listdir(fd_dir):
            try:
                link = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                return True
    except OSError:
        pass
    return False


def udp_port_owners(port, host=LOOPBACK):
    """'PID COMMAND' of each process with a socket on UDP host:port (for a
    failure message: who took the port)."""
    inodes = _udp_inodes(port, host)
    owners = []
    if not inodes:
        return owners
    for pid in filter(str.isdigit, os.listdir("/proc")):
        fd_dir = "/proc/%s/fd" % pid
        try:
            links = [os.readlink(os.path.join(fd_dir, fd)) for fd in os.listdir(fd_dir)]
            if any(l.startswith("socket:[") and l[8:-1] in inodes for l in links):
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
                owners.append("%s %s" % (pid, cmd[:300]))
        except OSError:
            continue
    return owners


# Ports for the peers and media of call tests: below the kernel's ephemeral
# range (where free_port() picks, and where every outgoing connection of the
# host and bind(0) take theirs), the daemon's default media_ports
# (20000-29999), MINIMAL_CONFIG's (30000-30999) and bench/cps's (15000-59999),
# so that a port found free is still free when sipp or the daemon binds it.
QUIET_PORTS = (10000, 15000)
# Daemons' media_ports take their blocks from the first part (a daemon skips
# a media port that is taken), single ports come from the rest: a port picked
# here is never inside the media range of a daemon of another test process.
QUIET_SPLIT = 12500


def _bindable(port, tcp=False, udp=True):
    kinds = ((socket.SOCK_DGRAM,) if udp else ()) + ((socket.SOCK_STREAM,) if tcp else ())
    for kind in kinds:
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


# Reservations: a UDP socket bound to each port handed out with reserve=True,
# so that no other process finds it free until release_ports() closes it,
# just before the program that is to bind it starts.
_reserved = {}


def _reserve(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    try:
        s.bind((LOOPBACK, port))
    except OSError:
        s.close()
        return False
    with _ports_lock:
        old = _reserved.pop(port, None)
        _reserved[port] = s
    if old is not None:
        old.close()
    return True


def release_ports(*ports):
    """Closes the reservations of ports (of every reserved port if none given)."""
    with _ports_lock:
        socks = [_reserved.pop(p) for p in (ports or list(_reserved)) if p in _reserved]
    for s in socks:
        s.close()


def reserve_again(port):
    """Reserves a port again once its user has closed it (best effort)."""
    return _reserve(port)


def free_block(n=1, low=QUIET_SPLIT, high=QUIET_PORTS[1], tcp=False, reserve=False):
    """The first of n consecutive ports in [low, high) that are free on
    127.0.0.1 (for UDP, and TCP too if tcp) and were never handed out by
    this process; picked at random, so that processes running in parallel
    seldom try the same ones. With reserve, each stays bound by a socket of
    ours until release_ports()."""
    import random

    rng = random.Random(os.urandom(8))
    for _ in range(500):
        start = rng.randrange(low, high - n + 1)
        ports = range(start, start + n)
        with _ports_lock:
            if any(p in _handed_out for p in ports):
                continue
            _handed_out.update(ports)  # ours now, free or not
        if reserve:
            got = [p for p in ports if _reserve(p)]
            if len(got) == n and (not tcp or all(_bindable(p, True, False) for p in ports)):
                return start
            release_ports(*got)
        elif all(_bindable(p, tcp) for p in ports):
            return start
    raise RuntimeError("no %d free consecutive ports in %d-%d" % (n, low, high))


def quiet_port():
    """A port free on 127.0.0.1 for UDP and TCP, outside the ephemeral
    range, reserved (a UDP socket of ours holds it) until release_ports()."""
    return free_block(1, tcp=True, reserve=True)


def start_with_fresh_ports(launch, attempts=3):
    """launch() picks ports (quiet_port), writes a config with them, releases
    them and returns the started Daemon; this waits for it to be ready. A
    port another process took between its pick and the daemon's bind (tests
    run in parallel) makes the daemon log "cannot bind": then launch() runs
    again, picking others. Returns the ready Daemon."""
    for attempt in range(attempts):
        daemon = launch()
        try:
            daemon.wait_ready()
            return daemon
        except AssertionError:
            if attempt == attempts - 1 or not daemon.find_logs(
                    lambda r: "cannot bind" in r.get("reason", "")):
                raise
            daemon.kill()


def free_media_range(n=64):
    """'LOW-HIGH' for media_ports: n consecutive ports free right now
    (see QUIET_PORTS), different for every call in this process."""
    start = free_block(n, low=QUIET_PORTS[0], high=QUIET_SPLIT)
    return "%d-%d" % (start, start + n - 1)


_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
            "l": "content-length", "c": "content-type", "k": "supported", "s": "subject",
            "e": "content-encoding", "o": "event", "r": "refer-to", "u": "allow-events"}


class SipMessage:
    """One SIP message from a sipp message log (-trace_msg -message_file).

    direction is 'sent' or 'received' (seen from that sipp), time a datetime
    (sipp's local clock, comparable between sipp processes of one host)."""

    def __init__(self, direction, when, raw):
        self.direction = direction
        self.time = when
        self.raw = raw
        text = raw.decode("utf-8", "replace")
        head, sep, body = text.partition("\r\n\r\n")
        if not sep:
            head, sep, body = text.partition("\n\n")
        lines = [l for l in re.split(r"\r?\n", head)]
        self.first_line = lines[0] if lines else ""
        self.headers = []  # (name as written, value), in order; folded lines joined
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and self.headers:
                name, value = self.headers[-1]
                self.headers[-1] = (name, value + " " + line.strip())
            elif ":" in line:
                name, value = line.split(":", 1)
                self.headers.append((name.strip(), value.strip()))
        self.body = body
        parts = self.first_line.split(" ", 2)
        if parts[0] == "SIP/2.0":
            self.is_request = False
            self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
            self.method = None
            self.uri = None
        else:
            self.is_request = True
            self.status = None
            self.method = parts[0]
            self.uri = parts[1] if len(parts) > 1 else None

    @staticmethod
    def _norm(name):
        n = name.strip().lower()
        return _COMPACT.get(n, n)

    def hdrs(self, name):
        """Every value of a header (compact forms included), one per header line."""
        want = self._norm(name)
        return [v for n, v in self.headers if self._norm(n) == want]

    def hdr(self, name):
        """The first value of a header, or None."""
        values = self.hdrs(name)
        return values[0] if values else None

    def vias(self):
        """Every Via value, comma-separated ones split."""
        out = []
        for v in self.hdrs("Via"):
            out += [x.strip() for x in v.split(",") if x.strip()]
        return out

    @property
    def call_id(self):
        return self.hdr("Call-ID")

    @property
    def cseq(self):
        """(number, METHOD) or None."""
        v = self.hdr("CSeq")
        if not v:
            return None
        num, _, method = v.partition(" ")
        return int(num), method.strip()

    @property
    def cseq_method(self):
        c = self.cseq
        return c[1] if c else None

    @staticmethod
    def param(value, name):
        """A ;name=value parameter of a header value (outside <...>), or None."""
        if value is None:
            return None
        outside = re.sub(r"<[^>]*>", "", value)
        m = re.search(r";\s*%s\s*=\s*([^;,\s]+)" % re.escape(name), outside, re.I)
        return m.group(1) if m else None

    @property
    def from_tag(self):
        return self.param(self.hdr("From"), "tag")

    @property
    def to_tag(self):
        return self.param(self.hdr("To"), "tag")

    @property
    def branch(self):
        vias = self.vias()
        return self.param(vias[0], "branch") if vias else None

    def sdp_lines(self):
        return [l for l in re.split(r"\r?\n", self.body) if l]

    def describe(self):
        return "%s %s" % (self.direction, self.first_line)

    def __repr__(self):
        return "<SipMessage %s %r>" % (self.direction, self.first_line)


_SIPP_LOG_ENTRY = re.compile(
    rb"^-{47} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\n"
    rb"(?:\w+ message (sent) \((\d+) bytes\):|\w+ message (received) \[(\d+)\] bytes :)\n\n",
    re.M)


def parse_sipp_messages(path):
    """The SIP messages of a sipp -trace_msg file, in the order logged."""
    import datetime

    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    out = []
    pos = 0
    while True:
        m = _SIPP_LOG_ENTRY.search(data, pos)
        if not m:
            break
        direction = (m.group(2) or m.group(4)).decode()
        size = int(m.group(3) or m.group(5))
        raw = data[m.end():m.end() + size]
        when = datetime.datetime.strptime(m.group(1).decode(), "%Y-%m-%d %H:%M:%S.%f")
        out.append(SipMessage(direction, when, raw))
        pos = m.end() + size
    return out


class Sipp:
    """One sipp process on 127.0.0.1 running one call (-m 1) of a scenario.

    A UAS is start()ed and wait_bound() before the call; a UAC is start()ed
    and wait()ed for. Every message it sends or receives lands in
    self.messages_path; messages() parses them. sipp's own control and
    media sockets are bound to 127.0.0.1 too, on ports sipp finds itself."""

    def __init__(self, scenario, workdir, name, local_port, remote=None, service=None,
                 keys=None, args=(), timeout=20):
        self.name = name
        self.local_port = local_port
        self.workdir = str(workdir)
        self.scenario = scenario if os.path.isabs(scenario) else os.path.join(SIPP_DIR, scenario)
        self.messages_path = os.path.join(self.workdir, name + ".msg")
        self.errors_path = os.path.join(self.workdir, name + ".err")
        self.out_path = os.path.join(self.workdir, name + ".out")
        argv = [SIPP or "sipp"]
        if remote:
            argv.append(remote)
        argv += ["-sf", self.scenario, "-t", "u1", "-i", LOOPBACK, "-p", str(local_port),
                 "-m", "1", "-nostdin", "-timeout", "%gs" % timeout, "-timeout_error",
                 "-trace_msg", "-message_file", self.messages_path,
                 "-trace_err", "-error_file", self.errors_path,
                 # media and remote control sockets on 127.0.0.1; their ports
                 # are sipp's to find (from 6000 and 8888 up), so that one
                 # taken by another process is skipped, not fatal
                 "-mi", LOOPBACK, "-ci", LOOPBACK]
        if service is not None:
            argv += ["-s", str(service)]
        for k, v in (keys or {}).items():
            argv += ["-key", k, str(v)]
        argv += list(args)
        self.argv = argv
        self.timeout = timeout
        self.proc = None
        self._out = None

    def start(self):
        self._out = open(self.out_path, "wb")
        release_ports(self.local_port)
        self.proc = subprocess.Popen(_pdeathsig_prefix() + self.argv, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=subprocess.STDOUT,
                                     cwd=self.workdir, close_fds=True)
        with _registry_lock:
            _live_procs.append(self.proc)
        return self

    def wait_bound(self, timeout=None):
        """Waits until sipp listens on its SIP port (a UAS is ready for the call)."""
        deadline = time.monotonic() + (TIMEOUT if timeout is None else timeout)
        while not udp_bound(self.local_port, pid=self.proc.pid):
            if self.proc.poll() is not None:
                raise AssertionError("sipp %s exited with status %d before binding port %d"
                                     " (held by: %s)\n%s"
                                     % (self.name, self.proc.returncode, self.local_port,
                                        udp_port_owners(self.local_port) or "nobody now",
                                        self.report()))
            if time.monotonic() > deadline:
                raise AssertionError("sipp %s did not bind 127.0.0.1:%d\n%s"
                                     % (self.name, self.local_port, self.report()))
            time.sleep(0.02)
        return self

    def wait(self, timeout=None):
        """Waits for sipp to exit; returns its status (0: the call went as scripted)."""
        timeout = self.timeout + 10 if timeout is None else timeout
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("sipp %s still running after %.1f s\n%s"
                                 % (self.name, timeout, self.report())) from None
        self._close()
        return rc

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.proc is None:
            return
        _kill_process(self.proc, grace=1.0)
        with _registry_lock:
            if self.proc in _live_procs:
                _live_procs.remove(self.proc)
        self._close()

    def _close(self):
        if self._out is not None:
            self._out.close()
            self._out = None
            # the next sipp on this port (a test's next call) finds it kept
            reserve_again(self.local_port)

    def messages(self):
        return parse_sipp_messages(self.messages_path)

    def report(self, n=3000):
        """sipp's unexpected-message log and the end of its output, for a failure."""
        parts = ["--- sipp %s: %s" % (self.name, " ".join(self.argv))]
        for label, path in (("errors", self.errors_path), ("output", self.out_path)):
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    text = f.read()
            except OSError:
                continue
            if text.strip():
                parts.append("--- %s %s:\n%s" % (self.name, label, text[-n:]))
        msgs = self.messages()
        if msgs:
            parts.append("--- %s messages: %s" % (
                self.name, ", ".join("%s %s" % ("<-" if m.direction == "received" else "->",
                                                m.first_line) for m in msgs)))
        return "\n".join(parts)


def start_sipp(test, scenario, name, local_port, **kw):
    """A Sipp started now and killed when the test ends (a UAS: wait_bound() it).
    Its ports are reserved (quiet_port()) until it starts, and again after."""
    s = Sipp(scenario, test.tmp, name, local_port, **kw)
    test.addCleanup(release_ports)
    test.addCleanup(s.kill)
    return s.start()
