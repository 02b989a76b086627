"""Scripted SIP user agents on plain sockets, for the tests that drive
both legs of a call message by message: a Peer (UDP, or TCP listening or
connected) that sends and reads whole messages, the carrier's side of a
call (Carrier), a response builder, and srtpbridgectl with --json."""

import json
import re
import socket
import time
import uuid

from harness import binary, run

KEY = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
OFFER = ("v=0\r\no=carrier 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
         "m=audio 40000 RTP/SAVP 0\r\n"
         "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:%s\r\n" % KEY)
ANSWER = ("v=0\r\no=ivr 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
          "m=audio 41000 RTP/AVP 0\r\n")


def parse(data):
    """(first line, {lower-case name: [values]}, body) of one message."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    hdrs = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        hdrs.setdefault(name.strip().lower(), []).append(value.strip())
    return lines[0], hdrs, body.decode(errors="replace")


def status(first):
    parts = first.split(" ", 2)
    return int(parts[1]) if parts[0] == "SIP/2.0" else None


class Peer:
    """One end of a leg: a UDP socket, or a TCP socket (listening, or
    connected to the daemon), that sends and reads whole messages."""

    def __init__(self, test, tp, port=0, connect=None):
        self.tp = tp
        self.buf = b""
        if tp == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", port))
        elif connect:
            self.sock = socket.create_connection(("127.0.0.1", connect), timeout=5)
        else:
            self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind(("127.0.0.1", port))
            self.listener.listen(4)
            self.listener.settimeout(5)
            test.addCleanup(self.listener.close)
            self.sock = None
        if self.sock:
            self.sock.settimeout(5)
            test.addCleanup(self.sock.close)
        self.test = test
        self.port = port or self.sock.getsockname()[1]
        self.last_from = None  # UDP: where the last message came from

    def send(self, data, to=None):
        if self.tp == "udp":
            self.sock.sendto(data, to or self.last_from)
        else:
            self.sock.sendall(data)

    def recv(self, timeout=5):
        """The next message (bytes), or None after timeout seconds."""
        deadline = time.monotonic() + timeout
        if self.tp == "udp":
            self.sock.settimeout(timeout)
            try:
                data, self.last_from = self.sock.recvfrom(65536)
            except socket.timeout:
                return None
            return data
        if self.sock is None:
            conn, _ = self.listener.accept()
            conn.settimeout(5)
            self.test.addCleanup(conn.close)
            self.sock = conn
        while True:
            m = re.search(rb"\r\n\r\n", self.buf)
            if m:
                head = self.buf[:m.end()]
                cl = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
                n = m.end() + (int(cl.group(1)) if cl else 0)
                if len(self.buf) >= n:
                    msg, self.buf = self.buf[:n], self.buf[n:]
                    return msg
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not chunk:
                return None
            self.buf += chunk

    def expect(self, pred, what, timeout=5):
        """Reads until a message satisfies pred(first, hdrs, body); returns
        (raw, first, hdrs, body)."""
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            raw = self.recv(max(0.05, deadline - time.monotonic()))
            if raw is None:
                break
            first, hdrs, body = parse(raw)
            seen.append(first)
            if pred(first, hdrs, body):
                return raw, first, hdrs, body
        self.test.fail("no %s; got %r" % (what, seen))


def respond(req, code, reason, to_tag=None, extra="", body=""):
    """A response to the request bytes req, with its Via, From, To, Call-ID
    and CSeq."""
    first, hdrs, _ = parse(req)
    lines = ["SIP/2.0 %d %s" % (code, reason)]
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


class Carrier:
    """Leg A's UAC: one INVITE and what follows it."""

    def __init__(self, peer, daemon_port, tp="UDP", user="8011000"):
        self.peer = peer
        self.daemon = ("127.0.0.1", daemon_port)
        self.tp = tp
        self.user = user
        self.call_id = uuid.uuid4().hex + "@carrier.test"
        self.tag = uuid.uuid4().hex[:10]
        self.to_tag = None
        self.cseq = 1

    def request(self, method, cseq=None, extra="", body="", branch=None, to_tag=None):
        branch = branch or "z9hG4bK" + uuid.uuid4().hex[:12]
        to = "<sip:%s@127.0.0.1>" % self.user
        if to_tag or self.to_tag:
            to += ";tag=" + (to_tag or self.to_tag)
        lines = ["%s sip:%s@127.0.0.1:%d SIP/2.0" % (method, self.user, self.daemon[1]),
                 "Via: SIP/2.0/%s 127.0.0.1:%d;branch=%s;rport" % (self.tp, self.peer.port,
                                                                  branch),
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

    def invite(self, extra="Contact: <sip:carrier@127.0.0.1>", body=OFFER):
        self.invite_msg = self.request("INVITE", extra=extra, body=body)
        self.peer.send(self.invite_msg, self.daemon)

    def final(self, timeout=5):
        raw, first, hdrs, body = self.peer.expect(lambda f, h, b: (status(f) or 0) >= 200,
                                                  "final response", timeout)
        m = re.search(r";\s*tag=([^;>\s]+)", hdrs["to"][0])
        self.to_tag = m.group(1) if m else None
        return raw, first, hdrs, body

    def ack(self):
        self.peer.send(self.request("ACK", cseq=1), self.daemon)

    def bye(self):
        self.cseq += 1
        self.peer.send(self.request("BYE", cseq=self.cseq), self.daemon)
        return self.peer.expect(lambda f, h, b: status(f) and h["cseq"][0].endswith("BYE"),
                                "response to BYE")


def ctl(sock, *args):
    r = run([binary("srtpbridgectl"), "-s", sock, "--json"] + list(args), timeout=30)
    return r.returncode, json.loads(r.stdout) if r.stdout.strip() else None
