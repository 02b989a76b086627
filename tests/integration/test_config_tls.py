"""--check loads TLS files with OpenSSL: a usable chain and key pass, a key of
another certificate, a file that is not PEM and an unreadable CA bundle are
errors on their key's line, an expired certificate is a warning that does not
fail the check. Certificates are made here with the openssl CLI."""

import os
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase, binary, run  # noqa: E402

CONFIG = """[global]
media_ports = 30000-30999

[trunk:carrier]
listen = tls:127.0.0.1:{tls_port}, udp:127.0.0.1:{udp_port}
peers = udp:127.0.0.1:{peer_port}
options_interval = 0
tls_certificate = {cert}
tls_private_key = {key}
{extra}
route = ivr

[trunk:ivr]
listen = udp:127.0.0.1:{ivr_port}
peers = udp:127.0.0.1:{ivr_peer}
options_interval = 0
srtp = off
"""


@unittest.skipIf(shutil.which("openssl") is None, "openssl CLI not installed")
class TlsFileCheckTest(DaemonTestCase):
    def make_cert(self, name, days="30"):
        """A self-signed P-256 certificate and its key; days may be -1 (expired)."""
        key, csr, cert = (self.tmp.join(name + ext) for ext in (".key", ".csr", ".pem"))
        r = run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-subj", "/CN=sbc.test", "-keyout", key, "-out", csr])
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run(["openssl", "x509", "-req", "-in", csr, "-key", key, "-days", days,
                 "-out", cert])
        self.assertEqual(r.returncode, 0, r.stderr)
        return cert, key

    def check(self, cert, key, extra=""):
        ports = harness.free_ports(5)
        text = CONFIG.format(tls_port=ports[0], udp_port=ports[1], peer_port=ports[2],
                             ivr_port=ports[3], ivr_peer=ports[4], cert=cert, key=key,
                             extra=extra)
        path = self.tmp.write("tls.ini", text)
        r = run([binary(), "--check", "-c", path], timeout=30)
        return r, path, text

    def assert_problem(self, r, path, text, needle, message, warning=False):
        line = harness.line_of(text, needle)
        want = "%s:%d: %s%s" % (path, line, "warning: " if warning else "", message)
        self.assertIn(want, r.stderr.splitlines(), r.stderr)

    def test_good_chain_and_key(self):
        cert, key = self.make_cert("good")
        r, _, _ = self.check(cert, key)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")

    def test_key_of_another_certificate(self):
        cert, _ = self.make_cert("one")
        _, other_key = self.make_cert("two")
        r, path, text = self.check(cert, other_key)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assert_problem(r, path, text, "tls_private_key =",
                            "tls_private_key %s does not belong to tls_certificate %s"
                            % (other_key, cert))

    def test_expired_certificate_is_a_warning(self):
        cert, key = self.make_cert("old", days="-1")
        r, path, text = self.check(cert, key)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_problem(r, path, text, "tls_certificate =",
                            "tls_certificate %s has expired: peers will refuse it" % cert,
                            warning=True)

    def test_certificate_that_is_not_pem(self):
        _, key = self.make_cert("k")
        junk = self.tmp.write("junk.pem", "this is not a certificate\n")
        r, path, text = self.check(junk, key)
        self.assertEqual(r.returncode, 1, r.stderr)
        line = harness.line_of(text, "tls_certificate =")
        prefix = "%s:%d: tls_certificate: %s: " % (path, line, junk)
        self.assertTrue(any(l.startswith(prefix) for l in r.stderr.splitlines()), r.stderr)

    def test_unreadable_ca_bundle(self):
        cert, key = self.make_cert("c")
        missing = self.tmp.join("no-such-ca.pem")
        r, path, text = self.check(cert, key, extra="tls_ca = %s" % missing)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assert_problem(r, path, text, "tls_ca =",
                            "tls_ca: cannot read %s: No such file or directory" % missing)

    def test_relative_paths_are_taken_from_the_config_directory(self):
        cert, key = self.make_cert("rel")
        r, _, _ = self.check(os.path.basename(cert), os.path.basename(key))
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
