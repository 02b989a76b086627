#!/usr/bin/env python3
"""Record the SRTP cross-check fixtures in this directory (see README.md).

Documentation-grade: this is the script that made the *.txt fixtures, kept so
they can be re-made by hand.  It is not run by the test suite.  Standard
library only.  Run as root on Debian 12:

    python3 record.py rtpengine            # needs rtpengine-daemon
    python3 record.py baresip              # needs baresip-core
    python3 record.py all --out DIR        # default DIR: this directory

It runs itself again in a network namespace of its own that has only
loopback (unshare --net), because baresip 1.0 binds its RTP and DNS sockets
to the wildcard address and has no setting to bind 127.0.0.1.  Everything
else is bound to and sent on 127.0.0.1.

rtpengine: started in userspace in the foreground, driven over its "ng"
protocol (bencode over UDP).  For each suite, an offer from a plain RTP/AVP
"caller" is turned into RTP/SAVP toward the "callee" with that SDES suite
alone (SDES flags "no-<SUITE>" for all the others); the callee answers with
the same suite.  Plain RTP and one plain RTCP compound packet sent from the
caller socket come out of rtpengine as SRTP/SRTCP toward the callee socket,
where they are recorded.  The key is the a=crypto rtpengine put into the
offer it produced (in SDES each side encrypts with the key it signalled).

baresip: baresip 1.0 offers only its hard-coded preferred suite
(AES_CM_128_HMAC_SHA1_80) and has no setting to change it, but as the
answerer it takes any suite it supports from the offer and answers it with
its own key.  So this script acts as a minimal SIP UAC: it sends an INVITE
offering RTP/SAVP with the one suite to a baresip instance (auto-answer,
aufile source playing a WAV made here, PCMU only, srtp-mand), takes
baresip's a=crypto from the 200 OK, ACKs, records the SRTP/SRTCP baresip
sends to this script's RTP/RTCP sockets, then sends BYE.  The expected
payloads are this script's own G.711 mu-law encoding of the WAV; which
160-byte slice a packet carries follows from its RTP timestamp (baresip
reads the file from sample 0 and advances the timestamp by 160 per packet).
"""

import argparse
import base64
import math
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import wave

HOST = "127.0.0.1"

RTPENGINE_SUITES = [
    "AES_CM_128_HMAC_SHA1_80",
    "AES_CM_128_HMAC_SHA1_32",
    "AES_192_CM_HMAC_SHA1_80",
    "AES_192_CM_HMAC_SHA1_32",
    "AES_256_CM_HMAC_SHA1_80",
    "AES_256_CM_HMAC_SHA1_32",
    "AEAD_AES_128_GCM",
    "AEAD_AES_256_GCM",
]
# Every suite rtpengine 10.5 offers by default; it has no "only-" SDES flag
# yet (later versions do), so all but one are excluded with "no-<SUITE>".
RTPENGINE_ALL = RTPENGINE_SUITES + [
    "F8_128_HMAC_SHA1_80", "F8_128_HMAC_SHA1_32",
    "NULL_HMAC_SHA1_80", "NULL_HMAC_SHA1_32",
]
# What baresip 1.0's srtp module accepts (modules/srtp/srtp.c,
# cryptosuite_issupported()); the AES-192/256-CM suites are not in it.
BARESIP_SUITES = [
    "AES_CM_128_HMAC_SHA1_80",
    "AES_CM_128_HMAC_SHA1_32",
    "AEAD_AES_128_GCM",
    "AEAD_AES_256_GCM",
]
# master key || master salt, bytes
KEY_SALT_LEN = {
    "AES_CM_128_HMAC_SHA1_80": 30, "AES_CM_128_HMAC_SHA1_32": 30,
    "AES_192_CM_HMAC_SHA1_80": 38, "AES_192_CM_HMAC_SHA1_32": 38,
    "AES_256_CM_HMAC_SHA1_80": 46, "AES_256_CM_HMAC_SHA1_32": 46,
    "AEAD_AES_128_GCM": 28, "AEAD_AES_256_GCM": 44,
}

# Ports (all on 127.0.0.1); chosen away from the usual 5060/2223/30000-40000.
NG_PORT = 47220
RTPENGINE_PORT_MIN, RTPENGINE_PORT_MAX = 47300, 47399
CALLER_RTP, CALLEE_RTP = 47400, 47402          # RTCP on port + 1
BARESIP_SIP = 47600
BARESIP_RTP_MIN, BARESIP_RTP_MAX = 47610, 47629
UAC_SIP, UAC_RTP = 47650, 47660                # RTCP on UAC_RTP + 1

KEEP_FROM, KEEP_COUNT = 4, 5    # record packets 4..8 (0-based) of each stream
PTIME_SAMPLES = 160             # 20 ms of 8 kHz PCMU


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def version_of(pkg):
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def stop(proc):
    """Stop a process this script started, by its own handle."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- bencode

def benc(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(benc(x) for x in v) + b"e"
    if isinstance(v, dict):
        return b"d" + b"".join(benc(k) + benc(x) for k, x in v.items()) + b"e"
    raise TypeError(type(v))


def bdec(buf, i=0):
    """Decode one bencoded value at buf[i:]; return (value, next index)."""
    c = buf[i:i + 1]
    if c == b"i":
        j = buf.index(b"e", i)
        return int(buf[i + 1:j]), j + 1
    if c in (b"l", b"d"):
        items, i = [], i + 1
        while buf[i:i + 1] != b"e":
            x, i = bdec(buf, i)
            items.append(x)
        if c == b"l":
            return items, i + 1
        return {items[k].decode(): items[k + 1]
                for k in range(0, len(items), 2)}, i + 1
    j = buf.index(b":", i)
    n = int(buf[i:j])
    return buf[j + 1:j + 1 + n], j + 1 + n


def ng(sock, cmd):
    cookie = b"%08x" % random.getrandbits(32)
    sock.sendto(cookie + b" " + benc(cmd), (HOST, NG_PORT))
    while True:
        data = sock.recv(65535)
        if data.startswith(cookie + b" "):
            res, _ = bdec(data, len(cookie) + 1)
            if res.get("result") not in (b"ok", b"pong"):
                raise RuntimeError("ng %s: %r" % (cmd["command"], res))
            return res


# ------------------------------------------------------------ RTP / SDP

def rtp_packet(seq, ts, ssrc, payload, marker=False, pt=0):
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt,
                       seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


def known_payload(seq):
    """The payload of the RTP packet with this sequence number."""
    return bytes((7 * seq + i) & 0xFF for i in range(PTIME_SAMPLES))


def rtcp_compound(ssrc):
    """A fixed RTCP compound packet: SR (no report blocks) + SDES CNAME."""
    sr = struct.pack("!BBHIIIIII", 0x80, 200, 6, ssrc,
                     0xE9A3F0C1, 0x40000000,       # NTP timestamp
                     0x12345678 + 160 * 10,        # RTP timestamp
                     10, 10 * PTIME_SAMPLES)       # packet / octet count
    cname = b"fixture@127.0.0.1"
    chunk = struct.pack("!IBB", ssrc, 1, len(cname)) + cname + b"\0"
    chunk += b"\0" * (-len(chunk) % 4)
    sdes = struct.pack("!BBH", 0x81, 202, len(chunk) // 4) + chunk
    return sr + sdes


def sdp(user, port, proto, crypto=None):
    """A one-stream PCMU SDP body on 127.0.0.1."""
    lines = ["v=0", "o=%s 1 1 IN IP4 %s" % (user, HOST), "s=-",
             "c=IN IP4 " + HOST, "t=0 0", "m=audio %d %s 0" % (port, proto),
             "a=rtpmap:0 PCMU/8000", "a=ptime:20", "a=sendrecv"]
    if crypto:
        lines.append("a=crypto:" + crypto)
    return "\r\n".join(lines) + "\r\n"


def rtp_header_len(pkt):
    n = 12 + 4 * (pkt[0] & 0x0F)
    if pkt[0] & 0x10:
        n += 4 + 4 * struct.unpack("!H", pkt[n + 2:n + 4])[0]
    return n


def sdp_media(sdp):
    """(port, rtcp port, [a=crypto values]) of the first m= section."""
    sdp = sdp.decode() if isinstance(sdp, bytes) else sdp
    port = int(re.search(r"^m=audio (\d+) ", sdp, re.M).group(1))
    m = re.search(r"^a=rtcp:(\d+)", sdp, re.M)
    rtcp = int(m.group(1)) if m else port + 1
    cryptos = re.findall(r"^a=crypto:(.*?)\r?$", sdp, re.M)
    return port, rtcp, cryptos


def udp_pair(port):
    socks = []
    for p in (port, port + 1):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((HOST, p))
        socks.append(s)
    return socks


def drain(sock, seconds):
    """Everything that arrives on sock within the given time."""
    got, end = [], time.time() + seconds
    while True:
        left = end - time.time()
        if left <= 0:
            return got
        sock.settimeout(left)
        try:
            got.append(sock.recv(65535))
        except socket.timeout:
            return got


def random_key(suite):
    return base64.b64encode(os.urandom(KEY_SALT_LEN[suite])).decode()


# -------------------------------------------------------------- rtpengine

RTPENGINE_HOW = """\
made by rtpengine {ver} (Debian 12 rtpengine-daemon), userspace only
(--table=-1), by tests/unit/data/srtp/record.py: an offer from a plain
RTP/AVP caller with transport-protocol=RTP/SAVP, ICE=remove, DTLS=off and
SDES=[no-<every other suite>], so that rtpengine offered {suite} alone;
the callee answered RTP/SAVP with the same suite and tag. crypto is the
a=crypto rtpengine put into its offer to the callee: rtpengine encrypts
toward the callee with that key. The RTP went in as plain PCMU (PT 0,
SSRC 0x{ssrc:08x}) from the caller; payload byte i of sequence number s is
(7*s + i) mod 256. The packets are the 5th..9th of 12 sent, seq 65534,
65535, 0, 1, 2: the sequence number wraps, so the rollover counter goes
0 -> 1 inside this file (a fresh receiver must estimate it).
"""
RTPENGINE_HOW_RTCP = """\
srtcp: one RTCP compound (SR + SDES CNAME) sent plain from the caller's
RTCP port, received as SRTCP; rtcp is what was sent.
"""

def rtpengine_cmd():
    return ["rtpengine", "--config-file=none", "--foreground", "--log-stderr",
            "--table=-1", "--interface=" + HOST,
            "--listen-ng=%s:%d" % (HOST, NG_PORT),
            "--port-min=%d" % RTPENGINE_PORT_MIN,
            "--port-max=%d" % RTPENGINE_PORT_MAX, "--log-level=6"]


def record_rtpengine_suite(ctl, suite, index):
    call_id = "fixture-%s-%d" % (suite, os.getpid())
    caller = udp_pair(CALLER_RTP)
    callee = udp_pair(CALLEE_RTP)
    try:
        offer_sdp = sdp("caller", CALLER_RTP, "RTP/AVP")
        others = ["no-" + x for x in RTPENGINE_ALL if x != suite]
        res = ng(ctl, {"command": "offer", "call-id": call_id,
                       "from-tag": "caller", "sdp": offer_sdp,
                       "transport-protocol": "RTP/SAVP", "ICE": "remove",
                       "DTLS": "off", "SDES": others})
        _, _, cryptos = sdp_media(res["sdp"])
        if len(cryptos) != 1 or cryptos[0].split()[1] != suite:
            raise RuntimeError("%s: rtpengine offered %r" % (suite, cryptos))
        crypto = cryptos[0]
        tag = crypto.split()[0]
        answer_sdp = sdp("callee", CALLEE_RTP, "RTP/SAVP",
                         "%s %s inline:%s" % (tag, suite, random_key(suite)))
        res = ng(ctl, {"command": "answer", "call-id": call_id,
                       "from-tag": "caller", "to-tag": "callee",
                       "sdp": answer_sdp, "ICE": "remove"})
        rtp_port, rtcp_port, _ = sdp_media(res["sdp"])

        ssrc = 0x5EED0000 + index
        seq0, ts0 = 65530, 0x12345678   # crosses 65535 -> 0: ROC 0 -> 1
        sent = {}
        for i in range(12):
            seq = (seq0 + i) & 0xFFFF
            sent[seq] = known_payload(seq)
            caller[0].sendto(rtp_packet(seq, ts0 + 160 * i, ssrc, sent[seq],
                                        marker=(i == 0)), (HOST, rtp_port))
            time.sleep(0.02)
        rtcp = rtcp_compound(ssrc)
        caller[1].sendto(rtcp, (HOST, rtcp_port))
        srtp = drain(callee[0], 0.5)
        srtcp = drain(callee[1], 0.3)
        ng(ctl, {"command": "delete", "call-id": call_id,
                 "from-tag": "caller"})
    finally:
        for s in caller + callee:
            s.close()

    if len(srtp) != 12:
        raise RuntimeError("%s: got %d SRTP packets, sent 12"
                           % (suite, len(srtp)))
    packets = []
    for pkt in srtp[KEEP_FROM:KEEP_FROM + KEEP_COUNT]:
        seq = struct.unpack("!H", pkt[2:4])[0]
        packets.append((pkt, sent[seq]))
    return crypto, packets, [(p, rtcp) for p in srtcp[:1]]


def record_rtpengine(out):
    ver = version_of("rtpengine-daemon")
    log("rtpengine", ver)
    logf = open(os.path.join(tempfile.gettempdir(), "rtpengine-fixture.log"),
                "w")
    proc = subprocess.Popen(rtpengine_cmd(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=logf)
    ctl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ctl.bind((HOST, 0))
    ctl.settimeout(0.5)
    try:
        for _ in range(40):
            try:
                ng(ctl, {"command": "ping"})
                break
            except socket.timeout:
                time.sleep(0.25)
        else:
            raise RuntimeError("rtpengine does not answer ping")
        for index, suite in enumerate(RTPENGINE_SUITES):
            crypto, packets, rtcp = record_rtpengine_suite(ctl, suite, index)
            how = RTPENGINE_HOW.format(ver=ver, suite=suite,
                                       ssrc=0x5EED0000 + index)
            if rtcp:
                how += RTPENGINE_HOW_RTCP
            write_fixture(out, "rtpengine", suite, crypto, packets, rtcp, how)
    finally:
        ctl.close()
        stop(proc)
        logf.close()


# ---------------------------------------------------------------- baresip

def lin2ulaw(sample):
    """G.711 mu-law of one signed 16-bit sample: Sun's 16-bit reference
    linear2ulaw (bias 0x84, clip 32635).  baresip 1.0's g711 matches it on
    every sample of the WAV; Python's audioop.lin2ulaw (14-bit variant) does
    not: it differs on ~1% of negative samples."""
    sign = 0x80 if sample < 0 else 0
    mag = min(-sample if sample < 0 else sample, 32635) + 0x84
    exp = mag.bit_length() - 8          # 0..7
    mant = (mag >> (exp + 3)) & 0x0F
    return ~(sign | (exp << 4) | mant) & 0xFF


def make_wav(path, seconds=10):
    """8 kHz mono S16LE: two incommensurate tones plus LCG noise, so any
    160-sample window is unique.  Returns the samples."""
    rng, samples = 0x1234567, []
    for n in range(8000 * seconds):
        rng = (1103515245 * rng + 12345) & 0x7FFFFFFF
        noise = (rng >> 16) % 2001 - 1000
        v = 9000 * math.sin(2 * math.pi * 440.0 * n / 8000) \
            + 6000 * math.sin(2 * math.pi * 1234.5 * n / 8000) + noise
        samples.append(int(round(v)))
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(struct.pack("<%dh" % len(samples), *samples))
    return samples


BARESIP_CONFIG = """\
poll_method		epoll
sip_listen		{host}:{sip}
net_interface		{host}
net_af			ipv4
audio_source		aufile,{wav}
audio_player		aubridge,nowhere
audio_alert		aubridge,nowhere
rtp_ports		{rtp_min}-{rtp_max}
rtcp_mux		no
rtp_timeout		0
module_path		/usr/lib/baresip/modules
module			g711.so
module			aufile.so
module			aubridge.so
module			srtp.so
module_tmp		account.so
"""
BARESIP_ACCOUNT = ("<sip:bob@{host}>;regint=0;answermode=auto;"
                   "mediaenc=srtp-mand;audio_codecs=PCMU\n")


BARESIP_HOW = """\
made by baresip {ver} with libre {lib} (Debian 12 baresip-core, libre0),
by tests/unit/data/srtp/record.py: it sent baresip (auto-answer,
mediaenc=srtp-mand, PCMU only) an INVITE offering RTP/SAVP with only
{suite}; crypto is the a=crypto of baresip's 200 OK answer: baresip
encrypts what it sends with that key. Audio: aufile playing a WAV made by
record.py (8 kHz mono S16: tones at 440 and 1234.5 Hz plus LCG noise);
payload is record.py's own G.711 mu-law of the 160 samples starting at
(RTP timestamp - timestamp of baresip's first packet). The packets are the
5th..9th baresip sent in the call.
"""
BARESIP_HOW_RTCP = """\
srtcp: baresip's first SRTCP sender report of the call. Its plain text was
made by baresip and is not known in advance, so there is no rtcp line:
check that it authenticates and decrypts to an SR (PT 200) with the RTP
packets' SSRC, followed by an SDES (PT 202) packet.
"""
BARESIP_HOW_NO_RTCP = """\
No srtcp line: baresip's SRTCP for this suite carries a {bits}-bit tag, not
the 80 bits RFC 3711 and RFC 4568 require for SRTCP (libre uses its RTP tag
length for SRTCP too), so an RFC receiver must reject it. The packet, for a
negative test:
{hex}
"""


class Uac:
    """Just enough of a SIP UAC over UDP for one call to baresip."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, UAC_SIP))
        self.call_id = "%08x@fixture" % random.getrandbits(32)
        self.ftag = "%08x" % random.getrandbits(32)
        self.ttag = None
        self.target = "sip:bob@%s:%d" % (HOST, BARESIP_SIP)

    def send(self, method, cseq, body=b""):
        to = "<sip:bob@%s:%d>" % (HOST, BARESIP_SIP)
        if self.ttag:
            to += ";tag=" + self.ttag
        hdr = [
            "%s %s SIP/2.0" % (method, self.target),
            "Via: SIP/2.0/UDP %s:%d;rport;branch=z9hG4bK%08x"
            % (HOST, UAC_SIP, random.getrandbits(32)),
            "Max-Forwards: 70",
            "From: <sip:fixture@%s:%d>;tag=%s" % (HOST, UAC_SIP, self.ftag),
            "To: " + to,
            "Call-ID: " + self.call_id,
            "CSeq: %d %s" % (cseq, method),
            "Contact: <sip:fixture@%s:%d>" % (HOST, UAC_SIP),
            "User-Agent: srtpbridge-fixture-recorder",
        ]
        if body:
            hdr.append("Content-Type: application/sdp")
        hdr.append("Content-Length: %d" % len(body))
        self.sock.sendto(("\r\n".join(hdr) + "\r\n\r\n").encode() + body,
                         (HOST, BARESIP_SIP))

    def final_response(self, method, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            self.sock.settimeout(end - time.time())
            msg = self.sock.recv(65535)
            head, _, body = msg.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            if not lines[0].startswith("SIP/2.0 "):
                continue            # a request from baresip: ignore
            code = int(lines[0].split()[1])
            hdrs = {}
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                hdrs.setdefault(k.strip().lower(), v.strip())
            if not hdrs.get("cseq", "").endswith(method) or code < 200:
                continue
            to = hdrs.get("to", hdrs.get("t", ""))
            m = re.search(r";tag=([^;>\s]+)", to)
            if m:
                self.ttag = m.group(1)
            contact = hdrs.get("contact", hdrs.get("m", ""))
            m = re.search(r"<(sip:[^>]+)>", contact)
            if m and method == "INVITE":
                self.target = m.group(1)
            return code, body
        raise RuntimeError("no final response to " + method)

    def close(self):
        self.sock.close()


def record_baresip_suite(suite, wavpath, ulaw, workdir):
    conf = os.path.join(workdir, suite)
    os.makedirs(conf)
    with open(os.path.join(conf, "config"), "w") as f:
        f.write(BARESIP_CONFIG.format(host=HOST, sip=BARESIP_SIP, wav=wavpath,
                                      rtp_min=BARESIP_RTP_MIN,
                                      rtp_max=BARESIP_RTP_MAX))
    with open(os.path.join(conf, "accounts"), "w") as f:
        f.write(BARESIP_ACCOUNT.format(host=HOST))
    for name in ("contacts", "uuid"):
        open(os.path.join(conf, name), "w").close()
    logf = open(os.path.join(conf, "baresip.log"), "w")
    proc = subprocess.Popen(["baresip", "-f", conf], stdin=subprocess.DEVNULL,
                            stdout=logf, stderr=subprocess.STDOUT)
    rtp = udp_pair(UAC_RTP)
    uac = Uac()
    try:
        time.sleep(1.0)
        offer = sdp("fixture", UAC_RTP, "RTP/SAVP",
                    "1 %s inline:%s" % (suite, random_key(suite)))
        uac.send("INVITE", 1, offer.encode())
        code, answer = uac.final_response("INVITE")
        if code != 200:
            raise RuntimeError("%s: baresip answered %d" % (suite, code))
        uac.send("ACK", 1)
        _, _, cryptos = sdp_media(answer)
        if len(cryptos) != 1 or cryptos[0].split()[1] != suite:
            raise RuntimeError("%s: baresip answered %r" % (suite, cryptos))
        srtp = drain(rtp[0], 1.0)
        srtcp = drain(rtp[1], 7.0)   # baresip's first RTCP comes after seconds
        uac.send("BYE", 2)
        uac.final_response("BYE")
    finally:
        uac.close()
        for s in rtp:
            s.close()
        stop(proc)
        logf.close()

    # Only RTP (PT 0) on the RTP port; what baresip sent first has the file's
    # first samples.
    srtp = [p for p in srtp if p[1] & 0x7F == 0]
    if len(srtp) < KEEP_FROM + KEEP_COUNT:
        raise RuntimeError("%s: only %d SRTP packets" % (suite, len(srtp)))
    ts0 = struct.unpack("!I", srtp[0][4:8])[0]
    packets = []
    for pkt in srtp[KEEP_FROM:KEEP_FROM + KEEP_COUNT]:
        off = (struct.unpack("!I", pkt[4:8])[0] - ts0) & 0xFFFFFFFF
        packets.append((pkt, ulaw[off:off + PTIME_SAMPLES]))
    # The RTCP port also carries a plain RTCP APP packet ("PING") that baresip
    # sends before SRTP is on, and an SRTCP APP; keep the first SRTCP sender
    # report: PT 200 and longer than its RTCP length field (index + tag).
    srtcp = [p for p in srtcp if len(p) >= 8 and p[1] == 200
             and len(p) > 4 * (struct.unpack("!H", p[2:4])[0] + 1)]
    return cryptos[0], packets, srtcp[:1]


def srtcp_tag_len(pkt, gcm):
    """Where the E-flag|SRTCP index sits tells the tag length: RFC 3711 says
    80 bits for every HMAC-SHA1 suite; libre 1.1.0 uses its RTP tag length
    (32 bits with the _32 suites).  GCM: no trailing tag (it is inside)."""
    if gcm:
        return 0
    for tag in (10, 4):
        e_index = struct.unpack("!I", pkt[-tag - 4:-tag])[0]
        if e_index & 0x80000000 and e_index & 0x7FFFFFFF < 1000:
            return tag
    return None


def record_baresip(out):
    ver = version_of("baresip-core")
    lib = version_of("libre0")
    log("baresip", ver, "libre", lib)
    workdir = tempfile.mkdtemp(prefix="baresip-fixture-")
    try:
        wavpath = os.path.join(workdir, "source.wav")
        ulaw = bytes(lin2ulaw(s) for s in make_wav(wavpath))
        for suite in BARESIP_SUITES:
            crypto, packets, srtcp = record_baresip_suite(suite, wavpath, ulaw,
                                                          workdir)
            how = BARESIP_HOW.format(ver=ver, lib=lib, suite=suite)
            rtcp = []
            tag = srtcp and srtcp_tag_len(srtcp[0], suite.startswith("AEAD"))
            if srtcp and tag in (0, 10):
                how += BARESIP_HOW_RTCP
                rtcp = [(srtcp[0], None)]
            elif srtcp:
                how += BARESIP_HOW_NO_RTCP.format(bits=tag * 8 if tag else "?",
                                                  hex=srtcp[0].hex())
            write_fixture(out, "baresip", suite, crypto, packets, rtcp, how)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# ----------------------------------------------------------------- output

def write_fixture(out, source, suite, crypto, packets, rtcp, how):
    path = os.path.join(out, "%s-%s.txt" % (source, suite))
    with open(path, "w") as f:
        for line in how.splitlines():
            f.write("# " + line + "\n")
        f.write("source = %s\nsuite = %s\n" % (source, suite))
        f.write("crypto = %s\n" % crypto)
        for pkt, payload in packets:
            f.write("srtp = %s\npayload = %s\n" % (pkt.hex(), payload.hex()))
        for pkt, plain in rtcp:
            f.write("srtcp = %s\n" % pkt.hex())
            if plain is not None:
                f.write("rtcp = %s\n" % plain.hex())
    log("wrote", path)


def enter_netns(argv):
    """Run this script again in a network namespace of its own in which
    only loopback exists (needs root): baresip 1.0 binds its RTP and DNS
    sockets to the wildcard address, with no setting to bind 127.0.0.1, so
    the namespace is what keeps everything on loopback."""
    cmd = ("ip link set lo up && exec \"$0\" \"$@\"")
    return subprocess.call(["unshare", "--net", "--", "sh", "-c", cmd,
                            sys.executable, os.path.abspath(__file__)]
                           + argv + ["--in-netns"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("which", choices=["rtpengine", "baresip", "all"])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=here)
    ap.add_argument("--in-netns", action="store_true",
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not args.in_netns:
        sys.exit(enter_netns([args.which, "--out", os.path.abspath(args.out)]))
    if args.which in ("rtpengine", "all"):
        record_rtpengine(args.out)
    if args.which in ("baresip", "all"):
        record_baresip(args.out)


if __name__ == "__main__":
    main()
