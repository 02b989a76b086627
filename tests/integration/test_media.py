"""Media through the daemon, as far as Python can see it without SRTP of its
own (test_media_e2e.py has a real SRTP peer; tests/unit/test_relay.c has
libsrtp2 at both ends):
- the IVR's plain RTP reaches the carrier as SRTP under srtpbridge's SSRC,
  with consecutive sequence numbers across the IVR's restarts and SSRC
  changes, each packet the plain one plus the 10-byte tag;
- a stranger's packets reach nobody and are counted, in srtpbridgectl;
- the media timeout: a call with no RTP or RTCP either way ends after
  media_timeout with a BYE and a Reason on both legs; packets keep it up;
  a leg on hold gets media_timeout_hold instead."""

import os
import re
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase  # noqa: E402
from sipua import KEY, Carrier, Peer, ctl, respond, status  # noqa: E402

CONFIG = """[global]
log_level = debug
control_socket = @CTL@
metrics_listen =
media_ports = @MEDIA@
media_port_quarantine = 0
media_timeout = @TIMEOUT@
media_timeout_hold = @HOLD@
media_io = @IO@

[trunk:carrier]
listen = udp:127.0.0.1:@PORT@
peers = udp:127.0.0.1:@PEER@
options_interval = 0
crypto_lifetime = @LIFETIME@
route = ivr

[trunk:ivr]
listen = udp:127.0.0.1:@IVR@
peers = udp:127.0.0.1:@IVR_PEER@
options_interval = 0
sources = 127.0.0.1/32
srtp = off
route = carrier
"""


def rtp(seq, ts, ssrc, payload=b"\xff" * 160, pt=0):
    return struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(3)
    return s


class MediaTest(DaemonTestCase):
    def start(self, timeout=30, hold=3600, lifetime="", io="auto", media_ports=16):
        self.port, self.peer_port, self.ivr, self.ivr_peer = harness.free_ports(4)
        self.ctl_sock = self.tmp.join("ctl.sock")
        text = harness.render(CONFIG, CTL=self.ctl_sock, MEDIA=harness.free_media_range(media_ports),
                              PORT=self.port, PEER=self.peer_port, IVR=self.ivr,
                              IVR_PEER=self.ivr_peer, TIMEOUT=timeout, HOLD=hold,
                              LIFETIME=lifetime, IO=io)
        self.daemon = self.start_daemon(self.tmp.write("sbc.ini", text))
        self.daemon.wait_ready()
        self.ivr_sock = Peer(self, "udp", self.ivr_peer)
        self.carrier_sock = Peer(self, "udp", self.peer_port)
        self.carrier = Carrier(self.carrier_sock, self.port)
        self.cm, self.im = udp(), udp()  # the media sockets of carrier and IVR
        self.addCleanup(self.cm.close)
        self.addCleanup(self.im.close)

    def call(self):
        """A call set up with real media addresses; returns (port of leg A,
        port of leg B) on srtpbridge."""
        offer = ("v=0\r\no=carrier 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                 "t=0 0\r\nm=audio %d RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
                 "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:%s\r\n"
                 % (self.cm.getsockname()[1], KEY))
        self.carrier.invite(body=offer)
        self.inv, _, _, body = self.ivr_sock.expect(lambda f, h, b: f.startswith("INVITE "),
                                                    "INVITE on leg B")
        b_port = int(re.search(r"m=audio (\d+)", body).group(1))
        answer = ("v=0\r\no=ivr 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                  "m=audio %d RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
                  % self.im.getsockname()[1])
        self.ivr_sock.send(respond(self.inv, 200, "OK", "ivr1",
                                   "Contact: <sip:ivr@127.0.0.1:%d>" % self.ivr_peer, answer))
        self.ivr_sock.expect(lambda f, h, b: f.startswith("ACK "), "ACK on leg B")
        _, first, _, body = self.carrier.final()
        self.assertEqual(status(first), 200)
        self.carrier.ack()
        a_port = int(re.search(r"m=audio (\d+)", body).group(1))
        deadline = time.monotonic() + 5  # the ACK taken: a re-INVITE now is no glare
        while time.monotonic() < deadline:
            rc, reply = ctl(self.ctl_sock, "calls")
            if rc == 0 and reply["calls"] and reply["calls"][0]["state"] == "confirmed":
                break
            time.sleep(0.02)
        return a_port, b_port

    def call_id(self):
        rc, reply = ctl(self.ctl_sock, "calls")
        self.assertEqual(rc, 0)
        return reply["calls"][0]["id"]

    def test_ivr_rtp_reaches_the_carrier_as_srtp_under_our_ssrc(self):
        self.start()
        self.relays_under_our_ssrc()
        rc, reply = ctl(self.ctl_sock, "stats")
        self.assertEqual(rc, 0)
        media = reply["media"]
        self.assertIn(media["io"], ("io_uring", "epoll"), "media_io = auto takes one")
        self.assertEqual(media["io_uring_workers"],
                         media["workers"] if media["io"] == "io_uring" else 0)

    def test_media_io_epoll_relays_the_same(self):
        self.start(io="epoll")
        self.relays_under_our_ssrc()
        rc, reply = ctl(self.ctl_sock, "stats")
        self.assertEqual(rc, 0)
        self.assertEqual(reply["media"]["io"], "epoll")
        self.assertEqual(reply["media"]["io_uring_workers"], 0)

    def relays_under_our_ssrc(self):
        a_port, b_port = self.call()
        # the IVR: a prompt, then a new prompt from seq 0 under a new SSRC,
        # then a jump of -30000, and an RFC 4733 event
        sent = [rtp(1000 + i, 160 * i, 0x1111) for i in range(5)]
        sent += [rtp(i, 50000 + 160 * i, 0x2222) for i in range(5)]
        sent += [rtp(40000 + i, 90000 + 160 * i, 0x2222) for i in range(5)]
        sent += [rtp(40005, 90800, 0x2222, bytes([1, 0x0a, 0, 160]), pt=101)]
        got = []
        for pkt in sent:
            self.im.sendto(pkt, ("127.0.0.1", b_port))
            got.append(self.cm.recv(4096))
        ssrcs = {struct.unpack("!I", g[8:12])[0] for g in got}
        self.assertEqual(len(ssrcs), 1, "one SSRC of srtpbridge's own")
        self.assertNotIn(0x1111, ssrcs)
        seqs = [struct.unpack("!H", g[2:4])[0] for g in got]
        for a, b in zip(seqs, seqs[1:]):
            self.assertEqual((b - a) & 0xFFFF, 1, "consecutive sequence numbers: %r" % seqs)
        for pkt, g in zip(sent, got):
            self.assertEqual(len(g), len(pkt) + 10, "the 80-bit tag")
            self.assertEqual(g[1], pkt[1], "the payload type and marker pass")
            self.assertNotEqual(g[12:len(pkt)], pkt[12:], "the payload is encrypted")
        # a stranger sends to both legs: nobody gets it, both are counted
        stranger = udp()
        self.addCleanup(stranger.close)
        stranger.sendto(rtp(1, 1, 0x3333), ("127.0.0.1", a_port))
        stranger.sendto(rtp(1, 1, 0x3333), ("127.0.0.1", b_port))
        self.cm.settimeout(0.3)
        self.im.settimeout(0.3)
        self.assertRaises(socket.timeout, self.cm.recv, 4096)
        self.assertRaises(socket.timeout, self.im.recv, 4096)
        rc, reply = ctl(self.ctl_sock, "call", self.call_id())
        self.assertEqual(rc, 0)
        a = reply["call"]["leg_a"]["streams"][0]
        b = reply["call"]["leg_b"]["streams"][0]
        self.assertEqual(a["rtp_out"]["packets"], len(sent))
        self.assertEqual(b["rtp_in"]["packets"], len(sent))
        self.assertEqual(a["rtp_in"]["unexpected_source"], 1)
        self.assertEqual(b["rtp_in"]["unexpected_source"], 1)
        self.assertEqual(reply["call"]["packets_out"], len(sent))
        self.carrier.bye()
        bye, _, _, _ = self.ivr_sock.expect(lambda f, h, b: f.startswith("BYE "), "BYE")
        self.ivr_sock.send(respond(bye, 200, "OK"))

    def test_key_lifetime_reached_is_logged_once_and_counted(self):
        # our key toward the carrier signals a lifetime of 2^7 = 128 packets
        self.start(lifetime="2^7")
        _, b_port = self.call()
        rc, reply = ctl(self.ctl_sock, "call", self.call_id())
        ours = [e for e in reply["call"]["leg_a"]["streams"][0]["key_epochs"]
                if e["key"] == "ours"]
        self.assertEqual([(e["n"], e["lifetime"]) for e in ours], [(1, 128)])
        for i in range(140):
            self.im.sendto(rtp(i, 160 * i, 0x1111), ("127.0.0.1", b_port))
            self.cm.recv(4096)
        rec = self.daemon.wait_for_log(msg="an SRTP key reached its signalled lifetime",
                                       timeout=5)
        self.assertEqual((rec["leg"], rec["key"], rec["epoch"], rec["lifetime"]),
                         ("a", "ours", "1", "128"))
        self.assertNotIn(KEY, rec["_raw"])
        rc, reply = ctl(self.ctl_sock, "stats")
        self.assertEqual(reply["calls"]["key_lifetimes_reached"], 1)
        for i in range(140, 150):  # said once, not at every packet after
            self.im.sendto(rtp(i, 160 * i, 0x1111), ("127.0.0.1", b_port))
            self.cm.recv(4096)
        time.sleep(1.2)  # the sweep runs once a second: give it one more turn
        self.assertEqual(len(self.daemon.find_logs(
            msg="an SRTP key reached its signalled lifetime")), 1)

    def expect_timeout_byes(self, text):
        """Both legs get a BYE with the media timeout's Reason."""
        for sock, what in ((self.carrier_sock, "carrier"), (self.ivr_sock, "IVR")):
            bye, _, hdrs, _ = sock.expect(lambda f, h, b: f.startswith("BYE "),
                                          "BYE to the " + what, timeout=10)
            self.assertRegex(hdrs["reason"][0], r'^SIP;cause=408;text="%s: ' % text)
            sock.send(respond(bye, 200, "OK"))

    def test_media_timeout_ends_a_silent_call(self):
        self.start(timeout=2)
        self.call()
        t0 = time.monotonic()
        self.expect_timeout_byes("media_timeout")
        self.assertGreaterEqual(time.monotonic() - t0, 1.5)
        self.daemon.wait_for_log(msg="media timeout")
        rc, reply = ctl(self.ctl_sock, "stats")
        self.assertEqual(reply["calls"]["media_timeouts"], 1)

    def test_media_timeout_reaches_every_call(self):
        # the sweep looks at a tenth of the calls every 100 ms: every silent
        # call still ends, once, media_timeout after its answer and not before
        n, timeout = 12, 4
        self.start(timeout=timeout, media_ports=4 * n + 8)
        answered = {}
        for _ in range(n):
            self.carrier = Carrier(self.carrier_sock, self.port)
            self.call()
            answered[self.carrier.call_id] = time.monotonic()
        deadline = max(answered.values()) + timeout + 3
        ended = {}
        for sock in (self.carrier_sock, self.ivr_sock):
            ids = set()
            while len(ids) < n:
                bye, _, hdrs, _ = sock.expect(lambda f, h, b: f.startswith("BYE "), "BYE",
                                              timeout=max(0.1, deadline - time.monotonic()))
                sock.send(respond(bye, 200, "OK"))
                self.assertRegex(hdrs["reason"][0], r'^SIP;cause=408;text="media_timeout: ')
                ids.add(hdrs["call-id"][0])
                if sock is self.carrier_sock:
                    ended.setdefault(hdrs["call-id"][0], time.monotonic())
        self.assertEqual(set(ended), set(answered))
        for cid, t in ended.items():
            self.assertGreaterEqual(t - answered[cid], timeout - 0.5, "not before its time")
        end = time.monotonic() + 5  # our 200s to the BYEs end the calls
        while True:
            rc, reply = ctl(self.ctl_sock, "stats")
            if reply["calls_active"] == 0 or time.monotonic() > end:
                break
            time.sleep(0.02)
        self.assertEqual(reply["calls_active"], 0)
        self.assertEqual(reply["calls"]["media_timeouts"], n)

    def test_packets_keep_the_call_up(self):
        self.start(timeout=2)
        _, b_port = self.call()
        # RTP from the IVR every 200 ms for 3.5 s: longer than the timeout
        for i in range(18):
            self.im.sendto(rtp(i, 160 * i, 0x1111), ("127.0.0.1", b_port))
            self.assertIsNone(self.carrier_sock.recv(0.2), "no BYE while media flows")
        t0 = time.monotonic()
        self.expect_timeout_byes("media_timeout")
        self.assertGreaterEqual(time.monotonic() - t0, 1.0)

    def test_hold_gets_media_timeout_hold(self):
        self.start(timeout=1, hold=4)
        self.call()
        # the IVR puts the carrier on hold (a=sendonly)
        hold = ("v=0\r\no=ivr 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                "m=audio %d RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
                "a=sendonly\r\n" % self.im.getsockname()[1])
        inv = ("INVITE sip:carrier@127.0.0.1:%d SIP/2.0\r\n"
               "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKhold1;rport\r\n"
               "Max-Forwards: 70\r\n%s\r\n%s\r\n%s\r\nCSeq: 2 INVITE\r\n"
               "Contact: <sip:ivr@127.0.0.1:%d>\r\nContent-Type: application/sdp\r\n"
               "Content-Length: %d\r\n\r\n%s")
        ack = ("ACK sip:carrier@127.0.0.1:%d SIP/2.0\r\n"
               "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKhold1ack;rport\r\n"
               "Max-Forwards: 70\r\n%s\r\n%s\r\n%s\r\nCSeq: 2 ACK\r\n"
               "Content-Length: 0\r\n\r\n")
        _, _, ihdrs, _ = self.inv_fields()
        self.ivr_sock.send((inv % (self.ivr, self.ivr_peer, "From: " + ihdrs["to"] + ";tag=ivr1",
                                   "To: " + ihdrs["from"], "Call-ID: " + ihdrs["call-id"],
                                   self.ivr_peer, len(hold), hold)).encode(),
                           ("127.0.0.1", self.ivr))
        reinv, _, _, _ = self.carrier_sock.expect(lambda f, h, b: f.startswith("INVITE "),
                                                  "re-INVITE to the carrier")
        answer = ("v=0\r\no=carrier 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                  "t=0 0\r\nm=audio %d RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
                  "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:%s\r\na=recvonly\r\n"
                  % (self.cm.getsockname()[1], KEY))
        t0 = time.monotonic()
        self.carrier_sock.send(respond(reinv, 200, "OK", None,
                                       "Contact: <sip:carrier@127.0.0.1>", answer))
        self.carrier_sock.expect(lambda f, h, b: f.startswith("ACK "), "ACK of its 200")
        self.ivr_sock.expect(lambda f, h, b: status(f) == 200, "200 to the re-INVITE")
        self.ivr_sock.send((ack % (self.ivr, self.ivr_peer, "From: " + ihdrs["to"] + ";tag=ivr1",
                                   "To: " + ihdrs["from"], "Call-ID: " + ihdrs["call-id"])
                            ).encode(), ("127.0.0.1", self.ivr))
        # on hold: media_timeout (1 s) does not apply, media_timeout_hold (4 s) does
        self.assertIsNone(self.carrier_sock.recv(2.5), "no BYE before media_timeout_hold")
        self.expect_timeout_byes("media_timeout_hold")
        self.assertGreaterEqual(time.monotonic() - t0, 3.5)

    def inv_fields(self):
        """Leg B's INVITE: From, To and Call-ID as the IVR's dialog sees them."""
        head = self.inv.split(b"\r\n\r\n")[0].decode()
        hdrs = {}
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            hdrs.setdefault(name.strip().lower(), value.strip())
        return None, None, hdrs, None


if __name__ == "__main__":
    unittest.main()
