"""srtpbridge between peers that are not ours, for test_probe_peers*.py
(python3 stdlib only): a config made of trunks and [route:*] rules on quiet
loopback ports, the daemon started from it, and srtpbridgectl's view of
each call while it is up, by the name of the rule that routed it (so that
calls running at the same time are told apart).

    b = Bridge(test)
    b.trunk("carrier", peer=P, srtp="mandatory", suites=[...], route="ivr")
    b.rule("in_80", "carrier", "^in80$", "ivr")
    b.start(calls=2)                                 # listen ports picked here
    b.uri("in80", "carrier"), b.listen["carrier"]
    views = b.watch(lambda: any(c.running() ...))   # {rule name: last view}
"""

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import harness  # noqa: E402
from harness import binary, run  # noqa: E402

GLOBAL = """\
[global]
log_level = debug
control_socket = @CONTROL_SOCKET@
metrics_listen =
media_ports = @MEDIA_PORTS@
media_port_quarantine = 0
"""

SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32",
          "AES_192_CM_HMAC_SHA1_80", "AES_192_CM_HMAC_SHA1_32",
          "AES_256_CM_HMAC_SHA1_80", "AES_256_CM_HMAC_SHA1_32",
          "AEAD_AES_128_GCM", "AEAD_AES_256_GCM")

# The inbound counters of `srtpbridgectl call ID` that are decrypt failures
# (as its `calls` sums them into rtp_/rtcp_decrypt_failures).
FAILURES = ("auth_fail", "replay_fail", "cant_check")

_build_suites = []


def build_suites():
    """The suites this build accepts in a trunk (`srtpbridge --check`: it
    refuses AES-192 on a libsrtp2 that derives AES-192 keys wrongly)."""
    if _build_suites:
        return list(_build_suites)
    tmp = harness.TempDir()
    try:
        for s in SUITES:
            text = (harness.render(GLOBAL, CONTROL_SOCKET=tmp.join("c.sock"),
                                   MEDIA_PORTS="40000-40099")
                    + "[trunk:t]\nlisten = udp:127.0.0.1:5060\npeers = udp:127.0.0.1:5060\n"
                    "crypto_suites = %s\n" % s)
            if harness.run([binary(), "--check", "-c", tmp.write("c.ini", text)]).returncode == 0:
                _build_suites.append(s)
    finally:
        tmp.cleanup()
    return list(_build_suites)


class Bridge:
    def __init__(self, test):
        self.test = test
        self.trunks = []  # (name, peer, srtp, suites, route, extra)
        self.rules = []  # [route:*] sections
        self.listen = {}  # trunk name -> its (first) listen port, from start() on
        self.listen_on = {}  # trunk name -> {transport: listen port}
        self.secure = {}  # trunk name -> whether it is SRTP (srtp not off)
        self.daemon = None
        self.views = {}  # rule name -> srtpbridgectl's last view of its call
        self.details = {}  # rule name -> srtpbridgectl call ID's last answer

    def trunk(self, name, peer, srtp="mandatory", suites=None, route=None, extra="",
              listen=("udp",)):
        """A trunk whose peers are peer (a UDP port, or a peers value as the
        config takes it: "tls:127.0.0.1:P | udp:..."); it listens on quiet
        ports picked at start(), one per transport in listen (UDP and TCP
        may share one): self.listen[name] is the first,
        self.listen_on[name][transport] each."""
        self.secure[name] = srtp != "off"
        self.trunks.append((name, peer, srtp, suites, route, extra, tuple(listen)))

    def _trunk_section(self, name, peer, srtp, suites, route, extra, listen):
        peers = peer if isinstance(peer, str) else "udp:127.0.0.1:%d" % peer
        listens = ", ".join("%s:127.0.0.1:%d" % (tp, self.listen_on[name][tp]) for tp in listen)
        # X-Srtpprobe-Heard: each srtpprobe's account of what it heard, in
        # its BYE, reaches the other (the answerer's verdict needs it)
        text = ("[trunk:%s]\nlisten = %s\npeers = %s\n"
                "sources = 127.0.0.1/32\noptions_interval = 0\nfailover_timeout = 1\n"
                "srtp = %s\npass_headers = User-to-User, X-Srtpprobe-Heard\n"
                % (name, listens, peers, srtp))
        if suites:
            text += "crypto_suites = %s\n" % ", ".join(suites)
        if route:
            text += "route = %s\n" % route
        return text + extra + "\n"

    def rule(self, name, frm, match, to):
        self.rules.append("[route:%s]\nfrom = %s\nmatch = %s\nto = %s\n\n"
                          % (name, frm, match, to))

    def uri(self, user, trunk):
        return "sip:%s@127.0.0.1:%d" % (user, self.listen[trunk])

    def start(self, calls):
        """Starts the daemon with media ports for `calls` calls at once: 4
        each (an RTP/RTCP pair a leg, none quarantined), twice over, since
        the daemon skips ports that another process (a test running in
        parallel) took in the meantime. A listen port taken by another
        process between its pick and the daemon's bind (the test running
        twice at once picks as many at the same moment) is picked again."""
        self.ctl_sock = self.test.tmp.join("ctl.sock")

        def launch():
            self.listen_on = {}
            for t in self.trunks:
                ports = {}
                for tp in t[6]:
                    # UDP and TCP on one port, like a real SIP listener
                    twin = {"udp": "tcp", "tcp": "udp"}.get(tp)
                    ports[tp] = ports.get(twin) or harness.quiet_port()
                self.listen_on[t[0]] = ports
            self.listen = {t[0]: self.listen_on[t[0]][t[6][0]] for t in self.trunks}
            text = (harness.render(GLOBAL, CONTROL_SOCKET=self.ctl_sock,
                                   MEDIA_PORTS=harness.free_media_range(8 * calls + 16))
                    + "".join(self._trunk_section(*t) for t in self.trunks) + "".join(self.rules))
            path = self.test.tmp.write("srtpbridge.ini", text)
            harness.release_ports(*{p for d in self.listen_on.values() for p in d.values()})
            self.daemon = self.test.start_daemon(path)
            return self.daemon

        harness.start_with_fresh_ports(launch, attempts=4)
        if os.environ.get("SRTPBRIDGE_KEEP_TMP") == "1":
            self.test.addCleanup(self.save_log)
        return self

    def save_log(self):
        harness.write_file(self.test.tmp.join("daemon.log"),
                           "".join(r["_raw"] + "\n" for r in self.daemon.logs()))

    def ctl(self, *args):
        r = run([binary("srtpbridgectl"), "-s", self.ctl_sock, "--json"] + list(args),
                timeout=10)
        try:
            return json.loads(r.stdout)
        except ValueError:
            return {"ok": False, "stdout": r.stdout, "stderr": r.stderr}

    def snapshot(self, detail=False):
        """srtpbridgectl calls (and call ID with detail) now, kept by rule:
        counters only grow, so the last view before a call ends is its total."""
        for c in self.ctl("calls").get("calls") or []:
            self.views[c.get("route")] = c
            if detail:
                shown = self.ctl("call", c["id"])
                if shown.get("call"):
                    self.details[c.get("route")] = shown["call"]

    def watch(self, running, detail=True, interval=0.25):
        """Snapshots while running() is true; returns self.views."""
        while running():
            self.snapshot(detail)
            time.sleep(interval)
        return self.views

    def carrier_counts(self, name):
        """From the last `call ID` of rule `name`: the RTP and RTCP counters
        of its leg on an SRTP trunk, summed over the leg's streams."""
        call = self.details.get(name) or {}
        out = {}
        for k in ("leg_a", "leg_b"):
            leg = call.get(k)
            if not isinstance(leg, dict):
                continue
            if not self.secure.get(leg.get("trunk")):
                continue
            for stream in leg.get("streams", []):
                for kind in ("rtp_in", "rtp_out", "rtcp_in", "rtcp_out"):
                    for key, n in (stream.get(kind) or {}).items():
                        if isinstance(n, int) and key != "last_ms_ago":
                            out.setdefault(kind, {}).setdefault(key, 0)
                            out[kind][key] += n
        return out

    def evidence(self, name=None, n=25):
        out = ["--- srtpbridgectl calls (last seen up): %s" % json.dumps(
            self.views.get(name) if name else self.views)]
        if name in self.details:
            out.append("--- srtpbridgectl call: %s" % json.dumps(self.details[name]))
        recs = [r for r in self.daemon.logs() if r.get("level") in ("warn", "error")]
        out.append("--- daemon warn/error log (last %d of %d):" % (n, len(recs)))
        out += ["  " + r["_raw"] for r in recs[-n:]]
        out.append("--- daemon log (last 15):\n" + self.daemon.log.tail(n=15))
        return "\n".join(out)
