"""The test PKI (pki.py) is what the TLS tests believe it is: checked with `openssl verify` and a
real TLS handshake (Python's ssl, i.e. OpenSSL), not by reading pki.py back."""

import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import pki as test_pki  # noqa: E402

PKI_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pki.py")


def openssl(*args):
    return subprocess.run([harness.require_program("openssl", "openssl"), *args],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)


class TestPki(harness.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = test_pki.create(os.path.join(cls.class_tmp(), "pki"))

    def verify(self, cert, ca=None, *extra):
        r = openssl("verify", "-CAfile", ca or self.pki.ca_cert, *extra, cert)
        return r.returncode, r.stdout + r.stderr

    def assert_verifies(self, cert, *extra, ca=None):
        code, out = self.verify(cert, ca, *extra)
        self.assertEqual(code, 0, out)
        self.assertIn(": OK", out)

    def assert_refused(self, cert, reason, *extra, ca=None):
        code, out = self.verify(cert, ca, *extra)
        self.assertNotEqual(code, 0, out)
        self.assertIn(reason, out)

    def text(self, cert):
        r = openssl("x509", "-in", cert, "-noout", "-text", "-nameopt", "RFC2253")
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_server_certificates_verify_for_their_names_and_key_types(self):
        for name, host, key_type in (("app_rsa", "app.example.test", "rsaEncryption"),
                                     ("app_rsa", "www.app.example.test", "rsaEncryption"),
                                     ("api_ecdsa", "api.example.test", "id-ecPublicKey"),
                                     ("localhost", "localhost", "id-ecPublicKey")):
            cert = getattr(self.pki, f"{name}_cert")
            self.assert_verifies(cert, "-purpose", "sslserver", "-verify_hostname", host)
            self.assertIn(key_type, self.text(cert))
        self.assertIn("Public-Key: (2048 bit)", self.text(self.pki.app_rsa_cert))
        self.assertIn("NIST CURVE: P-256", self.text(self.pki.api_ecdsa_cert))
        self.assert_verifies(self.pki.localhost_cert, "-verify_ip", "127.0.0.1")
        self.assert_refused(self.pki.api_ecdsa_cert, "hostname mismatch",
                            "-verify_hostname", "app.example.test")

    def test_client_certificates_carry_their_identities(self):
        for name in ("alice", "bob"):
            self.assert_verifies(getattr(self.pki, f"{name}_cert"), "-purpose", "sslclient",
                                 "-crl_check", "-CRLfile", self.pki.crl)
        alice = self.text(self.pki.alice_cert)
        self.assertIn("Subject: CN=alice,O=corp", alice)
        self.assertIn("URI:spiffe://corp/ns/prod/sa/alice", alice)
        bob = self.text(self.pki.bob_cert)
        self.assertIn("Subject: CN=bob,O=corp", bob)
        self.assertIn("DNS:bob.clients.test", bob)

    def test_wrong_ca_client_does_not_verify_against_the_test_ca(self):
        self.assert_refused(self.pki.mallory_cert, "unable to get local issuer certificate")
        # ... but is a real certificate of its own CA, with alice's identity.
        self.assert_verifies(self.pki.mallory_cert, ca=self.pki.wrong_ca_cert)
        self.assertIn("URI:spiffe://corp/ns/prod/sa/alice", self.text(self.pki.mallory_cert))

    def test_crl_revokes_carol_only(self):
        self.assert_verifies(self.pki.carol_cert)  # valid without the CRL
        self.assert_refused(self.pki.carol_cert, "certificate revoked",
                            "-crl_check", "-CRLfile", self.pki.crl)

    def test_expired_certificate_is_expired(self):
        self.assert_refused(self.pki.expired_cert, "certificate has expired")

    def test_serials_are_distinct_and_reissue_gives_a_new_one(self):
        certs = [getattr(self.pki, k) for k in sorted(self.pki.paths) if k.endswith("_cert")]
        serials = [test_pki.serial_of(c) for c in certs]
        self.assertEqual(len(set(serials)), len(serials), dict(zip(certs, serials)))
        # The command line the C++ twin (tests/support/test_pki.cc) uses.
        r = subprocess.run(["/usr/bin/python3", PKI_SCRIPT, self.pki.dir, "--reissue", "app_rsa",
                            "app_rsa_rotated"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        rotated = json.loads(r.stdout)
        self.assertNotIn(test_pki.serial_of(rotated["cert"]), serials)
        self.assert_verifies(rotated["cert"], "-verify_hostname", "x.app.example.test")
        with open(rotated["key"]) as new, open(self.pki.app_rsa_key) as old:
            self.assertNotEqual(new.read(), old.read())

    def test_encrypted_key_needs_its_passphrase(self):
        r = openssl("pkey", "-in", self.pki.encrypted_key, "-passin", "pass:wrong", "-noout")
        self.assertNotEqual(r.returncode, 0)
        r = openssl("pkey", "-in", self.pki.encrypted_key, "-passin",
                    f"pass:{self.pki.encrypted_key_passphrase}", "-pubout")
        self.assertEqual(r.returncode, 0, r.stderr)
        plain = openssl("pkey", "-in", self.pki.app_rsa_key, "-pubout")
        self.assertEqual(r.stdout, plain.stdout)

    def test_private_keys_are_owner_only(self):
        for k, path in self.pki.paths.items():
            if k.endswith("_key"):
                self.assertEqual(os.stat(path).st_mode & 0o077, 0, path)

    def test_mutual_tls_handshake_with_sni(self):
        """A real handshake: server app_rsa for SNI www.app.example.test, client alice."""
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(self.pki.app_rsa_cert, self.pki.app_rsa_key)
        server_ctx.load_verify_locations(self.pki.ca_cert)
        server_ctx.verify_mode = ssl.CERT_REQUIRED
        client_ctx = ssl.create_default_context(cafile=self.pki.ca_cert)
        client_ctx.load_cert_chain(self.pki.alice_cert, self.pki.alice_key)
        a, b = socket.socketpair()
        a.settimeout(10)
        b.settimeout(10)
        seen = {}

        def serve():
            with server_ctx.wrap_socket(a, server_side=True) as s:
                seen["peer"] = s.getpeercert()
                s.sendall(b"ok")

        t = threading.Thread(target=serve)
        t.start()
        with client_ctx.wrap_socket(b, server_hostname="www.app.example.test") as c:
            self.assertEqual(c.recv(2), b"ok")
            self.assertIn(("DNS", "*.app.example.test"), c.getpeercert()["subjectAltName"])
        t.join(10)
        self.assertIn(("URI", "spiffe://corp/ns/prod/sa/alice"), seen["peer"]["subjectAltName"])


if __name__ == "__main__":
    unittest.main()
