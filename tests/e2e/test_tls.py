"""Downstream TLS with real clients (curl, `openssl s_client`): certificate selection by SNI,
ALPN, versions, resumption, mutual TLS, the handshake timeout, bad TLS material refused at
start and by --validate, the HTTP → HTTPS redirect and x-forwarded-proto behind TLS."""

import os
import re
import socket
import ssl
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import pki as pki_module  # noqa: E402
import tls_peers  # noqa: E402
from harness import echo_header_values, parse_echo  # noqa: E402
from tls_peers import curl, listener, s_client, tls_block  # noqa: E402


class Listeners(harness.E2ETestCase):
    """One sluice with several TLS listeners (and a plaintext one redirecting to HTTPS), shared
    by the read-only checks below."""

    @classmethod
    def setUpClass(cls):
        cls.pki = p = tls_peers.make_pki(os.path.join(cls.class_tmp(), "pki"))
        # The HTTPS port is needed in the plaintext listener's redirect, so it is chosen here.
        cls.https_port = harness.free_port()
        redirect = ("- name: to_https\n  match: { prefix: / }\n"
                    f"  redirect: {{ scheme: https, port: {cls.https_port} }}\n")
        listeners = [
            # app_rsa first: the default for no SNI and unknown names.
            listener("main", cls.https_port, handshake_timeout="1s", tls=tls_block(
                [(p.app_rsa_cert, p.app_rsa_key), (p.api_ecdsa_cert, p.api_ecdsa_key),
                 (p.localhost_cert, p.localhost_key)])),
            listener("tls13", tls=tls_block([(p.localhost_cert, p.localhost_key)],
                                            min_version="1.3")),
            listener("required", tls=tls_block(
                [(p.localhost_cert, p.localhost_key)],
                client_certificate={"mode": "required", "ca": p.ca_cert, "crl": p.crl})),
            listener("optional", tls=tls_block(
                [(p.localhost_cert, p.localhost_key)],
                client_certificate={"mode": "optional", "ca": p.ca_cert})),
            listener("plain", routes=redirect),
        ]
        cls.sluice = cls.start_class_sluice(tls_peers.config(listeners))

    def port(self, name):
        return self.sluice.listeners[name]

    # -- certificates chosen by SNI --

    def assert_served(self, result, cert):
        """Checks that `result` saw certificate `cert` (by serial); returns its subject and
        public key algorithm."""
        subject, serial, algorithm = result.served_certificate()
        self.assertEqual(serial, pki_module.serial_of(cert), result)
        return subject, algorithm

    def test_sni_picks_the_certificate(self):
        p = self.pki
        rsa, ecdsa = "rsaEncryption", "id-ecPublicKey"
        cases = [
            ("app.example.test", p.app_rsa_cert, "CN=app.example.test", rsa),
            ("www.app.example.test", p.app_rsa_cert, "CN=app.example.test", rsa),  # wildcard
            ("api.example.test", p.api_ecdsa_cert, "CN=api.example.test", ecdsa),
            ("API.Example.Test", p.api_ecdsa_cert, "CN=api.example.test", ecdsa),  # any case
            ("localhost", p.localhost_cert, "CN=localhost", ecdsa),
        ]
        for name, cert, subject, algorithm in cases:
            with self.subTest(sni=name):
                r = s_client(self.port("main"), "-servername", name)
                self.assertTrue(r.got_http_200, r)
                self.assertEqual(self.assert_served(r, cert), (subject, algorithm))
        # curl verifies the chain and the name against the test CA: each name gets a certificate
        # that is valid for it, the wildcard included.
        for name in ("app.example.test", "a.app.example.test", "api.example.test"):
            with self.subTest(curl=name):
                r = curl(f"https://{name}:{self.port('main')}/", ca=p.ca_cert,
                         resolve=(name, self.port("main")))
                self.assertEqual((r.returncode, r.status, r.body), (0, 200, "ok\n"), r)
                self.assertIn("SSL certificate verify ok", r.stderr)

    def test_no_sni_or_unknown_name_gets_the_first_certificate(self):
        p = self.pki
        for args in (("-noservername",), ("-servername", "unknown.example.test"),
                     ("-servername", "a.b.app.example.test")):  # a wildcard covers one label
            with self.subTest(args=args):
                r = s_client(self.port("main"), *args)
                self.assertTrue(r.got_http_200, r)
                self.assertEqual(self.assert_served(r, p.app_rsa_cert),
                                 ("CN=app.example.test", "rsaEncryption"))

    # -- ALPN --

    def test_alpn(self):
        r = s_client(self.port("main"), "-alpn", "h2,http/1.1")
        self.assertEqual(r.alpn, "http/1.1", r)
        self.assertTrue(r.got_http_200, r)
        # curl offers h2 and http/1.1 and settles on http/1.1.
        r = curl(f"https://localhost:{self.port('main')}/", "--http2", ca=self.pki.ca_cert,
                 resolve=("localhost", self.port("main")))
        self.assertEqual(r.status, 200, r)
        self.assertIn("ALPN: server accepted http/1.1", r.stderr)
        # Only h2: a no_application_protocol alert (120), and no HTTP.
        r = s_client(self.port("main"), "-alpn", "h2")
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn("no application protocol", r.text, r)
        self.assertFalse(r.got_http_200, r)

    # -- versions --

    def test_tls_1_0_and_1_1_refused(self):
        for flag in ("-tls1", "-tls1_1"):
            with self.subTest(flag=flag):
                # SECLEVEL=0 so the local OpenSSL sends the old hello at all: the refusal must
                # come from sluice (a protocol_version alert), not from this client.
                r = s_client(self.port("main"), flag, "-cipher", "DEFAULT@SECLEVEL=0")
                self.assertNotEqual(r.returncode, 0, r)
                self.assertIn("alert protocol version", r.text, r)
                self.assertIsNone(r.session_line, r)
                self.assertFalse(r.got_http_200, r)

    def test_tls_1_2_and_1_3_accepted(self):
        for flag, version in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            with self.subTest(flag=flag):
                r = s_client(self.port("main"), flag)
                self.assertEqual(r.protocol, version, r)
                self.assertTrue(r.got_http_200, r)

    def test_min_version_1_3_refuses_1_2(self):
        r = s_client(self.port("tls13"), "-tls1_2")
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn("alert protocol version", r.text, r)
        self.assertFalse(r.got_http_200, r)
        r = s_client(self.port("tls13"), "-tls1_3")
        self.assertEqual(r.protocol, "TLSv1.3", r)
        self.assertTrue(r.got_http_200, r)

    # -- resumption --

    def test_session_resumption(self):
        for flag, version in (("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")):
            with self.subTest(version=version):
                sess = os.path.join(self.tmp, f"session-{version}.pem")
                first = s_client(self.port("main"), flag, "-sess_out", sess)
                self.assertEqual(first.session_line[:2], ("New", version), first)
                self.assertTrue(os.path.getsize(sess) > 0, first)
                # Two workers: the ticket keys are shared, so any worker resumes it; try a few
                # connections so both are likely to be reached.
                for i in range(4):
                    again = s_client(self.port("main"), flag, "-sess_in", sess)
                    self.assertEqual(again.session_line[:2], ("Reused", version),
                                     f"connection {i}: {again}")
                    self.assertTrue(again.got_http_200, again)

    # -- mutual TLS --

    def mtls(self, listener_name, client=None, key=None, tls_max=None):
        args = []
        if client:
            args += ["--cert", client, "--key", key]
        if tls_max:
            args += ["--tls-max", tls_max]
        port = self.port(listener_name)
        return curl(f"https://localhost:{port}/", *args, ca=self.pki.ca_cert,
                    resolve=("localhost", port))

    def assert_refused(self, listener_name, client, key, tls12_alert, tls13_alert):
        """The handshake with this client certificate (or none) fails in TLS 1.2 with the alert
        `tls12_alert`, and TLS 1.3 gets no HTTP answer either. In TLS 1.3 the client finishes
        its side of the handshake before the server has verified its certificate, so curl may
        be writing its request when the alert arrives and the close resets the connection:
        then the alert's text may be lost, but never the refusal."""
        r = self.mtls(listener_name, client, key, tls_max="1.2")
        self.assertNotEqual(r.returncode, 0, r)
        self.assertNotEqual(r.status, 200, r)
        self.assertIn(tls12_alert, r.stderr, r)
        r = self.mtls(listener_name, client, key)
        self.assertNotEqual(r.returncode, 0, r)
        self.assertNotEqual(r.status, 200, r)
        self.assertIn("TLSv1.3", r.stderr, r)
        self.assertTrue(tls13_alert in r.stderr or "reset by peer" in r.stderr, r)

    def test_mtls_required(self):
        p = self.pki
        for tls_max in ("1.2", "1.3"):
            r = self.mtls("required", p.alice_cert, p.alice_key, tls_max=tls_max)
            self.assertEqual((r.returncode, r.status, r.body), (0, 200, "ok\n"), r)
        # No certificate, one from the wrong CA, one revoked in the CRL.
        self.assert_refused("required", None, None, "alert handshake failure",
                            "certificate required")
        self.assert_refused("required", p.mallory_cert, p.mallory_key, "alert unknown ca",
                            "alert unknown ca")
        self.assert_refused("required", p.carol_cert, p.carol_key, "alert certificate revoked",
                            "alert certificate revoked")

    def test_mtls_optional(self):
        p = self.pki
        for tls_max in ("1.2", "1.3"):
            r = self.mtls("optional", tls_max=tls_max)
            self.assertEqual((r.returncode, r.status, r.body), (0, 200, "ok\n"), r)
            r = self.mtls("optional", p.bob_cert, p.bob_key, tls_max=tls_max)
            self.assertEqual((r.returncode, r.status, r.body), (0, 200, "ok\n"), r)
        # A certificate that is presented must be valid.
        self.assert_refused("optional", p.mallory_cert, p.mallory_key, "alert unknown ca",
                            "alert unknown ca")

    # -- the handshake timeout and non-TLS clients --

    def test_silent_client_closed_after_handshake_timeout(self):
        with socket.create_connection(("127.0.0.1", self.port("main"))) as s:
            # tls_handshake_timeout is 1s; the default is 10s, so a listener ignoring the key
            # would keep the connection past this (generous) wait.
            s.settimeout(8)
            try:
                data = s.recv(4096)
            except socket.timeout:
                self.fail("a client that sent nothing was not closed within 8s "
                          "(tls_handshake_timeout: 1s)")
            except ConnectionResetError:
                data = b""
            self.assertEqual(data, b"")
        # A client that finished its handshake is not subject to it.
        ctx = ssl.create_default_context(cafile=self.pki.ca_cert)
        with socket.create_connection(("127.0.0.1", self.port("main"))) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.settimeout(10)
                time.sleep(2)  # twice the handshake timeout, idle after the handshake
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                r = harness.read_response(s.makefile("rb"))
                self.assertEqual((r.status, r.body), (200, b"ok\n"))

    def test_plaintext_request_to_the_tls_port(self):
        with socket.create_connection(("127.0.0.1", self.port("main")), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            data = b""
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except ConnectionResetError:
                pass
        self.assertNotIn(b"HTTP/", data)  # at most a TLS alert record, never an HTTP answer
        self.assertTrue(self.sluice.running())
        r = s_client(self.port("main"), "-servername", "localhost")
        self.assertTrue(r.got_http_200, r)

    # -- HTTP → HTTPS --

    def test_redirect_to_https(self):
        r = harness.request(self.port("plain"), "GET", "/some/path?q=1",
                            headers={"Host": "localhost"})
        self.assertEqual(r.status, 301, r)
        self.assertEqual(r.header("location"),
                         f"https://localhost:{self.https_port}/some/path?q=1", r)
        # And a client following it lands on the TLS listener, verified.
        r = curl(f"http://localhost:{self.port('plain')}/some/path?q=1", "-L",
                 ca=self.pki.ca_cert, resolve=("localhost", self.port("plain")))
        self.assertEqual((r.returncode, r.status, r.body), (0, 200, "ok\n"), r)


class BadMaterial(harness.E2ETestCase):
    """TLS files that cannot serve are refused by --validate and at start, naming the file."""

    @classmethod
    def setUpClass(cls):
        cls.pki = tls_peers.make_pki(os.path.join(cls.class_tmp(), "pki"))

    def refused(self, cert, key, *reason_words):
        text = tls_peers.config([listener("https", tls=tls_block([(cert, key)]))])
        path = os.path.join(self.tmp, "bad.yaml")
        with open(path, "w") as f:
            f.write(text)
        for args in (["--validate", "--config", path], ["--config", path]):
            with self.subTest(args=args[0]):
                r = harness.run_sluice(args)
                err = r.stderr.decode()
                self.assertEqual(r.returncode, 1, err)
                self.assertNotIn("configuration OK", r.stdout.decode())
                self.assertNotIn("started:", err)
                self.assertIn("listeners[0].tls.certificates[0]", err)
                for word in reason_words:
                    self.assertIn(word, err)
        return err

    def test_good_material_validates(self):
        p = self.pki
        text = tls_peers.config([listener("https", tls=tls_block([(p.app_rsa_cert,
                                                                    p.app_rsa_key)]))])
        path = os.path.join(self.tmp, "good.yaml")
        with open(path, "w") as f:
            f.write(text)
        r = harness.run_sluice(["--validate", "--config", path])
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(r.stdout.decode(), "configuration OK\n")

    def test_passphrase_protected_key(self):
        p = self.pki
        self.refused(p.app_rsa_cert, p.encrypted_key, p.encrypted_key, "passphrase")

    def test_key_not_matching_its_certificate(self):
        p = self.pki
        self.refused(p.app_rsa_cert, p.api_ecdsa_key, p.api_ecdsa_key,
                     "does not match the certificate")

    def test_certificate_not_pem(self):
        p = self.pki
        bad = os.path.join(self.tmp, "not-a-cert.pem")
        with open(bad, "w") as f:
            f.write("this is not a certificate\n")
        self.refused(bad, p.app_rsa_key, bad, "cannot load the certificate chain")

    def test_expired_certificate_warned_at_start(self):
        p = self.pki
        sluice = self.start_sluice(tls_peers.config(
            [listener("https", tls=tls_block([(p.expired_cert, p.expired_key)]))]))
        serial = pki_module.serial_of(p.expired_cert)
        sluice.wait_for_log(re.compile(
            rf"warn.*{re.escape(p.expired_cert)} \(serial 0*{serial}\) has expired"))
        # A valid certificate is not warned about.
        other = self.start_sluice(tls_peers.config(
            [listener("https", tls=tls_block([(p.localhost_cert, p.localhost_key)]))]),
            name="valid")
        self.assertEqual(other.count_log("has expired"), 0, other.stderr())
        self.assertEqual(other.count_log("expires in"), 0, other.stderr())


JETTY_ROUTE = """\
- name: jetty
  match: { prefix: / }
  cluster: jetty
"""


class BehindTls(harness.E2ETestCase):
    """The real Jetty example behind a TLS listener sees x-forwarded-proto: https."""

    def test_x_forwarded_proto(self):
        p = tls_peers.make_pki(os.path.join(self.tmp, "pki"))
        jetty = self.start_jetty(name="tls-backend")
        sluice = self.start_sluice(tls_peers.config(
            [listener("https", tls=tls_block([(p.localhost_cert, p.localhost_key)]),
                      routes=JETTY_ROUTE),
             listener("plain", routes=JETTY_ROUTE)],
            clusters=f"- name: jetty\n  endpoints: [ {jetty.endpoint} ]\n"))
        port = sluice.listeners["https"]
        r = curl(f"https://localhost:{port}/echo", ca=p.ca_cert, resolve=("localhost", port))
        self.assertEqual((r.returncode, r.status), (0, 200), r)
        fields, hdrs = parse_echo(r.body)
        self.assertEqual(echo_header_values(hdrs, "x-forwarded-proto"), ["https"], r.body)
        self.assertEqual(fields["uri"], "/echo")
        # The plaintext listener in the same process says http: the value comes from the
        # listener, not a constant.
        r = harness.request(sluice.listeners["plain"], "GET", "/echo")
        _, hdrs = parse_echo(r.text)
        self.assertEqual(echo_header_values(hdrs, "x-forwarded-proto"), ["http"], r.text)


if __name__ == "__main__":
    unittest.main()
