#!/usr/bin/env python3
"""Check the SDP offer fixtures in this directory (stdlib only).

Usage: check.py [FILE.sdp ...]     (default: every *.sdp next to this script)

For each file it checks:
  * framing: ASCII, every line ends in CRLF, no bare CR or LF, no empty line,
    each line is "<letter>=<value>";
  * RFC 4566 section 5 order: v o s [i] [u] [e*] [p*] [c] [b*] (t [r*])+ [z]
    [k] [a*], then per media: m [i] [c*] [b*] [k] [a*];
  * o= and c= syntax, and a c= (session or media level) for every m= whose
    port is not 0;
  * every a=crypto (RFC 4568): tag of 1-9 digits, unique within its m=
    section, a known suite, inline key(s) that decode to exactly the suite's
    key||salt length, lifetime ("2^n" or decimal) and MKI ("value:length",
    length 1..128), and known session parameters;
  * rtpmap/fmtp payload types are in their m= format list;
  * every literal address is a documentation or special address
    (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32, 0.0.0.0,
    127.0.0.1) or an mDNS ".local" name, so no real address slips in.

Exit status 0 when every file passes, 1 otherwise.
"""

import base64
import binascii
import ipaddress
import pathlib
import re
import sys

# key||salt length in bytes (RFC 4568, RFC 6188, RFC 7714)
SUITE_KEY_BYTES = {
    "AES_CM_128_HMAC_SHA1_80": 30,
    "AES_CM_128_HMAC_SHA1_32": 30,
    "F8_128_HMAC_SHA1_80": 30,
    "AES_192_CM_HMAC_SHA1_80": 38,
    "AES_192_CM_HMAC_SHA1_32": 38,
    "AES_256_CM_HMAC_SHA1_80": 46,
    "AES_256_CM_HMAC_SHA1_32": 46,
    "AEAD_AES_128_GCM": 28,
    "AEAD_AES_256_GCM": 44,
}

SESSION_PARAM = re.compile(
    r"^(UNENCRYPTED_SRTP|UNENCRYPTED_SRTCP|UNAUTHENTICATED_SRTP"
    r"|KDR=\d{1,2}|FEC_ORDER=(FEC_SRTP|SRTP_FEC)|FEC_KEY=\S+|WSH=\d+)$")

DOC_NETS = [ipaddress.ip_network(n) for n in (
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")]
SPECIAL = {ipaddress.ip_address("0.0.0.0"), ipaddress.ip_address("127.0.0.1")}

SESSION_ORDER = "vosiuepcbtrzka"
MEDIA_ORDER = "mickba"
SESSION_REPEATABLE = set("epbtra")  # c= may repeat only inside a media section


class Checker:
    def __init__(self, path):
        self.path = path
        self.errors = []
        self.notes = []

    def err(self, lineno, msg):
        self.errors.append(f"{self.path.name}:{lineno}: {msg}")

    def note(self, msg):
        self.notes.append(msg)

    # -- framing ---------------------------------------------------------
    def split_lines(self, data):
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError as exc:
            self.err(0, f"not ASCII ({exc})")
            return []
        if not text.endswith("\r\n"):
            self.err(0, "last line does not end in CRLF")
        body = text[:-2] if text.endswith("\r\n") else text
        lines = body.split("\r\n")
        for n, line in enumerate(lines, 1):
            if "\r" in line or "\n" in line:
                self.err(n, "bare CR or LF inside a line")
            if line == "":
                self.err(n, "empty line")
            elif not re.match(r"^[a-z]=", line):
                self.err(n, f"not <letter>=<value>: {line!r}")
        return lines

    # -- structure ---------------------------------------------------------
    def check_order(self, lines):
        """Return a list of media sections: (m lineno, [(lineno, line)])."""
        media = []
        seen_t = False
        pos = 0  # index into SESSION_ORDER
        last = None
        for n, line in enumerate(lines, 1):
            if not line or len(line) < 2:
                continue
            ch = line[0]
            if ch == "m":
                if not seen_t:
                    self.err(n, "m= before any t=")
                media.append((n, [(n, line)]))
                last = "m"
                continue
            if media:
                order = MEDIA_ORDER
                cur = media[-1][1]
                prev = cur[-1][1][0]
                if ch not in order:
                    self.err(n, f"{ch}= not allowed in a media section")
                elif order.index(ch) < order.index(prev) or (
                        ch == prev and ch not in "cba"):
                    self.err(n, f"{ch}= out of order in media section (after {prev}=)")
                cur.append((n, line))
                continue
            if ch not in SESSION_ORDER:
                self.err(n, f"{ch}= not allowed at session level")
                continue
            idx = SESSION_ORDER.index(ch)
            if ch == "t":
                seen_t = True
            if ch == "r" and last not in ("t", "r"):
                self.err(n, "r= not after t=")
            if idx < pos and not (ch == "t" and last in ("t", "r")):
                self.err(n, f"{ch}= out of order at session level")
            if ch == last and ch not in SESSION_REPEATABLE:
                self.err(n, f"{ch}= repeated at session level")
            pos = max(pos, idx)
            last = ch
        for want, n in (("v", 1), ("o", 2), ("s", 3)):
            if len(lines) < n or not lines[n - 1].startswith(want + "="):
                self.err(n, f"line {n} must be {want}=")
        if lines and lines[0] != "v=0":
            self.err(1, "v= must be 0")
        if not seen_t:
            self.err(0, "no t= line")
        return media

    # -- addresses ---------------------------------------------------------
    def check_addr(self, n, addrtype, addr):
        if addr.endswith(".local"):
            return
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            self.err(n, f"not an IP literal: {addr!r}")
            return
        if addrtype and (ip.version == 4) != (addrtype == "IP4"):
            self.err(n, f"{addr} does not match address type {addrtype}")
        if ip in SPECIAL or any(ip in net for net in DOC_NETS):
            return
        self.err(n, f"{addr} is not a documentation address")

    def check_o(self, n, value):
        f = value.split(" ")
        if len(f) != 6:
            self.err(n, "o= needs 6 fields")
            return
        if not (f[1].isdigit() and f[2].isdigit()):
            self.err(n, "o= sess-id and sess-version must be digits")
        if f[3] != "IN" or f[4] not in ("IP4", "IP6"):
            self.err(n, "o= nettype/addrtype must be IN IP4|IP6")
        self.check_addr(n, f[4], f[5])

    def check_c(self, n, value):
        f = value.split(" ")
        if len(f) != 3 or f[0] != "IN" or f[1] not in ("IP4", "IP6"):
            self.err(n, f"bad c= {value!r}")
            return
        self.check_addr(n, f[1], f[2].split("/")[0])

    # -- crypto ------------------------------------------------------------
    def check_crypto(self, n, value, tags, proto):
        parts = value.split()
        if len(parts) < 3:
            self.err(n, "a=crypto needs tag, suite and key-params")
            return
        tag, suite, keyparams, sessparams = parts[0], parts[1], parts[2], parts[3:]
        if not re.fullmatch(r"\d{1,9}", tag):
            self.err(n, f"crypto tag {tag!r} is not 1-9 digits")
        elif tag in tags:
            self.err(n, f"crypto tag {tag} repeated in this m= section")
        tags.add(tag)
        if suite not in SUITE_KEY_BYTES:
            self.err(n, f"unknown crypto suite {suite}")
            return
        want = SUITE_KEY_BYTES[suite]
        for kp in keyparams.split(";"):
            if not kp.startswith("inline:"):
                self.err(n, f"key method is not inline: {kp!r}")
                continue
            fields = kp[len("inline:"):].split("|")
            b64 = fields[0]
            if not re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", b64):
                self.err(n, f"key is not base64: {b64!r}")
                continue
            try:
                raw = base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True)
            except (binascii.Error, ValueError) as exc:
                self.err(n, f"key does not decode: {exc}")
                continue
            if len(raw) != want:
                self.err(n, f"{suite} key||salt is {len(raw)} bytes, want {want}")
            if "=" not in b64 and len(b64) % 4:
                self.note(f"line {n}: {suite} key has its '=' padding stripped")
            rest = fields[1:]
            if rest and ":" in rest[-1]:
                mki = rest.pop()
                m = re.fullmatch(r"(\d+):(\d+)", mki)
                if not m or not 1 <= int(m.group(2)) <= 128:
                    self.err(n, f"bad MKI {mki!r}")
            if len(rest) > 1:
                self.err(n, f"too many key-param fields in {kp!r}")
            for lt in rest:
                if not re.fullmatch(r"2\^\d{1,2}|\d+", lt):
                    self.err(n, f"bad lifetime {lt!r}")
        for sp in sessparams:
            if not SESSION_PARAM.match(sp):
                self.err(n, f"unknown session parameter {sp!r}")
        if "SAVP" not in proto:
            self.note(f"line {n}: a=crypto under {proto} (opportunistic SRTP)")

    # -- media -------------------------------------------------------------
    def check_media(self, media, session_has_c):
        for mline, section in media:
            m = section[0][1][2:].split(" ")
            if len(m) < 4:
                self.err(mline, "m= needs media, port, proto and formats")
                continue
            port, proto, fmts = m[1].split("/")[0], m[2], m[3:]
            if not port.isdigit():
                self.err(mline, f"bad port {m[1]!r}")
                continue
            has_c = session_has_c
            tags = set()
            for n, line in section[1:]:
                ch, value = line[0], line[2:]
                if ch == "c":
                    has_c = True
                    self.check_c(n, value)
                if ch != "a":
                    continue
                name, _, val = value.partition(":")
                if name == "crypto":
                    self.check_crypto(n, val, tags, proto)
                elif name in ("rtpmap", "fmtp") and "RTP" in proto:
                    pt = val.split(" ", 1)[0]
                    if pt not in fmts:
                        self.err(n, f"a={name} for payload type {pt} not in m= list")
                elif name == "rtcp":
                    f = val.split(" ")
                    if not f[0].isdigit():
                        self.err(n, f"bad a=rtcp port {f[0]!r}")
                    if len(f) == 4:
                        self.check_addr(n, f[2], f[3])
                elif name in ("candidate", "x-candidate-ipv6"):
                    f = val.split(" ")
                    if len(f) < 8:
                        self.err(n, "short candidate line")
                        continue
                    self.check_addr(n, None, f[4])
                    if "raddr" in f:
                        self.check_addr(n, None, f[f.index("raddr") + 1])
                elif name == "fingerprint":
                    f = val.split(" ")
                    if len(f) != 2 or not re.fullmatch(r"([0-9A-F]{2}:)+[0-9A-F]{2}", f[1]):
                        self.err(n, "bad a=fingerprint")
            if int(port) != 0 and not has_c:
                self.err(mline, "active m= section without any c=")

    def run(self):
        lines = self.split_lines(self.path.read_bytes())
        if not lines:
            return
        media = self.check_order(lines)
        session_has_c = False
        first_m = media[0][0] if media else len(lines) + 1
        for n, line in enumerate(lines[:first_m - 1], 1):
            if line.startswith("o="):
                self.check_o(n, line[2:])
            elif line.startswith("c="):
                session_has_c = True
                self.check_c(n, line[2:])
        self.check_media(media, session_has_c)
        if not media:
            self.err(0, "no m= section")


def main(argv):
    here = pathlib.Path(__file__).resolve().parent
    files = [pathlib.Path(a) for a in argv[1:]] or sorted(here.glob("*.sdp"))
    if not files:
        print("no .sdp files found", file=sys.stderr)
        return 1
    failed = 0
    for path in files:
        c = Checker(path)
        c.run()
        if c.errors:
            failed += 1
            print(f"FAIL {path.name}")
            for e in c.errors:
                print(f"  {e}")
        else:
            print(f"ok   {path.name}")
        for note in c.notes:
            print(f"     note: {note}")
    print(f"{len(files) - failed}/{len(files)} files pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
