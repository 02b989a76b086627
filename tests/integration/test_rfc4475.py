"""All RFC 4475 torture messages sent to the running daemon over UDP from an
allowed source, each with its expected outcome from the RFC's text; then the
daemon must still serve a plain OPTIONS. ';rport' is added to the top Via of
requests so that answers come back to the test's socket: the messages'
own Via hosts are documentation addresses, and without rport the answer
goes to the source IP at the Via's port (RFC 3261 18.2.2), which the test
does not listen on.

INVITEs that pass every check reach the B2BUA: with plain RTP offered to
the carrier trunk (srtp = mandatory) they get 488, and one with a To tag
(in a dialog we do not have) 481; methods nobody serves get 501. Each
proves the message was parsed and reached the transaction user."""

import os
import re
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase  # noqa: E402

TORTURE = os.path.join(harness.SOURCE_DIR, "..", "shared", "testdata", "rfc4475")

# file prefix -> the final status we answer with, or None: dropped (no answer
# to a response; no answer where the message lacks what a response needs);
# a tuple where the RFC leaves the element a choice.
EXPECTED = {
    # 3.1.1: valid messages, parsed and handled
    "3.1.1.1_": 481,   # wsinv: tortuous but valid INVITE, To tag: no such dialog
    "3.1.1.2_": 501,   # intmeth: unknown method of odd characters
    "3.1.1.3_": 488,   # esc01: valid escaping in URIs; plain RTP refused
    "3.1.1.4_": 501,   # escnull: REGISTER, escaped nulls are legal in URIs
    "3.1.1.5_": 501,   # esc02: '%' in a method name is not an escape
    "3.1.1.6_": 200,   # lwsdisp: no LWS between display name and '<'
    "3.1.1.7_": 488,   # longreq: long header values; plain RTP refused
    "3.1.1.8_": 501,   # dblreq: extra octets after the message are discarded
    "3.1.1.9_": 200,   # semiuri: parameters in the user part
    "3.1.1.10_": 200,  # transports: unknown transports in Via
    "3.1.1.11_": 501,  # mpart01: a MESSAGE with a multipart body
    "3.1.1.12_": None,  # unreason: a response; no answer to a response
    "3.1.1.13_": None,  # noreason: a response
    # 3.1.2: invalid messages: 400 (or what the RFC names), responses dropped
    "3.1.2.1_": 400,   # badinv01: extraneous header field separators
    "3.1.2.2_": 400,   # clerr: Content-Length larger than the datagram
    "3.1.2.3_": 400,   # ncl: negative Content-Length
    "3.1.2.4_": 400,   # scalar02: overlarge scalar values in a request
    "3.1.2.5_": None,  # scalarlg: overlarge values in a response: dropped
    "3.1.2.6_": 400,   # quotbal: unterminated quoted string
    "3.1.2.7_": 400,   # ltgtruri: <> around the Request-URI
    "3.1.2.8_": 400,   # lwsruri: LWS inside the Request-URI
    "3.1.2.9_": 400,   # lwsstart: several SPs between request line elements
    "3.1.2.10_": 400,  # trws: SP at the end of the request line
    "3.1.2.11_": 400,  # escruri: escaped headers in the Request-URI
    "3.1.2.12_": (400, 488),  # baddate: refuse, or ignore a Date it does not use
    "3.1.2.13_": 400,  # regbadct: name-addr with parameters not in <>
    "3.1.2.14_": 400,  # badaspec: spaces within an addr-spec
    "3.1.2.15_": 400,  # baddn: non-token characters in a display name
    "3.1.2.16_": 505,  # badvers: SIP/7.0
    "3.1.2.17_": 400,  # mismatch01: method and CSeq method differ
    "3.1.2.18_": 400,  # mismatch02: unknown method, CSeq mismatch
    "3.1.2.19_": None,  # bigcode: an overlarge response code: dropped
    # 3.2: transaction layer
    "3.2.1_": (400, 200),  # badbranch: bare z9hG4bK: reject, or RFC 2543 matching
    # 3.3: application layer semantics
    "3.3.1_": None,    # insuf: no Call-ID, From, To: cannot be answered
    "3.3.2_": 416,     # unkscm: unknown Request-URI scheme
    "3.3.3_": 416,     # novelsc: known but atypical scheme (soap.beep)
    "3.3.4_": 501,     # unksm2: unknown schemes in header fields: fine
    "3.3.5_": 420,     # bext01: Require with an unknown extension
    "3.3.6_": 415,     # invut: unknown Content-Type
    "3.3.7_": 501,     # regaut01: unknown authorization scheme
    "3.3.8_": 400,     # multi01: several values in single-value fields
    "3.3.9_": 400,     # mcl01: two Content-Length values
    "3.3.10_": None,   # bcast: a response: dropped
    "3.3.11_": 200,    # zeromf: Max-Forwards 0, addressed to us
    "3.3.12_": 501,    # cparam01: REGISTER with a Contact parameter
    "3.3.13_": 501,    # cparam02: REGISTER with a url parameter
    "3.3.14_": 501,    # regescrt: REGISTER with an escaped header in a URL
    "3.3.15_": 406,    # sdp01: Accept without SDP
    # 3.4: backward compatibility
    "3.4.1_": 400,     # inv2543: an RFC 2543 INVITE: no Contact, no dialog to make
}

CONFIG = """[global]
log_level = info
control_socket = @CTL@
metrics_listen =
media_ports = 30000-30999

[trunk:carrier]
listen = udp:127.0.0.1:@PORT@
peers = udp:127.0.0.1:@PEER@
options_interval = 0
sources = 127.0.0.1/32
route = ivr

[trunk:ivr]
listen = udp:127.0.0.1:@IVR@
peers = udp:127.0.0.1:@IVR_PEER@
options_interval = 0
srtp = off
"""


def with_rport(data):
    """';rport' on the top Via of a request, so the answer comes back here:
    at the end of its first value, which may be folded over several lines
    (RFC 4475 3.1.1.1 folds its Via)."""
    if data.startswith(b"SIP/2.0"):
        return data
    m = re.search(rb"(?im)^(via|v)[ \t]*:", data)
    if not m:
        return data
    end = m.end()
    while True:  # the logical header: continuation lines start with SP or HTAB
        nl = data.find(b"\r\n", end)
        if nl < 0 or data[nl + 2:nl + 3] not in (b" ", b"\t"):
            break
        end = nl + 2
    value_end = data.find(b"\r\n", end)
    comma = data.find(b",", m.end(), value_end)
    cut = comma if comma >= 0 else value_end
    return data[:cut] + b";rport" + data[cut:]


def final_status(sock):
    """The first final status answered, or None when nothing comes."""
    while True:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return None
        code = int(data.split(b" ", 2)[1])
        if code >= 200:
            return code


class Rfc4475Test(DaemonTestCase):
    def test_torture_messages(self):
        files = sorted(f for f in os.listdir(TORTURE) if f.endswith(".sip"))
        self.assertEqual(len(files), 49)
        self.assertEqual(sorted(EXPECTED), sorted(f.split("_", 1)[0] + "_" for f in files))
        # One daemon per message: the RFC's messages reuse branches and
        # sent-by values, and a second one would rightly be taken as a
        # retransmission of the first.
        for name in files:
            with self.subTest(message=name):
                want = EXPECTED[name.split("_", 1)[0] + "_"]
                daemon, port = self.daemon()
                with open(os.path.join(TORTURE, name), "rb") as f:
                    data = with_rport(f.read())
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.addCleanup(s.close)
                s.bind(("127.0.0.1", 0))
                # an answer comes at once; silence is waited for, briefly
                s.settimeout(2 if want else 0.3)
                s.sendto(data, ("127.0.0.1", port))
                got = final_status(s)
                if isinstance(want, tuple):
                    self.assertIn(got, want)
                else:
                    self.assertEqual(got, want)
                self.assertTrue(daemon.running(), "the daemon died on %s" % name)
                self.still_serves(port)
                daemon.stop()

    def daemon(self):
        port, peer, ivr, ivr_peer = harness.free_ports(4)
        text = harness.render(CONFIG, CTL=self.tmp.join("ctl.sock"), PORT=port, PEER=peer,
                              IVR=ivr, IVR_PEER=ivr_peer)
        daemon = self.start_daemon(self.tmp.write("sbc-%d.ini" % port, text))
        daemon.wait_ready()
        return daemon, port

    def still_serves(self, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        s.sendto(b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;"
                 b"branch=z9hG4bKfinal;rport\r\nMax-Forwards: 70\r\nFrom: <sip:t@h>;tag=1\r\n"
                 b"To: <sip:x@h>\r\nCall-ID: final\r\nCSeq: 1 OPTIONS\r\n"
                 b"Content-Length: 0\r\n\r\n", ("127.0.0.1", port))
        self.assertEqual(final_status(s), 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
