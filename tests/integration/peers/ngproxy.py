"""rtpengine (Sipwise's media relay, its own SRTP) in front of srtpbridge's
carrier trunk, and the small SIP proxy that drives it (python3 stdlib only).

    rtpe = Rtpengine(test)                       # killed when the test ends
    proxy = SdesProxy(test, rtpe, daemon=("127.0.0.1", CARRIER_LISTEN),
                      plain=("127.0.0.1", PLAIN_UA_PORT),
                      suites=["AES_CM_128_HMAC_SHA1_32"]).start()

The proxy sits between a plain-RTP user agent (the "plain" side) and
srtpbridge's carrier trunk (the "daemon" side, SRTP). Every SDP that
crosses it goes through rtpengine's ng protocol (bench/media/rtpengine.py
speaks it): an offer toward the daemon becomes RTP/SAVP with SDES keys of
rtpengine's own (`transport-protocol` RTP/SAVP, the suites chosen by
`SDES` `no-NAME` flags: Debian 12's rtpengine 10.5 knows no `only-NAME`
and logs "Unknown 'SDES' flag"), an offer toward the plain side becomes
RTP/AVP, and each answer is rewritten by `answer`; a BYE (or a failed
first INVITE) `delete`s the call. `DTLS` `off`: without it rtpengine adds
a=fingerprint and a=setup to its RTP/SAVP offers. `ICE` `remove` and
`replace` `origin` and `session-connection` as Kamailio's rtpengine
module does.

SIP: one UDP socket on 127.0.0.1; a stateless proxy (RFC 3261 16.11: a
branch derived from the incoming one, so a CANCEL matches its INVITE; our
Via popped from responses, which go where the next Via says, with
received/rport added to it on the way in). Requests whose Request-URI
names the proxy go to the far side's next hop (from the daemon: `plain`;
from anybody else: `daemon`). Instead of Record-Route (which a user agent
under test may not honour) every Contact is replaced with a token URI of
the proxy's own, so that every in-dialog request (ACK, re-INVITE, BYE)
comes back through it and its SDP is rewritten too; the token's
Request-URI is put back to the original Contact on the way out.

Everything the proxy sent and received is kept (self.messages) for the
checks and for a failure message (whole, in proxy-PORT.log, with
SRTPBRIDGE_KEEP_TMP=1). Rtpengine's media range is claimed across
processes (claim_media_range): rtpengine binds media ports with
SO_REUSEADDR, so two of them would share ports without an error.
"""

import fcntl
import hashlib
import os
import re
import select
import shutil
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import harness  # noqa: E402

sys.path.insert(0, os.path.join(harness.SOURCE_DIR, "bench", "media"))
import rtpengine as rtpe  # noqa: E402  (bench/media/rtpengine.py: ng over bencode)

# Every SDES suite rtpengine 10.5 offers (it offers all of them unless told
# not to), strongest first as it lists them.
RTPENGINE_SUITES = ("AEAD_AES_256_GCM", "AEAD_AES_128_GCM", "AES_256_CM_HMAC_SHA1_80",
                    "AES_256_CM_HMAC_SHA1_32", "AES_192_CM_HMAC_SHA1_80",
                    "AES_192_CM_HMAC_SHA1_32", "AES_CM_128_HMAC_SHA1_80",
                    "AES_CM_128_HMAC_SHA1_32", "F8_128_HMAC_SHA1_80", "F8_128_HMAC_SHA1_32",
                    "NULL_HMAC_SHA1_80", "NULL_HMAC_SHA1_32")


def unavailable():
    """None when rtpengine (and taskset, which bench's start() runs it
    under) is here, else why not (a skip reason)."""
    if shutil.which(rtpe.RTPENGINE) is None:
        return "rtpengine is not installed (Debian: apt-get install rtpengine-daemon)"
    if shutil.which("taskset") is None:
        return "taskset (util-linux) is not installed"
    return None


# rtpengine binds its media ports with SO_REUSEADDR: a second rtpengine
# (this test running twice at once) binds the same ports without an error,
# and the kernel hands each flow to one of the two. harness's port picks are
# unique within one process only, so the media ranges of the rtpengines of
# all processes are claimed in a registry under a lock (pid low high a
# line; a dead pid's claim is void).
CLAIMS = os.path.join(os.environ.get("SRTPBRIDGE_TMPDIR") or "/tmp",
                      "srtpbridge-test-rtpengine-ports")


def _with_claims(change):
    """Runs change(list of (pid, low, high) still live) -> new list under
    the registry's lock, and writes what it returns."""
    with open(CLAIMS + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(CLAIMS, encoding="ascii") as f:
                claims = [tuple(int(x) for x in l.split()) for l in f if len(l.split()) == 3]
        except (OSError, ValueError):
            claims = []
        claims = [c for c in claims if os.path.exists("/proc/%d" % c[0])]
        claims = change(claims)
        harness.write_file(CLAIMS, "".join("%d %d %d\n" % c for c in claims))


def claim_media_range(n):
    """(low, high): n media ports free now and claimed by no live rtpengine
    of any process."""
    got = []

    def pick(claims):
        for _ in range(50):
            low, high = (int(x) for x in harness.free_media_range(n).split("-"))
            if all(high < lo or low > hi for _, lo, hi in claims):
                got.append((low, high))
                return claims + [(os.getpid(), low, high)]
        return claims

    _with_claims(pick)
    if not got:
        raise AssertionError("no %d media ports that no rtpengine has claimed" % n)
    return got[0]


def hand_media_range(low, high, pid):
    """The claim of (low, high) now lasts as long as process pid (rtpengine:
    it may outlive a test process killed with SIGKILL)."""
    _with_claims(lambda claims: [(pid, lo, hi) if (lo, hi) == (low, high) else (p, lo, hi)
                                 for p, lo, hi in claims])


def release_media_range(low, high):
    _with_claims(lambda claims: [c for c in claims if c[1:] != (low, high)])


class Rtpengine:
    """One rtpengine, userspace only, ng and media on 127.0.0.1 (quiet ports,
    see harness.QUIET_PORTS, its media range claimed across processes);
    stopped when the test ends."""

    def __init__(self, test, media_ports=24):
        last = None
        for _ in range(3):
            low, high = claim_media_range(media_ports)
            ng_port = harness.quiet_port()
            harness.release_ports(ng_port)
            try:
                self.h = rtpe.start("0-%d" % (max(os.cpu_count() or 1, 1) - 1), 1, low, high,
                                    ng_port=ng_port, log_level=6)
                break
            except rtpe.RtpengineError as e:  # its ng port taken between pick and bind
                release_media_range(low, high)
                last = e
        else:
            raise AssertionError("rtpengine did not start: %s" % last)
        hand_media_range(low, high, self.h.proc.pid)
        with harness._registry_lock:
            harness._live_procs.append(self.h.proc)
        test.addCleanup(self.stop)
        self.media = range(low, high + 1)
        self.lock = threading.Lock()

    def ng(self, cmd):
        with self.lock:  # one ng socket, replies matched by cookie
            return rtpe.ng(self.h, cmd)

    def log_tail(self, n=30):
        return self.h.log_tail(n)

    # What rtpengine logs for an SRTP or SRTCP packet it drops: a failed
    # tag, a failed decryption, a packet too short (warnings), and a packet
    # for a side whose key it does not know yet (an error).
    REFUSED = re.compile(r"Discarded invalid SRTC?P packet|Discarded SRTP packet"
                         r"|Invalid SRTP/SRTCP packet|SRTC?P output wanted, but no crypto")
    _PORT = re.compile(r"Port\s+(\S+)\s+<>\s+(\S+?)( \(RTCP\))?, SSRC \S+, (\d+) p, (\d+) b, "
                       r"(\d+) e")
    _MEDIA = re.compile(r"Media #\d+ \(\w+ over (\S+)\)")

    def log_lines(self, call_id):
        """rtpengine's log lines about one call (its Call-ID)."""
        pat = re.compile(r"\[%s(?: port \d+)?\]" % re.escape(call_id))
        try:
            with open(self.h.log, encoding="utf-8", errors="replace") as f:
                return [l.rstrip("\n") for l in f if pat.search(l)]
        except OSError:
            return []

    def refusals(self, call_id):
        """The SRTP/SRTCP packets of a call rtpengine refused (its log lines;
        rate-limited there: one line stands for one or more packets)."""
        return [l for l in self.log_lines(call_id) if self.REFUSED.search(l)]

    @staticmethod
    def log_time(line):
        """The time stamp (seconds, float) of one of rtpengine's log lines."""
        m = re.match(r"\[(\d+\.\d+)\]", line)
        return float(m.group(1)) if m else None

    def commands(self, call_id, command):
        """The times rtpengine received an ng `command` for a call."""
        return [self.log_time(l) for l in self.log_lines(call_id)
                if "Received command '%s'" % command in l]

    def final_stats(self, call_id, timeout=None):
        """What rtpengine received on each side of a deleted call, from the
        'Final packet stats' it logs at the delete (waited for): a list of
        {'protocol': 'RTP/SAVP'|'RTP/AVP', 'rtcp': bool, 'packets': n
        (accepted), 'errors': n, 'local': ..., 'remote': ...}."""
        deadline = time.monotonic() + (harness.TIMEOUT if timeout is None else timeout)
        while True:
            lines = self.log_lines(call_id)
            done = [i for i, l in enumerate(lines) if "Final packet stats" in l]
            if done:
                break
            if time.monotonic() > deadline:
                raise AssertionError("rtpengine logged no final stats for %s\n%s"
                                     % (call_id, "\n".join(lines[-20:])))
            time.sleep(0.05)
        out, proto = [], None
        for l in lines[done[-1]:]:
            m = self._MEDIA.search(l)
            if m:
                proto = m.group(1)
                continue
            m = self._PORT.search(l)
            if m:
                out.append({"protocol": proto, "rtcp": bool(m.group(3)),
                            "packets": int(m.group(4)), "errors": int(m.group(6)),
                            "local": m.group(1), "remote": m.group(2)})
        return out

    def stop(self):
        keep = os.environ.get("SRTPBRIDGE_KEEP_TMP") == "1"
        if keep:
            sys.stderr.write("rtpengine: keeping %s\n" % self.h.workdir)
        rtpe.stop(self.h, keep_log=keep)
        with harness._registry_lock:
            if self.h.proc in harness._live_procs:
                harness._live_procs.remove(self.h.proc)
        release_media_range(self.media.start, self.media.stop - 1)


# --------------------------------------------------------------------------
# SIP messages (just enough for a proxy)

_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
            "l": "content-length", "c": "content-type"}


class Msg:
    """One SIP message: first line, headers in order (folded lines joined;
    edited in place), body; encode() writes it back with its Content-Length."""

    def __init__(self, data):
        text = data.decode("utf-8", "surrogateescape")
        head, _, self.body = text.partition("\r\n\r\n")
        lines = head.split("\r\n")
        self.first = lines[0]
        self.headers = []  # [name, value]
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and self.headers:
                self.headers[-1][1] += " " + line.strip()
            elif ":" in line:
                n, v = line.split(":", 1)
                self.headers.append([n.strip(), v.strip()])
        parts = self.first.split(" ", 2)
        self.is_request = parts[0] != "SIP/2.0"
        self.method = parts[0] if self.is_request else None
        self.uri = parts[1] if self.is_request else None
        self.status = int(parts[1]) if not self.is_request else None

    @staticmethod
    def norm(name):
        n = name.lower()
        return _COMPACT.get(n, n)

    def get(self, name):
        return [v for n, v in self.headers if self.norm(n) == name]

    def hdr(self, name):
        v = self.get(name)
        return v[0] if v else None

    def set_all(self, name, fn):
        for h in self.headers:
            if self.norm(h[0]) == name:
                h[1] = fn(h[1])

    @property
    def cseq_method(self):
        return (self.hdr("cseq") or " ").split()[-1]

    def tag(self, name):
        m = re.search(r";\s*tag=([^;,\s>]+)", re.sub(r"<[^>]*>", "", self.hdr(name) or ""))
        return m.group(1) if m else None

    def encode(self):
        if self.is_request:
            self.first = "%s %s SIP/2.0" % (self.method, self.uri)
        hdrs = [h for h in self.headers if self.norm(h[0]) != "content-length"]
        lines = [self.first] + ["%s: %s" % (n, v) for n, v in hdrs]
        body = self.body.encode("utf-8", "surrogateescape")
        lines.append("Content-Length: %d" % len(body))
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


def _hostport(uri):
    """(host, port) of a SIP URI or a Via sent-by."""
    m = re.search(r"(?:sips?:(?:[^@;>]*@)?)?\[?([0-9A-Za-z.\-:]+?)\]?(?::(\d+))?(?:[;>?]|$)", uri)
    return m.group(1), int(m.group(2) or 5060)


def _via_target(via):
    """Where a response goes for this Via value (received and rport honoured)."""
    sent_by = via.split(";", 1)[0].split(None, 1)[1].strip()
    host, port = _hostport(sent_by)
    m = re.search(r";\s*received=([^;\s]+)", via)
    if m:
        host = m.group(1)
    m = re.search(r";\s*rport=(\d+)", via)
    if m:
        port = int(m.group(1))
    return host, port


# --------------------------------------------------------------------------
# The proxy


class SdesProxy:
    """A SIP proxy on 127.0.0.1 whose SDP goes through rtpengine (see the
    module's docstring). `suites`: what rtpengine may offer the daemon
    (None: all it has)."""

    def __init__(self, test, rtpengine, daemon, plain, suites=None, port=None):
        self.test = test
        self.rtpe = rtpengine
        self.daemon = daemon
        self.plain = plain
        self.suites = suites
        self.port = port or harness.quiet_port()
        self.addr = (harness.LOOPBACK, self.port)
        self.messages = []  # (time, 'in'|'out', (host, port), Msg)
        self.ng_log = []  # (command dict without sdp, reply sdp or error)
        self.errors = []
        self.contacts = {}  # token -> original contact URI
        self.tokens = {}  # original contact URI -> token
        self.answered = set()  # Call-IDs with a 2xx to their INVITE
        self.lock = threading.Lock()
        self.sock = None
        self._stop_r = self._stop_w = None
        self._thread = None

    def start(self):
        harness.release_ports(self.port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(self.addr)
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="sdes-proxy", daemon=True)
        self._thread.start()
        self.test.addCleanup(self.stop)
        if os.environ.get("SRTPBRIDGE_KEEP_TMP") == "1":
            self.test.addCleanup(self.save)
        return self

    def save(self):
        """Every message through the proxy, whole, to proxy-PORT.log in the
        test's directory (kept with SRTPBRIDGE_KEEP_TMP=1)."""
        with self.lock:
            msgs = list(self.messages)
        harness.write_file(self.test.tmp.join("proxy-%d.log" % self.port), "".join(
            "--- %.3f %s %s:%d\n%s\n" % (t, d, p[0], p[1], m.encode().decode(
                "utf-8", "replace")) for t, d, p, m in msgs))

    def stop(self):
        if self._thread is None:
            return
        os.write(self._stop_w, b"x")
        self._thread.join(timeout=5)
        os.close(self._stop_r)
        os.close(self._stop_w)
        self.sock.close()
        self._thread = None

    def _run(self):
        while True:
            r, _, _ = select.select([self.sock, self._stop_r], [], [])
            if self._stop_r in r:
                return
            try:
                data, src = self.sock.recvfrom(65536)
            except OSError:
                continue
            if not data.strip():
                continue  # keep-alive
            try:
                self._handle(data, src)
            except Exception as e:  # noqa: BLE001 - kept for the failure message
                with self.lock:
                    self.errors.append("%s: %r on %r" % (type(e).__name__, e, data[:200]))

    # -- bookkeeping

    def _keep(self, direction, peer, msg):
        with self.lock:
            self.messages.append((time.monotonic(), direction, peer, Msg(msg.encode())))

    def _send(self, msg, to):
        self._keep("out", to, msg)
        self.sock.sendto(msg.encode(), to)

    def find(self, direction=None, to=None, pred=None):
        """Messages kept, filtered: direction 'in'/'out', to a side
        ('daemon' or 'plain': out to that address), pred(msg)."""
        want = {"daemon": self.daemon, "plain": self.plain}.get(to, to)
        with self.lock:
            return [m for t, d, p, m in self.messages
                    if (direction is None or d == direction) and (want is None or p == want)
                    and (pred is None or pred(m))]

    def call_ids(self):
        """The Call-ID of each call (first INVITE) through the proxy, in order."""
        out = []
        for m in self.find("in", None, lambda m: m.method == "INVITE"):
            if m.hdr("call-id") not in out:
                out.append(m.hdr("call-id"))
        return out

    def report(self):
        """What crossed the proxy, for a failure message."""
        out = ["--- SIP proxy 127.0.0.1:%d (daemon %s, plain %s):" % (
            self.port, self.daemon, self.plain)]
        with self.lock:
            msgs = list(self.messages)
            errs = list(self.errors)
            ngs = list(self.ng_log)
        for t, d, p, m in msgs:
            out.append("  %s %s:%d %s" % ("<-" if d == "in" else "->", p[0], p[1], m.first))
        out += ["  error: " + e for e in errs]
        out.append("--- ng commands: " + "; ".join(repr(c) for c, _ in ngs))
        if self.rtpe is not None:
            out.append("--- rtpengine log (last 20):\n" + self.rtpe.log_tail(20))
        return "\n".join(out)

    # -- SIP

    def _contact_token(self, uri):
        with self.lock:
            tok = self.tokens.get(uri)
            if tok is None:
                tok = "px%d" % len(self.tokens)
                self.tokens[uri] = tok
                self.contacts[tok] = uri
        return "sip:%s@127.0.0.1:%d" % (tok, self.port)

    def _mangle_contact(self, msg):
        def sub(value):
            return re.sub(r"<([^>]+)>", lambda m: "<%s>" % self._contact_token(m.group(1)),
                          value, count=1) if "<" in value else self._contact_token(
                              value.split(";", 1)[0].strip()) + (
                                  ";" + value.split(";", 1)[1] if ";" in value else "")
        msg.set_all("contact", sub)

    def _handle(self, data, src):
        msg = Msg(data)
        self._keep("in", src, msg)
        if msg.is_request:
            self._request(msg, src)
        else:
            self._response(msg)

    def _request(self, msg, src):
        from_daemon = src == self.daemon
        host, port = _hostport(msg.uri)
        user = re.match(r"sips?:([^@;>]+)@", msg.uri)
        token = user.group(1) if user else None
        if (host, port) == self.addr and token in self.contacts:
            msg.uri = self.contacts[token]
            target = _hostport(msg.uri)
        elif (host, port) == self.addr:
            target = self.plain if from_daemon else self.daemon
        else:
            target = (host, port)
        to_daemon = target == self.daemon
        # Via: received/rport on the sender's, ours on top
        vias = [i for i, h in enumerate(msg.headers) if Msg.norm(h[0]) == "via"]
        if not vias:
            return
        top = msg.headers[vias[0]]
        first_via = top[1].split(",", 1)
        v = re.sub(r";\s*rport(?=;|$)", ";rport=%d" % src[1], first_via[0])
        if ";received=" not in v:
            v += ";received=%s" % src[0]
        top[1] = ",".join([v] + first_via[1:])
        branch = re.search(r";\s*branch=([^;\s]+)", first_via[0])
        seed = (branch.group(1) if branch else first_via[0]) + ("d" if to_daemon else "p")
        ours = "SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-px-%s" % (
            self.port, hashlib.md5(seed.encode()).hexdigest()[:16])
        msg.headers.insert(vias[0], ["Via", ours])
        self._mangle_contact(msg)
        if msg.body.strip() and msg.method in ("INVITE", "UPDATE"):
            msg.body = self._offer(msg, to_daemon)
        if msg.method == "BYE":
            self._delete(msg)
        self._send(msg, target)

    def _response(self, msg):
        vias = [i for i, h in enumerate(msg.headers) if Msg.norm(h[0]) == "via"]
        if not vias:
            return
        top = msg.headers[vias[0]]
        parts = [p.strip() for p in top[1].split(",")]
        if "z9hG4bK-px-" not in parts[0] or ":%d;" % self.port not in parts[0]:
            return  # not through us
        if len(parts) > 1:
            top[1] = ", ".join(parts[1:])
            nxt = parts[1]
        else:
            del msg.headers[vias[0]]
            rest = msg.get("via")
            if not rest:
                return
            nxt = rest[0].split(",")[0]
        self._mangle_contact(msg)
        method = msg.cseq_method
        if method in ("INVITE", "UPDATE") and msg.body.strip() and msg.status < 300:
            msg.body = self._answer(msg)
        if method == "INVITE" and msg.status >= 200:
            cid = msg.hdr("call-id")
            if msg.status < 300:
                with self.lock:
                    self.answered.add(cid)
            elif cid not in self.answered:
                self._delete(msg)
        self._send(msg, _via_target(nxt))

    # -- rtpengine

    def _flags(self, to_daemon):
        common = {"ICE": "remove", "DTLS": "off",
                  "replace": ["origin", "session-connection"]}
        if to_daemon:
            common["transport-protocol"] = "RTP/SAVP"
            if self.suites is not None:
                common["SDES"] = ["no-" + s for s in RTPENGINE_SUITES if s not in self.suites]
        else:
            common["transport-protocol"] = "RTP/AVP"
        return common

    def _ng(self, cmd):
        shown = {k: v for k, v in cmd.items() if k != "sdp"}
        try:
            reply = self.rtpe.ng(cmd)
        except rtpe.RtpengineError as e:
            with self.lock:
                self.ng_log.append((shown, "error: %s" % e))
                self.errors.append("ng %s: %s" % (cmd.get("command"), e))
            raise
        with self.lock:
            self.ng_log.append((shown, reply.get("sdp")))
        return reply

    def _offer(self, msg, to_daemon):
        cmd = {"command": "offer", "call-id": msg.hdr("call-id"), "from-tag": msg.tag("from"),
               "sdp": msg.body}
        if msg.tag("to"):
            cmd["to-tag"] = msg.tag("to")
        cmd.update(self._flags(to_daemon))
        return self._ng(cmd)["sdp"]

    def _answer(self, msg):
        cmd = {"command": "answer", "call-id": msg.hdr("call-id"), "from-tag": msg.tag("from"),
               "to-tag": msg.tag("to"), "sdp": msg.body, "ICE": "remove", "DTLS": "off",
               "replace": ["origin", "session-connection"]}
        return self._ng(cmd)["sdp"]

    def _delete(self, msg):
        try:
            self._ng({"command": "delete", "call-id": msg.hdr("call-id"),
                      "from-tag": msg.tag("from")})
        except rtpe.RtpengineError:
            pass  # already gone (a BYE retransmitted): noted in ng_log
