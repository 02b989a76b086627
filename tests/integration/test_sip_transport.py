"""SIP over UDP and TCP through the daemon: sipp as a real peer, and raw
sockets for framing (split and merged messages, keepalives, bad and missing
Content-Length, oversize), the source check (per message, and per connection
at accept), and retransmissions absorbed by the transaction layer.
Everything on 127.0.0.0/8."""

import os
import shutil
import socket
import sys
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase, run  # noqa: E402
from sipua import ctl  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SIPP = shutil.which("sipp")

CONFIG = """[global]
log_level = debug
control_socket = @CONTROL_SOCKET@
metrics_listen =
media_ports = 30000-30999
unknown_source = @UNKNOWN@
sip_trace = @TRACE@

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


def request(method, port, transport="UDP", branch=None, body=b"", extra="",
            content_length=True, local="127.0.0.1:5999"):
    branch = branch or "z9hG4bK" + uuid.uuid4().hex[:16]
    head = ("%s sip:8011000@127.0.0.1:%d SIP/2.0\r\n"
            "Via: SIP/2.0/%s %s;branch=%s;rport\r\n"
            "Max-Forwards: 70\r\n"
            "From: <sip:test@127.0.0.1>;tag=%s\r\n"
            "To: <sip:8011000@127.0.0.1>\r\n"
            "Call-ID: %s@test\r\n"
            "CSeq: 1 %s\r\n"
            "%s" % (method, port, transport, local, branch, uuid.uuid4().hex[:8],
                    uuid.uuid4().hex, method, extra))
    if content_length:
        head += "Content-Length: %d\r\n" % len(body)
    return head.encode() + b"\r\n" + body


def status_of(data):
    first = data.split(b"\r\n", 1)[0].decode(errors="replace")
    parts = first.split(" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[0] == "SIP/2.0" else None


def header(data, name):
    for line in data.decode(errors="replace").split("\r\n"):
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    return None


class SipTransportTest(DaemonTestCase):
    def start(self, unknown="drop", trace="no"):
        self.port, self.peer, self.ivr, self.ivr_peer = harness.free_ports(4)
        text = harness.render(CONFIG, CONTROL_SOCKET=self.tmp.join("ctl.sock"),
                              PORT=self.port, PEER=self.peer, IVR=self.ivr,
                              IVR_PEER=self.ivr_peer, UNKNOWN=unknown,
                              TRACE=trace)
        self.daemon = self.start_daemon(self.tmp.write("sbc.ini", text))
        self.daemon.wait_ready()
        self.daemon.wait_for_log(msg="listening", listen="tcp:127.0.0.1:%d" % self.port)

    def udp(self, source="127.0.0.1"):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((source, 0))
        s.settimeout(5)
        self.addCleanup(s.close)
        return s

    def tcp(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self.addCleanup(s.close)
        return s

    def recv_responses(self, s, n):
        """n responses from a stream, framed by Content-Length."""
        buf, out = b"", []
        while len(out) < n:
            chunk = s.recv(65536)
            self.assertTrue(chunk, "connection closed while waiting for responses")
            buf += chunk
            while b"\r\n\r\n" in buf:
                head, rest = buf.split(b"\r\n\r\n", 1)
                cl = int(header(head + b"\r\n", "Content-Length") or 0)
                if len(rest) < cl:
                    break
                out.append(head + b"\r\n\r\n" + rest[:cl])
                buf = rest[cl:]
        return out

    # --- sipp, a real peer ---

    @unittest.skipIf(SIPP is None, "sipp is not installed")
    def test_sipp_options_udp_and_tcp(self):
        self.start()
        for t in ("u1", "t1"):
            with self.subTest(transport=t):
                r = run([SIPP, "127.0.0.1:%d" % self.port, "-sf",
                         os.path.join(HERE, "sipp", "options.xml"), "-inf",
                         os.path.join(HERE, "sipp", "users.csv"), "-m", "1", "-t", t,
                         "-i", "127.0.0.1", "-p", str(harness.free_port()),
                         "-timeout", "10s", "-timeout_error", "-nostdin", "-trace_err",
                         "-error_file", self.tmp.join("sipp-%s.err" % t)], timeout=30,
                        cwd=str(self.tmp))
                self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])

    @unittest.skipIf(SIPP is None, "sipp is not installed")
    def test_sipp_invite_transaction(self):
        self.start()
        r = run([SIPP, "127.0.0.1:%d" % self.port, "-sf",
                 os.path.join(HERE, "sipp", "invite-refused.xml"), "-inf",
                 os.path.join(HERE, "sipp", "users.csv"), "-m", "1", "-t", "u1",
                 "-i", "127.0.0.1", "-p", str(harness.free_port()), "-timeout", "10s",
                 "-timeout_error", "-nostdin", "-trace_err", "-error_file",
                 self.tmp.join("sipp.err")], timeout=30, cwd=str(self.tmp))
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])

    # --- UDP framing (RFC 3261 section 18.3) ---

    def test_udp_content_length_beyond_datagram_gets_400(self):
        self.start()
        s = self.udp()
        msg = request("OPTIONS", self.port, body=b"v=0\r\n").replace(
            b"Content-Length: 5", b"Content-Length: 300")
        s.sendto(msg, ("127.0.0.1", self.port))
        data = s.recv(65536)
        self.assertEqual(status_of(data), 400, data)
        self.assertIn("Content-Length 300", header(data, "Warning") or "", data)

    def test_udp_bytes_beyond_content_length_are_discarded(self):
        self.start()
        s = self.udp()
        s.sendto(request("OPTIONS", self.port) + b"garbage after the message",
                 ("127.0.0.1", self.port))
        self.assertEqual(status_of(s.recv(65536)), 200)

    def test_udp_missing_content_length_means_rest_of_datagram(self):
        self.start()
        s = self.udp()
        s.sendto(request("OPTIONS", self.port, content_length=False), ("127.0.0.1", self.port))
        self.assertEqual(status_of(s.recv(65536)), 200)

    def test_udp_response_goes_to_rport(self):
        """RFC 3581: the response goes to the source port, not the Via's."""
        self.start()
        s = self.udp()
        s.sendto(request("OPTIONS", self.port, local="127.0.0.1:1"), ("127.0.0.1", self.port))
        data = s.recv(65536)
        self.assertEqual(status_of(data), 200)
        via = header(data, "Via")
        self.assertIn("received=127.0.0.1", via)
        self.assertIn("rport=%d" % s.getsockname()[1], via)

    # --- TCP framing ---

    def test_tcp_byte_by_byte_and_merged(self):
        self.start()
        s = self.tcp()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for b in request("OPTIONS", self.port, "TCP"):
            s.send(bytes([b]))
        self.assertEqual(status_of(self.recv_responses(s, 1)[0]), 200)
        s.sendall(b"".join(request("OPTIONS", self.port, "TCP") for _ in range(3)))
        self.assertEqual([status_of(r) for r in self.recv_responses(s, 3)], [200] * 3)

    def test_tcp_keepalive_ping_gets_pong(self):
        self.start()
        s = self.tcp()
        s.sendall(b"\r\n\r\n")
        self.assertEqual(s.recv(16), b"\r\n")
        s.sendall(request("OPTIONS", self.port, "TCP"))
        self.assertEqual(status_of(self.recv_responses(s, 1)[0]), 200)

    def test_tcp_missing_content_length_closes(self):
        self.start()
        mark = self.daemon.log_mark()
        s = self.tcp()
        s.sendall(request("OPTIONS", self.port, "TCP", content_length=False))
        self.assertEqual(s.recv(65536), b"")
        self.daemon.wait_for_log(lambda r: r.get("msg") == "connection closed"
                                 and "Content-Length" in r.get("reason", ""), since=mark)

    def test_tcp_oversize_closes(self):
        self.start()
        mark = self.daemon.log_mark()
        s = self.tcp()
        body = b"x" * 70000
        try:
            s.sendall(request("MESSAGE", self.port, "TCP", body=body,
                              extra="Content-Type: text/plain\r\n"))
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            self.assertEqual(s.recv(65536), b"")
        except ConnectionResetError:
            pass
        self.daemon.wait_for_log(msg="connection closed", since=mark)

    # --- the source check, before parsing ---

    def test_unknown_source_dropped_then_403(self):
        self.start()
        mark = self.daemon.log_mark()
        stranger = self.udp("127.0.0.2")
        stranger.settimeout(0.5)
        stranger.sendto(request("OPTIONS", self.port), ("127.0.0.1", self.port))
        self.daemon.wait_for_log(msg="request from an unknown source dropped", since=mark)
        with self.assertRaises(socket.timeout):
            stranger.recv(65536)
        # the daemon still serves its sources
        s = self.udp()
        s.sendto(request("OPTIONS", self.port), ("127.0.0.1", self.port))
        self.assertEqual(status_of(s.recv(65536)), 200)

    def stranger_tcp(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.bind(("127.0.0.2", 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", self.port))
        return s

    def stats(self):
        rc, st = ctl(self.tmp.join("ctl.sock"), "stats")
        self.assertEqual(rc, 0)
        return st

    def test_unknown_source_connection_refused(self):
        """Under unknown_source = drop a connection from no trunk's source is
        closed before a byte is read: it holds no slot, and would cost a
        TLS handshake. The trunk's own sources still connect."""
        self.start()
        mark = self.daemon.log_mark()
        s = self.stranger_tcp()
        try:
            s.sendall(request("OPTIONS", self.port, "TCP"))
            self.assertEqual(s.recv(65536), b"")
        except (ConnectionResetError, BrokenPipeError):
            pass  # closed with our bytes unread: a reset
        rec = self.daemon.wait_for_log(msg="connection from an unknown source refused",
                                       since=mark)
        self.assertTrue(rec["peer"].startswith("127.0.0.2:"), rec)
        self.assertEqual(rec["listen"], "tcp:127.0.0.1:%d" % self.port)
        st = self.stats()["sip"]
        self.assertEqual(st["connections_unknown_source"], 1)
        self.assertEqual(st["connections_refused"], 0)
        self.assertEqual(st["requests"], 0)
        t = self.tcp()
        t.sendall(request("OPTIONS", self.port, "TCP"))
        self.assertEqual(status_of(self.recv_responses(t, 1)[0]), 200)
        self.assertEqual(self.stats()["sip"]["connections"], 1)

    def test_unknown_source_403_over_tcp(self):
        """Under 403 the connection is taken, so that its requests hear why."""
        self.start(unknown="403")
        s = self.stranger_tcp()
        s.sendall(request("OPTIONS", self.port, "TCP"))
        data = self.recv_responses(s, 1)[0]
        self.assertEqual(status_of(data), 403)
        self.assertIn("not a source", header(data, "Warning") or "")
        self.assertEqual(self.stats()["sip"]["connections_unknown_source"], 0)

    def test_unknown_source_403(self):
        self.start(unknown="403")
        stranger = self.udp("127.0.0.2")
        stranger.sendto(request("OPTIONS", self.port), ("127.0.0.1", self.port))
        data = stranger.recv(65536)
        self.assertEqual(status_of(data), 403)
        self.assertIn("not a source", header(data, "Warning") or "")

    # --- sip_trace ---

    def test_sip_trace_both_ways_without_keys(self):
        self.start(trace="yes")
        mark = self.daemon.log_mark()
        key = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
        sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
               "m=audio 4000 RTP/SAVP 0\r\n"
               "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:%s\r\n" % key).encode()
        s = self.udp()
        s.sendto(request("INVITE", self.port, body=sdp,
                         extra="Content-Type: application/sdp\r\n"
                               "Contact: <sip:test@127.0.0.1:5999>\r\n"),
                 ("127.0.0.1", self.port))
        self.assertEqual(status_of(s.recv(65536)), 100)
        rin = self.daemon.wait_for_log(msg="sip in", since=mark)
        self.assertTrue(rin["sip"].startswith("INVITE sip:8011000@127.0.0.1"), rin["sip"])
        self.assertIn("inline:[redacted]", rin["sip"])
        out = self.daemon.wait_for_log(lambda r: r.get("msg") == "sip out"
                                       and r.get("sip", "").startswith("SIP/2.0 100"),
                                       since=mark)
        self.assertEqual(out["peer"], "127.0.0.1:%d" % s.getsockname()[1])
        # leg B's INVITE, toward the IVR trunk's peer, is traced too
        self.daemon.wait_for_log(lambda r: r.get("msg") == "sip out"
                                 and r.get("sip", "").startswith("INVITE sip:8011000@"),
                                 since=mark)
        for rec in self.daemon.logs(since=mark):
            self.assertNotIn(key[:12], str(rec))

    # --- transactions ---

    def test_invite_retransmission_absorbed(self):
        self.start()
        mark = self.daemon.log_mark()
        s = self.udp()
        msg = request("INVITE", self.port)
        s.sendto(msg, ("127.0.0.1", self.port))
        first = [s.recv(65536) for _ in range(2)]
        # no Contact: the B2BUA cannot make a dialog of it
        self.assertEqual([status_of(d) for d in first], [100, 400])
        s.sendto(msg, ("127.0.0.1", self.port))  # lost final response, says the peer
        again = s.recv(65536)
        self.assertEqual(status_of(again), 400)
        self.assertEqual(again, first[1])
        # one request reached the transaction user, not two: its log line
        # was written before the 400 we hold, but the harness reads the log
        # on a thread of its own, so wait for it before counting
        self.daemon.wait_for_log(msg="call refused", status="400", since=mark)
        self.assertEqual(len(self.daemon.find_logs(msg="call refused", status="400",
                                                   since=mark)), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
