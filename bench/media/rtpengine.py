#!/usr/bin/env python3
"""rtpengine as the relay of the media benchmark, set up through its ng protocol.

The same generator that drives srtpbridge drives Sipwise rtpengine instead: the
carrier's leg (A) is SRTP, the IVR's (B) plain RTP, rtpengine relays between
them on loopback. This module starts rtpengine, sets calls up and tears them
down; what it returns for the calls is the calls.json shape bench/media/run
feeds the generator.

    h = start(cpu=0, threads=1, port_min=40000, port_max=49999)
    calls = setup(h, n, gen_ports)      # list of calls.json entries
    calls.cpu_us_per_call               # rtpengine's CPU for the n setups
    ...                                  # generator runs
    delete(h, calls)
    stop(h)

`gen_ports` is a function i -> (a_port, b_port) or a list of such pairs: the
generator's own two local ports for call i (A: the carrier's SRTP socket, B:
the IVR's RTP socket).

From the command line (stdlib only; `selftest` also needs Debian's
libsrtp2-1, loaded with ctypes):

    bench/media/rtpengine.py selftest [--cpu 0]       one call, a packet each way
    bench/media/rtpengine.py cost -n 2000 [--threads N] [--cpu 0]
                                                     setup and delete CPU per call

What rtpengine needs here (Debian 12's rtpengine-daemon 10.5.3.5, userspace):

- `--table=-1`: no kernel module (the xt_RTPENGINE module is another package
  and needs a matching kernel); every packet goes through userspace.
- `--config-file=none`, or it reads /etc/rtpengine/rtpengine.conf (table=0,
  listen-ng=localhost:2223, interface=any...) and merges it with ours.
- `--foreground --log-stderr --log-level=3` (errors only; 6 logs a line per
  call); the log is in the handle's temp dir.
- `--delete-delay=0`: a deleted call otherwise keeps its ports for 30 s;
  `--timeout`, `--silent-timeout` and `--offer-timeout` raised to a day, so a
  call set up long before the generator starts (or one whose media paused)
  is not reaped after 60 s without packets.
- `--num-threads=N` sets the worker (poller) threads; without it rtpengine
  starts one per core but at least 4. The whole process is pinned with
  taskset, so every thread shares that core.
- Four ports a call: rtpengine allocates an RTP/RTCP pair on each side,
  even if no RTCP is ever sent (so port_max - port_min + 1 >= 4 n).
- Offer: the carrier's SDP (RTP/SAVP, one a=crypto AES_CM_128_HMAC_SHA1_80,
  c=127.0.0.1, the generator's A port) with `transport-protocol` = `RTP/AVP`
  (the offer rtpengine makes to B is then plain RTP/AVP without a=crypto),
  `ICE` = `remove`, `replace` = [`origin`, `session-connection`]. Answer: the
  IVR's SDP (RTP/AVP, the generator's B port); rtpengine's answer to A is
  RTP/SAVP with an a=crypto of its own key for the suite A offered. Its
  ports are the m= lines of the two SDPs it returns.
- Symmetric RTP: rtpengine latches onto the address a side's first packet
  comes from, so the generator must send from the ports it put in the SDPs
  (it does: `local`).
- rtpengine does its SRTP itself (OpenSSL's AES and HMAC, not libsrtp2), so
  the self-test's packets are protected and checked with libsrtp2: an
  interoperability check as well.

Surprises are noted where they bite (see `_parse_sdp`, `setup`, `selftest`).
"""

import argparse
import base64
import ctypes
import ctypes.util
import json
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

SUITE = "AES_CM_128_HMAC_SHA1_80"
RTPENGINE = "rtpengine"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- bencode ---------------------------------------------------------------


def bencode(v):
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, (bytes, bytearray)):
        return b"%d:%s" % (len(v), bytes(v))
    if isinstance(v, (list, tuple)):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    if isinstance(v, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, x) for k, x in v.items())
        return b"d" + b"".join(bencode(k) + bencode(x) for k, x in items) + b"e"
    raise TypeError("cannot bencode %r" % type(v))


def bdecode(data):
    """Decodes one bencoded value; byte strings become str (latin-1 safe)."""

    def dec(i):
        c = data[i : i + 1]
        if c == b"i":
            j = data.index(b"e", i)
            return int(data[i + 1 : j]), j + 1
        if c == b"l":
            i, out = i + 1, []
            while data[i : i + 1] != b"e":
                x, i = dec(i)
                out.append(x)
            return out, i + 1
        if c == b"d":
            i, out = i + 1, {}
            while data[i : i + 1] != b"e":
                k, i = dec(i)
                out[k], i = dec(i)
            return out, i + 1
        if c.isdigit():
            j = data.index(b":", i)
            n = int(data[i:j])
            s = data[j + 1 : j + 1 + n]
            if len(s) != n:
                raise ValueError("truncated bencode string")
            return s.decode("utf-8", "surrogateescape"), j + 1 + n
        raise ValueError("bad bencode at %d" % i)

    v, end = dec(0)
    if end != len(data):
        raise ValueError("trailing bytes after bencode value")
    return v


# --- the daemon ------------------------------------------------------------


class RtpengineError(Exception):
    pass


class Handle:
    """A running rtpengine: its process, ng address, log, ng socket."""

    def __init__(self, proc, ng_port, workdir, cpu, threads, port_min, port_max):
        self.proc = proc
        self.pid = proc.pid
        self.ng_port = ng_port
        self.workdir = workdir
        self.log = os.path.join(workdir, "rtpengine.log")
        self.cpu = cpu
        self.threads = threads
        self.port_min = port_min
        self.port_max = port_max
        self.tag = "%x" % random.getrandbits(32)
        self.cookie = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.connect(("127.0.0.1", ng_port))
        self.last_setup = None

    def log_tail(self, n=20):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def _free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ng(h, cmd, timeout=2.0, tries=3):
    """One ng request (a dict with "command"); returns the reply dict.

    UDP: a lost request or reply is sent again with the same cookie, which
    rtpengine answers from its cache instead of running the command twice.
    A reply whose result is not ok raises RtpengineError."""
    h.cookie += 1
    cookie = b"%s_%d" % (h.tag.encode(), h.cookie)
    msg = cookie + b" " + bencode(cmd)
    h.sock.settimeout(timeout)
    for _ in range(tries):
        h.sock.send(msg)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            h.sock.settimeout(left)
            try:
                data = h.sock.recv(65535)
            except socket.timeout:
                break
            except ConnectionRefusedError:
                time.sleep(0.05)
                break
            got, _, body = data.partition(b" ")
            if got != cookie:
                continue  # a late reply to an earlier try
            reply = bdecode(body)
            if reply.get("result") not in ("ok", "pong"):
                raise RtpengineError(
                    "%s: %s %s"
                    % (cmd.get("command"), reply.get("result"), reply.get("error-reason", ""))
                )
            return reply
    raise RtpengineError("%s: no reply from 127.0.0.1:%d" % (cmd.get("command"), h.ng_port))


def start(cpu, threads, port_min, port_max, ng_port=None, log_level=3, extra_args=()):
    """Starts rtpengine pinned to `cpu` (taskset), ng on 127.0.0.1:ng_port
    (a free port when None), media on 127.0.0.1 ports port_min..port_max,
    `--num-threads=threads` (None: rtpengine's default). Returns once it
    answers a ping; raises RtpengineError (with its log) otherwise."""
    exe = shutil.which(RTPENGINE)
    if not exe:
        raise RtpengineError("no rtpengine: apt-get install rtpengine-daemon")
    if ng_port is None:
        ng_port = _free_udp_port()
    workdir = tempfile.mkdtemp(prefix="bench-rtpengine-")
    args = [
        "taskset", "-c", str(cpu), exe,
        "--config-file=none",
        "--foreground",
        "--log-stderr",
        "--log-level=%d" % log_level,
        "--table=-1",
        "--interface=127.0.0.1",
        "--listen-ng=127.0.0.1:%d" % ng_port,
        "--port-min=%d" % port_min,
        "--port-max=%d" % port_max,
        "--delete-delay=0",
        "--timeout=86400",
        "--silent-timeout=86400",
        "--offer-timeout=86400",
        "--pidfile=%s" % os.path.join(workdir, "rtpengine.pid"),
    ]  # fmt: skip
    if threads is not None:
        args.append("--num-threads=%d" % threads)
    args += list(extra_args)
    logf = open(os.path.join(workdir, "rtpengine.log"), "wb")
    # taskset execs rtpengine: the child's pid is rtpengine's.
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
    logf.close()
    h = Handle(proc, ng_port, workdir, cpu, threads, port_min, port_max)
    h.args = args
    deadline = time.monotonic() + 10
    while True:
        if proc.poll() is not None:
            raise RtpengineError(
                "rtpengine exited (%s) at start:\n%s" % (proc.returncode, h.log_tail())
            )
        try:
            ng(h, {"command": "ping"}, timeout=0.2, tries=1)
            return h
        except RtpengineError:
            if time.monotonic() > deadline:
                stop(h)
                raise RtpengineError("rtpengine did not answer a ping in 10 s:\n" + h.log_tail())


def stop(h, keep_log=False):
    """SIGTERM, then SIGKILL after 5 s; removes the temp dir unless keep_log."""
    if h.proc.poll() is None:
        h.proc.send_signal(signal.SIGTERM)
        try:
            h.proc.wait(5)
        except subprocess.TimeoutExpired:
            h.proc.kill()
            h.proc.wait()
    h.sock.close()
    if not keep_log:
        shutil.rmtree(h.workdir, ignore_errors=True)
    return h.proc.returncode


# --- CPU of the daemon -----------------------------------------------------


def cpu_ticks(pid):
    """utime + stime of every thread of pid, in clock ticks (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)


def cpu_ns(pid):
    """The same in ns, from each live thread's schedstat (finer than ticks)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


class Calls(list):
    """The calls.json list, with what the setup cost rtpengine."""

    cpu_us_per_call = None  # from /proc/PID/stat (10 ms ticks)
    cpu_us_per_call_fine = None  # from the threads' schedstat
    wall_us_per_call = None


# --- SDP -------------------------------------------------------------------


def _carrier_sdp(i, port, key_b64):
    return (
        "v=0\r\n"
        "o=carrier %d 1 IN IP4 127.0.0.1\r\n"
        "s=-\r\n"
        "c=IN IP4 127.0.0.1\r\n"
        "t=0 0\r\n"
        "m=audio %d RTP/SAVP 0\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=ptime:20\r\n"
        "a=crypto:1 %s inline:%s\r\n"
        "a=sendrecv\r\n" % (1000 + i, port, SUITE, key_b64)
    )


def _ivr_sdp(i, port):
    return (
        "v=0\r\n"
        "o=ivr %d 1 IN IP4 127.0.0.1\r\n"
        "s=-\r\n"
        "c=IN IP4 127.0.0.1\r\n"
        "t=0 0\r\n"
        "m=audio %d RTP/AVP 0\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=ptime:20\r\n"
        "a=sendrecv\r\n" % (2000 + i, port)
    )


def _parse_sdp(sdp):
    """(address, port, proto, [(tag, suite, key_b64)]) of the one audio stream.

    rtpengine offers several a=crypto lines when it makes an SRTP offer, and
    adds a lifetime or MKI after `|` only if the peer did: both handled."""
    addr, port, proto, cryptos = None, None, None, []
    for line in sdp.replace("\r\n", "\n").split("\n"):
        if line.startswith("c=IN IP4 "):
            addr = line[9:].strip()
        elif line.startswith("m=audio "):
            parts = line.split()
            port, proto = int(parts[1]), parts[2]
        elif line.startswith("a=crypto:"):
            m = re.match(r"a=crypto:(\d+) (\S+) inline:([^|\s]+)", line)
            if m:
                cryptos.append((int(m.group(1)), m.group(2), m.group(3)))
    if port is None:
        raise RtpengineError("no m=audio line in rtpengine's SDP:\n" + sdp)
    return addr, port, proto, cryptos


def _ports_of(gen_ports, i):
    p = gen_ports(i) if callable(gen_ports) else gen_ports[i]
    return int(p[0]), int(p[1])


def _call_id(h, i):
    return "bench-%s-%d" % (h.tag, i)


def setup(h, n, gen_ports):
    """Sets up n calls (offer then answer each); returns a Calls list in the
    calls.json shape, its cpu_us_per_call / cpu_us_per_call_fine /
    wall_us_per_call set (also in h.last_setup). Call i's id is i."""
    calls = Calls()
    t0, c0, f0 = time.monotonic(), cpu_ticks(h.pid), cpu_ns(h.pid)
    for i in range(n):
        a_port, b_port = _ports_of(gen_ports, i)
        key = base64.b64encode(os.urandom(30)).decode()
        cid = _call_id(h, i)
        offer = ng(
            h,
            {
                "command": "offer",
                "call-id": cid,
                "from-tag": "carrier-%d" % i,
                "sdp": _carrier_sdp(i, a_port, key),
                "transport-protocol": "RTP/AVP",
                "ICE": "remove",
                "replace": ["origin", "session-connection"],
            },
        )
        b_addr, b_remote, b_proto, b_crypto = _parse_sdp(offer["sdp"])
        if b_proto != "RTP/AVP" or b_crypto:
            raise RtpengineError("call %d: B got %s %r, not plain RTP/AVP" % (i, b_proto, b_crypto))
        answer = ng(
            h,
            {
                "command": "answer",
                "call-id": cid,
                "from-tag": "carrier-%d" % i,
                "to-tag": "ivr-%d" % i,
                "sdp": _ivr_sdp(i, b_port),
                "ICE": "remove",
                "replace": ["origin", "session-connection"],
            },
        )
        a_addr, a_remote, a_proto, a_crypto = _parse_sdp(answer["sdp"])
        if a_proto != "RTP/SAVP" or len(a_crypto) != 1 or a_crypto[0][1] != SUITE:
            raise RtpengineError("call %d: A's answer is %s %r" % (i, a_proto, a_crypto))
        calls.append(
            {
                "id": i,
                "a": {
                    "local": "127.0.0.1:%d" % a_port,
                    "remote": "%s:%d" % (a_addr or "127.0.0.1", a_remote),
                    "tx": {"suite": SUITE, "key": key},
                    "rx": {"suite": a_crypto[0][1], "key": a_crypto[0][2]},
                },
                "b": {
                    "local": "127.0.0.1:%d" % b_port,
                    "remote": "%s:%d" % (b_addr or "127.0.0.1", b_remote),
                    "tx": None,
                    "rx": None,
                },
            }
        )
    wall, c1, f1 = time.monotonic() - t0, cpu_ticks(h.pid), cpu_ns(h.pid)
    n = max(n, 1)
    calls.cpu_us_per_call = (c1 - c0) * 1e6 / CLK_TCK / n
    calls.cpu_us_per_call_fine = (f1 - f0) / 1e3 / n
    calls.wall_us_per_call = wall * 1e6 / n
    h.last_setup = {
        "calls": len(calls),
        "cpu_us_per_call": calls.cpu_us_per_call,
        "cpu_us_per_call_fine": calls.cpu_us_per_call_fine,
        "wall_us_per_call": calls.wall_us_per_call,
    }
    return calls


def delete(h, calls):
    """Deletes the calls; returns rtpengine's CPU per delete in us (schedstat)."""
    f0 = cpu_ns(h.pid)
    for c in calls:
        ng(h, {"command": "delete", "call-id": _call_id(h, c["id"])})
    return (cpu_ns(h.pid) - f0) / 1e3 / max(len(calls), 1)


# --- self-test: one packet each way, checked with libsrtp2 ---------------


class _CryptoPolicy(ctypes.Structure):
    _fields_ = [
        ("cipher_type", ctypes.c_uint32),
        ("cipher_key_len", ctypes.c_int),
        ("auth_type", ctypes.c_uint32),
        ("auth_key_len", ctypes.c_int),
        ("auth_tag_len", ctypes.c_int),
        ("sec_serv", ctypes.c_int),
    ]


class _Policy(ctypes.Structure):  # srtp_policy_t of libsrtp2 2.x
    _fields_ = [
        ("ssrc_type", ctypes.c_int),
        ("ssrc_value", ctypes.c_uint),
        ("rtp", _CryptoPolicy),
        ("rtcp", _CryptoPolicy),
        ("key", ctypes.c_void_p),
        ("keys", ctypes.c_void_p),
        ("num_master_keys", ctypes.c_ulong),
        ("deprecated_ekt", ctypes.c_void_p),
        ("window_size", ctypes.c_ulong),
        ("allow_repeat_tx", ctypes.c_int),
        ("enc_xtn_hdr", ctypes.c_void_p),
        ("enc_xtn_hdr_count", ctypes.c_int),
        ("next", ctypes.c_void_p),
    ]


class Srtp:
    """A libsrtp2 session through ctypes (Debian's libsrtp2.so.1), AES_CM_128_HMAC_SHA1_80."""

    lib = None

    def __init__(self, key_b64, outbound):
        if Srtp.lib is None:
            name = ctypes.util.find_library("srtp2") or "libsrtp2.so.1"
            Srtp.lib = ctypes.CDLL(name)
            if Srtp.lib.srtp_init() != 0:
                raise RtpengineError("srtp_init failed")
        key = base64.b64decode(key_b64)
        if len(key) != 30:
            raise RtpengineError("key of %d bytes, not 30" % len(key))
        self._key = ctypes.create_string_buffer(key, 30)
        p = _Policy()
        Srtp.lib.srtp_crypto_policy_set_rtp_default(ctypes.byref(p.rtp))
        Srtp.lib.srtp_crypto_policy_set_rtp_default(ctypes.byref(p.rtcp))
        p.ssrc_type = 3 if outbound else 2  # ssrc_any_outbound / ssrc_any_inbound
        p.key = ctypes.cast(self._key, ctypes.c_void_p)
        p.window_size = 1024
        self.s = ctypes.c_void_p()
        st = Srtp.lib.srtp_create(ctypes.byref(self.s), ctypes.byref(p))
        if st:
            raise RtpengineError("srtp_create: %d" % st)

    def protect(self, pkt):
        buf = ctypes.create_string_buffer(pkt, len(pkt) + 148)
        n = ctypes.c_int(len(pkt))
        st = Srtp.lib.srtp_protect(self.s, buf, ctypes.byref(n))
        if st:
            raise RtpengineError("srtp_protect: %d" % st)
        return buf.raw[: n.value]

    def unprotect(self, pkt):
        buf = ctypes.create_string_buffer(pkt, len(pkt))
        n = ctypes.c_int(len(pkt))
        st = Srtp.lib.srtp_unprotect(self.s, buf, ctypes.byref(n))
        if st:
            raise RtpengineError("srtp_unprotect: status %d" % st)
        return buf.raw[: n.value]

    def __del__(self):
        if Srtp.lib is not None and self.s:
            Srtp.lib.srtp_dealloc(self.s)


def _rtp(seq, ssrc, payload):
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, ssrc) + payload


def _addr(s):
    host, _, port = s.rpartition(":")
    return host, int(port)


def selftest(cpu=0, threads=1, port_min=41000, port_max=41099, packets=3):
    """One call; `packets` SRTP packets A -> B arrive as plain RTP with the
    same header and payload, and as many plain B -> A arrive as SRTP that
    rtpengine's answered key unprotects to the same. Returns a report dict."""
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    a.settimeout(2)
    b.settimeout(2)
    ports = [(a.getsockname()[1], b.getsockname()[1])]
    h = start(cpu, threads, port_min, port_max)
    report = {"rtpengine": subprocess.run([RTPENGINE, "--version"], stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True).stdout.strip()}
    try:
        calls = setup(h, 1, ports)
        c = calls[0]
        report["call"] = {
            "a": {"local": c["a"]["local"], "remote": c["a"]["remote"]},
            "b": {"local": c["b"]["local"], "remote": c["b"]["remote"]},
        }
        report["setup_cpu_us"] = calls.cpu_us_per_call_fine
        tx = Srtp(c["a"]["tx"]["key"], outbound=True)
        rx = Srtp(c["a"]["rx"]["key"], outbound=False)
        ok_ab = ok_ba = 0
        for k in range(packets):
            payload = os.urandom(160)
            plain = _rtp(100 + k, 0x0A0A0A0A, payload)
            a.sendto(tx.protect(plain), _addr(c["a"]["remote"]))
            got, src = b.recvfrom(2048)
            if got == plain and src == _addr(c["b"]["remote"]):
                ok_ab += 1
            else:
                report.setdefault("a_to_b_mismatch", []).append(got.hex()[:64])

            payload = os.urandom(160)
            plain = _rtp(500 + k, 0x0B0B0B0B, payload)
            b.sendto(plain, _addr(c["b"]["remote"]))
            got, src = a.recvfrom(2048)
            back = rx.unprotect(got)
            if back == plain and len(got) == len(plain) + 10 and src == _addr(c["a"]["remote"]):
                ok_ba += 1
            else:
                report.setdefault("b_to_a_mismatch", []).append(back.hex()[:64])
        report["a_to_b"] = "%d/%d" % (ok_ab, packets)
        report["b_to_a"] = "%d/%d" % (ok_ba, packets)
        report["delete_cpu_us"] = delete(h, calls)
        report["ok"] = ok_ab == packets and ok_ba == packets
    except (RtpengineError, OSError) as e:
        report["ok"] = False
        report["error"] = "%s\n%s" % (e, h.log_tail())
    finally:
        stop(h)
        a.close()
        b.close()
    return report


def cost(n, cpu=0, threads=1, port_min=42000):
    """rtpengine's CPU for setting up and deleting n calls (no media)."""
    port_max = port_min + 4 * n + 99
    h = start(cpu, threads, port_min, port_max)
    try:
        base = 60000 - 2 * n
        calls = setup(h, n, lambda i: (base + 2 * i, base + 2 * i + 1))
        d = delete(h, calls)
        return {
            "calls": n,
            "threads": threads if threads is not None else "default",
            "setup_cpu_us_per_call": round(calls.cpu_us_per_call, 1),
            "setup_cpu_us_per_call_fine": round(calls.cpu_us_per_call_fine, 1),
            "setup_wall_us_per_call": round(calls.wall_us_per_call, 1),
            "delete_cpu_us_per_call_fine": round(d, 1),
        }
    finally:
        stop(h)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("selftest", help="one call, packets both ways through rtpengine")
    st.add_argument("--cpu", type=int, default=0)
    st.add_argument("--threads", type=int, default=1, help="0: rtpengine's default")
    co = sub.add_parser("cost", help="rtpengine's CPU per call setup and delete")
    co.add_argument("-n", type=int, default=2000)
    co.add_argument("--cpu", type=int, default=0)
    co.add_argument("--threads", type=int, default=1, help="0: rtpengine's default")
    args = ap.parse_args(argv)
    if args.cmd == "selftest":
        r = selftest(args.cpu, args.threads or None)
        print(json.dumps(r, indent=2))
        return 0 if r["ok"] else 1
    r = cost(args.n, args.cpu, args.threads or None)
    print(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
