"""Back-to-back calls through the daemon, with sipp as the carrier and as the
IVR (scenarios in sipp/call-*.xml): carrier -> IVR and IVR -> carrier,
early media, routing rules, admission (max_calls), offers without an
acceptable crypto suite, CANCEL before and after a provisional and crossing
a 200, BYE from either side, and topology hiding. Every message both sipp
processes sent and received is read back from their -trace_msg files and
checked header by header and SDP line by SDP line; srtpbridgectl shows the
call while it is up, and no call and no media port once it is over.

The 200 that leg A never ACKs (32 s of retransmissions) is in
test_call_noack.py, a ctest test of its own that runs in parallel."""

import base64
import json
import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SIPP, DaemonTestCase, binary, run  # noqa: E402

USER = "8011000"
LOOP = "127.0.0.1"

CONFIG = """\
[global]
log_level = debug
sip_trace = yes
control_socket = @CONTROL_SOCKET@
metrics_listen =
media_ports = @MEDIA_PORTS@
media_port_quarantine = 0
media_timeout = 3600
@GLOBAL_EXTRA@

[trunk:carrier]
listen = udp:127.0.0.1:@CARRIER_LISTEN@
peers = udp:127.0.0.1:@CARRIER_PEER@
options_interval = 0
@CARRIER_EXTRA@

[trunk:ivr]
listen = udp:127.0.0.1:@IVR_LISTEN@
peers = udp:127.0.0.1:@IVR_PEER@
srtp = off
options_interval = 0
@IVR_EXTRA@
@MORE@
"""

# A third trunk and two rules: the first rule (in file order) wins.
ROUTING = """
[trunk:ivr2]
listen = udp:127.0.0.1:@IVR2_LISTEN@
peers = udp:127.0.0.1:@IVR2_PEER@
srtp = off
options_interval = 0

[route:first]
from = carrier
match = ^44
to = ivr2

[route:second]
from = carrier
match = ^4444$
to = ivr
"""

S80 = "AES_CM_128_HMAC_SHA1_80"
S32 = "AES_CM_128_HMAC_SHA1_32"

# What the carrier's INVITE (call-carrier-uac.xml) carries that must never
# reach the IVR side.
CARRIER_TOPOLOGY = ("proxy.carrier.example", "rr.carrier.example", "carrier-contact",
                    "X-Carrier-Secret", "carrier-internal-7f3a", "CarrierSwitch",
                    "192.0.2.10")
CANCEL_REASON = 'Q.850;cause=16;text="Normal call clearing"'
SIP_REASON = re.compile(r'^SIP\s*;\s*cause=\d{3}\s*;\s*text="[^"]+"$')
WARNING = re.compile(r'^[34]\d\d \S+ "[^"]+"$')


def new_key():
    """An SDES inline key: 30 random bytes (16 key + 14 salt), 40 base64 chars."""
    return base64.b64encode(os.urandom(30)).decode()


def crypto(tag, suite, key):
    return "a=crypto:%d %s inline:%s" % (tag, suite, key)


def savp_offer(*lines):
    """-key values for call-carrier-uac*.xml: RTP/SAVP and two a= lines."""
    lines = list(lines) + ["a=maxptime:150"] * (2 - len(lines))
    return {"proto": "RTP/SAVP", "attr1": lines[0], "attr2": lines[1]}


class Sdp:
    """The few things of an SDP body these tests look at (one m= line)."""

    def __init__(self, text):
        self.text = text
        self.lines = [l for l in re.split(r"\r?\n", text) if l]
        self.m_lines = [l for l in self.lines if l.startswith("m=")]
        self.media = self.port = self.proto = None
        self.fmts = []
        if self.m_lines:
            parts = self.m_lines[0][2:].split()
            self.media, self.port, self.proto = parts[0], int(parts[1]), parts[2]
            self.fmts = parts[3:]
        self.c = [l[2:] for l in self.lines if l.startswith("c=")]
        self.o = [l[2:] for l in self.lines if l.startswith("o=")]
        self.attrs = [l[2:] for l in self.lines if l.startswith("a=")]
        self.cryptos = []
        for a in self.attrs:
            m = re.match(r"^crypto:(\d+) (\S+) inline:([^|\s]+)(\S*)(.*)$", a)
            if a.startswith("crypto:"):
                self.cryptos.append((int(m.group(1)), m.group(2), m.group(3), m.group(4))
                                    if m else (None, None, None, a))


NAME_ADDR = re.compile(r'^\s*(?:"(?P<quoted>[^"]*)"|(?P<token>[^<"]*?))\s*'
                       r'<(?P<scheme>sips?):(?:(?P<user>[^@>;]*)@)?(?P<host>[^:;>]+)'
                       r'(?::(?P<port>\d+))?(?P<params>[^>]*)>')


def name_addr(value):
    """(display name, user, host, port) of a From/To/Contact value."""
    m = NAME_ADDR.match(value or "")
    if not m:
        return None
    display = m.group("quoted") if m.group("quoted") is not None else (m.group("token") or "")
    port = int(m.group("port")) if m.group("port") else None
    return display.strip(), m.group("user"), m.group("host"), port


def body_bytes(msg):
    head, sep, body = msg.raw.partition(b"\r\n\r\n")
    return body if sep else b""


def reqs(msgs, method, direction=None):
    return [m for m in msgs if m.is_request and m.method == method
            and (direction is None or m.direction == direction)]


def resps(msgs, status=None, method="INVITE", direction=None):
    return [m for m in msgs if not m.is_request and (status is None or m.status == status)
            and m.cseq_method == method and (direction is None or m.direction == direction)]


def dump(msgs):
    return "\n".join("%s %s %s\n%s" % (m.time.time(), m.direction, "-" * 20,
                                      m.raw.decode("utf-8", "replace")) for m in msgs)


@unittest.skipIf(SIPP is None, "sipp is not installed")
class CallTestCase(DaemonTestCase):
    """Starts the daemon with CONFIG and runs sipp peers against it."""

    # s, a sipp's whole life unless a test says otherwise: calls here last
    # under 1 s beyond their pauses, and a file of failing calls still ends
    # well within ctest's 120 s (SRTPBRIDGE_TEST_TIMEOUT scales it)
    sipp_timeout = max(5.0, harness.TIMEOUT / 2)

    def start(self, more="", **overrides):
        harness.start_with_fresh_ports(lambda: self._launch(more, **overrides))
        self.sipps = []
        return self.v

    def _launch(self, more="", **overrides):
        q = harness.quiet_port
        self.v = harness.minimal_values(self.tmp, MEDIA_PORTS=harness.free_media_range(64),
                                        CARRIER_LISTEN=q(), CARRIER_PEER=q(), IVR_LISTEN=q(),
                                        IVR_PEER=q())
        self.v.update(CONTROL_SOCKET=self.tmp.join("ctl.sock"), GLOBAL_EXTRA="",
                      CARRIER_EXTRA="route = ivr", IVR_EXTRA="route = carrier", MORE="")
        if more:
            self.v.update(IVR2_LISTEN=q(), IVR2_PEER=q())
            self.v["MORE"] = harness.render(more, **self.v)
        self.v.update(overrides)
        low, high = self.v["MEDIA_PORTS"].split("-")
        self.media = range(int(low), int(high) + 1)
        path = harness.write_config(self.tmp.join("srtpbridge.ini"), CONFIG, **self.v)
        self.addCleanup(harness.release_ports)
        harness.release_ports(*[self.v[k] for k in ("CARRIER_LISTEN", "IVR_LISTEN",
                                                    "IVR2_LISTEN") if k in self.v])
        self.daemon = self.start_daemon(path)
        return self.daemon

    # --- sipp peers ---

    def _sipp(self, scenario, name, local, remote=None, timeout=None, **kw):
        s = harness.start_sipp(self, scenario, name, local,
                               remote=remote and "%s:%d" % (LOOP, remote),
                               timeout=timeout or self.sipp_timeout, **kw)
        self.sipps.append(s)
        return s

    def answer(self, scenario, port, name="ivr", **kw):
        """A UAS on port (a trunk's peer), ready for the daemon's INVITE."""
        return self._sipp(scenario, name, port, **kw).wait_bound()

    def call(self, scenario, listen, local, name="carrier", service=USER, **kw):
        """A UAC calling listen (a trunk's listen port) from local. Its
        Call-ID is known in advance: self.call_ids[name]."""
        cid = "%s-%s-%%u@%%s" % (name, os.urandom(6).hex())
        self.__dict__.setdefault("call_ids", {})[name] = cid.replace("%u", "1").replace("%s", LOOP)
        args = ["-cid_str", cid] + list(kw.pop("args", ()))
        return self._sipp(scenario, name, local, remote=listen, service=service, args=args, **kw)

    def finish(self, *sipps):
        """Waits for each sipp to end; all must exit 0 (their calls went as scripted)."""
        failed = []
        for s in sipps:
            if failed and s.running():
                # one side failed: the other would only wait for its timeout
                try:
                    s.proc.wait(timeout=2)
                except Exception:
                    s.kill()
            rc = s.wait()
            if rc != 0:
                failed.append((s, rc))
                if rc == 254:  # sipp: cannot bind; who has its ports?
                    who = harness.udp_port_owners(s.local_port)
                    if who:
                        sys.stderr.write("port %d of sipp %s is held by %s\n"
                                         % (s.local_port, s.name, who))
        if failed:
            self.fail("sipp failed: %s\n%s\n--- daemon log:\n%s" % (
                ", ".join("%s exited %d" % (s.name, rc) for s, rc in failed),
                "\n".join(s.report() for s in sipps), self.daemon.log.tail(n=60)))

    # --- srtpbridgectl ---

    def ctl(self, *args, ok=True):
        r = run([binary("srtpbridgectl"), "-s", self.v["CONTROL_SOCKET"], "--json"] + list(args),
                timeout=10)
        try:
            reply = json.loads(r.stdout)
        except ValueError:
            self.fail("srtpbridgectl %s: not JSON: %r %r" % (args, r.stdout, r.stderr))
        if ok:
            self.assertEqual(r.returncode, 0,
                             "srtpbridgectl %s: %s %s" % (args, r.stdout, r.stderr))
            self.assertIs(reply.get("ok"), True, reply)
        return reply

    def wait_idle(self):
        """Polls stats until no call and no media port is in use; returns the stats."""
        deadline = time.monotonic() + harness.TIMEOUT
        while True:
            st = self.ctl("stats")
            if st["calls_active"] == 0 and st["ports"]["in_use"] == 0:
                break
            if time.monotonic() > deadline:
                self.fail("calls or ports still in use %.0f s after the call: %s\n%s"
                          % (harness.TIMEOUT, st, self.daemon.log.tail(n=40)))
            time.sleep(0.05)
        self.assertEqual(self.ctl("calls")["calls"], [])
        self.assertEqual(st["ports"]["free"] + st["ports"].get("quarantined", 0)
                         + st["ports"].get("busy", 0), st["ports"]["total"], st)
        # the call's sockets stay open for the next call, never past the range
        self.assertGreaterEqual(st["ports"]["open"], 4, st)
        self.assertLessEqual(st["ports"]["open"], st["ports"]["total"], st)
        return st

    def wait_call_state(self, state):
        """Polls `calls` until exactly one call is listed in that state; returns it."""
        deadline = time.monotonic() + harness.TIMEOUT
        while True:
            calls = self.ctl("calls")["calls"]
            if len(calls) == 1 and calls[0].get("state") == state:
                return calls[0]
            gone = [s for s in self.sipps if s.proc.poll() not in (None, 0)]
            if time.monotonic() > deadline or gone:
                self.fail("no single call in state %r: %s%s\n%s\n--- daemon log:\n%s" % (
                    state, calls, " (sipp %s failed)" % gone[0].name if gone else "",
                    "\n".join(s.report() for s in self.sipps), self.daemon.log.tail(n=40)))
            time.sleep(0.05)

    # --- checks ---

    def one(self, items, what, msgs=()):
        self.assertEqual(len(items), 1, "%s: %d, not 1\n%s" % (what, len(items), dump(msgs)))
        return items[0]

    def check_leg_b_invite(self, a, b, user, listen, peer):
        """Leg B's INVITE b (as the callee got it) built from leg A's a (as
        the caller sent it): nothing of leg A's topology."""
        ctx = "\nleg A:\n%s\nleg B:\n%s" % (a.raw.decode(), b.raw.decode())
        self.assertEqual(b.uri, "sip:%s@%s:%d" % (user, LOOP, peer), ctx)
        vias = b.vias()
        self.assertEqual(len(vias), 1, "leg B must have exactly one Via" + ctx)
        self.assertRegex(vias[0], r"^SIP/2\.0/UDP %s:%d;" % (re.escape(LOOP), listen), ctx)
        self.assertTrue((b.branch or "").startswith("z9hG4bK"), ctx)
        self.assertRegex(vias[0], r";\s*rport(?:[;=\s]|$)", ctx)
        self.assertNotEqual(b.call_id, a.call_id, ctx)
        self.assertTrue(b.from_tag, ctx)
        self.assertNotEqual(b.from_tag, a.from_tag, ctx)
        self.assertIsNone(b.to_tag, ctx)
        self.assertEqual(b.cseq, (1, "INVITE"), ctx)
        self.assertEqual(int(b.hdr("Max-Forwards")), int(a.hdr("Max-Forwards")) - 1, ctx)
        contact = self.one(b.hdrs("Contact"), "Contact of leg B's INVITE")
        self.assertRegex(contact, r"^<sip:[^@>]+@%s:%d(;[^>]*)?>$" % (re.escape(LOOP), listen), ctx)
        self.assertEqual(int(b.hdr("Content-Length")), len(body_bytes(b)), ctx)
        fa, fb = name_addr(a.hdr("From")), name_addr(b.hdr("From"))
        self.assertEqual(fb[:2], fa[:2], "From display name and user" + ctx)
        self.assertEqual(fb[2], LOOP, "From host is the daemon's" + ctx)
        ta, tb = name_addr(a.hdr("To")), name_addr(b.hdr("To"))
        self.assertEqual(tb[:2], ta[:2], "To display name and user" + ctx)
        for name in ("Record-Route", "Route"):
            self.assertEqual(b.hdrs(name), [], name + ctx)

    def check_pass_headers(self, a, b, crossing=("P-Asserted-Identity", "Privacy", "Diversion"),
                           stopped=("X-Carrier-Secret",)):
        for name in crossing:
            self.assertTrue(a.hdrs(name), name)
            self.assertEqual(b.hdrs(name), a.hdrs(name), name)
        for name in stopped:
            self.assertEqual(b.hdrs(name), [], name)
        for v in b.hdrs("User-Agent"):
            self.assertNotIn("CarrierSwitch", v)

    def check_hidden(self, msgs, needles, side):
        """No message of msgs (one peer's whole capture) holds any needle."""
        for m in msgs:
            text = m.raw.decode("utf-8", "replace")
            for n in needles:
                self.assertNotIn(n, text, "%r reached the %s side in:\n%s" % (n, side, text))

    def check_plain_sdp(self, sdp, fmts):
        self.assertEqual(len(sdp.m_lines), 1, sdp.text)
        self.assertEqual((sdp.media, sdp.proto, sdp.fmts), ("audio", "RTP/AVP", fmts), sdp.text)
        self.assertIn(sdp.port, self.media, sdp.text)
        self.assertEqual(sdp.c, ["IN IP4 %s" % LOOP], sdp.text)
        self.assertEqual(sdp.cryptos, [], sdp.text)

    def check_key(self, keyparams, not_in=()):
        raw = base64.b64decode(keyparams + "=" * (-len(keyparams) % 4), validate=True)
        self.assertEqual(len(raw), 30, "an AES_CM_128 key and salt are 30 bytes: %r" % keyparams)
        self.assertNotIn(keyparams.rstrip("="), [k.rstrip("=") for k in not_in],
                         "srtpbridge must use keys of its own")

    def check_secure_answer(self, sdp, tag, suite, fmts, peer_keys):
        self.assertEqual(len(sdp.m_lines), 1, sdp.text)
        self.assertEqual((sdp.media, sdp.proto, sdp.fmts), ("audio", "RTP/SAVP", fmts), sdp.text)
        self.assertIn(sdp.port, self.media, sdp.text)
        self.assertEqual(sdp.c, ["IN IP4 %s" % LOOP], sdp.text)
        self.assertEqual(len(sdp.cryptos), 1, "one a=crypto line in an answer:\n" + sdp.text)
        ctag, csuite, key, rest = sdp.cryptos[0]
        self.assertEqual((ctag, csuite), (tag, suite), sdp.text)
        self.check_key(key, peer_keys)

    def check_leg_a_responses(self, a, msgs, listen, callee_tag):
        """Every response leg A got for its INVITE: 100 first, then ours
        (one To tag of our own, our Contact, leg A's Record-Route and Vias)."""
        rs = resps(msgs, direction="received")
        self.assertTrue(rs, dump(msgs))
        self.assertEqual(rs[0].status, 100, "the first response is 100 Trying\n" + dump(msgs))
        tags = set()
        for r in rs:
            ctx = "\n" + r.raw.decode()
            self.assertEqual(r.call_id, a.call_id, ctx)
            self.assertEqual(r.hdr("From"), a.hdr("From"), ctx)
            self.assertEqual(r.cseq, (1, "INVITE"), ctx)
            self.assertEqual([harness.SipMessage.param(v, "branch") for v in r.vias()],
                             [harness.SipMessage.param(v, "branch") for v in a.vias()], ctx)
            if r.status == 100:
                continue
            tags.add(r.to_tag)
            if r.status < 300:
                contact = self.one(r.hdrs("Contact"), "Contact of our %d" % r.status)
                self.assertRegex(contact, r"^<sip:[^@>]+@%s:%d(;[^>]*)?>$"
                                 % (re.escape(LOOP), listen), ctx)
                self.assertEqual(r.hdrs("Record-Route"), a.hdrs("Record-Route"), ctx)
        self.assertEqual(len(tags), 1, "one To tag on every response of leg A: %s" % tags)
        tag = tags.pop()
        self.assertTrue(tag)
        self.assertNotEqual(tag, callee_tag, "leg A's To tag is srtpbridge's own")
        return tag

    def check_in_dialog(self, req, invite, remote_target, to_tag, listen, from_tag=None):
        """A request srtpbridge sends inside the dialog of its INVITE invite
        (from the peer's capture): Call-ID, tags, CSeq above 1, one Via, the
        remote target as Request-URI."""
        ctx = "\n" + req.raw.decode()
        self.assertEqual(req.uri, remote_target, ctx)
        self.assertEqual(req.call_id, invite.call_id, ctx)
        self.assertEqual(req.from_tag, from_tag or invite.from_tag, ctx)
        self.assertEqual(req.to_tag, to_tag, ctx)
        self.assertEqual(len(req.vias()), 1, ctx)
        self.assertRegex(req.vias()[0], r"^SIP/2\.0/UDP %s:%d;" % (re.escape(LOOP), listen), ctx)
        if req.method != "ACK":
            self.assertEqual(req.cseq[1], req.method, ctx)
            self.assertGreater(req.cseq[0], 1, ctx)
            self.assertNotEqual(req.branch, invite.branch, ctx)

    def refused(self, listen, status, keys, local=None, service=USER, name="caller"):
        """One call that must get `status` with a Warning header; returns it."""
        c = self.call("call-uac-refused.xml", listen, local or harness.quiet_port(), name=name,
                      service=service, keys=keys)
        self.finish(c)
        msgs = c.messages()
        finals = [r for r in resps(msgs, direction="received") if r.status >= 200]
        self.assertTrue(finals, dump(msgs))
        r = finals[0]
        self.assertEqual(r.status, status, dump(msgs))
        warning = r.hdr("Warning")
        self.assertIsNotNone(warning, "a refusal says why in a Warning header\n" + dump(msgs))
        self.assertRegex(warning, WARNING)
        self.assertEqual(len(reqs(msgs, "ACK", "sent")), 1)
        return r


class CarrierToIvrTest(CallTestCase):
    def test_call_carrier_hangs_up(self):
        """The whole call, field by field, with srtpbridgectl while it is up."""
        v = self.start()
        k80, k32 = new_key(), new_key()
        ivr = self.answer("call-ivr-uas.xml", v["IVR_PEER"])
        carrier = self.call("call-carrier-uac.xml", v["CARRIER_LISTEN"], v["CARRIER_PEER"],
                            keys=savp_offer(crypto(1, S80, k80), crypto(2, S32, k32)),
                            args=["-d", "3000"])

        # while the call is up
        call = self.wait_call_state("confirmed")
        self.assertEqual((call["trunk_in"], call["trunk_out"]), ("carrier", "ivr"), call)
        cid_a = self.call_ids["carrier"]
        ivr_invite = reqs(ivr.messages(), "INVITE", "received")
        self.assertTrue(ivr_invite, "the IVR got no INVITE")
        cid_b = ivr_invite[0].call_id
        for key in (call["id"], cid_a, cid_b):
            shown = self.ctl("call", key)["call"]
            self.assertEqual(shown["id"], call["id"], "srtpbridgectl call %s" % key)
            self.assertEqual((shown["trunk_in"], shown["trunk_out"]), ("carrier", "ivr"))
        self.assertEqual(self.ctl("stats")["calls_active"], 1)
        self.assertGreater(self.ctl("stats")["ports"]["in_use"], 0)
        r = self.ctl("call", "nosuchcall", ok=False)
        self.assertIs(r["ok"], False)

        self.finish(carrier, ivr)
        stats = self.wait_idle()
        self.assertEqual(stats["calls"]["answered"], 1, stats)
        cm, im = carrier.messages(), ivr.messages()

        a = self.one(reqs(cm, "INVITE", "sent"), "carrier's INVITE", cm)
        self.assertEqual(a.call_id, cid_a)
        b = self.one(reqs(im, "INVITE", "received"), "INVITEs at the IVR", im)
        self.check_leg_b_invite(a, b, USER, v["IVR_LISTEN"], v["IVR_PEER"])
        self.check_pass_headers(a, b)
        # our Contact's user is the call's id (docs/calls.md)
        self.assertEqual(name_addr(b.hdr("Contact"))[1], call["id"])
        offer_b = Sdp(b.body)
        self.check_plain_sdp(offer_b, ["0", "8", "101"])
        self.assertIn("rtpmap:101 telephone-event/8000", offer_b.attrs)

        # nothing of leg A on leg B (and no key of the carrier's)
        self.check_hidden(im, CARRIER_TOPOLOGY + (a.call_id, a.from_tag, a.branch, k80, k32,
                                                  "%s:%d" % (LOOP, v["CARRIER_PEER"])), "IVR")

        ivr_200 = self.one(resps(im, 200, direction="sent"), "IVR's 200", im)
        ivr_tag = ivr_200.to_tag
        tag = self.check_leg_a_responses(a, cm, v["CARRIER_LISTEN"], ivr_tag)
        self.assertEqual([r.status for r in resps(cm, direction="received")], [100, 180, 200])
        ok = resps(cm, 200, direction="received")[0]
        self.assertEqual(name_addr(ok.hdr("Contact"))[1], call["id"])
        self.check_secure_answer(Sdp(ok.body), 1, S80, ["0", "101"], (k80, k32))
        self.assertNotEqual(Sdp(ok.body).port, offer_b.port, "each leg has its own port")
        # nothing of leg B on leg A
        self.check_hidden(cm, (b.call_id, b.from_tag, ivr_tag, "sip:ivr@", "o=ivr",
                               "%s:%d" % (LOOP, v["IVR_PEER"])), "carrier")

        # the IVR's 200 ACKed by srtpbridge; the carrier's ACK absorbed
        ack = self.one(reqs(im, "ACK", "received"), "ACKs at the IVR", im)
        self.check_in_dialog(ack, b, "sip:ivr@%s:%d" % (LOOP, v["IVR_PEER"]), ivr_tag,
                             v["IVR_LISTEN"])
        self.assertEqual(ack.cseq, (1, "ACK"))
        self.assertNotEqual(ack.branch, b.branch, "the ACK of a 2xx is a transaction of its own")
        self.assertIn(tag, self.one(reqs(cm, "ACK", "sent"), "carrier's ACK").hdr("To"))

        # the carrier's BYE: 200 to it, BYE to the IVR in leg B's dialog
        self.assertEqual(len(resps(cm, 200, "BYE", "received")), 1, dump(cm))
        bye = self.one(reqs(im, "BYE", "received"), "BYEs at the IVR", im)
        self.check_in_dialog(bye, b, "sip:ivr@%s:%d" % (LOOP, v["IVR_PEER"]), ivr_tag,
                             v["IVR_LISTEN"])
        # (sipp stamps a message it sends once sent: allow for the relay being quicker)
        carrier_bye = reqs(cm, "BYE", "sent")[0]
        self.assertGreater((bye.time - carrier_bye.time).total_seconds(), -0.05)

    def test_early_media_ivr_hangs_up(self):
        """183 with SDP, then 200 with the same answer (one answer per
        offer), a retransmitted 200 ACKed again, and the IVR's BYE."""
        v = self.start()
        k80, k32 = new_key(), new_key()
        ivr = self.answer("call-ivr-uas-183.xml", v["IVR_PEER"], args=["-nr", "-d", "300"])
        carrier = self.call("call-carrier-uac-bye-in.xml", v["CARRIER_LISTEN"], v["CARRIER_PEER"],
                            keys=savp_offer(crypto(1, S80, k80), crypto(2, S32, k32)))
        self.finish(carrier, ivr)
        self.wait_idle()
        cm, im = carrier.messages(), ivr.messages()
        a = self.one(reqs(cm, "INVITE", "sent"), "carrier's INVITE", cm)
        b = self.one(reqs(im, "INVITE", "received"), "INVITEs at the IVR", im)
        self.check_leg_b_invite(a, b, USER, v["IVR_LISTEN"], v["IVR_PEER"])
        ivr_tag = resps(im, 183, direction="sent")[0].to_tag
        tag = self.check_leg_a_responses(a, cm, v["CARRIER_LISTEN"], ivr_tag)

        early = self.one(resps(cm, 183, direction="received"), "183 at the carrier", cm)
        final = resps(cm, 200, direction="received")
        self.assertTrue(final, dump(cm))
        self.check_secure_answer(Sdp(early.body), 1, S80, ["0", "101"], (k80, k32))
        for ok in final:
            self.assertEqual(Sdp(ok.body).lines, Sdp(early.body).lines,
                             "the 200 repeats the 183's answer (same o= version, same key)")

        # both 200s of the IVR were ACKed
        self.assertEqual(len(resps(im, 200, direction="sent")), 2, dump(im))
        acks = reqs(im, "ACK", "received")
        self.assertEqual(len(acks), 2, "one ACK for each 200\n" + dump(im))
        for ack in acks:
            self.check_in_dialog(ack, b, "sip:ivr@%s:%d" % (LOOP, v["IVR_PEER"]), ivr_tag,
                                 v["IVR_LISTEN"])
            self.assertEqual(ack.cseq, (1, "ACK"))

        # the IVR's BYE: 200 to it, BYE to the carrier in leg A's dialog
        self.assertEqual(len(resps(im, 200, "BYE", "received")), 1, dump(im))
        bye = self.one(reqs(cm, "BYE", "received"), "BYEs at the carrier", cm)
        ctx = "\n" + bye.raw.decode()
        self.assertEqual(bye.uri, "sip:carrier-contact@%s:%d" % (LOOP, v["CARRIER_PEER"]), ctx)
        self.assertEqual(bye.call_id, a.call_id, ctx)
        self.assertEqual(bye.from_tag, tag, ctx)
        self.assertEqual(bye.to_tag, a.from_tag, ctx)
        self.assertEqual(bye.cseq[1], "BYE", ctx)
        self.assertEqual(len(bye.vias()), 1, ctx)
        self.assertRegex(bye.vias()[0], r"^SIP/2\.0/UDP %s:%d;" % (re.escape(LOOP),
                                                                   v["CARRIER_LISTEN"]), ctx)
        # RFC 3261 12.2.1.1: the route set from the INVITE's Record-Route
        self.assertEqual(bye.hdrs("Route"), ["<sip:rr.carrier.example;lr>"], ctx)
        self.check_hidden(cm, (b.call_id, ivr_tag, "sip:ivr@", "o=ivr"), "carrier")

    def test_pass_headers_of_the_destination_trunk(self):
        v = self.start(IVR_EXTRA="route = carrier\npass_headers = X-Carrier-Secret, Privacy")
        ivr = self.answer("call-ivr-uas.xml", v["IVR_PEER"])
        carrier = self.call("call-carrier-uac.xml", v["CARRIER_LISTEN"], v["CARRIER_PEER"],
                            keys=savp_offer(crypto(1, S80, new_key())))
        self.finish(carrier, ivr)
        self.wait_idle()
        a = reqs(carrier.messages(), "INVITE", "sent")[0]
        b = self.one(reqs(ivr.messages(), "INVITE", "received"), "INVITEs at the IVR")
        self.check_leg_b_invite(a, b, USER, v["IVR_LISTEN"], v["IVR_PEER"])
        self.check_pass_headers(a, b, crossing=("X-Carrier-Secret", "Privacy"),
                                stopped=("P-Asserted-Identity", "Diversion", "Record-Route"))

    def test_suite_choice(self):
        """The answer's suite is the first of the trunk's crypto_suites the
        offer has, with that line's tag, whatever the offer's order."""
        v = self.start()
        k1, k2 = new_key(), new_key()
        k256 = base64.b64encode(os.urandom(46)).decode()
        cases = (
            ("_32 first", (crypto(1, S32, k1), crypto(2, S80, k2)), 2, S80),
            ("only _32", (crypto(5, S32, k1),), 5, S32),
            ("a suite the trunk does not allow, then _32",
             (crypto(1, "AES_256_CM_HMAC_SHA1_80", k256), crypto(7, S32, k2)), 7, S32),
        )
        for i, (label, lines, tag, suite) in enumerate(cases):
            with self.subTest(label):
                ivr = self.answer("call-ivr-uas.xml", v["IVR_PEER"], name="ivr%d" % i)
                carrier = self.call("call-carrier-uac.xml", v["CARRIER_LISTEN"],
                                    v["CARRIER_PEER"], name="carrier%d" % i,
                                    keys=savp_offer(*lines))
                self.finish(carrier, ivr)
                self.wait_idle()
                ok = resps(carrier.messages(), 200, direction="received")[0]
                self.check_secure_answer(Sdp(ok.body), tag, suite, ["0", "101"], (k1, k2))
                b = reqs(ivr.messages(), "INVITE", "received")[0]
                self.check_plain_sdp(Sdp(b.body), ["0", "8", "101"])


class IvrToCarrierTest(CallTestCase):
    def test_call_ivr_hangs_up(self):
        v = self.start()
        answer_key = new_key()
        carrier = self.answer("call-carrier-uas.xml", v["CARRIER_PEER"], name="carrier",
                              keys={"answer_key": answer_key})
        ivr = self.call("call-ivr-uac.xml", v["IVR_LISTEN"], v["IVR_PEER"], name="ivr",
                        service="5551234", args=["-d", "200"])
        self.finish(ivr, carrier)
        stats = self.wait_idle()
        self.assertEqual(stats["calls"]["answered"], 1, stats)
        im, cm = ivr.messages(), carrier.messages()
        a = self.one(reqs(im, "INVITE", "sent"), "IVR's INVITE", im)
        b = self.one(reqs(cm, "INVITE", "received"), "INVITEs at the carrier", cm)
        self.check_leg_b_invite(a, b, "5551234", v["CARRIER_LISTEN"], v["CARRIER_PEER"])

        # the offer to the carrier: every suite of crypto_suites, tags 1 and 2
        offer = Sdp(b.body)
        self.assertEqual((offer.proto, offer.fmts), ("RTP/SAVP", ["0", "8", "101"]), b.body)
        self.assertIn(offer.port, self.media)
        self.assertEqual(offer.c, ["IN IP4 %s" % LOOP], b.body)
        self.assertEqual([(t, s) for t, s, _, _ in offer.cryptos], [(1, S80), (2, S32)], b.body)
        keys = [k for _, _, k, _ in offer.cryptos]
        for k in keys:
            self.check_key(k)
        self.assertNotEqual(keys[0], keys[1])

        carrier_tag = resps(cm, 200, direction="sent")[0].to_tag
        self.check_leg_a_responses(a, im, v["IVR_LISTEN"], carrier_tag)
        ok = self.one(resps(im, 200, direction="received"), "200 at the IVR", im)
        self.check_plain_sdp(Sdp(ok.body), ["0", "101"])
        self.check_hidden(im, (answer_key, b.call_id, carrier_tag, "carrier-uas",
                               "%s:%d" % (LOOP, v["CARRIER_PEER"])) + tuple(keys), "IVR")
        self.check_hidden(cm, (a.call_id, a.from_tag, a.branch,
                               "ivr-out@%s:%d" % (LOOP, v["IVR_PEER"])), "carrier")

        ack = self.one(reqs(cm, "ACK", "received"), "ACKs at the carrier", cm)
        target = "sip:carrier-uas@%s:%d" % (LOOP, v["CARRIER_PEER"])
        self.check_in_dialog(ack, b, target, carrier_tag, v["CARRIER_LISTEN"])
        bye = self.one(reqs(cm, "BYE", "received"), "BYEs at the carrier", cm)
        self.check_in_dialog(bye, b, target, carrier_tag, v["CARRIER_LISTEN"])
        self.assertEqual(len(resps(im, 200, "BYE", "received")), 1, dump(im))


class RoutingTest(CallTestCase):
    def test_rules_in_file_order_then_trunk_route_then_404(self):
        v = self.start(more=ROUTING)
        with self.subTest("4444: the first matching rule, to ivr2"):
            ivr2 = self.answer("call-ivr-uas.xml", v["IVR2_PEER"], name="ivr2")
            c = self.call("call-carrier-uac.xml", v["CARRIER_LISTEN"], v["CARRIER_PEER"],
                          name="carrier1", service="4444",
                          keys=savp_offer(crypto(1, S80, new_key())))
            self.finish(c, ivr2)
            a = reqs(c.messages(), "INVITE", "sent")[0]
            b = self.one(reqs(ivr2.messages(), "INVITE", "received"), "INVITEs at ivr2")
            self.check_leg_b_invite(a, b, "4444", v["IVR2_LISTEN"], v["IVR2_PEER"])
            self.wait_idle()
        with self.subTest("8011000: no rule, the carrier trunk's route, to ivr"):
            ivr = self.answer("call-ivr-uas.xml", v["IVR_PEER"], name="ivr")
            c = self.call("call-carrier-uac.xml", v["CARRIER_LISTEN"], v["CARRIER_PEER"],
                          name="carrier2", keys=savp_offer(crypto(1, S80, new_key())))
            self.finish(c, ivr)
            a = reqs(c.messages(), "INVITE", "sent")[0]
            b = self.one(reqs(ivr.messages(), "INVITE", "received"), "INVITEs at ivr")
            self.check_leg_b_invite(a, b, USER, v["IVR_LISTEN"], v["IVR_PEER"])
            self.wait_idle()
        with self.subTest("from ivr2, which has no route: 404"):
            before = self.ctl("stats")["calls"]
            self.refused(v["IVR2_LISTEN"], 404, {"proto": "RTP/AVP", "attr1": "a=ptime:20",
                                                 "attr2": "a=maxptime:150"},
                         local=v["IVR2_PEER"], service="5555")
            after = self.wait_idle()["calls"]
            self.assertEqual(after["rejected_no_route"], before["rejected_no_route"] + 1, after)


class AdmissionTest(CallTestCase):
    def admission(self, **extra):
        v = self.start(**extra)
        ivr = self.answer("call-ivr-uas.xml", v["IVR_PEER"])
        first = self.call("call-carrier-uac.xml", v["CARRIER_LISTEN"], v["CARRIER_PEER"],
                          keys=savp_offer(crypto(1, S80, new_key())), args=["-d", "3000"],
                          timeout=self.sipp_timeout + 3)
        self.wait_call_state("confirmed")
        r = self.refused(v["CARRIER_LISTEN"], 503, savp_offer(crypto(1, S80, new_key())),
                         name="second")
        self.assertIsNone(r.hdr("Retry-After"), "a 503 without Retry-After (RFC 3261 21.5.4)")
        self.finish(first, ivr)
        self.assertEqual(len(reqs(ivr.messages(), "INVITE", "received")), 1,
                         "the refused call never reached the IVR")
        stats = self.wait_idle()
        self.assertEqual(stats["calls"]["rejected_admission"], 1, stats)
        # the limit is about calls at once: a new call goes through now
        ivr = self.answer("call-ivr-uas.xml", v["IVR_PEER"], name="ivr-again")
        again = self.call("call-carrier-uac.xml", v["CARRIER_LISTEN"], v["CARRIER_PEER"],
                          name="again", keys=savp_offer(crypto(1, S80, new_key())))
        self.finish(again, ivr)
        self.wait_idle()

    def test_global_max_calls(self):
        self.admission(GLOBAL_EXTRA="max_calls = 1")

    def test_inbound_trunk_max_calls(self):
        self.admission(CARRIER_EXTRA="route = ivr\nmax_calls = 1")

    def test_destination_trunk_max_calls(self):
        self.admission(IVR_EXTRA="route = carrier\nmax_calls = 1")


class NoAcceptableCryptoTest(CallTestCase):
    def test_488(self):
        v = self.start()
        # Nothing must reach the IVR: a socket of ours on its address listens.
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(silent.close)
        harness.release_ports(v["IVR_PEER"])
        silent.bind((LOOP, v["IVR_PEER"]))
        cases = (
            ("unknown suites only", savp_offer("a=crypto:1 FOO_BAR_80 inline:" + new_key(),
                                               "a=crypto:2 F8_128_HMAC_SHA1_80 inline:"
                                               + new_key())),
            ("RTP/AVP on a trunk with srtp = mandatory",
             {"proto": "RTP/AVP", "attr1": "a=ptime:20", "attr2": "a=maxptime:150"}),
        )
        for i, (label, keys) in enumerate(cases):
            with self.subTest(label):
                before = self.ctl("stats")["calls"]
                self.refused(v["CARRIER_LISTEN"], 488, keys, local=v["CARRIER_PEER"],
                             name="caller%d" % i)
                after = self.wait_idle()["calls"]
                self.assertEqual(after["rejected_sdp"], before["rejected_sdp"] + 1, after)
        silent.setblocking(False)
        with self.assertRaises(BlockingIOError, msg="something reached the IVR"):
            silent.recv(65536)


class CancelTest(CallTestCase):
    def check_cancel(self, cm, im, v, reason):
        """The carrier's CANCEL got 200 and 487; the IVR got a CANCEL of leg
        B's INVITE (carrying reason), answered 200 and 487, and the ACK of
        its 487."""
        self.assertEqual([r.status for r in resps(cm, method="CANCEL", direction="received")],
                         [200], dump(cm))
        self.assertEqual([r.status for r in resps(cm, direction="received") if r.status >= 200],
                         [487], dump(cm))
        a = reqs(cm, "INVITE", "sent")[0]
        self.check_leg_a_responses(a, cm, v["CARRIER_LISTEN"],
                                   resps(im, 180, direction="sent")[0].to_tag)
        b = self.one(reqs(im, "INVITE", "received")[:1], "INVITE at the IVR")
        cancel = self.one(reqs(im, "CANCEL", "received"), "CANCELs at the IVR", im)
        ctx = "\nINVITE:\n%s\nCANCEL:\n%s" % (b.raw.decode(), cancel.raw.decode())
        self.assertEqual(cancel.uri, b.uri, ctx)
        self.assertEqual(cancel.call_id, b.call_id, ctx)
        self.assertEqual(cancel.hdr("From"), b.hdr("From"), ctx)
        self.assertEqual(cancel.hdr("To"), b.hdr("To"), ctx)
        self.assertEqual(cancel.cseq, (b.cseq[0], "CANCEL"), ctx)
        self.assertEqual(cancel.vias(), b.vias(), ctx)
        if isinstance(reason, str):
            self.assertEqual(cancel.hdrs("Reason"), [reason], ctx)
        else:
            self.assertRegex(self.one(cancel.hdrs("Reason"), "Reason of our CANCEL"), reason)
        sent_180 = resps(im, 180, direction="sent")[0]
        self.assertGreater(cancel.time, sent_180.time, "no CANCEL before a provisional")
        ack = self.one(reqs(im, "ACK", "received"), "ACKs at the IVR", im)
        self.assertEqual(ack.cseq, (b.cseq[0], "ACK"), ack.raw.decode())
        self.assertEqual(ack.branch, b.branch, "the ACK of a non-2xx: the INVITE's branch")
        self.assertEqual(ack.uri, b.uri)
        self.assertEqual(ack.to_tag, sent_180.to_tag)
        self.assertEqual(ack.call_id, b.call_id)
        self.check_hidden(im, CARRIER_TOPOLOGY + (a.call_id, a.from_tag), "IVR")
        return a, b

    def test_cancel_after_180(self):
        v = self.start()
        ivr = self.answer("call-ivr-uas-cancel.xml", v["IVR_PEER"])
        carrier = self.call("call-carrier-uac-cancel.xml", v["CARRIER_LISTEN"],
                            v["CARRIER_PEER"], keys=savp_offer(crypto(1, S80, new_key())))
        self.finish(carrier, ivr)
        self.wait_idle()
        cm, im = carrier.messages(), ivr.messages()
        self.assertEqual(reqs(cm, "CANCEL", "sent")[0].branch, reqs(cm, "INVITE", "sent")[0].branch)
        self.check_cancel(cm, im, v, CANCEL_REASON)

    def test_cancel_before_any_provisional(self):
        """The carrier's CANCEL is answered at once; ours waits for the
        IVR's first provisional (RFC 3261 9.1), here 1 s later."""
        v = self.start()
        ivr = self.answer("call-ivr-uas-cancel.xml", v["IVR_PEER"], args=["-d", "1000"])
        carrier = self.call("call-carrier-uac-cancel-early.xml", v["CARRIER_LISTEN"],
                            v["CARRIER_PEER"], keys=savp_offer(crypto(1, S80, new_key())))
        self.finish(carrier, ivr)
        self.wait_idle()
        cm, im = carrier.messages(), ivr.messages()
        self.check_cancel(cm, im, v, SIP_REASON)
        self.assertEqual([r.status for r in resps(cm, direction="received")], [100, 487])
        got_487 = resps(cm, 487, direction="received")[0]
        sent_cancel = reqs(cm, "CANCEL", "sent")[0]
        sent_180 = resps(im, 180, direction="sent")[0]
        self.assertLess(got_487.time, sent_180.time,
                        "the carrier's 487 did not wait for the IVR's 180")
        self.assertLess((got_487.time - sent_cancel.time).total_seconds(), 0.5)

    def test_cancel_crossing_200(self):
        """The IVR answers 200 to an INVITE srtpbridge is cancelling: the
        200 is ACKed and the call hung up with a BYE that has a Reason."""
        v = self.start()
        cases = (("carrier's CANCEL after 180, with a Reason", "call-carrier-uac-cancel.xml",
                  CANCEL_REASON, 0),
                 # the IVR's 180 comes 1 s later, long after the carrier's 487
                 ("carrier's CANCEL before the 180, without a Reason",
                  "call-carrier-uac-cancel-early.xml", SIP_REASON, 1000))
        for i, (label, scenario, reason, delay) in enumerate(cases):
            with self.subTest(label):
                ivr = self.answer("call-ivr-uas-cancel-cross.xml", v["IVR_PEER"], name="ivr%d" % i,
                                  args=["-d", str(delay)])
                carrier = self.call(scenario, v["CARRIER_LISTEN"], v["CARRIER_PEER"],
                                    name="carrier%d" % i,
                                    keys=savp_offer(crypto(1, S80, new_key())))
                self.finish(carrier, ivr)
                self.wait_idle()
                cm, im = carrier.messages(), ivr.messages()
                self.assertEqual([r.status for r in resps(cm, direction="received")
                                  if r.status >= 200], [487], "never a 200 to the carrier")
                b = reqs(im, "INVITE", "received")[0]
                ivr_tag = resps(im, 200, direction="sent")[-1].to_tag
                target = "sip:ivr@%s:%d" % (LOOP, v["IVR_PEER"])
                ack = self.one(reqs(im, "ACK", "received"), "ACKs at the IVR", im)
                self.check_in_dialog(ack, b, target, ivr_tag, v["IVR_LISTEN"])
                self.assertEqual(ack.cseq, (b.cseq[0], "ACK"))
                bye = self.one(reqs(im, "BYE", "received"), "BYEs at the IVR", im)
                self.check_in_dialog(bye, b, target, ivr_tag, v["IVR_LISTEN"])
                self.assertGreater(bye.time, ack.time)
                rs = bye.hdrs("Reason")
                self.assertEqual(len(rs), 1, "our BYE says why\n" + bye.raw.decode())
                if isinstance(reason, str):
                    self.assertEqual(rs[0], reason)
                else:
                    self.assertRegex(rs[0], reason)


if __name__ == "__main__":
    harness.main()
