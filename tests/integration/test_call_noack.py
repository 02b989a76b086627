"""Leg A never ACKs srtpbridge's 200: the 200 is retransmitted from T1
(500 ms) doubling to T2 (4 s) for 64*T1 (32 s), then both legs get a BYE
with a Reason header, and the call and its ports are gone. About 35 s: a
ctest test of its own, so that it runs in parallel with test_call.py
(whose helpers it uses)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree for test_call
import harness  # noqa: E402
from test_call import (LOOP, S32, S80, SIP_REASON, USER, CallTestCase, crypto, dump,  # noqa: E402
                       new_key, reqs, resps, savp_offer)

T1, T2, TIMER_H = 0.5, 4.0, 32.0


class NoAckTest(CallTestCase):
    sipp_timeout = 60

    def test_200_never_acked(self):
        v = self.start()
        k80, k32 = new_key(), new_key()
        ivr = self.answer("call-ivr-uas.xml", v["IVR_PEER"])
        carrier = self.call("call-carrier-uac-noack.xml", v["CARRIER_LISTEN"],
                            v["CARRIER_PEER"],
                            keys=savp_offer(crypto(1, S80, k80), crypto(2, S32, k32)))
        self.finish(carrier, ivr)
        stats = self.wait_idle()
        self.assertEqual(stats["calls"]["ack_timeouts"], 1, stats)
        cm, im = carrier.messages(), ivr.messages()
        a = reqs(cm, "INVITE", "sent")[0]
        b = self.one(reqs(im, "INVITE", "received"), "INVITEs at the IVR", im)
        self.check_leg_b_invite(a, b, USER, v["IVR_LISTEN"], v["IVR_PEER"])

        # the 200 and its retransmissions: the same message, T1 doubling to T2
        oks = resps(cm, 200, direction="received")
        self.assertGreaterEqual(len(oks), 8, "200s at the carrier:\n" + dump(cm))
        for ok in oks[1:]:
            self.assertEqual(ok.raw, oks[0].raw, "a retransmission is the same 200")
        times = [ok.time for ok in oks]
        gaps = [(t2 - t1).total_seconds() for t1, t2 in zip(times, times[1:])]
        for i, gap in enumerate(gaps):
            want = min(T1 * 2 ** i, T2)
            self.assertTrue(want * 0.8 - 0.05 <= gap <= want * 1.25 + 0.3,
                            "retransmission %d came %.3f s after the one before, not %.1f s: %s"
                            % (i + 1, gap, want, ["%.3f" % g for g in gaps]))

        # then a BYE to the carrier, with a Reason, in leg A's dialog
        bye_a = self.one(reqs(cm, "BYE", "received"), "BYEs at the carrier", cm)
        waited = (bye_a.time - times[0]).total_seconds()
        self.assertTrue(TIMER_H - 1 <= waited <= TIMER_H + 4,
                        "BYE %.1f s after the first 200, not 64*T1 = 32 s" % waited)
        ctx = "\n" + bye_a.raw.decode()
        self.assertEqual(bye_a.call_id, a.call_id, ctx)
        self.assertEqual(bye_a.from_tag, oks[0].to_tag, ctx)
        self.assertEqual(bye_a.to_tag, a.from_tag, ctx)
        self.assertEqual(bye_a.uri, "sip:carrier-contact@%s:%d" % (LOOP, v["CARRIER_PEER"]), ctx)
        self.assertEqual(bye_a.cseq[1], "BYE", ctx)
        self.assertRegex(self.one(bye_a.hdrs("Reason"), "Reason of the BYE to the carrier"),
                         SIP_REASON)

        # and one to the IVR, whose 200 srtpbridge had ACKed at once
        ivr_tag = resps(im, 200, direction="sent")[0].to_tag
        target = "sip:ivr@%s:%d" % (LOOP, v["IVR_PEER"])
        ack = self.one(reqs(im, "ACK", "received"), "ACKs at the IVR", im)
        self.check_in_dialog(ack, b, target, ivr_tag, v["IVR_LISTEN"])
        self.assertLess((ack.time - resps(im, 200, direction="sent")[0].time).total_seconds(), 1)
        bye_b = self.one(reqs(im, "BYE", "received"), "BYEs at the IVR", im)
        self.check_in_dialog(bye_b, b, target, ivr_tag, v["IVR_LISTEN"])
        self.assertRegex(self.one(bye_b.hdrs("Reason"), "Reason of the BYE to the IVR"),
                         SIP_REASON)
        self.assertEqual(len(resps(cm, 200, "BYE", "sent")), 1)


if __name__ == "__main__":
    harness.main()
