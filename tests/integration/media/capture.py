"""A packet capture on the loopback interface, and RTP/SRTP dissection
(python3 stdlib only).

LoopbackCapture reads every IPv4 UDP datagram that crosses `lo` with an
AF_PACKET socket, like `tshark -i lo -f 'udp portrange A-B'` but without a
helper process: it is capturing as soon as start() returns (no readiness
to wait for), and it only watches, so it cannot disturb the path. It needs
CAP_NET_RAW (root), as tshark on lo does; available() says why not.
On lo each datagram is seen once (as received, PACKET_HOST).
save_pcap() writes what it kept for wireshark/tshark.
"""

import os
import select
import socket
import struct
import threading
import time

ETH_P_IP = 0x0800


def available():
    """None when a capture can be opened here, else the reason it cannot."""
    if not hasattr(socket, "AF_PACKET"):
        return "no AF_PACKET sockets on this system"
    try:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    except PermissionError:
        return "capturing on lo needs CAP_NET_RAW (root), like tshark -i lo"
    except OSError as e:
        return "cannot open an AF_PACKET socket: %s" % e
    s.close()
    return None


class Packet:
    __slots__ = ("time", "src", "sport", "dst", "dport", "data")

    def __init__(self, when, src, sport, dst, dport, data):
        self.time, self.src, self.sport, self.dst, self.dport, self.data = (
            when, src, sport, dst, dport, data)

    def __repr__(self):
        return "<udp %s:%d -> %s:%d %d bytes>" % (self.src, self.sport, self.dst, self.dport,
                                                  len(self.data))


class LoopbackCapture:
    """UDP datagrams on lo whose source or destination port is in `ports`."""

    def __init__(self, ports):
        self.ports = frozenset(ports)
        self.packets = []
        self.frames = []  # raw link-layer frames kept, for save_pcap()
        self.lock = threading.Lock()
        self.sock = None
        self._stop_r = self._stop_w = None
        self._thread = None

    def start(self):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  socket.htons(ETH_P_IP))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("lo", ETH_P_IP))
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while True:
            r, _, _ = select.select([self.sock, self._stop_r], [], [])
            if self.sock in r:
                # drain what is queued before looking at the stop pipe
                while True:
                    try:
                        frame = self.sock.recv(65536, socket.MSG_DONTWAIT)
                    except BlockingIOError:
                        break
                    self._keep(frame)
            elif self._stop_r in r:
                return

    def _keep(self, frame):
        ip = frame[14:]
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
            return
        ihl = (ip[0] & 15) * 4
        sport, dport, ulen = struct.unpack("!HHH", ip[ihl:ihl + 6])
        if sport not in self.ports and dport not in self.ports:
            return
        pkt = Packet(time.monotonic(), socket.inet_ntoa(ip[12:16]), sport,
                     socket.inet_ntoa(ip[16:20]), dport, bytes(ip[ihl + 8:ihl + ulen]))
        with self.lock:
            self.packets.append(pkt)
            self.frames.append((time.time(), frame))

    def stop(self):
        if self._thread is None:
            return self
        # what was sent just before stop() is in the socket's queue already
        os.write(self._stop_w, b"x")
        self._thread.join(timeout=5)
        os.close(self._stop_r)
        os.close(self._stop_w)
        self.sock.close()
        self._thread = None
        return self

    def snapshot(self):
        with self.lock:
            return list(self.packets)

    def count(self, pred):
        with self.lock:
            return sum(1 for p in self.packets if pred(p))

    def save_pcap(self, path):
        """Writes the kept frames as a pcap file (LINKTYPE_ETHERNET)."""
        with self.lock:
            frames = list(self.frames)
        with open(path, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
            for when, frame in frames:
                sec = int(when)
                f.write(struct.pack("<IIII", sec, int((when - sec) * 1e6), len(frame),
                                    len(frame)))
                f.write(frame)
        return path


# --------------------------------------------------------------------------
# RTP / RTCP / SRTP


def is_rtcp(data):
    """RTCP (plain or SRTCP): version 2 and a packet type 192-223 (RFC 5761)."""
    return len(data) >= 8 and data[0] >> 6 == 2 and 192 <= data[1] <= 223


def rtp_header_len(data):
    """Length of an RTP packet's header (CSRCs and extension included), or
    None when data is not RTP version 2."""
    if len(data) < 12 or data[0] >> 6 != 2 or is_rtcp(data):
        return None
    n = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:
        if len(data) < n + 4:
            return None
        n += 4 + 4 * struct.unpack("!H", data[n + 2:n + 4])[0]
    return n if n <= len(data) else None


def rtp_fields(data):
    """(payload type, sequence number, timestamp, ssrc) of an RTP packet."""
    pt = data[1] & 0x7F
    seq, ts, ssrc = struct.unpack("!HII", data[2:12])
    return pt, seq, ts, ssrc


# Auth tag lengths (bytes) of SRTP and SRTCP packets per SDES suite
# (RFC 4568 6.2: the _32 suites shorten the SRTP tag only; SRTCP keeps 80 bits).
SRTP_TAG = {"AES_CM_128_HMAC_SHA1_80": 10, "AES_CM_128_HMAC_SHA1_32": 4,
            "AES_192_CM_HMAC_SHA1_80": 10, "AES_192_CM_HMAC_SHA1_32": 4,
            "AES_256_CM_HMAC_SHA1_80": 10, "AES_256_CM_HMAC_SHA1_32": 4,
            "AEAD_AES_128_GCM": 16, "AEAD_AES_256_GCM": 16}
SRTCP_TAG = {s: (16 if s.startswith("AEAD") else 10) for s in SRTP_TAG}


def leg_packets(packets, ends_a, ends_b):
    """The packets between a port of ends_a and a port of ends_b, either way."""
    return [p for p in packets if (p.sport in ends_a and p.dport in ends_b)
            or (p.sport in ends_b and p.dport in ends_a)]


def summary(packets, sent_by, label):
    """One line per direction: RTP/RTCP counts and the commonest lengths."""
    lines = []
    for direction, pred in (("%s ->" % label, lambda p: p.sport in sent_by),
                            ("%s <-" % label, lambda p: p.sport not in sent_by)):
        pk = [p for p in packets if pred(p)]
        rtp = [p for p in pk if rtp_header_len(p.data) is not None]
        rtcp = [p for p in pk if is_rtcp(p.data)]
        sizes = {}
        for p in rtp:
            sizes[len(p.data)] = sizes.get(len(p.data), 0) + 1
        common = sorted(sizes.items(), key=lambda kv: -kv[1])[:4]
        flows = sorted({"%d->%d" % (p.sport, p.dport) for p in pk})
        lines.append("%s %d RTP (lengths %s), %d RTCP, %d other; flows %s" % (
            direction, len(rtp), ", ".join("%d x%d" % kv for kv in common) or "-", len(rtcp),
            len(pk) - len(rtp) - len(rtcp), ", ".join(flows[:6]) or "-"))
    return lines


def srtp_problems(packets, suite, payload_len, plain_frames, tone_check, srtcp_senders=()):
    """What in the packets of a secure leg is not SRTP/SRTCP of `suite`:

      - an RTP packet whose length is not header + payload_len + the suite's
        tag (payload_len: the PCMU payload size of the plain side);
      - an RTP payload (tag excluded) that equals, or holds, a frame of plain
        PCMU in plain_frames;
      - an RTP payload in which tone_check(payload) finds the tone;
      - from a port in srtcp_senders, an RTCP packet that is not SRTCP with the
        E flag (encrypted) and an 80-bit tag.

    Returns (problems, counts): a list of (kind, packet, detail) and a dict."""
    tag = SRTP_TAG[suite]
    ctag = SRTCP_TAG[suite]
    problems = []
    counts = {"rtp": 0, "rtcp": 0, "srtcp_checked": 0}
    frames = [f for f in plain_frames if f]
    for p in packets:
        d = p.data
        if is_rtcp(d):
            counts["rtcp"] += 1
            if p.sport in srtcp_senders:
                counts["srtcp_checked"] += 1
                body = len(d) - 4 - ctag
                if body < 8 or body % 4:
                    problems.append(("srtcp-length", p, "%d bytes: not RTCP + 4 (E+index) + %d"
                                     % (len(d), ctag)))
                elif not d[body] & 0x80:
                    problems.append(("srtcp-unencrypted", p, "E flag clear"))
            continue
        h = rtp_header_len(d)
        if h is None:
            problems.append(("not-rtp", p, d[:16].hex()))
            continue
        counts["rtp"] += 1
        if len(d) != h + payload_len + tag:
            problems.append(("length", p, "%d bytes = header %d + %d, not + %d payload + %d tag"
                             % (len(d), h, len(d) - h, payload_len, tag)))
        body = d[h:len(d) - tag] if len(d) - tag > h else d[h:]
        if body in plain_frames or any(f in d for f in frames):
            problems.append(("plain-frame", p, "payload is a plain PCMU frame of the tone"))
        elif tone_check(body):
            problems.append(("tone", p, "payload decodes (PCMU) to the tone"))
    return problems, counts
