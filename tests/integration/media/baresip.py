"""baresip (Debian 12's baresip-core 1.0.0) as a headless SIP phone that
sends a sine tone and records what it hears (python3 stdlib only).

The setup, found by hand and kept here (see baresip.conf.in beside this
file for every line of the config):

  baresip -f DIR        DIR holds config, accounts, contacts (rendered here)

  - audio source `ausine,HZ`: a sine of HZ Hz; ausine only does 48 kHz
    stereo (ausrc_srate 48000, ausrc_channels 2), baresip resamples it to
    the codec's 8 kHz mono;
  - no sound card: the player is an `aubridge` device that no source reads
    (aubridge,sink): it plays nothing and costs nothing (ALSA's null
    device works too, but its player thread spins at half a core);
  - the recording: baresip 1.0's aufile module is a source only (it has no
    player), so the `sndfile` audio filter records instead: it writes what
    is decoded from the received RTP to SND_PATH/dump-<time>-dec.wav
    (8 kHz mono s16) as each frame arrives, and what is sent to -enc.wav;
  - control: the `ctrl_tcp` module on 127.0.0.1:PORT takes netstring JSON
    commands {"command":"dial","params":"sip:...","token":"..."} (also
    hangup, quit) and sends every event (CALL_ESTABLISHED, CALL_MENC with
    the SRTP suite, CALL_RTPESTAB at the first good RTP packet,
    CALL_CLOSED, ...): the test waits on events, never on time;
  - the account `<sip:USER@127.0.0.1:PORT>;regint=0;answermode=auto;
    audio_codecs=PCMU;ptime=20[;mediaenc=srtp-mand]`: no registration,
    answers every call at once, PCMU 20 ms (160-byte payloads), SRTP with
    SDES mandatory (baresip's srtp module offers AES_CM_128_HMAC_SHA1_80
    only, and accepts an offer of _80 or _32);
  - `net_interface 127.0.0.1` (`lo` is refused by baresip 1.0) keeps its
    SDP and sockets on loopback, rtp_ports a range of the harness's.

By hand, two of them calling each other (what DirectTest does):
  baresip -f /tmp/b      (auto-answers)
  baresip -f /tmp/a -e '/dial sip:b@127.0.0.1:PORT_B' -t 6
"""

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import harness  # noqa: E402

BARESIP = shutil.which("baresip")
MEDIA_DIR = os.path.dirname(os.path.abspath(__file__))
CONFIG_TEMPLATE = os.path.join(MEDIA_DIR, "baresip.conf.in")
MODULE_DIRS = ("/usr/lib/baresip/modules", "/usr/local/lib/baresip/modules",
               "/usr/lib/x86_64-linux-gnu/baresip/modules")
MODULES = ("g711", "aubridge", "ausine", "sndfile", "srtp", "account", "menu", "ctrl_tcp")


def module_dir():
    for d in MODULE_DIRS:
        if os.path.isfile(os.path.join(d, "ausine.so")):
            return d
    return None


def unavailable():
    """None when baresip and its modules are here, else why not (a skip reason)."""
    if BARESIP is None:
        return "baresip is not installed (Debian: apt-get install baresip-core)"
    d = module_dir()
    if d is None:
        return "baresip modules not found in %s" % ", ".join(MODULE_DIRS)
    missing = [m for m in MODULES if not os.path.isfile(os.path.join(d, m + ".so"))]
    if missing:
        return "baresip modules missing in %s: %s" % (d, ", ".join(missing))
    return None


def _netstring(b):
    return b"%d:%s," % (len(b), b)


class Baresip:
    """One baresip process: a phone with one account on 127.0.0.1.

    name: a label (directory, log file); user: the account's user part;
    tone_hz: what it sends; srtp: mediaenc=srtp-mand when true."""

    def __init__(self, test, name, user, tone_hz, srtp):
        self.test = test
        self.name = name
        self.user = user
        self.tone_hz = tone_hz
        self.srtp = srtp
        self.dir = test.tmp.join(name)
        self.rec_dir = os.path.join(self.dir, "rec")
        os.makedirs(self.rec_dir)
        # libre also listens for SIP over TLS on sip_port + 1: both held
        self.sip_port = harness.free_block(2, tcp=True, reserve=True)
        self.ctrl_port = harness.quiet_port()
        # RTP and RTCP: baresip picks a free port of the range itself,
        # skipping taken ones, as a daemon's media_ports do. libre takes a
        # random port of the range and clears its low bit (RTP even, RTCP
        # +1): an odd first port would let RTP land just below the range.
        low = int(harness.free_media_range(17).split("-")[0])
        low += low & 1
        self.rtp_ports = "%d-%d" % (low, low + 15)
        self.rtp_range = range(low, low + 16)
        self.log_path = os.path.join(self.dir, "baresip.log")
        self.proc = None
        self.lines = harness._Recorder("%s's output" % name)
        self.events = harness._Recorder("%s's ctrl_tcp events" % name)
        self.responses = harness._Recorder("%s's ctrl_tcp responses" % name)
        self.ctrl = None
        self._tokens = 0

    @property
    def aor(self):
        return "sip:%s@127.0.0.1:%d" % (self.user, self.sip_port)

    def write_config(self):
        with open(CONFIG_TEMPLATE, encoding="utf-8") as f:
            template = f.read()
        harness.write_file(os.path.join(self.dir, "config"), harness.render(
            template, SIP_PORT=self.sip_port, TONE_HZ=self.tone_hz, RTP_PORTS=self.rtp_ports,
            CTRL_PORT=self.ctrl_port, REC_DIR=self.rec_dir, MODULE_PATH=module_dir()))
        harness.write_file(os.path.join(self.dir, "accounts"),
                           "<%s>;regint=0;answermode=auto;audio_codecs=PCMU;ptime=20%s\n"
                           % (self.aor, ";mediaenc=srtp-mand" if self.srtp else ""))
        harness.write_file(os.path.join(self.dir, "contacts"), "")

    # -- process

    def start(self):
        """Starts baresip and connects to its ctrl_tcp once it says it is ready."""
        self.write_config()
        harness.release_ports(self.sip_port, self.sip_port + 1, self.ctrl_port)
        self.proc = subprocess.Popen(
            harness._pdeathsig_prefix() + [BARESIP, "-f", self.dir],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            cwd=self.dir, close_fds=True)
        with harness._registry_lock:
            harness._live_procs.append(self.proc)
        self.test.addCleanup(self.kill)
        self.lines.gone = self._gone
        self.events.gone = self._gone
        self.responses.gone = self._gone
        threading.Thread(target=self._read_output, daemon=True).start()
        self.lines.wait_for(lambda r: "baresip is ready." in r["_raw"],
                            timeout=max(harness.TIMEOUT, 10))
        self.ctrl = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=5)
        self.ctrl.settimeout(None)
        threading.Thread(target=self._read_ctrl, daemon=True).start()
        return self

    def _gone(self):
        rc = self.proc.poll() if self.proc is not None else None
        return None if rc is None else "baresip %s exited with status %d" % (self.name, rc)

    def _read_output(self):
        with open(self.log_path, "wb") as log:
            for raw in self.proc.stdout:
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if os.environ.get("SRTPBRIDGE_TEST_ECHO") == "1":
                    sys.stderr.write("[%s] %s\n" % (self.name, line))
                self.lines.append({"_raw": line, "_time": time.monotonic()})
        self.lines.close()

    def _read_ctrl(self):
        buf = b""
        try:
            while True:
                data = self.ctrl.recv(65536)
                if not data:
                    break
                buf += data
                while True:
                    colon = buf.find(b":")
                    if colon < 0:
                        break
                    size = int(buf[:colon])
                    if len(buf) < colon + 1 + size + 1:
                        break
                    msg = json.loads(buf[colon + 1:colon + 1 + size].decode("utf-8", "replace"))
                    buf = buf[colon + 1 + size + 1:]
                    msg["_time"] = time.monotonic()
                    (self.events if msg.get("event") else self.responses).append(msg)
        except (OSError, ValueError):
            pass
        self.events.close()
        self.responses.close()

    def command(self, command, params="", timeout=None):
        """Runs a baresip command (dial, hangup, ...); returns its response."""
        self._tokens += 1
        token = "%s-%d" % (command, self._tokens)
        self.ctrl.sendall(_netstring(json.dumps(
            {"command": command, "params": params, "token": token}).encode()))
        r = self.responses.wait_for(token=token, timeout=timeout)
        if r.get("ok") is not True:
            raise AssertionError("baresip %s: %s %s failed: %s" % (self.name, command, params, r))
        return r

    def wait_event(self, type_, timeout=None, since=0):
        return self.events.wait_for(type=type_, timeout=timeout, since=since)

    def find_events(self, type_):
        return self.events.find(type=type_)

    def quit(self, timeout=None):
        """Asks baresip to quit (which ends its call) and waits for it to exit
        (its recordings are complete then)."""
        if self.proc.poll() is None:
            try:
                self.ctrl.sendall(_netstring(json.dumps(
                    {"command": "quit", "params": "", "token": "quit"}).encode()))
            except OSError:
                pass
            try:
                self.proc.wait(timeout=harness.TIMEOUT if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("baresip %s did not quit" % self.name) from None
        return self.proc.returncode

    def kill(self):
        if self.proc is None:
            return
        harness._kill_process(self.proc, grace=2.0)
        with harness._registry_lock:
            if self.proc in harness._live_procs:
                harness._live_procs.remove(self.proc)
        if self.ctrl is not None:
            self.ctrl.close()

    # -- what it heard

    def recording(self, kind="dec"):
        """Path of the recording of what it received (dec) or sent (enc)."""
        paths = sorted(glob.glob(os.path.join(self.rec_dir, "dump-*-%s.wav" % kind)))
        return paths[-1] if paths else None

    def received_seconds(self):
        """Seconds of decoded audio recorded so far (8 kHz, 16-bit mono)."""
        path = self.recording()
        try:
            return max(0, os.path.getsize(path) - 44) / 16000.0 if path else 0.0
        except OSError:
            return 0.0

    def log_tail(self, n=40, grep=None):
        recs = self.lines.snapshot()
        lines = [r["_raw"] for r in recs if grep is None or grep in r["_raw"]]
        return "\n".join("  [%s] %s" % (self.name, l) for l in lines[-n:]) or "  (none)"
