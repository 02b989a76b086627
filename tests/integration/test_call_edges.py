"""The back-to-back call's edges and its in-dialog life, with plain Python
sockets as the carrier and the IVR, every message checked field by field:
- before leg B: Max-Forwards at 0 (483), no Contact (400), a merged INVITE
  (482), 100rel required (420; Supported and Require never cross);
- late offer (the offer in leg B's 2xx, the answer in leg A's ACK; an
  unacceptable late answer ACKed, then BYEd);
- leg B's failures relayed (486 with its Reason, a 302 with its Contact,
  not followed; 407 becomes 403), ring_timeout (480 to leg A after a 180,
  CANCEL with a Reason to leg B);
- re-INVITE hold and resume from each side with our key kept, the carrier's
  new key as epoch 2 in srtpbridgectl, an identical refresh answered
  identically, an offerless re-INVITE (the far leg's offer in our 200, the
  answer from the ACK; an unacceptable one ACKed, then BYEd), refusals (488,
  491) relayed with the call going on, a second re-INVITE (500 with
  Retry-After), UPDATE with and without SDP, glare (491), T.38 refused with
  Warning 304, session timers relayed (and a 422 with Min-SE);
- INFO and OPTIONS relayed in the call, REFER relayed with Refer-To
  rewritten and its NOTIFY back (attended transfer refused with 501);
- drain (503 to new INVITEs, the call in progress ends normally, then the
  daemon exits), drain_timeout ending calls with a Reason, a call over TCP
  on both legs, and a peer given by host name."""

import os
import re
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase  # noqa: E402

CONFIG = """[global]
log_level = debug
control_socket = @CTL@
metrics_listen =
media_ports = @MEDIA@
media_port_quarantine = 0
drain_timeout = @DRAIN@

[trunk:carrier]
listen = @TP@:127.0.0.1:@PORT@
peers = @TP@:127.0.0.1:@PEER@
options_interval = 0
route = ivr

[trunk:ivr]
listen = @TP@:127.0.0.1:@IVR@
peers = @TP@:@IVR_HOST@:@IVR_PEER@
options_interval = 0
sources = 127.0.0.1/32
srtp = off
ring_timeout = @RING@
route = carrier
"""

from sipua import (ANSWER, KEY, OFFER, Carrier, Peer, ctl, parse,  # noqa: E402
                   respond, status)


class CallEdgesTest(DaemonTestCase):
    def start(self, tp="udp", ivr_host="127.0.0.1", ring=120, drain=300):
        self.port, self.peer_port, self.ivr, self.ivr_peer = harness.free_ports(4)
        self.ctl_sock = self.tmp.join("ctl.sock")
        text = harness.render(CONFIG, CTL=self.ctl_sock, MEDIA=harness.free_media_range(16), TP=tp,
                              PORT=self.port, PEER=self.peer_port, IVR=self.ivr,
                              IVR_PEER=self.ivr_peer, IVR_HOST=ivr_host, RING=ring,
                              DRAIN=drain)
        self.daemon = self.start_daemon(self.tmp.write("sbc.ini", text))
        self.daemon.wait_ready()
        self.ivr_sock = Peer(self, tp, self.ivr_peer)
        if tp == "udp":
            self.carrier_sock = Peer(self, tp, self.peer_port)
        else:
            self.carrier_sock = Peer(self, tp, connect=self.port)
            self.carrier_sock.port = self.carrier_sock.sock.getsockname()[1]
        self.carrier = Carrier(self.carrier_sock, self.port, tp.upper())

    def assert_idle(self):
        """No call left and every port back, waited for with a deadline."""
        deadline = time.monotonic() + 10
        while True:
            rc, st = ctl(self.ctl_sock, "stats")
            self.assertEqual(rc, 0)
            if st["calls_active"] == 0 and st["ports"]["in_use"] == 0:
                return st
            self.assertLess(time.monotonic(), deadline, st)
            time.sleep(0.05)

    def wait_confirmed(self):
        deadline = time.monotonic() + 10
        while True:
            rc, calls = ctl(self.ctl_sock, "calls")
            if calls["calls"] and calls["calls"][0]["state"] == "confirmed":
                return
            self.assertLess(time.monotonic(), deadline, calls)
            time.sleep(0.02)

    def ivr_invite(self):
        return self.ivr_sock.expect(lambda f, h, b: f.startswith("INVITE "), "INVITE on leg B")

    # --- refusals before leg B ---

    def test_max_forwards_zero_is_483(self):
        self.start()
        msg = self.carrier.request("INVITE", extra="Contact: <sip:carrier@127.0.0.1>",
                                   body=OFFER)
        self.carrier_sock.send(msg.replace(b"Max-Forwards: 70", b"Max-Forwards: 0"),
                               self.carrier.daemon)
        _, first, hdrs, _ = self.carrier.final()
        self.assertEqual(status(first), 483)
        self.assertIn("Max-Forwards", hdrs["warning"][0])
        self.assertIsNone(self.ivr_sock.recv(0.3), "leg B must not be tried")
        self.assert_idle()
        # and one hop left is one hop less on leg B
        self.carrier = Carrier(self.carrier_sock, self.port)
        msg = self.carrier.request("INVITE", extra="Contact: <sip:carrier@127.0.0.1>",
                                   body=OFFER)
        self.carrier_sock.send(msg.replace(b"Max-Forwards: 70", b"Max-Forwards: 1"),
                               self.carrier.daemon)
        inv, _, ihdrs, _ = self.ivr_invite()
        self.assertEqual(ihdrs["max-forwards"], ["0"])
        self.ivr_sock.send(respond(inv, 486, "Busy Here", "ivr1"))
        self.carrier.final()
        self.carrier.ack()
        self.assert_idle()

    def test_no_contact_is_400(self):
        self.start()
        self.carrier.invite(extra="X-No-Contact: yes")
        _, first, hdrs, _ = self.carrier.final()
        self.assertEqual(status(first), 400)
        self.assertIn("Contact", hdrs["warning"][0])
        self.assertIsNone(self.ivr_sock.recv(0.3), "leg B must not be tried")
        self.assert_idle()

    def test_merged_request_is_482(self):
        # RFC 3261 8.2.2.2: the same INVITE in another transaction (a new
        # branch) is not a second call
        self.start()
        self.carrier.invite()
        inv, _, _, _ = self.ivr_invite()
        again = re.sub(rb"branch=z9hG4bK[0-9a-f]+", b"branch=z9hG4bKmerged1",
                       self.carrier.invite_msg)
        self.carrier_sock.send(again, self.carrier.daemon)
        _, first, hdrs, _ = self.carrier_sock.expect(lambda f, h, b: status(f) == 482, "482")
        self.assertIn("merged request", hdrs["warning"][0])
        self.assertIsNone(self.ivr_sock.recv(0.3), "no second INVITE on leg B")
        rc, st = ctl(self.ctl_sock, "stats")
        self.assertEqual(st["calls_active"], 1)
        self.ivr_sock.send(respond(inv, 486, "Busy Here", "ivr1"))
        self.carrier.final()
        self.carrier.ack()
        self.assert_idle()

    # --- leg B's failures ---

    def failure(self, code, reason, extra="", invite_extra=None):
        if invite_extra:
            self.carrier.invite(extra=invite_extra)
        else:
            self.carrier.invite()
        inv, _, _, _ = self.ivr_invite()
        self.ivr_sock.send(respond(inv, code, reason, "ivr1", extra=extra))
        self.ivr_sock.expect(lambda f, h, b: f.startswith("ACK "), "ACK of %d" % code)
        raw, first, hdrs, _ = self.carrier.final()
        self.carrier.ack()
        return first, hdrs

    def test_busy_relayed_with_its_reason(self):
        self.start()
        first, hdrs = self.failure(486, "Busy Here", 'Reason: Q.850;cause=17;text="User busy"')
        self.assertEqual(status(first), 486)
        self.assertEqual(hdrs["reason"], ['Q.850;cause=17;text="User busy"'])
        self.assert_idle()

    def test_redirect_relayed_not_followed(self):
        self.start()
        first, hdrs = self.failure(302, "Moved Temporarily",
                                   "Contact: <sip:+4930999@192.0.2.99>")
        self.assertEqual(status(first), 302)
        self.assertEqual(hdrs["contact"], ["<sip:+4930999@192.0.2.99>"])
        self.assertIsNone(self.ivr_sock.recv(0.3), "srtpbridge does not follow it")
        self.assert_idle()

    def test_challenge_becomes_403(self):
        self.start()
        first, hdrs = self.failure(407, "Proxy Authentication Required",
                                   'Proxy-Authenticate: Digest realm="ivr", nonce="abc"')
        self.assertEqual(status(first), 403)
        self.assertNotIn("proxy-authenticate", hdrs)
        self.assert_idle()

    def test_ring_timeout(self):
        self.start(ring=1)
        mark = self.daemon.log_mark()
        self.carrier.invite()
        inv, _, _, _ = self.ivr_invite()
        self.ivr_sock.send(respond(inv, 180, "Ringing", "ivr1",
                                   "Contact: <sip:ivr@127.0.0.1:%d>" % self.ivr_peer))
        t0 = time.monotonic()
        cancel, _, chdrs, _ = self.ivr_sock.expect(lambda f, h, b: f.startswith("CANCEL "),
                                                   "CANCEL after ring_timeout")
        self.assertGreaterEqual(time.monotonic() - t0, 0.8)
        # the carrier heard ringing: 480, as a phone nobody picks up would say
        self.assertRegex(chdrs["reason"][0], r'^SIP;cause=480;text="ring_timeout: ')
        _, first, hdrs, _ = self.carrier.final()
        self.assertEqual(status(first), 480)
        self.assertRegex(hdrs["reason"][0], r'^SIP;cause=480;text="ring_timeout')
        self.carrier.ack()
        self.ivr_sock.send(respond(cancel, 200, "OK", "ivr1"))
        self.ivr_sock.send(respond(inv, 487, "Request Terminated", "ivr1"))
        self.ivr_sock.expect(lambda f, h, b: f.startswith("ACK "), "ACK of the 487")
        self.daemon.wait_for_log(msg="ring timeout", since=mark)
        self.assert_idle()

    # --- a call ---

    def answer(self):
        """Leg B rings and answers; leg A gets the 200 and ACKs it."""
        inv, _, ihdrs, _ = self.ivr_invite()
        self.ivr_sock.send(respond(inv, 200, "OK", "ivr1",
                                   "Contact: <sip:ivr@127.0.0.1:%d>" % self.ivr_peer, ANSWER))
        self.ivr_sock.expect(lambda f, h, b: f.startswith("ACK "), "ACK on leg B")
        raw, first, hdrs, body = self.carrier.final()
        self.assertEqual(status(first), 200)
        self.assertIn("RTP/SAVP", body)
        self.assertEqual(len(re.findall(r"a=crypto:", body)), 1)
        self.carrier.ack()
        return inv, ihdrs

    def reinvite(self, body=OFFER, method="INVITE"):
        """The carrier's re-INVITE (or UPDATE) in the call; returns the
        request leg B gets."""
        self.carrier.cseq += 1
        self.carrier_sock.send(self.carrier.request(method, cseq=self.carrier.cseq,
                                                    extra="Contact: <sip:carrier@127.0.0.1>",
                                                    body=body), self.carrier.daemon)
        req, first, hdrs, sdp = self.ivr_sock.expect(
            lambda f, h, b: f.startswith(method + " "), method + " on leg B")
        return req, hdrs, sdp

    def final_to_carrier(self, method="INVITE"):
        return self.carrier_sock.expect(
            lambda f, h, b: (status(f) or 0) >= 200 and h["cseq"][0].endswith(method),
            "final response to the " + method)

    def hang_up(self):
        self.carrier.bye()
        bye, _, _, _ = self.ivr_sock.expect(lambda f, h, b: f.startswith("BYE "),
                                            "BYE on leg B")
        self.ivr_sock.send(respond(bye, 200, "OK"))
        self.assert_idle()

    def test_reinvite_hold_and_resume_keep_the_keys(self):
        self.start()
        self.carrier.invite()
        _, _, _, first_answer = self.answer_with_body()
        key = re.search(r"inline:(\S+)", first_answer).group(1)
        for direction, answer_dir in (("sendonly", "recvonly"), ("sendrecv", "sendrecv")):
            req, hdrs, sdp = self.reinvite(OFFER + "a=%s\r\n" % direction)
            # leg B: its own dialog, plain RTP, the direction kept, our Contact
            self.assertIn("RTP/AVP", sdp)
            self.assertNotIn("a=crypto", sdp)
            self.assertIn("a=%s" % direction, sdp)
            self.assertNotIn(self.carrier.call_id.encode(), req)
            self.assertIn("@127.0.0.1:%d" % self.ivr, hdrs["contact"][0])
            self.ivr_sock.send(respond(req, 200, "OK", extra="Contact: <sip:ivr@127.0.0.1:%d>"
                                       % self.ivr_peer,
                                       body=ANSWER + "a=%s\r\n" % answer_dir))
            self.ivr_sock.expect(lambda f, h, b: f.startswith("ACK "), "ACK on leg B")
            _, first, rhdrs, body = self.final_to_carrier()
            self.assertEqual(status(first), 200)
            self.assertIn("RTP/SAVP", body)
            self.assertIn("a=%s" % answer_dir, body)
            # rekey = keep: our key is the one of the first answer
            self.assertEqual(re.search(r"inline:(\S+)", body).group(1), key)
            self.carrier_sock.send(self.carrier.request("ACK", cseq=self.carrier.cseq),
                                   self.carrier.daemon)
        self.assertIsNone(self.ivr_sock.recv(0.3), "the carrier's ACK stays on leg A")
        self.hang_up()

    def answer_with_body(self):
        inv, _, ihdrs, _ = self.ivr_invite()
        self.last_ivr_invite_hdrs = ihdrs
        self.ivr_sock.send(respond(inv, 200, "OK", "ivr1",
                                   "Contact: <sip:ivr@127.0.0.1:%d>" % self.ivr_peer, ANSWER))
        self.ivr_sock.expect(lambda f, h, b: f.startswith("ACK "), "ACK on leg B")
        raw, first, hdrs, body = self.carrier.final()
        self.assertEqual(status(first), 200)
        self.carrier.ack()
        return raw, first, hdrs, body

    def test_identical_refresh_identical_answer_and_491_relayed(self):
        self.start()
        self.carrier.invite()
        _, _, _, first_answer = self.answer_with_body()
        # a session refresh with the very same SDP: the very same answer
        req, _, sdp = self.reinvite()
        self.ivr_sock.send(respond(req, 200, "OK", extra="Contact: <sip:ivr@127.0.0.1:%d>"
                                   % self.ivr_peer, body=ANSWER))
        self.ivr_sock.expect(lambda f, h, b: f.startswith("ACK "), "ACK on leg B")
        _, first, _, body = self.final_to_carrier()
        self.assertEqual(body, first_answer)  # o= version and key unchanged
        self.carrier_sock.send(self.carrier.request("ACK", cseq=self.carrier.cseq),
                               self.carrier.daemon)
        # a 491 from the IVR is relayed, not retried by srtpbridge
        req, _, _ = self.reinvite(OFFER + "a=sendonly\r\n")
        self.ivr_sock.send(respond(req, 491, "Request Pending"))
        self.ivr_sock.expect(lambda f, h, b: f.startswith("ACK "), "ACK of the 491")
        _, first, _, _ = self.final_to_carrier()
        self.assertEqual(status(first), 491)
        self.carrier_sock.send(self.carrier.request("ACK", cseq=self.carrier.cseq),
                               self.carrier.daemon)
        self.assertIsNone(self.ivr_sock.recv(0.5), "no retry on leg B")
        self.hang_up()

    def test_offerless_reinvite(self):
        # CUBE and Avaya on transfer: a re-INVITE without SDP asks for an
        # offer; the IVR's comes back in our 200 with our key kept, and the
        # answer in the carrier's ACK reaches the IVR in ours
        self.start()
        self.carrier.invite()
        _, _, _, first_answer = self.answer_with_body()
        key = re.search(r"inline:(\S+)", first_answer).group(1)
        req, hdrs, sdp = self.reinvite(body="")
        self.assertEqual(sdp, "")
        self.ivr_sock.send(respond(req, 200, "OK", extra="Contact: <sip:ivr@127.0.0.1:%d>"
                                   % self.ivr_peer, body=ANSWER))
        self.assertIsNone(self.ivr_sock.recv(0.3), "leg B's ACK waits for the answer")
        _, first, _, offer = self.final_to_carrier()
        self.assertEqual(status(first), 200)
        self.assertIn("RTP/SAVP", offer)
        self.assertIn("inline:" + key, offer)
        self.carrier_sock.send(self.carrier.request("ACK", cseq=self.carrier.cseq, body=OFFER),
                               self.carrier.daemon)
        _, _, ahdrs, abody = self.ivr_sock.expect(lambda f, h, b: f.startswith("ACK "),
                                                  "ACK with the answer on leg B")
        self.assertIn("RTP/AVP", abody)
        self.assertNotIn("a=crypto", abody)
        rc, calls = ctl(self.ctl_sock, "calls")
        self.assertEqual(calls["calls"][0]["state"], "confirmed")
        self.hang_up()

    def test_offerless_reinvite_unacceptable_answer_acks_then_byes(self):
        self.start()
        self.carrier.invite()
        self.answer_with_body()
        req, _, _ = self.reinvite(body="")
        self.ivr_sock.send(respond(req, 200, "OK", extra="Contact: <sip:ivr@127.0.0.1:%d>"
                                   % self.ivr_peer, body=ANSWER))
        self.final_to_carrier()
        plain = OFFER.replace("RTP/SAVP", "RTP/AVP").split("a=crypto")[0]
        self.carrier_sock.send(self.carrier.request("ACK", cseq=self.carrier.cseq, body=plain),
                               self.carrier.daemon)
        _, _, _, abody = self.ivr_sock.expect(lambda f, h, b: f.startswith("ACK "),
                                              "ACK on leg B")
        self.assertEqual(abody, "")
        bye, _, bhdrs, _ = self.ivr_sock.expect(lambda f, h, b: f.startswith("BYE "),
                                                "BYE on leg B")
        self.assertRegex(bhdrs["reason"][0], r'^SIP;cause=488;text="')
        self.ivr_sock.send(respond(bye, 200, "OK"))
        _, _, chdrs, _ = self.carrier_sock.expect(lambda f, h, b: f.startswith("BYE "),
                                                  "BYE on leg A")
        self.assertRegex(chdrs["reason"][0], r'^SIP;cause=488;text="')
        self.assert_idle()

    def test_reinvite_refused_call_goes_on(self):
        self.start()
        self.carrier.invite()
        self.answer()
        req, _, _ = self.reinvite()
        self.ivr_sock.send(respond(req, 488, "Not Acceptable Here",
                                   extra='Reason: Q.850;cause=88;text="Incompatible"'))
        self.ivr_sock.expect(lambda f, h, b: f.startswith("ACK "), "ACK of the 488")
        _, first, hdrs, _ = self.final_to_carrier()
        self.assertEqual(status(first), 488)
        self.assertEqual(hdrs["reason"], ['Q.850;cause=88;text="Incompatible"'])
        self.carrier_sock.send(self.carrier.request("ACK", cseq=self.carrier.cseq),
                               self.carrier.daemon)
        rc, calls = ctl(self.ctl_sock, "calls")
        self.assertEqual(len(calls["calls"]), 1)
        self.assertEqual(calls["calls"][0]["state"], "confirmed")
        self.hang_up()

    def test_t38_reinvite_refused_with_304_call_goes_on(self):
        self.start()
        self.carrier.invite()
        self.answer()
        t38 = ("v=0\r\no=carrier 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
               "t=0 0\r\nm=image 40002 udptl t38\r\na=T38FaxVersion:0\r\n")
        self.carrier.cseq += 1
        self.carrier_sock.send(self.carrier.request("INVITE", cseq=self.carrier.cseq,
                                                    extra="Contact: <sip:carrier@127.0.0.1>",
                                                    body=t38), self.carrier.daemon)
        _, first, hdrs, _ = self.final_to_carrier()
        self.assertEqual(status(first), 488)
        self.assertRegex(hdrs["warning"][0], r'^304 srtpbridge "T\.38')
        self.carrier_sock.send(self.carrier.request("ACK", cseq=self.carrier.cseq),
                               self.carrier.daemon)
        self.assertIsNone(self.ivr_sock.recv(0.3), "nothing of it reaches leg B")
        rc, calls = ctl(self.ctl_sock, "calls")
        self.assertEqual(calls["calls"][0]["state"], "confirmed")
        # and the call still takes an audio re-offer
        req, _, _ = self.reinvite()
        self.ivr_sock.send(respond(req, 200, "OK", extra="Contact: <sip:ivr@127.0.0.1:%d>"
                                   % self.ivr_peer, body=ANSWER))
        self.ivr_sock.expect(lambda f, h, b: f.startswith("ACK "), "ACK on leg B")
        _, first, _, _ = self.final_to_carrier()
        self.assertEqual(status(first), 200)
        self.carrier_sock.send(self.carrier.request("ACK", cseq=self.carrier.cseq),
                               self.carrier.daemon)
        self.hang_up()

    def test_info_and_options_relayed_in_the_call(self):
        self.start()
        self.carrier.invite()
        self.answer()
        dtmf = "Signal=5\r\nDuration=160\r\n"
        self.carrier.cseq += 1
        msg = self.carrier.request("INFO", cseq=self.carrier.cseq)
        msg = msg.replace(b"Content-Length: 0\r\n",
                          ("Content-Type: application/dtmf-relay\r\nX-Carrier-Secret: s\r\n"
                           "Content-Length: %d\r\n" % len(dtmf)).encode()) + dtmf.encode()
        self.carrier_sock.send(msg, self.carrier.daemon)
        req, _, hdrs, body = self.ivr_sock.expect(lambda f, h, b: f.startswith("INFO "),
                                                  "INFO on leg B")
        self.assertEqual(body, dtmf)
        self.assertEqual(hdrs["content-type"], ["application/dtmf-relay"])
        self.assertNotIn("x-carrier-secret", hdrs)
        self.assertNotIn(self.carrier.call_id.encode(), req)
        self.ivr_sock.send(respond(req, 200, "OK"))
        _, first, _, _ = self.final_to_carrier("INFO")
        self.assertEqual(status(first), 200)
        # an UPDATE without SDP (a session refresh) crosses as it is
        self.carrier.cseq += 1
        self.carrier_sock.send(self.carrier.request("UPDATE", cseq=self.carrier.cseq,
                                                    extra="Contact: <sip:carrier@127.0.0.1>"),
                               self.carrier.daemon)
        req, _, _, body = self.ivr_sock.expect(lambda f, h, b: f.startswith("UPDATE "),
                                               "UPDATE on leg B")
        self.assertEqual(body, "")
        self.ivr_sock.send(respond(req, 200, "OK"))
        _, first, _, _ = self.final_to_carrier("UPDATE")
        self.assertEqual(status(first), 200)
        # OPTIONS within the dialog is answered by the far end: its 405 comes back
        self.carrier.cseq += 1
        self.carrier_sock.send(self.carrier.request("OPTIONS", cseq=self.carrier.cseq),
                               self.carrier.daemon)
        req, _, _, _ = self.ivr_sock.expect(lambda f, h, b: f.startswith("OPTIONS "),
                                            "OPTIONS on leg B")
        self.ivr_sock.send(respond(req, 405, "Method Not Allowed"))
        _, first, _, _ = self.final_to_carrier("OPTIONS")
        self.assertEqual(status(first), 405)
        self.hang_up()

    def test_second_reinvite_before_the_first_is_answered_is_500(self):
        self.start()
        self.carrier.invite()
        self.answer()
        first_req, _, _ = self.reinvite()
        self.carrier.cseq += 1
        self.carrier_sock.send(self.carrier.request("INVITE", cseq=self.carrier.cseq,
                                                    extra="Contact: <sip:carrier@127.0.0.1>",
                                                    body=OFFER), self.carrier.daemon)
        _, first, hdrs, _ = self.carrier_sock.expect(lambda f, h, b: status(f) == 500, "500")
        self.assertRegex(hdrs["retry-after"][0], r"^([0-9]|10)$")
        self.assertIsNone(self.ivr_sock.recv(0.3), "the second one stays on leg A")
        self.ivr_sock.send(respond(first_req, 200, "OK",
                                   extra="Contact: <sip:ivr@127.0.0.1:%d>" % self.ivr_peer,
                                   body=ANSWER))
        self.ivr_sock.expect(lambda f, h, b: f.startswith("ACK "), "ACK on leg B")
        self.carrier_sock.expect(lambda f, h, b: status(f) == 200, "200 for the first")
        self.carrier_sock.send(self.carrier.request("ACK", cseq=self.carrier.cseq - 1),
                               self.carrier.daemon)
        self.hang_up()

    def test_100rel_required_is_420(self):
        self.start()
        self.carrier.invite(extra="Contact: <sip:carrier@127.0.0.1>\r\nRequire: 100rel\r\n"
                                  "Supported: 100rel, timer")
        _, first, hdrs, _ = self.carrier.final()
        self.assertEqual(status(first), 420)
        self.assertEqual(hdrs["unsupported"], ["100rel"])
        self.assertIsNone(self.ivr_sock.recv(0.3))
        # Supported: 100rel alone is fine, and never reaches leg B
        self.carrier = Carrier(self.carrier_sock, self.port)
        self.carrier.invite(extra="Contact: <sip:carrier@127.0.0.1>\r\nSupported: 100rel")
        inv, _, ihdrs, _ = self.ivr_invite()
        self.assertNotIn("100rel", " ".join(ihdrs.get("supported", [])))
        self.assertNotIn("require", ihdrs)
        self.ivr_sock.send(respond(inv, 486, "Busy Here", "ivr1"))
        self.carrier.final()
        self.carrier.ack()
        self.assert_idle()

    def late_offer_call(self):
        """A late-offer call up to the carrier's 200: returns (IVR's INVITE,
        the carrier's 200 body)."""
        self.carrier.invite(body="")
        inv, _, ihdrs, ibody = self.ivr_invite()
        self.assertEqual(ibody, "")
        self.assertNotIn("content-type", ihdrs)
        self.ivr_sock.send(respond(inv, 200, "OK", "ivr1",
                                   "Contact: <sip:ivr@127.0.0.1:%d>" % self.ivr_peer, ANSWER))
        self.assertIsNone(self.ivr_sock.recv(0.3), "leg B's ACK waits for leg A's answer")
        _, first, hdrs, body = self.carrier.final()
        self.assertEqual(status(first), 200)
        return inv, body

    def test_late_offer(self):
        self.start()
        _, offer = self.late_offer_call()
        # our offer to the carrier: RTP/SAVP with every allowed suite
        self.assertIn("RTP/SAVP", offer)
        self.assertEqual(re.findall(r"a=crypto:(\d) (\S+)", offer),
                         [("1", "AES_CM_128_HMAC_SHA1_80"), ("2", "AES_CM_128_HMAC_SHA1_32")])
        answer = OFFER  # one line, tag 1, a key of the carrier's
        self.carrier_sock.send(self.carrier.request("ACK", cseq=1, body=answer),
                               self.carrier.daemon)
        _, _, ahdrs, abody = self.ivr_sock.expect(lambda f, h, b: f.startswith("ACK "),
                                                  "ACK with the answer on leg B")
        self.assertIn("RTP/AVP", abody)
        self.assertNotIn("a=crypto", abody)
        self.assertEqual(ahdrs["content-type"], ["application/sdp"])
        rc, calls = ctl(self.ctl_sock, "calls")
        self.assertEqual(calls["calls"][0]["state"], "confirmed")
        self.assertEqual(calls["calls"][0]["suite"], "AES_CM_128_HMAC_SHA1_80")
        self.hang_up()

    def test_late_answer_unacceptable_acks_then_byes(self):
        self.start()
        self.late_offer_call()
        plain = OFFER.replace("RTP/SAVP", "RTP/AVP").split("a=crypto")[0]
        self.carrier_sock.send(self.carrier.request("ACK", cseq=1, body=plain),
                               self.carrier.daemon)
        _, _, _, abody = self.ivr_sock.expect(lambda f, h, b: f.startswith("ACK "),
                                              "ACK on leg B")
        self.assertEqual(abody, "")
        bye, _, bhdrs, _ = self.ivr_sock.expect(lambda f, h, b: f.startswith("BYE "),
                                                "BYE on leg B")
        self.assertRegex(bhdrs["reason"][0], r'^SIP;cause=488;text="')
        self.ivr_sock.send(respond(bye, 200, "OK"))
        _, _, chdrs, _ = self.carrier_sock.expect(lambda f, h, b: f.startswith("BYE "),
                                                  "BYE on leg A")
        self.assertRegex(chdrs["reason"][0], r'^SIP;cause=488;text="')
        rc, st = ctl(self.ctl_sock, "stats")
        self.assertEqual(st["calls"]["ended_by_srtpbridge"], 1)
        self.assert_idle()

    def test_session_timers_relayed_end_to_end(self):
        self.start()
        timers = "Supported: timer, 100rel\r\nSession-Expires: 1800;refresher=uac\r\nMin-SE: 90"
        self.carrier.invite(extra="Contact: <sip:carrier@127.0.0.1>\r\n" + timers)
        inv, _, ihdrs, _ = self.ivr_invite()
        self.assertEqual(ihdrs["session-expires"], ["1800;refresher=uac"])
        self.assertEqual(ihdrs["min-se"], ["90"])
        self.assertEqual(ihdrs["supported"], ["timer"])  # not 100rel
        self.ivr_sock.send(respond(inv, 200, "OK", "ivr1",
                                   "Contact: <sip:ivr@127.0.0.1:%d>\r\nRequire: timer\r\n"
                                   "Session-Expires: 1800;refresher=uac" % self.ivr_peer,
                                   ANSWER))
        self.ivr_sock.expect(lambda f, h, b: f.startswith("ACK "), "ACK on leg B")
        _, first, hdrs, _ = self.carrier.final()
        self.assertEqual(status(first), 200)
        self.assertEqual(hdrs["require"], ["timer"])
        self.assertEqual(hdrs["session-expires"], ["1800;refresher=uac"])
        self.carrier.ack()
        # the refresh: an UPDATE without SDP, Require: timer accepted, end to end
        self.carrier.cseq += 1
        self.carrier_sock.send(self.carrier.request(
            "UPDATE", cseq=self.carrier.cseq,
            extra="Contact: <sip:carrier@127.0.0.1>\r\nRequire: timer\r\n"
                  "Session-Expires: 1800;refresher=uac"), self.carrier.daemon)
        req, _, uhdrs, _ = self.ivr_sock.expect(lambda f, h, b: f.startswith("UPDATE "),
                                                "the refresh on leg B")
        self.assertEqual(uhdrs["session-expires"], ["1800;refresher=uac"])
        self.ivr_sock.send(respond(req, 200, "OK", extra="Require: timer\r\n"
                                   "Session-Expires: 1800;refresher=uac"))
        _, first, hdrs, _ = self.final_to_carrier("UPDATE")
        self.assertEqual(status(first), 200)
        self.assertEqual(hdrs["session-expires"], ["1800;refresher=uac"])
        self.hang_up()

    def test_422_relayed_with_min_se(self):
        self.start()
        first, hdrs = self.failure(422, "Session Interval Too Small", "Min-SE: 1800",
                                   "Contact: <sip:carrier@127.0.0.1>\r\nSupported: timer\r\n"
                                   "Session-Expires: 60")
        self.assertEqual(status(first), 422)
        self.assertEqual(hdrs["min-se"], ["1800"])
        self.assert_idle()

    def ivr_request(self, inv_hdrs, method, cseq, extra="", body="", ctype=None):
        """A request from the IVR in leg B's dialog, from the INVITE it got
        (and answered with To tag ivr1)."""
        target = re.search(r"<(sip:[^>]+)>", inv_hdrs["contact"][0]).group(1)
        lines = ["%s %s SIP/2.0" % (method, target),
                 "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%s;rport" % (
                     self.ivr_peer, uuid.uuid4().hex[:12]),
                 "Max-Forwards: 70",
                 "From: %s;tag=ivr1" % inv_hdrs["to"][0], "To: %s" % inv_hdrs["from"][0],
                 "Call-ID: %s" % inv_hdrs["call-id"][0], "CSeq: %d %s" % (cseq, method),
                 "Contact: <sip:ivr@127.0.0.1:%d>" % self.ivr_peer]
        if extra:
            lines.append(extra)
        if body:
            lines.append("Content-Type: %s" % (ctype or "application/sdp"))
        lines.append("Content-Length: %d" % len(body.encode()))
        self.ivr_sock.send(("\r\n".join(lines) + "\r\n\r\n" + body).encode(),
                           ("127.0.0.1", self.ivr))

    def test_ivr_hold_and_a_carrier_rekey_in_ctl(self):
        # hold from the IVR side: the carrier's re-INVITE carries the key we
        # answered with at first; the carrier answers with a new key of its
        # own, which srtpbridgectl shows as the peer's key epoch 2
        self.start()
        self.carrier.invite()
        _, _, _, first_answer = self.answer_with_body()
        ours = re.search(r"inline:(\S+)", first_answer).group(1)
        inv_hdrs = self.last_ivr_invite_hdrs
        # the carrier's ACK and the IVR's re-INVITE travel on different
        # sockets: before the ACK is in, the re-INVITE would rightly get 491
        self.wait_confirmed()
        self.ivr_request(inv_hdrs, "INVITE", 1, body=ANSWER + "a=sendonly\r\n")
        reinv, _, rhdrs, offer = self.carrier_sock.expect(
            lambda f, h, b: f.startswith("INVITE "), "re-INVITE on leg A")
        self.assertIn("RTP/SAVP", offer)
        self.assertIn("a=sendonly", offer)
        self.assertIn("inline:" + ours, offer)
        new_key = "dGhpcyBpcyBhIG5ldyBrZXkgb2YgdGhlIGNhcnJpZXI"[:40]
        answer = OFFER.replace(KEY, new_key) + "a=recvonly\r\n"
        self.carrier_sock.send(respond(reinv, 200, "OK",
                                       extra="Contact: <sip:carrier@127.0.0.1:%d>"
                                       % self.peer_port, body=answer))
        self.carrier_sock.expect(lambda f, h, b: f.startswith("ACK "), "ACK on leg A")
        _, first, _, body = self.ivr_sock.expect(lambda f, h, b: status(f) == 200,
                                                 "200 on leg B")
        self.assertIn("a=recvonly", body)
        self.assertNotIn("a=crypto", body)
        self.ivr_request(inv_hdrs, "ACK", 1)
        rc, call = ctl(self.ctl_sock, "call", self.carrier.call_id)
        self.assertEqual(rc, 0)
        self.assertEqual(call["call"]["leg_a"]["streams"][0]["peer_key_epoch"], 2)
        self.hang_up()

    def test_refer_blind_transfer_relayed_with_notify(self):
        self.start()
        self.carrier.invite()
        _, ihdrs = self.answer()
        self.ivr_request(ihdrs, "REFER", 1, "Refer-To: <sip:+4930999@10.20.30.40:5080;user=phone>"
                         "\r\nReferred-By: <sip:ivr@10.20.30.40>")
        refer, _, rhdrs, _ = self.carrier_sock.expect(lambda f, h, b: f.startswith("REFER "),
                                                      "REFER on leg A")
        # the target's user at srtpbridge's own address on the carrier trunk
        self.assertEqual(rhdrs["refer-to"], ["<sip:+4930999@127.0.0.1:%d>" % self.port])
        self.assertNotIn("referred-by", rhdrs)
        self.assertNotIn(b"10.20.30.40", refer)
        self.carrier_sock.send(respond(refer, 202, "Accepted"))
        self.ivr_sock.expect(lambda f, h, b: status(f) == 202, "202 on leg B")
        frag = "SIP/2.0 200 OK\r\n"
        self.carrier.cseq += 1
        notify = self.carrier.request("NOTIFY", cseq=self.carrier.cseq,
                                      extra="Event: refer\r\nSubscription-State: terminated;"
                                            "reason=noresource")
        notify = notify.replace(b"Content-Length: 0\r\n",
                                ("Content-Type: message/sipfrag\r\nContent-Length: %d\r\n"
                                 % len(frag)).encode()) + frag.encode()
        self.carrier_sock.send(notify, self.carrier.daemon)
        n, _, nhdrs, nbody = self.ivr_sock.expect(lambda f, h, b: f.startswith("NOTIFY "),
                                                  "NOTIFY on leg B")
        self.assertEqual(nbody, frag)
        self.assertEqual(nhdrs["event"], ["refer"])
        self.assertEqual(nhdrs["content-type"], ["message/sipfrag"])
        self.ivr_sock.send(respond(n, 200, "OK"))
        _, first, _, _ = self.final_to_carrier("NOTIFY")
        self.assertEqual(status(first), 200)
        self.hang_up()

    def test_refer_attended_is_501(self):
        self.start()
        self.carrier.invite()
        _, ihdrs = self.answer()
        self.ivr_request(ihdrs, "REFER", 1, "Refer-To: <sip:+4930999@10.20.30.40?Replaces="
                         "abc%3Bto-tag%3D1%3Bfrom-tag%3D2>")
        _, first, hdrs, _ = self.ivr_sock.expect(lambda f, h, b: status(f) == 501, "501")
        self.assertIn("blind transfer", hdrs["warning"][0])
        self.assertIsNone(self.carrier_sock.recv(0.3))
        self.hang_up()

    def test_update_and_glare(self):
        self.start()
        self.carrier.invite()
        self.answer()
        req, _, sdp = self.reinvite(method="UPDATE")
        self.assertIn("RTP/AVP", sdp)
        # while it is pending, a re-INVITE from the other side is glare: 491
        first, hdrs, _ = parse(req)
        glare = ("INVITE sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKglare1;"
                 "rport\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: 7 INVITE\r\n"
                 "Contact: <sip:ivr@127.0.0.1:%d>\r\nContent-Type: application/sdp\r\n"
                 "Content-Length: %d\r\n\r\n%s" % (
                     re.search(r"<sip:([^>;]+)", hdrs["contact"][0]).group(1), self.ivr_peer,
                     hdrs["to"][0], hdrs["from"][0], hdrs["call-id"][0], self.ivr_peer,
                     len(ANSWER), ANSWER)).encode()
        self.ivr_sock.send(glare, ("127.0.0.1", self.ivr))
        self.ivr_sock.expect(lambda f, h, b: status(f) == 491, "491 for the crossing offer")
        self.ivr_sock.send(respond(req, 200, "OK", extra="Contact: <sip:ivr@127.0.0.1:%d>"
                                   % self.ivr_peer, body=ANSWER))
        _, first, _, body = self.final_to_carrier("UPDATE")
        self.assertEqual(status(first), 200)
        self.assertIn("a=crypto", body)
        self.hang_up()

    def test_drain_keeps_the_call_refuses_new_ones(self):
        self.start()
        self.carrier.invite()
        self.answer()
        rc, _ = ctl(self.ctl_sock, "drain")
        self.assertEqual(rc, 0)
        second = Carrier(self.carrier_sock, self.port)
        second.invite()
        _, first, hdrs, _ = second.final()
        self.assertEqual(status(first), 503)
        self.assertNotIn("retry-after", hdrs)
        self.assertTrue(self.daemon.running(), "the call in progress keeps the daemon")
        self.carrier.bye()
        bye, _, _, _ = self.ivr_sock.expect(lambda f, h, b: f.startswith("BYE "), "BYE on B")
        self.ivr_sock.send(respond(bye, 200, "OK"))
        self.assertEqual(self.daemon.wait(timeout=10), 0)

    def test_drain_timeout_ends_calls_with_a_reason(self):
        self.start(drain=1)
        self.carrier.invite()
        self.answer()
        ringing = Carrier(self.carrier_sock, self.port)
        ringing.invite()
        inv2, _, _, _ = self.ivr_invite()
        self.ivr_sock.send(respond(inv2, 180, "Ringing", "ivr2",
                                   "Contact: <sip:ivr@127.0.0.1:%d>" % self.ivr_peer))
        self.carrier_sock.expect(lambda f, h, b: status(f) == 180, "180 of the second call")
        self.daemon.send_signal(__import__("signal").SIGTERM)
        want = 'SIP;cause=503;text="srtpbridge stopped"'
        # the answered call: BYE on both legs; the ringing one: 503 to leg A,
        # CANCEL to leg B
        got = {}
        for _ in range(2):
            _, first, hdrs, _ = self.carrier_sock.expect(
                lambda f, h, b: f.startswith("BYE ") or status(f) == 503,
                "BYE and 503 on leg A", timeout=5)
            got[first.split(" ")[0] if first.startswith("BYE") else "503"] = hdrs["reason"]
        self.assertEqual(got, {"BYE": [want], "503": [want]})
        got = {}
        for _ in range(2):
            _, first, hdrs, _ = self.ivr_sock.expect(
                lambda f, h, b: f.startswith(("BYE ", "CANCEL ")), "BYE and CANCEL on leg B")
            got[first.split(" ")[0]] = hdrs["reason"]
        self.assertEqual(got, {"BYE": [want], "CANCEL": [want]})
        self.assertEqual(self.daemon.wait(timeout=10), 0)

    def test_tcp_on_both_legs(self):
        self.start(tp="tcp")
        self.carrier.invite(extra="Contact: <sip:carrier@127.0.0.1;transport=tcp>")
        inv, ihdrs = self.answer()
        self.assertTrue(ihdrs["via"][0].startswith("SIP/2.0/TCP 127.0.0.1:%d;" % self.ivr))
        self.assertIn("transport=tcp", ihdrs["contact"][0])
        self.carrier.bye()
        bye, _, _, _ = self.ivr_sock.expect(lambda f, h, b: f.startswith("BYE "), "BYE on B")
        self.ivr_sock.send(respond(bye, 200, "OK"))
        self.assert_idle()

    def test_peer_by_host_name(self):
        self.start(ivr_host="localhost")
        self.daemon.wait_for_log(msg="peer name resolved", host="localhost")
        self.carrier.invite()
        inv, _, _, _ = self.ivr_invite()
        self.assertTrue(inv.startswith(b"INVITE sip:8011000@localhost:%d " % self.ivr_peer))
        self.ivr_sock.send(respond(inv, 486, "Busy Here", "ivr1"))
        _, first, _, _ = self.carrier.final()
        self.assertEqual(status(first), 486)
        self.carrier.ack()
        self.assert_idle()


if __name__ == "__main__":
    unittest.main(verbosity=2)
