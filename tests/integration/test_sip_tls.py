"""SIP over TLS into the daemon, with certificates made here by the openssl
CLI: a positive control with mutual TLS, then each refusal with the reason
the daemon logs: no client certificate under require, an expired client
certificate, one signed by another CA, and a client that speaks only TLS 1.1.
(Our checks of a server's name and CA run when the daemon connects out;
tests/unit/test_tlsctx.c covers them with real handshakes.)"""

import os
import shutil
import socket
import ssl
import sys
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase, run  # noqa: E402

OPENSSL = shutil.which("openssl")

CONFIG = """[global]
log_level = debug
control_socket = @CTL@
metrics_listen =
media_ports = 30000-30999

[trunk:carrier]
listen = tls:127.0.0.1:@PORT@, udp:127.0.0.1:@PORT@
peers = udp:127.0.0.1:@PEER@
options_interval = 0
sources = 127.0.0.1/32
tls_certificate = @DIR@/server.pem
tls_private_key = @DIR@/server.key
tls_ca = @DIR@/ca.pem
tls_verify_client = require
route = ivr

[trunk:ivr]
listen = udp:127.0.0.1:@IVR@
peers = udp:127.0.0.1:@IVR_PEER@
options_interval = 0
srtp = off
"""


def openssl(*args):
    r = run([OPENSSL, *args])
    if r.returncode != 0:
        raise AssertionError("openssl %s: %s" % (" ".join(args), r.stderr))


@unittest.skipIf(OPENSSL is None, "openssl CLI not installed")
class SipTlsTest(DaemonTestCase):
    def setUp(self):
        super().setUp()
        d = self.tmp.path
        self.dir = d
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        for ca in ("ca", "other-ca"):
            openssl("req", "-x509", *ec, "-days", "30", "-subj", "/CN=%s" % ca,
                    "-keyout", "%s/%s.key" % (d, ca), "-out", "%s/%s.pem" % (d, ca))
        ext = "%s/san.ext" % d
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:sbc.test,IP:127.0.0.1\n")
        for name, ca, days in (("server", "ca", "30"), ("client", "ca", "30"),
                               ("expired", "ca", "-1"), ("stranger", "other-ca", "30")):
            openssl("req", *ec, "-subj", "/CN=%s" % name, "-keyout", "%s/%s.key" % (d, name),
                    "-out", "%s/%s.csr" % (d, name))
            openssl("x509", "-req", "-in", "%s/%s.csr" % (d, name), "-CA", "%s/%s.pem" % (d, ca),
                    "-CAkey", "%s/%s.key" % (d, ca), "-CAcreateserial", "-days", days,
                    "-extfile", ext, "-out", "%s/%s.pem" % (d, name))
        self.port, peer, ivr, ivr_peer = harness.free_ports(4)
        text = harness.render(CONFIG, CTL=self.tmp.join("ctl.sock"), PORT=self.port,
                              PEER=peer, IVR=ivr, IVR_PEER=ivr_peer, DIR=d)
        self.daemon = self.start_daemon(self.tmp.write("sbc.ini", text))
        self.daemon.wait_ready()

    def client(self, cert=None, max_version=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations("%s/ca.pem" % self.dir)
        if cert:
            ctx.load_cert_chain("%s/%s.pem" % (self.dir, cert), "%s/%s.key" % (self.dir, cert))
        if max_version:
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = max_version
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self.addCleanup(raw.close)
        return ctx.wrap_socket(raw, server_hostname="127.0.0.1")

    def options(self):
        return ("OPTIONS sip:carrier@127.0.0.1:%d;transport=tls SIP/2.0\r\n"
                "Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK%s\r\n"
                "Max-Forwards: 70\r\nFrom: <sip:t@127.0.0.1>;tag=1\r\n"
                "To: <sip:carrier@127.0.0.1>\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\n"
                "Content-Length: 0\r\n\r\n" % (self.port, uuid.uuid4().hex, uuid.uuid4().hex)
                ).encode()

    def refused(self, reason, **client):
        mark = self.daemon.log_mark()
        try:
            s = self.client(**client)
            s.sendall(self.options())
            data = s.recv(4096)  # TLS 1.3 reports a client refusal here
            self.assertNotIn(b"SIP/2.0 200", data)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError, OSError):
            pass
        rec = self.daemon.wait_for_log(msg="TLS handshake refused", since=mark)
        self.assertIn(reason, rec["reason"])

    def test_mutual_tls_positive_control(self):
        s = self.client(cert="client")
        self.assertIn(s.version(), ("TLSv1.2", "TLSv1.3"))
        s.sendall(self.options())
        self.assertTrue(s.recv(4096).startswith(b"SIP/2.0 200 OK\r\n"))

    def test_no_client_certificate_under_require(self):
        self.refused("client sent no certificate")

    def test_expired_client_certificate(self):
        self.refused("certificate expired", cert="expired")

    def test_client_certificate_of_another_ca(self):
        self.refused("certificate not signed by tls_ca", cert="stranger")

    def test_tls_1_1_only_client(self):
        self.refused("TLS 1.1 or older", cert="client", max_version=ssl.TLSVersion.TLSv1_1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
