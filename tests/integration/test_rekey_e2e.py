"""Hold and resume with new SRTP keys, through the daemon, with real SRTP at
the carrier (tests/tools/srtp_peer.c: libsrtp2 through srtpctx) and plain
RTP at the IVR (srtp_peer again, without keys). SIP on both legs is
scripted here (sipua.py).

Every packet carries a counter from 0 and the time it was sent, so each
receiver knows exactly what it missed. One call per test:
  1. INVITE with the carrier's key K1; the daemon's 200 has ours, KA. The
     carrier sends from sequence number 65000, fast until it wraps (its
     rollover counter is 1 from then on), then every 20 ms; the IVR every
     20 ms. About a second of media both ways.
  2. Hold: a re-INVITE with a=sendonly and a new key K2; the carrier
     protects with K2 as soon as the daemon's 200 has arrived (with
     `roc keep`, or `roc reset`: its stream starts at ROC 0 again under the
     new key), all but one packet: the one due at the switch goes out under
     K1 after the first two of K2 (srtp_peer's `reorder 2`), a late packet
     of the old key that the daemon must still take. Media goes on both
     ways (the IVR does not care about hold) until the daemon has let go of
     K1: 2 s (RELAY_REKEY_GRACE_MS) after K2's first packet, as
     srtpbridgectl's key_epochs show.
  3. Resume: a re-INVITE with a=sendrecv and K3, the same way.
  4. Both stop; each waits for the other's last packet; BYE.

Exact expectations:
  - the IVR receives each counter the carrier sent exactly once, in order
    but for the two late packets (reordered == 2): packets sent under the
    old key after the daemon's 200 (the late one, and any sent in the
    instant before the switch) are in the daemon's grace, so there is no
    exception to make; the daemon's peer epochs n=1,2,3 count exactly the
    packets the carrier sent under K1, K2, K3;
  - the carrier receives each of the IVR's counters exactly once, in
    order, and none fails to authenticate. With the trunk's rekey = keep
    every 200 has our same key KA and no packet ever needs another key.
    With rekey = always every 200 has a new key of ours, which the daemon
    protects with from its 200 on (so that packets may arrive before the
    answer does). srtp_peer holds packets that no key it knows takes and
    tries them again with each new key; the test makes this happen every
    time, by giving the carrier our new key only once two packets are
    held: those are the packets in flight, and they must all authenticate
    under exactly that key ("early" == held, auth_fail 0, nothing left
    held). The daemon's "ours" epochs count exactly the packets the carrier
    took under each of our keys;
  - no gap over 100 ms at either receiver that the network (the daemon)
    made: arrival gaps are kernel timestamps (SO_TIMESTAMPNS), less the
    sender's own gap between the same two packets, so a busy test machine
    that delays a sender or a receiver is not counted against the daemon;
  - key_epochs of leg A: peer keys n=1,2,3 from INVITE, re-INVITE,
    re-INVITE, with distinct fingerprints; the old ones in_use false once
    2 s have passed since the next one's first packet (and true before);
    peer_roc unknown (the first key has no history), then continued with
    `roc keep` or reset with `roc reset`; the third key is continued with
    either (with `roc reset` K2's stream was already back at ROC 0: the
    sender has nothing left to reset);
  - the daemon's leg A counted no auth_fail, replay_fail or cant_check,
    and it logged both re-INVITEs as "offer relayed" and each new key of
    the carrier once as "peer key changed" (leg=a streams=1).

No baresip variant: baresip 1.0's srtp module draws its key once per
stream (media_alloc) and puts the same one in every later offer, so its
hold and resume never bring a new key (it does take a new key of ours).

PeerSelfTest checks srtp_peer against itself first (no daemon): the same
switches with both ROC rules, early packets, and a wrong key that must fail.

On a failure the message has the evidence: srtp_peer's stats on both
sides, srtpbridgectl's view of the call, and the daemon's media log lines.
"""

import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase  # noqa: E402
from sipua import Carrier, Peer, ctl, respond, status  # noqa: E402

S80 = "AES_CM_128_HMAC_SHA1_80"
GRACE = 2.0  # RELAY_REKEY_GRACE_MS
MAX_GAP_MS = 100.0
START_SEQ = 65000


def srtp_peer_path():
    for sub in ("tests", "bin"):
        path = os.path.join(harness.BUILD_DIR, sub, "srtp_peer")
        if os.access(path, os.X_OK):
            return path
    return None


SRTP_PEER = srtp_peer_path()
SRTP_PEER_MISSING = None if SRTP_PEER else (
    "srtp_peer not found in %s/tests or /bin (cmake --build: target srtp_peer)"
    % harness.BUILD_DIR)

CONFIG = """[global]
log_level = debug
control_socket = @CTL@
metrics_listen =
media_ports = @MEDIA@
media_port_quarantine = 0
media_timeout = 60
media_timeout_hold = 3600

[trunk:carrier]
listen = udp:127.0.0.1:@PORT@
peers = udp:127.0.0.1:@PEER@
options_interval = 0
srtp = mandatory
rekey = @REKEY@
route = ivr

[trunk:ivr]
listen = udp:127.0.0.1:@IVR@
peers = udp:127.0.0.1:@IVR_PEER@
options_interval = 0
sources = 127.0.0.1/32
srtp = off
route = carrier
"""


def new_key():
    """An AES_CM_128 key||salt in base64, as in a=crypto's inline:."""
    return base64.b64encode(os.urandom(30)).decode()


def crypto_of(body):
    """(suite, key) of the first a=crypto of an SDP body."""
    m = re.search(r"a=crypto:\d+ (\S+) inline:([A-Za-z0-9+/=]+)", body)
    return (m.group(1), m.group(2)) if m else (None, None)


class SrtpPeer:
    """One srtp_peer process; its stdout lines (JSON) in self.out."""

    def __init__(self, test, name):
        self.name = name
        self.err_path = test.tmp.join(name + ".stderr")
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(harness._pdeathsig_prefix() + [SRTP_PEER, "--port", "0"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err, close_fds=True)
        with harness._registry_lock:
            harness._live_procs.append(self.proc)
        test.addCleanup(self.kill)
        self.out = harness._Recorder("%s's output" % name)
        self.out.gone = self._gone
        self.log = []  # commands and replies, for a failure message
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = self.out.wait_for(ev="ready")["port"]

    def _gone(self):
        rc = self.proc.poll()
        return None if rc is None else "srtp_peer %s exited with status %d" % (self.name, rc)

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").strip()
            try:
                rec = json.loads(line)
            except ValueError:
                rec = {"_error": line}
            rec["_time"] = time.monotonic()
            self.out.append(rec)
        self.out.close()

    def cmd(self, *words, timeout=None):
        """Runs a command; returns its reply (a dict). Fails on an error reply."""
        mark = self.out.mark()
        line = " ".join(str(w) for w in words)
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()
        rec = self.out.wait_for(re=words[0], since=mark, timeout=timeout)
        # never a key in a failure message
        self.log.append((words[0] if "key" in words[0] else line, rec))
        if "error" in rec:
            raise AssertionError("srtp_peer %s: %s: %s" % (self.name, words[0], rec["error"]))
        return rec

    def wait_recv(self, n, timeout=None):
        timeout = harness.TIMEOUT if timeout is None else timeout
        return self.cmd("wait_recv", n, int(timeout * 1000), timeout=timeout + 5)

    def kill(self):
        try:
            self.proc.stdin.close()  # EOF: it exits by itself
        except OSError:
            pass
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            harness._kill_process(self.proc, grace=1.0)
        with harness._registry_lock:
            if self.proc in harness._live_procs:
                harness._live_procs.remove(self.proc)
        self._reader.join(timeout=2)
        self.proc.stdout.close()
        self._err.close()

    def describe(self):
        stats = [r for _, r in self.log if r.get("re") in ("stats", "stop", "wait_recv")]
        return "srtp_peer %s (port %d): last stats %s" % (
            self.name, self.port, json.dumps(stats[-1] if stats else None))


@unittest.skipIf(SRTP_PEER_MISSING, SRTP_PEER_MISSING)
class PeerSelfTest(DaemonTestCase):
    """srtp_peer to srtp_peer, no daemon: the tool the daemon test relies on."""

    def pair(self):
        a, b = SrtpPeer(self, "a"), SrtpPeer(self, "b")
        a.cmd("dest", "127.0.0.1", b.port)
        b.cmd("dest", "127.0.0.1", a.port)
        return a, b

    def test_switches_with_roc_keep_and_reset(self):
        a, b = self.pair()
        k1, k2, k3 = new_key(), new_key(), new_key()
        a.cmd("seq", START_SEQ)
        a.cmd("send_key", S80, k1)
        b.cmd("recv_key", S80, k1)
        a.cmd("interval", 1)
        a.cmd("start")
        a.out.wait_for(ev="wrap", timeout=10)
        a.cmd("interval", 20)
        b.wait_recv(600)
        # K2, ROC kept, the packet due at the switch goes out under K1
        # after two of K2; b learns K2 late: what came meanwhile is held
        a.cmd("roc", "keep")
        a.cmd("reorder", 2)
        r2 = a.cmd("send_key", S80, k2)
        self.assertEqual((r2["n"], r2["roc"], r2["seeded"], r2["late_counter"]),
                         (2, 1, True, r2["first_counter"] - 1), r2)
        st = b.cmd("wait_held", 3, 5000)
        self.assertEqual((st["held"] >= 3, st["auth_fail"], st["received"]),
                         (True, 0, r2["first_counter"]), st)
        got = b.cmd("recv_key", S80, k2)
        self.assertEqual((got["early"], got["held"]), (got["held_before"], 0), got)
        # K3, ROC reset to 0; b knows K3 before the switch: K2's late packet
        # arrives after two of K3, out of order
        b.cmd("recv_key", S80, k3)
        a.cmd("roc", "reset")
        r3 = a.cmd("send_key", S80, k3)
        self.assertEqual((r3["n"], r3["roc"], r3["seeded"]), (3, 0, False), r3)
        b.wait_recv(r3["first_counter"] + 10)
        sent = a.cmd("stop")["sent"]
        got = b.wait_recv(sent)
        self.assertEqual(
            (got["received"], got["missing"], got["dups"], got["reordered"], got["auth_fail"],
             got["held"], got["lowest"], got["highest"]),
            (sent, 0, 0, 1, 0, 0, 0, sent - 1), got)
        keys = got["recv_keys"]
        self.assertEqual([k["roc"] for k in keys], ["none", "seeded", "fresh"], keys)
        send = a.cmd("stats")["send_keys"]
        self.assertEqual([k["packets"] for k in keys], [k["packets"] for k in send], (keys, send))
        self.assertEqual(keys[0]["early"], 0, keys)

    def test_wrong_key_fails(self):
        a, b = self.pair()
        a.cmd("send_key", S80, new_key())
        b.cmd("recv_key", S80, new_key())
        a.cmd("interval", 2)
        a.cmd("start")
        sent = 0
        while sent < 20:
            sent = a.cmd("stats")["sent"]
        a.cmd("stop")
        st = b.wait_recv(1, timeout=0.5)
        self.assertEqual(st["received"], 0, st)
        self.assertGreater(st["auth_fail"] + st["held"], 0, st)


@unittest.skipIf(SRTP_PEER_MISSING, SRTP_PEER_MISSING)
class RekeyTest(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.daemon = None
        self.peers = []
        self.ctl_seen = []  # srtpbridgectl answers, for the evidence

    # -- set-up

    def start(self, rekey):
        self.port, self.peer_port, self.ivr, self.ivr_peer = harness.free_ports(4)
        self.ctl_sock = self.tmp.join("ctl.sock")
        text = harness.render(CONFIG, CTL=self.ctl_sock, MEDIA=harness.free_media_range(16),
                              PORT=self.port, PEER=self.peer_port, IVR=self.ivr,
                              IVR_PEER=self.ivr_peer, REKEY=rekey)
        self.daemon = self.start_daemon(self.tmp.write("sbc.ini", text))
        self.daemon.wait_ready()
        self.ivr_sip = Peer(self, "udp", self.ivr_peer)
        self.carrier_sip = Peer(self, "udp", self.peer_port)
        self.carrier = Carrier(self.carrier_sip, self.port)
        self.cm = SrtpPeer(self, "carrier")
        self.im = SrtpPeer(self, "ivr")
        self.peers = [self.cm, self.im]

    def offer(self, version, key, direction):
        return ("v=0\r\no=carrier 1 %d IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                "t=0 0\r\nm=audio %d RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
                "a=crypto:1 %s inline:%s\r\na=%s\r\n"
                % (version, self.cm.port, S80, key, direction))

    def answer(self, version, direction):
        return ("v=0\r\no=ivr 1 %d IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                "m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=%s\r\n"
                % (version, self.im.port, direction))

    def call(self, key):
        """The call up with the carrier's key; returns (the daemon's leg A
        port, its leg B port, our key KA)."""
        self.carrier.invite(body=self.offer(1, key, "sendrecv"))
        self.inv, _, _, body = self.ivr_sip.expect(lambda f, h, b: f.startswith("INVITE "),
                                                   "INVITE on leg B")
        b_port = int(re.search(r"m=audio (\d+)", body).group(1))
        self.ivr_sip.send(respond(self.inv, 200, "OK", "ivr1",
                                  "Contact: <sip:ivr@127.0.0.1:%d>" % self.ivr_peer,
                                  self.answer(1, "sendrecv")))
        self.ivr_sip.expect(lambda f, h, b: f.startswith("ACK "), "ACK on leg B")
        _, first, _, body = self.carrier.final()
        self.assertEqual(status(first), 200, first)
        self.carrier.ack()
        a_port = int(re.search(r"m=audio (\d+)", body).group(1))
        suite, ours = crypto_of(body)
        self.assertEqual(suite, S80, body)
        deadline = time.monotonic() + harness.TIMEOUT  # the ACK taken: no glare
        while True:
            rc, reply = ctl(self.ctl_sock, "calls")
            if rc == 0 and reply["calls"] and reply["calls"][0]["state"] == "confirmed":
                self.call_id = reply["calls"][0]["id"]
                break
            self.assertLess(time.monotonic(), deadline, "the call is not confirmed: %s" % reply)
            time.sleep(0.02)
        return a_port, b_port, ours

    def reinvite(self, version, key, direction, ivr_direction):
        """The carrier's re-INVITE with a new key, through to the IVR and
        back; returns (the time the carrier's sender switched, at the latest,
        the key in the daemon's 200)."""
        self.carrier.cseq += 1
        cseq = self.carrier.cseq
        self.carrier_sip.send(self.carrier.request(
            "INVITE", cseq=cseq, extra="Contact: <sip:carrier@127.0.0.1:%d>" % self.peer_port,
            body=self.offer(version, key, direction)), self.carrier.daemon)
        reinv, _, _, body = self.ivr_sip.expect(lambda f, h, b: f.startswith("INVITE "),
                                                "re-INVITE on leg B")
        self.assertIn("a=" + ("sendonly" if direction == "sendonly" else "sendrecv"), body)
        self.ivr_sip.send(respond(reinv, 200, "OK", None,
                                  "Contact: <sip:ivr@127.0.0.1:%d>" % self.ivr_peer,
                                  self.answer(version, ivr_direction)))
        _, first, _, body = self.carrier_sip.expect(
            lambda f, h, b: (status(f) or 0) >= 200 and h["cseq"][0] == "%d INVITE" % cseq,
            "the daemon's final response to the re-INVITE")
        self.assertEqual(status(first), 200, first)
        # the carrier switches at once (but for its one late packet of the
        # old key, `reorder`)
        t_switch = time.monotonic()
        sw = self.cm.cmd("send_key", S80, key)
        self.assertGreaterEqual(sw["late_counter"], 0, sw)
        self.carrier_sip.send(self.carrier.request("ACK", cseq=cseq), self.carrier.daemon)
        suite, ours = crypto_of(body)
        self.assertEqual(suite, S80, body)
        if ours not in self.our_keys:
            # a new key of ours: the daemon protects with it from its 200 on;
            # the carrier learns it once two packets under it are held (and
            # not taken by any key it had), which then all authenticate
            held = self.cm.cmd("wait_held", 2, int(harness.TIMEOUT * 1000))
            self.assertEqual((held["held"] >= 2, held["auth_fail"]), (True, 0),
                             "packets under our new key\n" + self.evidence())
            got = self.cm.cmd("recv_key", S80, ours)
            self.assertEqual((got["early"], got["held"]), (got["held_before"], 0),
                             "held packets under our new key\n" + self.evidence())
            self.early.append(got["early"])
        self.our_keys.append(ours)
        self.ivr_sip.expect(lambda f, h, b: f.startswith("ACK "), "ACK on leg B")
        return t_switch, ours

    # -- srtpbridgectl

    def call_info(self):
        rc, reply = ctl(self.ctl_sock, "call", self.call_id)
        self.assertEqual(rc, 0, reply)
        self.ctl_seen.append(reply)
        return reply["call"]

    @staticmethod
    def epochs(info, key):
        return [e for e in info["leg_a"]["streams"][0]["key_epochs"] if e["key"] == key]

    def wait_old_key_gone(self, n, t_switch):
        """Waits until peer epoch n is no longer in use (the grace after
        n+1's first packet); while n+1's first packet is under 2 s old, n
        must still be in use. Returns the seconds from the switch."""
        deadline = t_switch + GRACE + max(3.0, harness.TIMEOUT / 2)
        while True:
            now = time.monotonic()
            peer = self.epochs(self.call_info(), "peer")
            old = [e for e in peer if e["n"] == n]
            new = [e for e in peer if e["n"] == n + 1]
            self.assertTrue(old and new, "peer epochs %d and %d: %s" % (n, n + 1, peer))
            if not old[0]["in_use"]:
                waited = time.monotonic() - t_switch
                # the daemon's grace started at K(n+1)'s first packet, after t_switch
                # (less 10 ms: the daemon's clock is in whole ms)
                self.assertGreaterEqual(waited, GRACE - 0.01, "epoch %d out of use too soon: %s"
                                        % (n, peer))
                return waited
            if new[0].get("first_packet_seconds_ago", 99) < GRACE:
                self.assertTrue(old[0]["in_use"], peer)
            self.assertLess(now, deadline, "peer epoch %d still in use %.1f s after the switch"
                            ": %s\n%s" % (n, now - t_switch, peer, self.evidence()))
            time.sleep(0.1)

    def evidence(self):
        out = [p.describe() for p in self.peers]
        out.append("--- srtpbridgectl call (last): %s"
                   % json.dumps(self.ctl_seen[-1] if self.ctl_seen else None))
        if self.daemon is not None:
            recs = [r for r in self.daemon.logs()
                    if r.get("module") in ("media", "srtpctx", "b2bua", "sdp", "oa")
                    or r.get("level") in ("warn", "error")]
            out.append("--- daemon media/warn/error log (last 30 of %d):" % len(recs))
            out += ["  " + r["_raw"] for r in recs[-30:]]
        return "\n".join(out)

    # -- the scenario

    def hold_resume(self, rekey, roc):
        self.start(rekey)
        k1, k2, k3 = new_key(), new_key(), new_key()
        a_port, b_port, ka = self.call(k1)
        self.our_keys = [ka]
        self.early = [0]
        cm, im = self.cm, self.im
        cm.cmd("dest", "127.0.0.1", a_port)
        cm.cmd("seq", START_SEQ)
        cm.cmd("roc", roc)
        cm.cmd("reorder", 2)
        cm.cmd("send_key", S80, k1)
        cm.cmd("recv_key", S80, ka)
        im.cmd("dest", "127.0.0.1", b_port)
        # 1. fast until the carrier's sequence number wraps (ROC 1), then 20 ms
        cm.cmd("interval", 2)
        cm.cmd("start")
        im.cmd("start")
        cm.out.wait_for(ev="wrap", timeout=max(10, harness.TIMEOUT))
        cm.cmd("interval", 20)
        cm.wait_recv(cm.cmd("stats")["received"] + 50)  # a second of the IVR
        # 2. hold with K2, 3. resume with K3, each until the old key is let go
        t2, ka2 = self.reinvite(2, k2, "sendonly", "recvonly")
        w2 = self.wait_old_key_gone(1, t2)
        t3, ka3 = self.reinvite(3, k3, "sendrecv", "sendrecv")
        w3 = self.wait_old_key_gone(2, t3)
        # 4. both stop; each waits for the other's last packet
        c_sent = cm.cmd("stop")["sent"]
        i_sent = im.cmd("stop")["sent"]
        at_ivr = im.wait_recv(c_sent)
        at_carrier = cm.wait_recv(i_sent)
        c_stats = cm.cmd("stats")
        info = self.call_info()
        self.carrier.bye()  # the checks come after: the daemon ends clean either way
        bye, _, _, _ = self.ivr_sip.expect(lambda f, h, b: f.startswith("BYE "), "BYE")
        self.ivr_sip.send(respond(bye, 200, "OK"))
        sys.stderr.write("  %s: carrier sent %d, ivr sent %d; grace seen after %.2f s, %.2f s; "
                         "at the IVR max gap %.1f ms (excess %.1f), at the carrier %.1f ms "
                         "(excess %.1f); early packets %s\n"
                         % (self.id().split(".")[-1], c_sent, i_sent, w2, w3,
                            at_ivr["max_gap_ms"], at_ivr["max_excess_gap_ms"],
                            at_carrier["max_gap_ms"], at_carrier["max_excess_gap_ms"],
                            [k["early"] for k in at_carrier["recv_keys"]]))
        ev = self.evidence

        # the carrier's counters at the IVR: all, once, in order
        self.assertEqual(
            {k: at_ivr[k] for k in ("received", "lowest", "highest", "missing", "dups",
                                    "reordered", "not_ours")},
            {"received": c_sent, "lowest": 0, "highest": c_sent - 1, "missing": 0, "dups": 0,
             "reordered": 2, "not_ours": 0},
            "carrier -> IVR (reordered: the late packet of K1 and of K2)\n" + ev())
        self.assertLess(at_ivr["max_excess_gap_ms"], MAX_GAP_MS, "a gap at the IVR\n" + ev())
        # the IVR's counters at the carrier: all, once, in order, all authenticated
        self.assertEqual(
            {k: at_carrier[k] for k in ("received", "lowest", "highest", "missing", "dups",
                                        "reordered", "auth_fail", "held", "not_ours")},
            {"received": i_sent, "lowest": 0, "highest": i_sent - 1, "missing": 0, "dups": 0,
             "reordered": 0, "auth_fail": 0, "held": 0, "not_ours": 0},
            "IVR -> carrier\n" + ev())
        self.assertLess(at_carrier["max_excess_gap_ms"], MAX_GAP_MS,
                        "a gap at the carrier\n" + ev())
        rkeys = at_carrier["recv_keys"]
        if rekey == "keep":
            self.assertEqual([ka2, ka3], [ka, ka], "rekey = keep: our key in every 200")
            self.assertEqual([(k["n"], k["packets"], k["early"]) for k in rkeys],
                             [(1, i_sent, 0)], "one key of ours, nothing early\n" + ev())
        else:
            self.assertEqual(len({ka, ka2, ka3}), 3, "rekey = always: a new key in every 200")
            self.assertEqual([(k["n"], k["early"]) for k in rkeys],
                             list(zip([1, 2, 3], self.early)), rkeys)
            self.assertTrue(all(k["packets"] > 0 for k in rkeys), "%s\n%s" % (rkeys, ev()))
        self.assertEqual(sum(k["packets"] for k in rkeys), i_sent, rkeys)

        # the daemon's view of leg A
        stream = info["leg_a"]["streams"][0]
        rtp_in = stream["rtp_in"]
        self.assertEqual((rtp_in["packets"], rtp_in.get("auth_fail"), rtp_in.get("replay_fail"),
                          rtp_in.get("cant_check")), (c_sent, 0, 0, 0),
                         "leg A rtp_in\n" + ev())
        self.assertEqual(stream["rtp_out"]["packets"], i_sent, "leg A rtp_out\n" + ev())
        peer = self.epochs(info, "peer")
        skeys = c_stats["send_keys"]
        self.assertEqual(
            [(e["n"], e["message"], e["suite"], e["packets"], e["in_use"]) for e in peer],
            [(1, "INVITE", S80, skeys[0]["packets"], False),
             (2, "re-INVITE", S80, skeys[1]["packets"], False),
             (3, "re-INVITE", S80, skeys[2]["packets"], True)],
            "leg A's peer key epochs (packets: what the carrier sent under each key)\n" + ev())
        self.assertEqual(len({e["fingerprint"] for e in peer}), 3, peer)
        self.assertEqual([e["peer_roc"] for e in peer],
                         ["unknown", "continued" if roc == "keep" else "reset", "continued"],
                         "peer_roc with the carrier's roc %s\n%s" % (roc, ev()))
        rc, stats = ctl(self.ctl_sock, "stats")
        self.assertEqual((stats["srtp"]["rekey_roc_continued"], stats["srtp"]["rekey_roc_reset"]),
                         (2, 0) if roc == "keep" else (1, 1), "the daemon's count of which")
        ours = self.epochs(info, "ours")
        if rekey == "keep":
            self.assertEqual([(e["n"], e["message"], e["packets"], e["in_use"]) for e in ours],
                             [(1, "200", i_sent, True)], "leg A's key epochs of ours\n" + ev())
        else:
            self.assertEqual(
                [(e["n"], e["message"], e["packets"], e["in_use"]) for e in ours],
                [(1, "200", rkeys[0]["packets"], False), (2, "200", rkeys[1]["packets"], False),
                 (3, "200", rkeys[2]["packets"], True)],
                "leg A's key epochs of ours (packets: what the carrier took under each)\n"
                + ev())
            self.assertEqual(len({e["fingerprint"] for e in ours}), 3, ours)
        # the daemon's log: no key, and each re-INVITE relayed as one with a
        # new key (last: what matters most is checked above)
        logged = "\n".join(r["_raw"] for r in self.daemon.logs())
        for key in (k1, k2, k3, ka, ka2, ka3):
            self.assertNotIn(key, logged, "a key in the daemon's log")
        relayed = self.daemon.find_logs(msg="offer relayed")
        self.assertEqual([(r.get("method"), r.get("from")) for r in relayed],
                         [("INVITE", "leg A")] * 2,
                         "the daemon's log of the re-INVITEs: %s"
                         % [r["_raw"] for r in relayed])
        changed = self.daemon.find_logs(msg="peer key changed", leg="a")
        self.assertEqual([r.get("streams") for r in changed], ["1"] * 2,
                         "each re-INVITE's new key logged once: %s"
                         % [r["_raw"] for r in changed])

    def test_rekey_keep_roc_keep(self):
        self.hold_resume("keep", "keep")

    def test_rekey_keep_roc_reset(self):
        self.hold_resume("keep", "reset")

    def test_rekey_always_roc_keep(self):
        self.hold_resume("always", "keep")

    def test_rekey_always_roc_reset(self):
        self.hold_resume("always", "reset")


if __name__ == "__main__":
    harness.main()
