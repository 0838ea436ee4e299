"""The client identity of mTLS reaches the backend, the routes and the access log (issue 10).

The built binary on TLS listeners with client certificates required and optional, in front of
the real Jetty example (its /echo lists every request header it received), driven by curl with
the certificates of the test PKI (pki.py). Every check is on what the far side received: the
headers Jetty saw, the status curl got, the access-log line Sluice wrote.
"""

import json
import os
import ssl
import hashlib
import subprocess
import sys
import time
import textwrap
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import pki as test_pki  # noqa: E402
from harness import echo_header_values, parse_echo  # noqa: E402

ALICE_URI = "spiffe://corp/ns/prod/sa/alice"
SPOOF = 'Hash=0000;Subject="CN=root,O=corp";URI=spiffe://corp/ns/prod/sa/admin'
UPSTREAM_ELEMENT = 'Hash=aa11;Subject="CN=edge,O=corp";URI=;DNS=edge.corp.internal'

# Headers a route sets from the TLS variables, so the backend shows what they render to.
TLS_VARIABLE_HEADERS = textwrap.dedent("""\
    request_headers:
      set:
        x-tls-version: "%DOWNSTREAM_TLS_VERSION%"
        x-tls-cipher: "%DOWNSTREAM_TLS_CIPHER%"
        x-sni: "%REQUESTED_SERVER_NAME%"
        x-peer-subject: "%DOWNSTREAM_PEER_SUBJECT%"
        x-peer-uri: "%DOWNSTREAM_PEER_URI_SAN%"
        x-peer-dns: "%DOWNSTREAM_PEER_DNS_SAN%"
        x-peer-hash: "%DOWNSTREAM_PEER_FINGERPRINT_256%"
    """)


def route(name, match, target="cluster: jetty", headers=""):
    """One route; every route tells the backend its name in x-sluice-route."""
    lines = [f"- name: {name}", f"  match: {match}", f"  {target}"]
    if "direct_response" not in target:
        lines.append("  request_headers:")
        lines.append("    set:")
        lines.append(f"      x-sluice-route: {name}")
        extra = headers.splitlines()[2:] if headers else []  # the entries under `set:`
        lines += ["  " + x for x in extra]
    return "\n".join(lines)


def listener(name, tls, routes, access_log):
    out = [f"- name: {name}", "  address: 127.0.0.1:0",
           f"  access_log: {{ path: {json.dumps(access_log)}, format: json }}"]
    if tls:
        out.append(textwrap.indent(tls.strip("\n"), "  "))
    out += ["  virtual_hosts:", "    - name: app", '      domains: ["*"]', "      routes:"]
    out += [textwrap.indent(r, "        ") for r in routes]
    return "\n".join(out)


def tls_block(pki, mode=None, forward=None):
    lines = ["tls:", "  certificates:",
             f"    - {{ cert: {pki.localhost_cert}, key: {pki.localhost_key} }}"]
    if mode:
        lines.append(f"  client_certificate: {{ mode: {mode}, ca: {pki.ca_cert} }}")
    if forward:
        lines.append(f"  forward_client_cert: {forward}")
    return "\n".join(lines)


def der_sha256(pem_path):
    with open(pem_path) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


class TlsIdentity(harness.E2ETestCase):
    """One Jetty and one sluice with five listeners:
    mtls      client certificate required, sanitize_set (the default); /admin/ only for a
              spiffe://corp/ URI SAN (anyone else: the no-route 404), /echo for every client
    optional  client certificate optional; /admin/ for spiffe://corp/, else 403; clients
              without a certificate (present: false) on "anonymous", the others on "rest"
    forward   required, forward_client_cert: forward
    append    required, forward_client_cert: append
    plain     plaintext
    """

    @classmethod
    def setUpClass(cls):
        cls.curl_path = harness.require_program("curl", "curl")
        cls.pki = test_pki.create(os.path.join(cls.class_tmp(), "pki"))
        cls.jetty = cls.start_class_jetty(name="j1")
        cls.logs = {n: os.path.join(cls.class_tmp(), f"{n}.log")
                    for n in ("mtls", "optional", "forward", "append", "plain")}
        spiffe = '{ prefix: /admin/, client_cert: { uri_san: { prefix: "spiffe://corp/" } } }'
        listeners = [
            listener("mtls", tls_block(cls.pki, "required"), [
                route("admin", spiffe, headers=TLS_VARIABLE_HEADERS),
                route("echo", "{ prefix: /echo }", headers=TLS_VARIABLE_HEADERS),
            ], cls.logs["mtls"]),
            listener("optional", tls_block(cls.pki, "optional"), [
                route("admin", spiffe),
                route("admin_denied", "{ prefix: /admin/ }",
                      'direct_response: { status: 403, body: "an ops certificate is needed\\n" }'),
                route("anonymous", "{ prefix: /, client_cert: { present: false } }",
                      headers=TLS_VARIABLE_HEADERS),
                route("rest", "{ prefix: / }"),
            ], cls.logs["optional"]),
            listener("forward", tls_block(cls.pki, "required", "forward"),
                     [route("echo", "{ prefix: / }")], cls.logs["forward"]),
            listener("append", tls_block(cls.pki, "required", "append"),
                     [route("echo", "{ prefix: / }")], cls.logs["append"]),
            listener("plain", None, [route("echo", "{ prefix: / }", headers=TLS_VARIABLE_HEADERS)],
                     cls.logs["plain"]),
        ]
        text = ["admin: { address: 127.0.0.1:0 }", "workers: 2", "listeners:"]
        text += [textwrap.indent(x, "  ") for x in listeners]
        text += ["clusters:", "  - name: jetty", f"    endpoints: [ {cls.jetty.endpoint} ]", ""]
        cls.sluice = cls.start_class_sluice("\n".join(text))
        cls.alice_element = (f'Hash={der_sha256(cls.pki.alice_cert)};Subject="CN=alice,O=corp";'
                             f"URI={ALICE_URI}")
        cls.bob_element = (f'Hash={der_sha256(cls.pki.bob_cert)};Subject="CN=bob,O=corp";'
                           "URI=;DNS=bob.clients.test")

    # -- clients --

    def curl(self, listener, path, who=None, headers=(), tls=True):
        """GET `path` on `listener` with curl, as `who` ("alice", "bob", None: no certificate).
        Returns (status, body, response headers dict lower-case)."""
        port = self.sluice.listeners[listener]
        argv = [self.curl_path, "-sS", "--max-time", "20", "-D", "-", "-o", "-"]
        if tls:
            # By name, so that curl sends SNI "localhost" (it sends none for an IP address).
            argv += ["--cacert", self.pki.ca_cert, "--resolve", f"localhost:{port}:127.0.0.1"]
            url = f"https://localhost:{port}{path}"
        else:
            url = f"http://127.0.0.1:{port}{path}"
        if who:
            argv += ["--cert", getattr(self.pki, f"{who}_cert"),
                     "--key", getattr(self.pki, f"{who}_key")]
        for h in headers:
            argv += ["-H", h]
        r = subprocess.run(argv + [url], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, f"curl {url} as {who}: {r.stderr.decode()}")
        head, _, body = r.stdout.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        resp_headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            resp_headers[k.strip().lower()] = v.strip()
        return status, body.decode("utf-8", "replace"), resp_headers

    def backend_saw(self, listener, path, who=None, headers=(), tls=True):
        """The request headers Jetty received, as a list of (lower-case name, value)."""
        status, body, resp = self.curl(listener, path, who, headers, tls)
        self.assertEqual(status, 200, body)
        self.assertEqual(resp.get("x-backend"), "j1", resp)
        return parse_echo(body)[1]

    def xfcc(self, seen):
        return echo_header_values(seen, "x-forwarded-client-cert")

    def access_log_line(self, listener, path):
        """The JSON access-log line of the last request to `path` on `listener`."""
        deadline = time.monotonic() + 10
        while True:
            try:
                with open(self.logs[listener]) as f:
                    lines = [json.loads(x) for x in f if x.strip()]
            except FileNotFoundError:
                lines = []
            hits = [x for x in lines if x["path"] == path]
            if hits:
                return hits[-1]
            if time.monotonic() > deadline:
                self.fail(f"no access-log line for {path} on {listener}: {lines[-5:]}")
            time.sleep(0.05)

    # -- x-forwarded-client-cert --

    def test_sanitize_set_gives_the_backend_alices_element_and_drops_a_spoof(self):
        seen = self.backend_saw("mtls", "/echo/a", "alice",
                                [f"X-Forwarded-Client-Cert: {SPOOF}"])
        self.assertEqual(self.xfcc(seen), [self.alice_element])
        seen = self.backend_saw("mtls", "/echo/b", "bob",
                                [f"x-forwarded-client-cert: {SPOOF}",
                                 f"X-Forwarded-Client-Cert: {SPOOF}"])
        self.assertEqual(self.xfcc(seen), [self.bob_element])
        self.assertEqual(echo_header_values(seen, "x-forwarded-proto"), ["https"])

    def test_a_client_without_a_certificate_or_on_plaintext_cannot_send_one(self):
        seen = self.backend_saw("optional", "/anything", None, [f"X-Forwarded-Client-Cert: {SPOOF}"])
        self.assertEqual(self.xfcc(seen), [])
        self.assertEqual(echo_header_values(seen, "x-sluice-route"), ["anonymous"])
        seen = self.backend_saw("plain", "/echo", None, [f"X-Forwarded-Client-Cert: {SPOOF}"],
                                tls=False)
        self.assertEqual(self.xfcc(seen), [])
        self.assertEqual(echo_header_values(seen, "x-forwarded-proto"), ["http"])

    def test_forward_keeps_the_clients_header_on_mtls(self):
        seen = self.backend_saw("forward", "/x", "alice", [f"X-Forwarded-Client-Cert: {SPOOF}"])
        self.assertEqual(self.xfcc(seen), [SPOOF])
        seen = self.backend_saw("forward", "/x", "alice")
        self.assertEqual(self.xfcc(seen), [])

    def test_append_adds_this_connections_element_after_the_clients(self):
        seen = self.backend_saw("append", "/x", "alice",
                                [f"X-Forwarded-Client-Cert: {UPSTREAM_ELEMENT}"])
        self.assertEqual(self.xfcc(seen), [f"{UPSTREAM_ELEMENT},{self.alice_element}"])
        seen = self.backend_saw("append", "/x", "bob")
        self.assertEqual(self.xfcc(seen), [self.bob_element])

    # -- routing on the identity --

    def test_identity_routing_with_a_required_certificate(self):
        seen = self.backend_saw("mtls", "/admin/users", "alice")
        self.assertEqual(echo_header_values(seen, "x-sluice-route"), ["admin"])
        # bob's certificate is valid but has no spiffe://corp/ URI SAN: no route for /admin/.
        status, body, _ = self.curl("mtls", "/admin/users", "bob")
        self.assertEqual(status, 404, body)
        self.assertEqual(body, "no route matches the request in virtual host 'app'\n")
        # bob reaches the routes without a condition.
        seen = self.backend_saw("mtls", "/echo", "bob")
        self.assertEqual(echo_header_values(seen, "x-sluice-route"), ["echo"])

    def test_identity_routing_with_an_optional_certificate(self):
        seen = self.backend_saw("optional", "/admin/users", "alice")
        self.assertEqual(echo_header_values(seen, "x-sluice-route"), ["admin"])
        self.assertEqual(self.xfcc(seen), [self.alice_element])
        for who in ("bob", None):
            status, body, _ = self.curl("optional", "/admin/users", who)
            self.assertEqual((status, body), (403, "an ops certificate is needed\n"), who)
        # present: false holds only without a certificate.
        seen = self.backend_saw("optional", "/page", None)
        self.assertEqual(echo_header_values(seen, "x-sluice-route"), ["anonymous"])
        seen = self.backend_saw("optional", "/page", "bob")
        self.assertEqual(echo_header_values(seen, "x-sluice-route"), ["rest"])
        self.assertEqual(self.xfcc(seen), [self.bob_element])

    # -- header template variables --

    def test_tls_variables_render_the_connection_and_the_peer(self):
        seen = self.backend_saw("mtls", "/echo/vars", "alice")
        one = lambda name: echo_header_values(seen, name)  # noqa: E731
        self.assertIn(one("x-tls-version")[0], ("TLSv1.2", "TLSv1.3"))
        self.assertRegex(one("x-tls-cipher")[0], r"^[A-Z0-9_-]+$")
        self.assertEqual(one("x-sni"), ["localhost"])
        self.assertEqual(one("x-peer-subject"), ["CN=alice,O=corp"])
        self.assertEqual(one("x-peer-uri"), [ALICE_URI])
        self.assertEqual(one("x-peer-dns"), [""])
        self.assertEqual(one("x-peer-hash"), [der_sha256(self.pki.alice_cert)])
        # TLS without a client certificate: the connection's values, empty peer values.
        seen = self.backend_saw("optional", "/vars", None)
        self.assertIn(one("x-tls-version")[0], ("TLSv1.2", "TLSv1.3"))
        self.assertEqual(one("x-peer-subject"), [""])
        self.assertEqual(one("x-peer-uri"), [""])
        self.assertEqual(one("x-peer-hash"), [""])
        # Plaintext: all empty.
        seen = self.backend_saw("plain", "/echo/vars", None, tls=False)
        self.assertEqual(one("x-tls-version"), [""])
        self.assertEqual(one("x-sni"), [""])

    # -- access log --

    def test_access_log_carries_the_tls_fields(self):
        self.backend_saw("mtls", "/echo/logged", "alice")
        line = self.access_log_line("mtls", "/echo/logged")
        self.assertIn(line["tls_version"], ("TLSv1.2", "TLSv1.3"))
        self.assertRegex(line["tls_cipher"], r"^[A-Z0-9_-]+$")
        self.assertEqual(line["sni"], "localhost")
        self.assertEqual(line["peer_subject"], "CN=alice,O=corp")
        self.assertEqual(line["peer_uri_san"], ALICE_URI)
        self.assertEqual(list(line)[-5:],
                         ["tls_version", "tls_cipher", "sni", "peer_subject", "peer_uri_san"])
        # Without a client certificate: the connection's fields, null for the peer.
        self.backend_saw("optional", "/logged", None)
        line = self.access_log_line("optional", "/logged")
        self.assertIn(line["tls_version"], ("TLSv1.2", "TLSv1.3"))
        self.assertIsNone(line["peer_subject"])
        self.assertIsNone(line["peer_uri_san"])
        # bob has no URI SAN.
        self.backend_saw("optional", "/logged-bob", "bob")
        line = self.access_log_line("optional", "/logged-bob")
        self.assertEqual(line["peer_subject"], "CN=bob,O=corp")
        self.assertIsNone(line["peer_uri_san"])
        # Plaintext lines have no TLS fields.
        self.backend_saw("plain", "/echo/logged", None, tls=False)
        line = self.access_log_line("plain", "/echo/logged")
        self.assertEqual(list(line)[-1], "flags")
        self.assertNotIn("tls_version", line)


if __name__ == "__main__":
    unittest.main()
