"""Sluice → nginx over TLS (Debian's nginx, started by the test with test-CA certificates):
verification against the cluster's CA and name, 503 reasons for verification failures,
upstream mTLS, session resumption, keep-alive reuse of TLS connections, health checks over
TLS."""

import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import tls_peers  # noqa: E402
from harness import request  # noqa: E402
from tls_peers import Nginx, listener  # noqa: E402

# name → the cluster's `tls` map (a YAML flow map) and extra keys; the test fills in paths.
CLUSTERS = {
    "good": "{{ ca: {ca} }}",
    "named": "{{ ca: {ca}, sni: localhost }}",
    "wrongca": "{{ ca: {wrong_ca} }}",
    "badsni": "{{ ca: {ca}, sni: api.example.test }}",
    "mtls": "{{ ca: {ca}, cert: {alice_cert}, key: {alice_key} }}",
    "nocert": "{{ ca: {ca} }}",
    "fresh": "{{ ca: {ca} }}",
    "pooled": "{{ ca: {ca} }}",
    "closing": "{{ ca: {ca} }}",
}


class UpstreamTls(harness.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = p = tls_peers.make_pki(os.path.join(cls.class_tmp(), "pki"))
        cls.tls_port, cls.mtls_port = harness.free_port(), harness.free_port()
        cls.closing_port = harness.free_port()
        # nginx's certificate: localhost and IP 127.0.0.1, issued by the test CA.
        cls.nginx = Nginx(cls.class_tmp(), [
            {"port": cls.tls_port, "cert": p.localhost_cert, "key": p.localhost_key},
            {"port": cls.mtls_port, "cert": p.localhost_cert, "key": p.localhost_key,
             "client_ca": p.ca_cert},
            # Closes every connection after its response (`connection: close`).
            {"port": cls.closing_port, "cert": p.localhost_cert, "key": p.localhost_key,
             "extra": "keepalive_timeout 0;"},
        ])
        cls.addClassCleanup(cls.nginx.stop)
        cls.nginx.start()
        paths = {"ca": p.ca_cert, "wrong_ca": p.wrong_ca_cert, "alice_cert": p.alice_cert,
                 "alice_key": p.alice_key}
        clusters = ""
        routes = ""
        for name, tls in CLUSTERS.items():
            port = {"mtls": cls.mtls_port, "nocert": cls.mtls_port,
                    "closing": cls.closing_port}.get(name, cls.tls_port)
            clusters += f"- name: {name}\n  tls: {tls.format(**paths)}\n"
            clusters += f"  endpoints: [ 127.0.0.1:{port} ]\n"
            if name == "fresh":  # no pooling: every request on a new TLS connection
                clusters += "  max_idle_connections: 0\n"
            routes += f"- name: {name}\n  match: {{ prefix: /{name}/ }}\n  cluster: {name}\n"
        # One worker: one connection pool and one session cache per endpoint, so what nginx
        # sees follows from the requests alone.
        cls.sluice = cls.start_class_sluice(tls_peers.config(
            [listener("public", routes=routes)], clusters=clusters, workers=1))

    def get(self, path):
        return request(self.sluice.port, "GET", path)

    def nginx_lines(self, prefix):
        return [x for x in self.nginx.access_log() if x["uri"].startswith(prefix)]

    def settled_nginx_lines(self, prefix, count, timeout=5.0):
        """The access-log lines under `prefix` once there are `count`: nginx writes a line after
        the response left, so the client (through Sluice) may read the response first."""
        deadline = time.time() + timeout
        lines = self.nginx_lines(prefix)
        while len(lines) < count and time.time() < deadline:
            time.sleep(0.05)
            lines = self.nginx_lines(prefix)
        return lines

    def test_verified_with_the_cluster_ca(self):
        for path in ("/good/a", "/named/b"):
            with self.subTest(path=path):
                r = self.get(path)
                self.assertEqual((r.status, r.text), (200, f"nginx {path}\n"), r)
                self.assertEqual(r.header("x-nginx-port"), str(self.tls_port), r)
        lines = self.settled_nginx_lines("/good/a", 1) + self.settled_nginx_lines("/named/b", 1)
        self.assertEqual(len(lines), 2, lines)
        self.assertTrue(all(x["proto"] in ("TLSv1.2", "TLSv1.3") for x in lines), lines)

    def test_wrong_ca_is_503_with_the_reason(self):
        before = len(self.nginx_lines("/wrongca/"))
        r = self.get("/wrongca/x")
        self.assertEqual(r.status, 503, r)
        self.assertIn("upstream TLS: certificate verify failed", r.text, r)
        self.assertEqual(len(self.nginx_lines("/wrongca/")), before)  # nothing was sent

    def test_sni_not_matching_the_certificate_is_503(self):
        r = self.get("/badsni/x")
        self.assertEqual(r.status, 503, r)
        self.assertIn("upstream TLS: certificate verify failed", r.text, r)
        self.assertIn("hostname mismatch", r.text, r)
        self.assertEqual(self.nginx_lines("/badsni/"), [])

    def test_upstream_mtls(self):
        r = self.get("/mtls/who")
        self.assertEqual((r.status, r.text), (200, "nginx /mtls/who\n"), r)
        self.assertEqual(r.header("x-client-dn"), "CN=alice,O=corp", r)
        self.assertEqual(r.header("x-nginx-port"), str(self.mtls_port), r)
        self.assertEqual([x["dn"] for x in self.settled_nginx_lines("/mtls/who", 1)], ["CN=alice,O=corp"])
        # Without a client certificate nginx refuses the request (400 from nginx itself).
        r = self.get("/nocert/who")
        self.assertEqual(r.status, 400, r)
        self.assertIn("No required SSL certificate was sent", r.text, r)

    def requests_as_nginx_saw_them(self, prefix, n):
        """n GETs under `prefix`, each answered 200; nginx's log lines for them."""
        for i in range(n):
            r = self.get(f"{prefix}{i}")
            self.assertEqual(r.status, 200, r)
        lines = self.settled_nginx_lines(prefix, n)
        self.assertEqual(len(lines), n, lines)
        return lines

    def test_session_resumption_towards_nginx(self):
        lines = self.requests_as_nginx_saw_them("/fresh/", 4)
        self.assertEqual(len({x["conn"] for x in lines}), 4, lines)  # a new connection each
        self.assertEqual(lines[0]["reused"], ".", lines)  # the first: a full handshake
        self.assertIn("r", [x["reused"] for x in lines[1:]], lines)

    def test_session_resumption_when_the_backend_closes_each_connection(self):
        lines = self.requests_as_nginx_saw_them("/closing/", 4)
        self.assertEqual(len({x["conn"] for x in lines}), 4, lines)
        self.assertIn("r", [x["reused"] for x in lines[1:]], lines)

    def test_keep_alive_reuses_upstream_tls_connections(self):
        lines = self.requests_as_nginx_saw_them("/pooled/", 6)
        self.assertLess(len({x["conn"] for x in lines}), 6, lines)

class HealthOverTls(harness.E2ETestCase):
    def test_health_check_over_tls(self):
        p = tls_peers.make_pki(os.path.join(self.tmp, "pki"))
        port = harness.free_port()
        nginx = Nginx(self.tmp, [{"port": port, "cert": p.localhost_cert,
                                  "key": p.localhost_key}])
        self.addCleanup(nginx.stop)
        nginx.start()
        clusters = (f"- name: checked\n  tls: {{ ca: {p.ca_cert} }}\n"
                    f"  endpoints: [ 127.0.0.1:{port} ]\n"
                    "  health_check: { path: /health, interval: 100ms, timeout: 2s, "
                    "healthy_threshold: 1, unhealthy_threshold: 1 }\n")
        routes = "- name: checked\n  match: { prefix: / }\n  cluster: checked\n"
        sluice = self.start_sluice(tls_peers.config([listener("public", routes=routes)],
                                                    clusters=clusters, workers=1))
        endpoint = re.escape(f"127.0.0.1:{port}")
        # Probes reach nginx over TLS and pass: no transition, and nginx logged them.
        probes = lambda: [x for x in nginx.access_log() if x["uri"] == "/health"]
        sluice._poll(lambda: probes() or None, "a TLS probe in nginx's log", 15,
                     0.05)
        probe = probes()[0]
        self.assertIn(probe["proto"], ("TLSv1.2", "TLSv1.3"), probe)
        self.assertEqual(probe["status"], "200", probe)
        self.assertEqual(sluice.count_log(rf"endpoint {endpoint} is unhealthy"), 0,
                         sluice.stderr())
        self.assertEqual(request(sluice.port, "GET", "/x").status, 200)

        nginx.stop()
        sluice.wait_for_log(rf"cluster 'checked': endpoint {endpoint} is unhealthy")
        nginx = Nginx(self.tmp, [{"port": port, "cert": p.localhost_cert,
                                  "key": p.localhost_key}])
        self.addCleanup(nginx.stop)
        nginx.start()
        sluice.wait_for_log(rf"cluster 'checked': endpoint {endpoint} is healthy again")
        self.assertEqual(request(sluice.port, "GET", "/y").status, 200)


if __name__ == "__main__":
    unittest.main()
