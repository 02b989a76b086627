"""Failover between a trunk's peers and peer health (OPTIONS pings), with
plain Python UDP sockets as the carrier and as each IVR peer. Every datagram
a test socket gets is stamped with time.monotonic() as it arrives (the
capture), so timings are measured at the receiving end:
- a silent first peer: the next peer's INVITE after failover_timeout (a new
  Call-ID and branch, the same users and SDP), the call completing through
  it; the silent peer waking up later (while the call rings, is up, is
  over): its 180 gets a CANCEL, its 200 an ACK and a BYE with a Reason;
- failover at once on a final 408, 500 or 503 (after a 100 too) and on a
  refused TCP connection; none on 486, 404 or 603 (relayed), none after a
  180 or 183 was relayed (the later 503 is relayed without Retry-After);
- a 503 with Retry-After takes the peer out for the next calls
  (srtpbridgectl trunks: down, retry_after_seconds) until it is over;
- every peer failing (or down): 503 to the carrier with a Reason and a
  Warning, no Retry-After;
- ring_timeout from the first provisional of the peer being tried: 408
  after a 100 only, 480 after a relayed 180, a CANCEL with a Reason;
- OPTIONS pings from the trunk's listen port: a peer that never answers goes
  down after 3 misses and gets no INVITE, up again after 2 answers (from
  unknown, after 1); options_ok_codes (404 alive, 503 and 408 misses, a
  narrower list); an answer later than min(failover_timeout, 0.75 x
  options_interval) is a miss; srtpbridgectl trunks in JSON and as a table;
- OPTIONS to srtpbridge: 200 while the route has a usable peer, 503 with a
  Warning when none has, 503 while draining;
- a call in progress is left alone when its peer goes down."""

import json
import os
import re
import socket
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase, binary, run  # noqa: E402

CONFIG = """[global]
log_level = debug
control_socket = @CTL@
metrics_listen =
media_ports = @MEDIA@
media_port_quarantine = 0
drain_timeout = 60

[trunk:carrier]
listen = udp:127.0.0.1:@PORT@
peers = udp:127.0.0.1:@PEER@
options_interval = 0
route = ivr

[trunk:ivr]
listen = @IVR_LISTEN@
peers = @PEERS@
sources = 127.0.0.1/32
srtp = off
failover_timeout = @FAILOVER@
ring_timeout = @RING@
options_interval = @OPTIONS@
@IVR_EXTRA@
route = carrier
"""

KEY = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
OFFER = ("v=0\r\no=carrier 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
         "m=audio 40000 RTP/SAVP 0\r\n"
         "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:%s\r\n" % KEY)
ANSWER = ("v=0\r\no=ivr 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
          "m=audio 41000 RTP/AVP 0\r\n")
USER = "8011000"

REASONS = {100: "Trying", 180: "Ringing", 183: "Session Progress", 200: "OK",
           404: "Not Found", 408: "Request Timeout", 486: "Busy Here",
           487: "Request Terminated", 500: "Server Internal Error",
           503: "Service Unavailable", 603: "Decline"}

_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
            "l": "content-length", "c": "content-type", "k": "supported"}


def parse(data):
    """(first line, {lower-case name: [values]}, body) of one message."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    hdrs = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        hdrs.setdefault(_COMPACT.get(name, name), []).append(value.strip())
    return lines[0], hdrs, body.decode(errors="replace")


def status(first):
    parts = first.split(" ", 2)
    return int(parts[1]) if parts[0] == "SIP/2.0" and parts[1:] and parts[1].isdigit() \
        else None


def param(value, name):
    """A ;name=value parameter of a header value (outside <...>), or None."""
    if value is None:
        return None
    outside = re.sub(r"<[^>]*>", "", value)
    m = re.search(r";\s*%s\s*=\s*([^;,\s]+)" % re.escape(name), outside, re.I)
    return m.group(1) if m else None


def sip_user(value):
    m = re.search(r"sips?:([^@;>]+)@", value or "")
    return m.group(1) if m else None


def respond(req, code, reason=None, to_tag=None, extra="", body=""):
    """A response to the request bytes req, with its Via, From, To, Call-ID
    and CSeq."""
    _, hdrs, _ = parse(req)
    lines = ["SIP/2.0 %d %s" % (code, reason or REASONS.get(code, "Whatever"))]
    lines += ["Via: %s" % v for v in hdrs.get("via", [])]
    to = hdrs["to"][0]
    if to_tag and ";tag=" not in to:
        to += ";tag=" + to_tag
    lines += ["From: %s" % hdrs["from"][0], "To: %s" % to, "Call-ID: %s" % hdrs["call-id"][0],
              "CSeq: %s" % hdrs["cseq"][0]]
    if extra:
        lines.append(extra.rstrip("\r\n"))
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append("Content-Length: %d" % len(body.encode()))
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


class Msg:
    """One datagram a test socket received, parsed, with its arrival time."""

    def __init__(self, raw, addr, t):
        self.raw = raw
        self.addr = addr
        self.t = t
        self.first, self.hdrs, self.body = parse(raw)
        self.status = status(self.first)
        self.method = None if self.status is not None else self.first.split(" ", 1)[0]
        num, _, meth = (self.h("cseq") or "").partition(" ")
        self.cseq_num = int(num) if num.isdigit() else None
        self.cseq_method = meth.strip()
        self.retrans = False  # the same message arrived before
        self.consumed = False  # returned by expect() already
        self.answered = None  # pings: the status we answered with (None: silence)

    def h(self, name):
        values = self.hdrs.get(name.lower())
        return values[0] if values else None

    @property
    def call_id(self):
        return self.h("call-id")

    @property
    def branch(self):
        return param(self.h("via"), "branch")

    @property
    def to_tag(self):
        return param(self.h("to"), "tag")

    def key(self):
        return (self.first, self.call_id, self.h("cseq"), self.branch, self.to_tag)

    def __repr__(self):
        return "<%s %.3f>" % (self.first, self.t)


def is_req(method, call_id=None, branch=None):
    return lambda m: (m.method == method and (call_id is None or m.call_id == call_id)
                      and (branch is None or m.branch == branch))


def is_resp(code=None, call_id=None, method=None, final=False):
    return lambda m: (m.status is not None and (code is None or m.status == code)
                      and (not final or m.status >= 200)
                      and (call_id is None or m.call_id == call_id)
                      and (method is None or m.cseq_method == method))


class SipSocket:
    """A UDP socket on 127.0.0.1 played by the test. A thread reads every
    datagram as it arrives, stamps it, flags retransmissions, answers
    out-of-dialog OPTIONS (pings: no To tag) as set with answer_pings(), and
    keeps the rest for expect()."""

    def __init__(self, test, name, port=None):
        self.test = test
        self.name = name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((harness.LOOPBACK, harness.free_port() if port is None else port))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.uri = "udp:127.0.0.1:%d" % self.port
        self.cond = threading.Condition()
        self.msgs = []  # everything but pings, in arrival order
        self.pings = []  # out-of-dialog OPTIONS, retransmissions included
        self._seen = set()
        self._decisions = {}  # ping branch -> the status answered (None: silence)
        self._ping_code = None
        self._ping_limit = None
        self._ping_delay = 0
        self._answered = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="sip-" + name, daemon=True)
        self._thread.start()
        test.addCleanup(self.close)

    def answer_pings(self, code, limit=None, delay=0):
        """Answer the next pings with code (None: stay silent), at most limit
        of them (then silent), each delay seconds after it arrived (a delayed
        answer is not repeated for retransmissions)."""
        with self.cond:
            self._ping_code = code
            self._ping_limit = limit
            self._ping_delay = delay
            self._answered = 0

    def _run(self):
        while not self._stop:
            try:
                data, addr = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            t = time.monotonic()
            if not data.strip():
                continue  # a keepalive
            m = Msg(data, addr, t)
            answer, delay = None, 0
            with self.cond:
                key = m.key()
                m.retrans = key in self._seen
                self._seen.add(key)
                if m.method == "OPTIONS" and not m.to_tag:
                    if m.branch in self._decisions:
                        answer, delay = self._decisions[m.branch]
                        if delay:
                            answer = None
                    else:
                        if self._ping_code is not None and (
                                self._ping_limit is None or self._answered < self._ping_limit):
                            answer, delay = self._ping_code, self._ping_delay
                            self._answered += 1
                        self._decisions[m.branch] = (answer, delay)
                    m.answered = answer
                    self.pings.append(m)
                else:
                    self.msgs.append(m)
                self.cond.notify_all()
            if answer is not None:
                resp = respond(data, answer, to_tag="ping" + self.name)
                if delay:
                    timer = threading.Timer(delay, self._send_quietly, (resp, addr))
                    timer.daemon = True
                    timer.start()
                else:
                    self._send_quietly(resp, addr)

    def _send_quietly(self, data, addr):
        if self._stop:
            return
        try:
            self.sock.sendto(data, addr)
        except OSError:
            pass

    def close(self):
        self._stop = True
        self._thread.join(timeout=5)
        self.sock.close()

    def send(self, data, to):
        self.sock.sendto(data, to)

    def mark(self):
        with self.cond:
            return len(self.msgs)

    def _describe(self, since):
        return ", ".join("%s (+%.2f s)" % (m.first, m.t - self.msgs[since].t)
                         + (" [retransmission]" if m.retrans else "")
                         for m in self.msgs[since:]) or "nothing"

    def expect(self, pred, what, timeout=5, since=0):
        """The first message from index since on (not a retransmission, not
        returned before) that satisfies pred; fails after timeout seconds."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for m in self.msgs[since:]:
                    if not m.retrans and not m.consumed and pred(m):
                        m.consumed = True
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            got = self._describe(since)
        self.test.fail("%s: no %s within %.1f s; got: %s" % (self.name, what, timeout, got))

    def matching(self, pred, since=0):
        with self.cond:
            return [m for m in self.msgs[since:] if not m.retrans and pred(m)]

    def quiet(self, pred, seconds, what, since=None):
        """Asserts that no message satisfying pred arrives (from index since,
        default now on) for seconds."""
        deadline = time.monotonic() + seconds
        with self.cond:
            since = len(self.msgs) if since is None else since
            while True:
                bad = [m for m in self.msgs[since:] if not m.retrans and pred(m)]
                if bad:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self.cond.wait(left)
        self.test.fail("%s: %s: got %s" % (self.name, what, bad))

    def distinct_pings(self, before=None):
        with self.cond:
            return [p for p in self.pings if not p.retrans and (before is None or p.t <= before)]

    def wait_pings(self, n, timeout=10, answered=False):
        """Waits until n distinct pings arrived (answered ones only, if answered)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = [p for p in self.pings
                       if not p.retrans and (not answered or p.answered is not None)]
                if len(got) >= n:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
        self.test.fail("%s: %d of %d pings within %.1f s" % (self.name, len(got), n, timeout))


class Carrier:
    """Leg A's UAC: one INVITE (or OPTIONS) and what follows it."""

    def __init__(self, sock, daemon_port, user=USER):
        self.sock = sock
        self.daemon = (harness.LOOPBACK, daemon_port)
        self.user = user
        self.call_id = uuid.uuid4().hex + "@carrier.test"
        self.tag = uuid.uuid4().hex[:10]
        self.to_tag = None
        self.cseq = 1

    def request(self, method, cseq=None, extra="", body="", branch=None):
        branch = branch or "z9hG4bK" + uuid.uuid4().hex[:12]
        to = "<sip:%s@127.0.0.1>" % self.user
        if self.to_tag:
            to += ";tag=" + self.to_tag
        lines = ["%s sip:%s@127.0.0.1:%d SIP/2.0" % (method, self.user, self.daemon[1]),
                 "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=%s;rport" % (self.sock.port, branch),
                 "Max-Forwards: 70",
                 "From: <sip:+4930123@carrier.test>;tag=%s" % self.tag, "To: %s" % to,
                 "Call-ID: %s" % self.call_id,
                 "CSeq: %d %s" % (cseq or self.cseq, method)]
        if extra:
            lines.append(extra.rstrip("\r\n"))
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append("Content-Length: %d" % len(body.encode()))
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    def invite(self):
        """Sends the INVITE; returns the monotonic time it left."""
        t = time.monotonic()
        self.sock.send(self.request("INVITE", extra="Contact: <sip:carrier@127.0.0.1:%d>"
                                    % self.sock.port, body=OFFER), self.daemon)
        return t

    def provisional(self, code, timeout=5):
        return self.sock.expect(is_resp(code, self.call_id, "INVITE"),
                                "%d to the INVITE" % code, timeout)

    def final(self, timeout=5):
        m = self.sock.expect(is_resp(None, self.call_id, "INVITE", final=True),
                             "final response to the INVITE", timeout)
        self.to_tag = m.to_tag
        return m

    def ack(self):
        self.sock.send(self.request("ACK", cseq=1), self.daemon)

    def bye(self):
        self.cseq += 1
        self.sock.send(self.request("BYE", cseq=self.cseq), self.daemon)
        return self.sock.expect(is_resp(None, self.call_id, "BYE", final=True),
                                "response to the BYE")

    def options(self, timeout=5):
        """An OPTIONS outside a dialog to srtpbridge; returns its final response."""
        self.cseq += 1
        self.sock.send(self.request("OPTIONS", cseq=self.cseq), self.daemon)
        return self.sock.expect(is_resp(None, self.call_id, "OPTIONS", final=True),
                                "response to the OPTIONS", timeout)


def ctl(sock, *args):
    """srtpbridgectl -s SOCK --json ARGS -> (exit status, reply or None)."""
    r = run([binary("srtpbridgectl"), "-s", sock, "--json"] + list(args), timeout=30)
    try:
        reply = json.loads(r.stdout) if r.stdout.strip() else None
    except ValueError:
        raise AssertionError("srtpbridgectl --json %s: not JSON: %r (stderr %r)"
                             % (" ".join(args), r.stdout, r.stderr)) from None
    return r.returncode, reply


class Bridge:
    """One srtpbridge with its carrier socket, as a test started it."""

    def __init__(self, test, daemon, ctl_sock, port, ivr, carrier_sock, peers):
        self.test = test
        self.daemon = daemon
        self.ctl_sock = ctl_sock
        self.port = port  # the carrier trunk's listen port
        self.ivr = ivr  # the ivr trunk's listen port
        self.carrier_sock = carrier_sock
        self.peers = peers

    def carrier(self):
        return Carrier(self.carrier_sock, self.port)

    def ctl(self, *args):
        return ctl(self.ctl_sock, *args)

    def ctl_text(self, *args):
        return run([binary("srtpbridgectl"), "-s", self.ctl_sock] + list(args), timeout=30)

    def stats(self):
        rc, st = self.ctl("stats")
        self.test.assertEqual(rc, 0, st)
        return st

    def trunks(self):
        rc, reply = self.ctl("trunks")
        self.test.assertEqual(rc, 0, reply)
        self.test.assertIs(reply.get("ok"), True, reply)
        return reply

    def trunk(self, name="ivr"):
        reply = self.trunks()
        for t in reply["trunks"]:
            if t.get("name") == name:
                return t
        self.test.fail("no trunk %s in %s" % (name, reply))

    def peer(self, uri, trunk=None):
        trunk = trunk or self.trunk()
        for p in trunk["peers"]:
            if p.get("uri") == uri:
                return p
        self.test.fail("no peer %s in %s" % (uri, trunk))

    def wait_peer(self, uri, what, pred, timeout=10):
        """Polls srtpbridgectl trunks until pred(peer) holds; returns the peer."""
        deadline = time.monotonic() + timeout
        while True:
            p = self.peer(uri)
            if pred(p):
                return p
            if time.monotonic() > deadline:
                self.test.fail("peer %s never %s: %s" % (uri, what, p))
            time.sleep(0.1)

    def wait_confirmed(self):
        deadline = time.monotonic() + 10
        while True:
            rc, calls = self.ctl("calls")
            if calls and calls["calls"] and calls["calls"][0]["state"] == "confirmed":
                return
            self.test.assertLess(time.monotonic(), deadline, calls)
            time.sleep(0.02)

    def assert_idle(self):
        """No call left and every port back, waited for with a deadline."""
        deadline = time.monotonic() + 10
        while True:
            st = self.stats()
            if st["calls_active"] == 0 and st["ports"]["in_use"] == 0:
                return st
            self.test.assertLess(time.monotonic(), deadline, st)
            time.sleep(0.05)

    def wait_state_log(self, msg, peer, since=0, timeout=15):
        """Waits for msg="peer down"/"peer up" of peer on trunk ivr."""
        rec = self.daemon.wait_for_log(msg=msg, trunk="ivr", peer=peer.uri, since=since,
                                       timeout=timeout)
        self.test.assertTrue(rec.get("reason"), "no reason= in %r" % rec["_raw"])
        return rec


class FailoverTest(DaemonTestCase):
    def peer_sockets(self, n):
        return [SipSocket(self, "ivr-" + "ABCDE"[i]) for i in range(n)]

    def start(self, peers=2, options=0, failover=1, ring=2, tcp=False, extra=""):
        """An srtpbridge whose trunk ivr fails over between peers (a number
        of new peer sockets, or a list of SipSocket and URI strings)."""
        if isinstance(peers, int):
            peers = self.peer_sockets(peers)
        port, ivr = harness.free_ports(2)
        ctl_sock = self.tmp.join("ctl-%d.sock" % port)
        carrier_sock = SipSocket(self, "carrier")
        listen = "udp:127.0.0.1:%d" % ivr
        if tcp:
            listen += ", tcp:127.0.0.1:%d" % ivr
        uris = " | ".join(p if isinstance(p, str) else p.uri for p in peers)
        text = harness.render(CONFIG, CTL=ctl_sock, MEDIA=harness.free_media_range(32),
                              PORT=port, PEER=carrier_sock.port, IVR_LISTEN=listen, PEERS=uris,
                              FAILOVER=failover, RING=ring, OPTIONS=options, IVR_EXTRA=extra)
        daemon = self.start_daemon(self.tmp.write("sbc-%d.ini" % port, text))
        daemon.wait_ready()
        return Bridge(self, daemon, ctl_sock, port, ivr, carrier_sock,
                      [p for p in peers if not isinstance(p, str)])

    # --- helpers for the IVR side ---

    def contact(self, peer):
        return "Contact: <sip:ivr@127.0.0.1:%d>" % peer.port

    def invite_at(self, peer, timeout=5, since=0):
        inv = peer.expect(is_req("INVITE"), "INVITE", timeout, since)
        self.assertRegex(inv.first, r"^INVITE sip:%s@127\.0\.0\.1:%d[;> ]" % (USER, peer.port))
        return inv

    def refuse(self, peer, inv, code, extra="", tag="x"):
        """Peer answers inv with a final failure and gets the ACK of it."""
        peer.send(respond(inv.raw, code, to_tag=tag, extra=extra), inv.addr)
        ack = peer.expect(is_req("ACK", inv.call_id), "ACK of the %d" % code)
        self.assertEqual(ack.branch, inv.branch, "the ACK of a failure is in its transaction")
        return ack

    def answer(self, peer, inv, tag="ok"):
        """Peer answers inv with 200 and gets the ACK of it."""
        peer.send(respond(inv.raw, 200, to_tag=tag, extra=self.contact(peer), body=ANSWER),
                  inv.addr)
        return peer.expect(is_req("ACK", inv.call_id), "ACK of the 200")

    def connect(self, br, carrier, peer, inv):
        """Peer answers; the carrier gets the 200 and ACKs it; the call is up."""
        self.answer(peer, inv)
        final = carrier.final()
        self.assertEqual(final.status, 200)
        self.assertIn("RTP/SAVP", final.body)
        carrier.ack()
        br.wait_confirmed()

    def hang_up(self, br, carrier, peer):
        """The carrier's BYE crosses to peer, which answers it."""
        carrier.cseq += 1
        carrier.sock.send(carrier.request("BYE", cseq=carrier.cseq), carrier.daemon)
        bye = peer.expect(is_req("BYE"), "BYE on leg B")
        peer.send(respond(bye.raw, 200), bye.addr)
        resp = carrier.sock.expect(is_resp(None, carrier.call_id, "BYE", final=True),
                                   "response to the BYE")
        self.assertEqual(resp.status, 200)
        return bye

    def assert_attempt(self, first, second):
        """second is a new attempt of the call of first: a new INVITE with its
        own Call-ID and branch, the same users and the same SDP."""
        self.assertNotEqual(second.call_id, first.call_id)
        self.assertNotEqual(second.branch, first.branch)
        self.assertEqual(sip_user(second.h("from")), sip_user(first.h("from")))
        self.assertEqual(sip_user(second.h("to")), sip_user(first.h("to")))
        self.assertEqual(sip_user(second.h("to")), USER)
        self.assertIsNone(second.to_tag)
        self.assertIn("RTP/AVP", second.body)
        self.assertEqual(second.body, first.body)

    # --- failover on silence, and the silent peer waking up ---

    def cancelled_on_wake_up(self, peer, inv):
        """peer answers its abandoned INVITE inv with a late 180: srtpbridge
        CANCELs it (same branch, Call-ID and CSeq number); peer ends it with
        200 and 487 and gets the ACK."""
        mark = peer.mark()
        peer.send(respond(inv.raw, 180, to_tag="late", extra=self.contact(peer)), inv.addr)
        cancel = peer.expect(is_req("CANCEL", inv.call_id), "CANCEL of the abandoned INVITE",
                             since=mark)
        self.assertEqual(cancel.branch, inv.branch)
        self.assertEqual((cancel.cseq_num, cancel.cseq_method), (inv.cseq_num, "CANCEL"))
        self.assertEqual(cancel.first.split(" ")[1], inv.first.split(" ")[1])
        peer.send(respond(cancel.raw, 200), cancel.addr)
        peer.send(respond(inv.raw, 487, to_tag="late"), inv.addr)
        ack = peer.expect(is_req("ACK", inv.call_id), "ACK of the 487", since=mark)
        self.assertEqual(ack.branch, inv.branch)

    def byed_on_wake_up(self, peer, inv):
        """peer answers its abandoned INVITE inv with a late 200: srtpbridge
        ACKs it, then BYEs it with a Reason."""
        mark = peer.mark()
        peer.send(respond(inv.raw, 200, to_tag="late", extra=self.contact(peer), body=ANSWER),
                  inv.addr)
        ack = peer.expect(is_req("ACK", inv.call_id), "ACK of the late 200", since=mark)
        self.assertEqual((ack.cseq_num, ack.cseq_method), (inv.cseq_num, "ACK"))
        self.assertEqual(ack.to_tag, "late")
        self.assertNotEqual(ack.branch, inv.branch, "the ACK of a 2xx is a transaction of its own")
        bye = peer.expect(is_req("BYE", inv.call_id), "BYE of the late 200", since=mark)
        self.assertEqual(bye.to_tag, "late")
        self.assertGreater(bye.cseq_num, inv.cseq_num)
        self.assertRegex(bye.h("reason") or "", r'^SIP;cause=\d+')
        peer.send(respond(bye.raw, 200), bye.addr)

    def test_silent_first_peer_fails_over_late_180_cancelled(self):
        br = self.start()
        a, b = br.peers
        carrier = br.carrier()
        carrier.invite()
        inv_a = self.invite_at(a)
        inv_b = self.invite_at(b, timeout=5)
        gap = inv_b.t - inv_a.t
        # failover_timeout = 1: not before it (with the capture's jitter), and
        # no later than a second after it
        self.assertGreaterEqual(gap, 0.9, "B tried %.3f s after A" % gap)
        self.assertLessEqual(gap, 2.0, "B tried %.3f s after A" % gap)
        self.assert_attempt(inv_a, inv_b)
        self.assertEqual(carrier.sock.matching(is_resp(None, carrier.call_id, final=True)), [],
                         "the carrier has no final response while B is tried")
        b.send(respond(inv_b.raw, 180, to_tag="ok", extra=self.contact(b)), inv_b.addr)
        carrier.provisional(180)
        # A wakes up while B rings: its 180 is CANCELled, not relayed
        self.cancelled_on_wake_up(a, inv_a)
        self.connect(br, carrier, b, inv_b)
        self.assertEqual(len(carrier.sock.matching(is_resp(180, carrier.call_id))), 1,
                         "one 180 on leg A, B's")
        st = br.stats()
        self.assertEqual(st["calls"]["failovers"], 1, st)
        trunk = br.trunk()
        self.assertEqual(trunk["failovers"], 1, trunk)
        self.assertEqual(br.peer(a.uri, trunk)["failovers"], 1, trunk)
        self.assertEqual(br.peer(b.uri, trunk)["failovers"], 0, trunk)
        self.hang_up(br, carrier, b)
        self.assertEqual(b.matching(is_req("INVITE")), [inv_b], "B was tried once")
        br.assert_idle()

    def test_late_200_from_abandoned_peer_acked_then_byed(self):
        br = self.start()
        a, b = br.peers
        for when in ("during the call", "after the call"):
            with self.subTest(when=when):
                ma, mb = a.mark(), b.mark()
                carrier = br.carrier()
                carrier.invite()
                inv_a = self.invite_at(a, since=ma)
                inv_b = self.invite_at(b, since=mb)
                self.assertGreaterEqual(inv_b.t - inv_a.t, 0.9)
                self.connect(br, carrier, b, inv_b)
                if when == "after the call":
                    self.hang_up(br, carrier, b)
                cmark = carrier.sock.mark()
                self.byed_on_wake_up(a, inv_a)
                # the call through B is untouched
                carrier.sock.quiet(lambda m: True, 0.5, "A's late answer stays off leg A",
                                   since=cmark)
                self.assertEqual(len(b.matching(is_req("BYE"), since=mb)),
                                 0 if when == "during the call" else 1, "B's BYE: the carrier's")
                if when == "during the call":
                    self.assertEqual(br.stats()["calls_active"], 1)
                    self.hang_up(br, carrier, b)
                br.assert_idle()

    def test_ring_timeout_counts_from_the_peer_that_rings(self):
        # A silent for failover_timeout (1 s), then B rings: ring_timeout (2 s)
        # runs from B's 180, not from the call's start
        br = self.start(ring=2)
        a, b = br.peers
        carrier = br.carrier()
        carrier.invite()
        inv_a = self.invite_at(a)
        inv_b = self.invite_at(b)
        rang = time.monotonic()
        b.send(respond(inv_b.raw, 180, to_tag="ring", extra=self.contact(b)), inv_b.addr)
        carrier.provisional(180)
        cancel = b.expect(is_req("CANCEL", inv_b.call_id), "CANCEL at ring_timeout", timeout=8)
        self.assertGreaterEqual(cancel.t - rang, 1.9, "CANCEL %.3f s after B's 180"
                                % (cancel.t - rang))
        self.assertLessEqual(cancel.t - rang, 4.0)
        self.assertRegex(cancel.h("reason") or "", r'^SIP;cause=\d+;text="ring_timeout: ')
        final = carrier.final()
        self.assertEqual(final.status, 480)
        carrier.ack()
        b.send(respond(cancel.raw, 200), cancel.addr)
        b.send(respond(inv_b.raw, 487, to_tag="ring"), inv_b.addr)
        b.expect(is_req("ACK", inv_b.call_id), "ACK of the 487")
        self.cancelled_on_wake_up(a, inv_a)
        br.assert_idle()

    # --- failover on a failure ---

    def test_failover_on_408_500_503(self):
        br = self.start()
        a, b = br.peers
        for n, code in enumerate((408, 500, 503), 1):
            with self.subTest(code=code):
                ma, mb = a.mark(), b.mark()
                carrier = br.carrier()
                carrier.invite()
                inv_a = self.invite_at(a, since=ma)
                sent = time.monotonic()
                self.refuse(a, inv_a, code)
                inv_b = self.invite_at(b, since=mb)
                self.assertLess(inv_b.t - sent, 0.5, "B tried %.3f s after A's %d"
                                % (inv_b.t - sent, code))
                self.assert_attempt(inv_a, inv_b)
                self.refuse(b, inv_b, 486)
                final = carrier.final()
                self.assertEqual(final.status, 486, "B's own refusal is relayed")
                carrier.ack()
                st = br.stats()
                self.assertEqual(st["calls"]["failovers"], n, st)
        trunk = br.trunk()
        self.assertEqual(trunk["failovers"], 3, trunk)
        self.assertEqual(br.peer(a.uri, trunk)["failovers"], 3, trunk)
        br.assert_idle()

    def test_no_failover_on_486_404_603(self):
        br = self.start()
        a, b = br.peers
        for code in (486, 404, 603):
            with self.subTest(code=code):
                ma = a.mark()
                carrier = br.carrier()
                carrier.invite()
                inv_a = self.invite_at(a, since=ma)
                sent = time.monotonic()
                self.refuse(a, inv_a, code)
                final = carrier.final()
                self.assertEqual(final.status, code)
                self.assertLess(final.t - sent, 0.5, "relayed at once")
                carrier.ack()
        b.quiet(is_req("INVITE"), 1.5, "B is never tried", since=0)
        st = br.stats()
        self.assertEqual(st["calls"]["failovers"], 0, st)
        br.assert_idle()

    def test_refused_tcp_connection_fails_over(self):
        # failover_timeout = 3: B tried within a second is the refusal's doing
        dead = harness.free_port()  # nothing listens there
        b, = self.peer_sockets(1)
        br = self.start(peers=["tcp:127.0.0.1:%d" % dead, b], tcp=True, failover=3)
        carrier = br.carrier()
        sent = carrier.invite()
        inv_b = self.invite_at(b)
        self.assertLess(inv_b.t - sent, 1.0, "B tried %.3f s after the INVITE"
                        % (inv_b.t - sent))
        self.assertEqual(sip_user(inv_b.h("to")), USER)
        self.connect(br, carrier, b, inv_b)
        trunk = br.trunk()
        self.assertEqual(trunk["failovers"], 1, trunk)
        self.assertEqual(br.peer("tcp:127.0.0.1:%d" % dead, trunk)["failovers"], 1, trunk)
        self.hang_up(br, carrier, b)
        br.assert_idle()

    def test_503_with_retry_after_takes_the_peer_out(self):
        br = self.start()
        a, b = br.peers
        carrier = br.carrier()
        carrier.invite()
        inv_a = self.invite_at(a)
        refused = time.monotonic()
        self.refuse(a, inv_a, 503, extra="Retry-After: 6")
        inv_b = self.invite_at(b)
        self.refuse(b, inv_b, 486)
        self.assertEqual(carrier.final().status, 486)
        carrier.ack()
        trunk = br.trunk()
        self.assertIs(trunk["healthy"], True, trunk)
        pa = br.peer(a.uri, trunk)
        self.assertEqual(pa["state"], "down", pa)
        self.assertIs(pa["usable"], False, pa)
        self.assertIsInstance(pa["retry_after_seconds"], int, pa)
        self.assertGreater(pa["retry_after_seconds"], 0, pa)
        self.assertLessEqual(pa["retry_after_seconds"], 6, pa)
        self.assertEqual(pa["failovers"], 1, pa)
        pb = br.peer(b.uri, trunk)
        self.assertIs(pb["usable"], True, pb)
        self.assertNotIn("retry_after_seconds", pb)
        r = br.ctl_text("trunks")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(any(re.search(r"\bTRUNK\s+PEER\s+STATE\s+RTT_MS\s+LAST\s+REASON\b", l)
                            for l in r.stdout.splitlines()), r.stdout)
        row = [l for l in r.stdout.splitlines() if a.uri in l.split()]
        self.assertEqual(len(row), 1, r.stdout)
        self.assertIn("down", row[0].split(), r.stdout)
        # the next call skips A
        self.assertLess(time.monotonic() - refused, 5.0, "too slow to tell within Retry-After")
        ma, mb = a.mark(), b.mark()
        carrier = br.carrier()
        sent = carrier.invite()
        inv_b = self.invite_at(b, since=mb)
        self.assertLess(inv_b.t - sent, 0.5, "B tried first, at once")
        self.refuse(b, inv_b, 486)
        self.assertEqual(carrier.final().status, 486)
        carrier.ack()
        a.quiet(is_req("INVITE"), 0.3, "A is down: no INVITE", since=ma)
        # Retry-After over: A is usable again, and first in line
        pa = br.wait_peer(a.uri, "usable again", lambda p: p["usable"], timeout=10)
        self.assertGreaterEqual(time.monotonic() - refused, 5.0, pa)
        self.assertNotIn("retry_after_seconds", pa)
        ma, mb = a.mark(), b.mark()
        carrier = br.carrier()
        carrier.invite()
        self.refuse(a, self.invite_at(a, since=ma), 486)
        self.assertEqual(carrier.final().status, 486)
        carrier.ack()
        self.assertEqual(b.matching(is_req("INVITE"), since=mb), [])
        br.assert_idle()

    def test_failover_after_100_none_after_180_or_183(self):
        br = self.start()
        a, b = br.peers
        # a 100 relays nothing to leg A: a 503 after it still fails over
        carrier = br.carrier()
        carrier.invite()
        inv_a = self.invite_at(a)
        a.send(respond(inv_a.raw, 100), inv_a.addr)
        self.refuse(a, inv_a, 503)
        inv_b = self.invite_at(b)
        self.assert_attempt(inv_a, inv_b)
        self.refuse(b, inv_b, 486)
        self.assertEqual(carrier.final().status, 486)
        carrier.ack()
        # once a 180 or 183 reached leg A, the peer's 503 is relayed (without
        # its Retry-After) and B is never tried
        mb = b.mark()
        for code, body in ((180, ""), (183, ANSWER)):
            with self.subTest(provisional=code):
                ma = a.mark()
                carrier = br.carrier()
                carrier.invite()
                inv = self.invite_at(a, since=ma)
                a.send(respond(inv.raw, code, to_tag="early", extra=self.contact(a), body=body),
                       inv.addr)
                early = carrier.provisional(code)
                if body:
                    self.assertIn("RTP/SAVP", early.body)
                self.refuse(a, inv, 503, extra="Retry-After: 5" if code == 183 else "",
                            tag="early")
                final = carrier.final()
                self.assertEqual(final.status, 503)
                self.assertNotIn("retry-after", final.hdrs)
                carrier.ack()
        b.quiet(is_req("INVITE"), 2.0, "no failover once an 18x reached leg A", since=mb)
        st = br.stats()
        self.assertEqual(st["calls"]["failovers"], 1, st)
        br.assert_idle()

    def assert_all_failed(self, final):
        self.assertEqual(final.status, 503, final.first)
        self.assertNotIn("retry-after", final.hdrs)
        self.assertRegex(final.h("reason") or "", r'^SIP;cause=503;text=".+"$')
        self.assertTrue(final.h("warning"), "a Warning says why: %r" % final.raw)

    def test_every_peer_fails(self):
        br = self.start()
        a, b = br.peers
        # both silent: 503 once B's failover_timeout is over too
        carrier = br.carrier()
        carrier.invite()
        inv_a = self.invite_at(a)
        inv_b = self.invite_at(b)
        final = carrier.final(timeout=6)
        self.assert_all_failed(final)
        self.assertGreaterEqual(final.t - inv_b.t, 0.9)
        self.assertLessEqual(final.t - inv_b.t, 2.5)
        carrier.ack()
        # they wake up after the call failed: A's late 180 is cancelled, B's
        # late 200 ACKed and BYEd
        self.cancelled_on_wake_up(a, inv_a)
        self.byed_on_wake_up(b, inv_b)
        carrier.sock.quiet(is_resp(), 0.3, "no more responses for the failed call")
        # both refuse: 503 at once, without B's Retry-After
        ma, mb = a.mark(), b.mark()
        carrier = br.carrier()
        carrier.invite()
        self.refuse(a, self.invite_at(a, since=ma), 500)
        inv_b = self.invite_at(b, since=mb)
        sent = time.monotonic()
        self.refuse(b, inv_b, 503, extra="Retry-After: 5")
        final = carrier.final()
        self.assert_all_failed(final)
        self.assertLess(final.t - sent, 0.5)
        carrier.ack()
        br.assert_idle()

    def test_no_peer_reachable_at_all(self):
        # Names without an address (.invalid never resolves): no INVITE can
        # be sent to any of them, and the 503 says so like any other.
        br = self.start(peers=["udp:nowhere.invalid:5060", "udp:nor-here.invalid:5060"])
        carrier = br.carrier()
        carrier.invite()
        final = carrier.final()
        self.assert_all_failed(final)
        self.assertIn("cannot reach its peer", final.h("reason"))
        carrier.ack()
        br.assert_idle()

    # --- ring_timeout ---

    def test_ring_timeout_408_after_100_and_480_after_180(self):
        br = self.start(ring=2)
        a, b = br.peers
        for code, want in ((100, 408), (180, 480)):
            with self.subTest(provisional=code):
                ma = a.mark()
                carrier = br.carrier()
                carrier.invite()
                inv = self.invite_at(a, since=ma)
                sent = time.monotonic()
                a.send(respond(inv.raw, code, to_tag="ring" if code > 100 else None,
                               extra=self.contact(a) if code > 100 else ""), inv.addr)
                if code > 100:
                    carrier.provisional(code)
                cancel = a.expect(is_req("CANCEL", inv.call_id), "CANCEL at ring_timeout",
                                  timeout=8, since=ma)
                waited = cancel.t - sent
                self.assertGreaterEqual(waited, 1.9, "CANCEL %.3f s after the %d" % (waited, code))
                self.assertLessEqual(waited, 4.0, "CANCEL %.3f s after the %d" % (waited, code))
                self.assertEqual(cancel.branch, inv.branch)
                self.assertRegex(cancel.h("reason") or "", r'^SIP;cause=\d+;text="ring_timeout: ')
                final = carrier.final()
                self.assertEqual(final.status, want)
                self.assertRegex(final.h("reason") or "",
                                 r'^SIP;cause=%s;text=".*ring_timeout'
                                 % ("408" if want == 408 else "(408|480)"))
                carrier.ack()
                a.send(respond(cancel.raw, 200), cancel.addr)
                a.send(respond(inv.raw, 487, to_tag="ring"), inv.addr)
                ack = a.expect(is_req("ACK", inv.call_id), "ACK of the 487", since=ma)
                self.assertEqual(ack.branch, inv.branch)
                br.assert_idle()
        self.assertEqual(b.matching(is_req("INVITE")), [], "a ring timeout is no failover")

    # --- OPTIONS pings ---

    def test_peer_down_by_options_gets_no_invite_then_up(self):
        a, b = self.peer_sockets(2)
        b.answer_pings(200)
        br = self.start(peers=[a, b], options=1)
        up_b = br.wait_state_log("peer up", b)
        down_a = br.wait_state_log("peer down", a)
        # three misses: three pings first
        self.assertGreaterEqual(len(a.distinct_pings(before=down_a["_time"])), 3,
                                a.distinct_pings())
        # pings come from the ivr trunk's listen address, about every second
        for peer in (a, b):
            pings = peer.wait_pings(3)
            for p in pings:
                self.assertEqual(p.addr, (harness.LOOPBACK, br.ivr), p)
                self.assertRegex(p.first, r"^OPTIONS sip:[^ ]*127\.0\.0\.1:%d[;> ]" % peer.port)
            for p, q in zip(pings, pings[1:]):
                self.assertGreaterEqual(q.t - p.t, 0.5, pings)
                self.assertLessEqual(q.t - p.t, 2.0, pings)
        trunk = br.trunk()
        self.assertIs(trunk["healthy"], True, trunk)
        self.assertEqual(trunk["options_interval"], 1, trunk)
        pa, pb = br.peer(a.uri, trunk), br.peer(b.uri, trunk)
        self.assertEqual((pa["state"], pa["usable"]), ("down", False), pa)
        self.assertGreaterEqual(pa["misses"], 3, pa)
        self.assertNotIn("rtt_us", pa)
        self.assertNotIn("retry_after_seconds", pa)
        self.assertIsInstance(pa["reason"], str, pa)
        self.assertEqual((pb["state"], pb["usable"]), ("up", True), pb)
        self.assertEqual(pb["last_status"], 200, pb)
        self.assertEqual(pb["misses"], 0, pb)
        self.assertGreaterEqual(pb["answers"], 1, pb)
        self.assertEqual(pb["state_changes"], 1, pb)
        self.assertIsInstance(pb["rtt_us"], int, pb)
        self.assertGreaterEqual(pb["rtt_us"], 0, pb)
        self.assertLess(pb["rtt_us"], 750000, pb)
        r = br.ctl_text("trunks")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertTrue(any(re.search(r"\bTRUNK\s+PEER\s+STATE\s+RTT_MS\s+LAST\s+REASON\b", l)
                            for l in lines), r.stdout)
        for peer, state in ((a, "down"), (b, "up")):
            row = [l for l in lines if peer.uri in l.split()]
            self.assertEqual(len(row), 1, r.stdout)
            self.assertIn(state, row[0].split(), r.stdout)
            self.assertIn("ivr", row[0].split(), r.stdout)
        # a call goes to B at once; A gets nothing
        ma, mb = a.mark(), b.mark()
        carrier = br.carrier()
        sent = carrier.invite()
        inv_b = self.invite_at(b, since=mb)
        self.assertLess(inv_b.t - sent, 0.5)
        self.refuse(b, inv_b, 486)
        self.assertEqual(carrier.final().status, 486)
        carrier.ack()
        self.assertEqual(a.matching(is_req("INVITE"), since=ma), [])
        # A answers again: up after two answers, and first in line again
        mark = br.daemon.log_mark()
        a.answer_pings(200)
        up_a = br.wait_state_log("peer up", a, since=mark)
        answered = [p for p in a.distinct_pings(before=up_a["_time"]) if p.answered]
        self.assertGreaterEqual(len(answered), 2, a.pings)
        pa = br.peer(a.uri)
        self.assertEqual((pa["state"], pa["usable"]), ("up", True), pa)
        self.assertEqual(pa["state_changes"], 2, pa)
        self.assertIsInstance(pa["rtt_us"], int, pa)
        ma, mb = a.mark(), b.mark()
        carrier = br.carrier()
        sent = carrier.invite()
        inv_a = self.invite_at(a, since=ma)
        self.assertLess(inv_a.t - sent, 0.5)
        self.refuse(a, inv_a, 486)
        self.assertEqual(carrier.final().status, 486)
        carrier.ack()
        self.assertEqual(b.matching(is_req("INVITE"), since=mb), [])
        br.assert_idle()

    def test_options_ok_codes(self):
        # default 200-499: 404 is alive; 503 and 408 are misses
        a, b, c = self.peer_sockets(3)
        a.answer_pings(404)
        b.answer_pings(503)
        c.answer_pings(408)
        # 200-299: 404 is a miss; a single answer from unknown is up, three
        # misses after it down
        d, e = self.peer_sockets(2)
        d.answer_pings(404)
        e.answer_pings(200, limit=1)
        br1 = self.start(peers=[a, b, c], options=1)
        br2 = self.start(peers=[d, e], options=1, extra="options_ok_codes = 200-299")
        br1.wait_state_log("peer up", a)
        for peer in (b, c):
            br1.wait_state_log("peer down", peer)
        up_e = br2.wait_state_log("peer up", e)
        down_e = br2.wait_state_log("peer down", e, since=up_e["_index"])
        br2.wait_state_log("peer down", d)
        self.assertGreaterEqual(len(e.distinct_pings(before=up_e["_time"])), 1, e.pings)
        self.assertEqual(len([p for p in e.distinct_pings() if p.answered]), 1, e.pings)
        self.assertGreaterEqual(len(e.distinct_pings(before=down_e["_time"])), 4, e.pings)
        trunk = br1.trunk()
        self.assertIs(trunk["healthy"], True, trunk)
        for peer, state, code in ((a, "up", 404), (b, "down", 503), (c, "down", 408)):
            p = br1.peer(peer.uri, trunk)
            self.assertEqual((p["state"], p["last_status"]), (state, code), p)
            self.assertIs(p["usable"], state == "up", p)
        trunk = br2.trunk()
        self.assertIs(trunk["healthy"], False, trunk)
        pd, pe = br2.peer(d.uri, trunk), br2.peer(e.uri, trunk)
        self.assertEqual((pd["state"], pd["last_status"]), ("down", 404), pd)
        self.assertEqual(pe["state"], "down", pe)
        self.assertEqual(pe["state_changes"], 2, pe)
        self.assertIsInstance(pe["rtt_us"], int, pe)  # it answered once

    def test_options_answer_after_failover_timeout_is_a_miss(self):
        # options_interval = 2, failover_timeout = 1: an answer must come
        # within min(1, 0.75 * 2) = 1 s
        slow, quick = self.peer_sockets(2)
        slow.answer_pings(200, delay=1.4)
        quick.answer_pings(200, delay=0.4)
        br = self.start(peers=[slow, quick], options=2)
        # before its first result (and until its third miss, some 5 s away)
        p = br.peer(slow.uri)
        self.assertEqual((p["state"], p["usable"]), ("unknown", True), p)
        br.wait_state_log("peer up", quick)
        down = br.wait_state_log("peer down", slow)
        self.assertGreaterEqual(len(slow.distinct_pings(before=down["_time"])), 3, slow.pings)
        pings = slow.distinct_pings()
        for p, q in zip(pings, pings[1:]):
            self.assertGreaterEqual(q.t - p.t, 1.5, pings)
            self.assertLessEqual(q.t - p.t, 3.0, pings)
        self.assertEqual(br.daemon.find_logs(msg="peer up", peer=slow.uri), [])
        pq = br.peer(quick.uri)
        self.assertEqual(pq["state"], "up", pq)
        self.assertGreaterEqual(pq["rtt_us"], 300000, pq)
        self.assertLess(pq["rtt_us"], 1000000, pq)

    def test_options_to_srtpbridge(self):
        a, b = self.peer_sockets(2)
        b.answer_pings(200)
        br = self.start(peers=[a, b], options=1)
        carrier = br.carrier()
        self.assertEqual(carrier.options().status, 200, "B is usable")
        br.wait_state_log("peer down", a)
        self.assertEqual(carrier.options().status, 200, "B still is")
        mark = br.daemon.log_mark()
        b.answer_pings(None)
        br.wait_state_log("peer down", b, since=mark)
        resp = carrier.options()
        self.assertEqual(resp.status, 503, "no ivr peer is usable")
        self.assertTrue(resp.h("warning"), resp.raw)
        self.assertIs(br.trunk()["healthy"], False)
        # a call now: no peer to try, the carrier's 503 says so
        ma, mb = a.mark(), b.mark()
        call = br.carrier()
        call.invite()
        final = call.final()
        call.ack()
        self.assertEqual(a.matching(is_req("INVITE"), since=ma) + b.matching(is_req("INVITE"),
                                                                             since=mb), [])
        self.assert_all_failed(final)
        mark = br.daemon.log_mark()
        b.answer_pings(200)
        br.wait_state_log("peer up", b, since=mark)
        self.assertEqual(carrier.options().status, 200, "B is back")
        # draining, with a call up so that the daemon stays: 503
        call = br.carrier()
        mb = b.mark()
        call.invite()
        self.connect(br, call, b, self.invite_at(b, since=mb))
        rc, _ = br.ctl("drain")
        self.assertEqual(rc, 0)
        self.assertEqual(carrier.options().status, 503, "draining")
        self.hang_up(br, call, b)
        self.assertEqual(br.daemon.wait(timeout=10), 0)
        self.assertEqual(br.carrier_sock.pings, [], "options_interval = 0: no pings")

    def test_call_up_stays_when_its_peer_goes_down(self):
        a, b = self.peer_sockets(2)
        a.answer_pings(200)
        b.answer_pings(200)
        br = self.start(peers=[a, b], options=1)
        br.wait_state_log("peer up", a)
        carrier = br.carrier()
        carrier.invite()
        inv = self.invite_at(a)
        self.connect(br, carrier, a, inv)
        mark, ma, mc = br.daemon.log_mark(), a.mark(), carrier.sock.mark()
        a.answer_pings(None)
        br.wait_state_log("peer down", a, since=mark)
        self.assertEqual(br.peer(a.uri)["state"], "down")
        self.assertEqual(a.matching(lambda m: m.method is not None, since=ma), [],
                         "no request to A for its call")
        self.assertEqual(carrier.sock.matching(lambda m: True, since=mc), [],
                         "nothing to the carrier")
        self.assertEqual(br.stats()["calls_active"], 1)
        bye = self.hang_up(br, carrier, a)
        self.assertEqual(bye.call_id, inv.call_id)
        self.assertEqual(b.matching(is_req("INVITE")), [])
        br.assert_idle()


if __name__ == "__main__":
    harness.main()
