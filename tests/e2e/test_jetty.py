"""sluice in front of the real Jetty example backend (examples/jetty)."""

import hashlib
import os
import re
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import echo_header_values, parse_echo, request  # noqa: E402

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def deterministic_bytes(n, seed=b"sluice-e2e"):
    """n pseudo-random bytes (SHA-256 in counter mode): incompressible, reproducible."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:n])


class ThroughProxy(harness.E2ETestCase):
    """One Jetty and one sluice shared by the read-only checks below."""

    @classmethod
    def setUpClass(cls):
        cls.jetty = cls.start_class_jetty(name="j1")
        cls.sluice = cls.start_class_sluice(harness.basic_config([cls.jetty.endpoint]))

    def echo(self, path="/echo", headers=None, method="GET", body=None):
        r = request(self.sluice.port, method, path, body=body, headers=headers)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("x-backend"), "j1", r)
        fields, hdrs = parse_echo(r.text)
        return r, fields, hdrs

    def test_get_with_prefix_rewrite(self):
        r, fields, hdrs = self.echo("/api/echo?x=1&y=two")
        self.assertEqual(fields["method"], "GET")
        self.assertEqual(fields["uri"], "/echo?x=1&y=two")  # /api/ → /, query kept verbatim
        self.assertEqual(fields["protocol"], "HTTP/1.1")
        self.assertEqual(echo_header_values(hdrs, "host"), [f"127.0.0.1:{self.sluice.port}"])
        # The catch-all route does not rewrite.
        _, fields, _ = self.echo("/echo/deeper?q=%2F")
        self.assertEqual(fields["uri"], "/echo/deeper?q=%2F")

    def test_post_5mb_with_content_length(self):
        body = deterministic_bytes(5 * 1024 * 1024)
        r = request(self.sluice.port, "POST", "/api/upload", body=body,
                    headers={"Content-Type": "application/octet-stream"}, timeout=60)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.text, f"bytes: {len(body)}\nsha256: {hashlib.sha256(body).hexdigest()}\n")
        # The same with curl, asking for `100 Continue` first (curl does by default above 1 MB).
        path = os.path.join(self.tmp, "post.bin")
        with open(path, "wb") as f:
            f.write(body)
        curl = harness.require_program("curl", "curl")
        out = subprocess.run(
            [curl, "-sS", "--max-time", "60", "-v", "--data-binary", f"@{path}",
             "-H", "Content-Type: application/octet-stream", "-H", "Expect: 100-continue",
             f"http://127.0.0.1:{self.sluice.port}/api/upload"],
            capture_output=True, text=True, timeout=90)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(f"> Content-Length: {len(body)}", out.stderr)
        self.assertIn("< HTTP/1.1 100", out.stderr)
        self.assertEqual(out.stdout,
                         f"bytes: {len(body)}\nsha256: {hashlib.sha256(body).hexdigest()}\n")

    def test_chunked_upload_with_curl(self):
        body = deterministic_bytes(3 * 1024 * 1024 + 12345, seed=b"chunked")
        path = os.path.join(self.tmp, "upload.bin")
        with open(path, "wb") as f:
            f.write(body)
        base = f"http://127.0.0.1:{self.sluice.port}"
        curl = harness.require_program("curl", "curl")
        out = subprocess.run(
            [curl, "-sS", "--max-time", "60", "-H", "Transfer-Encoding: chunked", "-T", path,
             "-w", "\nhttp_code=%{http_code}\n", f"{base}/upload"],
            capture_output=True, text=True, timeout=90)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, f"bytes: {len(body)}\nsha256: "
                                     f"{hashlib.sha256(body).hexdigest()}\n\nhttp_code=200\n")
        # What Jetty received: a chunked PUT with every byte, no Content-Length.
        out = subprocess.run(
            [curl, "-sS", "--max-time", "60", "-H", "Transfer-Encoding: chunked", "-T", path,
             f"{base}/api/echo"], capture_output=True, text=True, timeout=90)
        self.assertEqual(out.returncode, 0, out.stderr)
        fields, hdrs = parse_echo(out.stdout)
        self.assertEqual(fields["method"], "PUT")
        self.assertEqual(fields["uri"], "/echo")
        self.assertEqual(fields["body-bytes"], str(len(body)))
        self.assertEqual(echo_header_values(hdrs, "transfer-encoding"), ["chunked"])
        self.assertEqual(echo_header_values(hdrs, "content-length"), [])

    def test_x_forwarded_for(self):
        _, _, hdrs = self.echo()
        self.assertEqual(echo_header_values(hdrs, "x-forwarded-for"), ["127.0.0.1"])
        # An incoming value is kept, first; the client address is appended.
        _, _, hdrs = self.echo(headers={"X-Forwarded-For": "203.0.113.7"})
        xff = echo_header_values(hdrs, "x-forwarded-for")
        self.assertEqual(len(xff), 1, hdrs)
        hops = [h.strip() for h in xff[0].split(",")]
        self.assertEqual(hops, ["203.0.113.7", "127.0.0.1"])

    def test_generated_request_id(self):
        r1, _, hdrs1 = self.echo()
        r2, _, hdrs2 = self.echo()
        for r, hdrs in ((r1, hdrs1), (r2, hdrs2)):
            seen = echo_header_values(hdrs, "x-request-id")
            self.assertEqual(len(seen), 1, hdrs)
            self.assertRegex(seen[0], UUID_RE)
            self.assertEqual(r.header_all("x-request-id"), seen)
        self.assertNotEqual(r1.header("x-request-id"), r2.header("x-request-id"))

    def test_client_request_id_passed_through(self):
        r, _, hdrs = self.echo(headers={"X-Request-Id": "e2e-client-id-42"})
        self.assertEqual(echo_header_values(hdrs, "x-request-id"), ["e2e-client-id-42"])
        self.assertEqual(r.header_all("x-request-id"), ["e2e-client-id-42"])

    def test_traceparent_untouched(self):
        _, _, hdrs = self.echo(headers={"traceparent": TRACEPARENT,
                                        "tracestate": "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"})
        self.assertEqual(echo_header_values(hdrs, "traceparent"), [TRACEPARENT])
        self.assertEqual(echo_header_values(hdrs, "tracestate"),
                         ["congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"])

    def test_head_large(self):
        conn = harness.http.client.HTTPConnection("127.0.0.1", self.sluice.port, timeout=30)
        try:
            r = request(self.sluice.port, "HEAD", "/large?bytes=1048576", conn=conn)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("content-length"), "1048576")
            self.assertEqual(r.body, b"")
            # No stray body bytes on the connection: the next exchange on it is clean.
            r = request(self.sluice.port, "GET", "/health", conn=conn)
            self.assertEqual((r.status, r.body), (200, b"ok\n"))
        finally:
            conn.close()

    def test_large_get(self):
        n = 8 * 1024 * 1024 + 7
        r = request(self.sluice.port, "GET", f"/large?bytes={n}", timeout=60)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-length"), str(n))
        self.assertEqual(len(r.body), n)
        self.assertEqual(hashlib.sha256(r.body).hexdigest(),
                         hashlib.sha256(harness.pattern_bytes(n)).hexdigest())

    def test_chunked_response_complete(self):
        r = request(self.sluice.port, "GET", "/chunked?chunks=6&size=5000&delay-ms=20")
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.header("content-length"))
        self.assertEqual((r.header("transfer-encoding") or "").lower(), "chunked")
        self.assertEqual(len(r.body), 30000)
        self.assertEqual(r.body, harness.pattern_bytes(30000))
        # Default parameters through the rewritten route, too.
        r = request(self.sluice.port, "GET", "/api/chunked")
        self.assertEqual((r.status, r.body), (200, harness.pattern_bytes(4096)))

    def test_pipelined_requests_answered_in_order(self):
        # Two requests in one write; the first is slow, so an out-of-order answer would show.
        raw = (b"GET /slow?ms=300 HTTP/1.1\r\nHost: pipelined\r\nX-Request-Id: pipe-1\r\n\r\n"
               b"GET /api/echo?n=2 HTTP/1.1\r\nHost: pipelined\r\nX-Request-Id: pipe-2\r\n\r\n")
        with socket.create_connection(("127.0.0.1", self.sluice.port), timeout=30) as s:
            s.sendall(raw)
            stream = s.makefile("rb")
            first = harness.read_response(stream)
            second = harness.read_response(stream)
        self.assertEqual(first.status, 200, first)
        self.assertEqual(first.body, b"slow 300\n")
        self.assertEqual(first.header("x-request-id"), "pipe-1")
        self.assertEqual(second.status, 200, second)
        fields, hdrs = parse_echo(second.text)
        self.assertEqual(fields["uri"], "/echo?n=2")
        self.assertEqual(echo_header_values(hdrs, "x-request-id"), ["pipe-2"])
        self.assertEqual(echo_header_values(hdrs, "host"), ["pipelined"])
        self.assertEqual(second.header("x-request-id"), "pipe-2")

    def test_pipelined_after_bodies(self):
        # A sized body, a chunked body and a GET in one write: each body must end where its
        # framing says, and the next request must start right after it.
        raw = (b"POST /upload HTTP/1.1\r\nHost: p\r\nContent-Length: 5\r\n\r\nhello"
               b"POST /api/upload HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
               b"GET /echo?n=3 HTTP/1.1\r\nHost: p\r\n\r\n")
        with socket.create_connection(("127.0.0.1", self.sluice.port), timeout=30) as s:
            s.sendall(raw)
            stream = s.makefile("rb")
            responses = [harness.read_response(stream) for _ in range(3)]
        self.assertEqual([r.status for r in responses], [200, 200, 200], responses)
        self.assertEqual(responses[0].text,
                         f"bytes: 5\nsha256: {hashlib.sha256(b'hello').hexdigest()}\n")
        self.assertEqual(responses[1].text,
                         f"bytes: 7\nsha256: {hashlib.sha256(b'abcdefg').hexdigest()}\n")
        fields, _ = parse_echo(responses[2].text)
        self.assertEqual((fields["uri"], fields["method"], fields["body-bytes"]),
                         ("/echo?n=3", "GET", "0"))


LOCAL_REPLY_CONFIG = """\
workers: 1
admin: {{ address: 127.0.0.1:0 }}
listeners:
  - name: public
    address: 127.0.0.1:0
    virtual_hosts:
      - name: app
        domains: ["app.example"]
        routes:
          - name: short
            match: {{ prefix: /t/ }}
            cluster: jetty
            prefix_rewrite: /
            timeout: 500ms
clusters:
  - name: jetty
    endpoints: [ {endpoint} ]
"""


class LocalReplies(harness.E2ETestCase):
    """504, 404 and 400 answered by sluice itself, in front of a live Jetty."""

    @classmethod
    def setUpClass(cls):
        cls.jetty = cls.start_class_jetty(name="j2")
        cls.sluice = cls.start_class_sluice(LOCAL_REPLY_CONFIG.format(endpoint=cls.jetty.endpoint))

    def get(self, path, host="app.example"):
        return request(self.sluice.port, "GET", path, headers={"Host": host})

    def test_route_timeout_gives_504_and_the_connection_is_not_reused(self):
        r = self.get("/t/slow?ms=2000")
        self.assertEqual(r.status, 504, r)
        self.assertTrue(r.text.startswith("upstream request timeout"), r)
        self.assertIsNone(r.header("x-backend"))  # sluice's own answer, not Jetty's
        # The next request must not read the late answer of the abandoned one.
        for i in range(3):
            r = self.get(f"/t/echo?after-timeout={i}")
            self.assertEqual(r.status, 200, r)
            self.assertIn(f"uri: /echo?after-timeout={i}\n", r.text)

    def test_404_no_virtual_host_or_no_route(self):
        r = self.get("/t/echo", host="other.example")
        self.assertEqual(r.status, 404, r)
        r = self.get("/elsewhere")
        self.assertEqual(r.status, 404, r)
        self.assertIsNone(r.header("x-backend"))

    def test_400_missing_host(self):
        with socket.create_connection(("127.0.0.1", self.sluice.port), timeout=10) as s:
            s.sendall(b"GET /t/echo HTTP/1.1\r\n\r\n")
            stream = s.makefile("rb")
            r = harness.read_response(stream)
            self.assertEqual(r.status, 400, r)
            self.assertEqual(stream.read(), b"")  # and the connection is closed


class BackendDownAndBack(harness.E2ETestCase):
    def test_503_when_jetty_is_down_then_200_after_restart(self):
        jetty = self.start_jetty(name="flappy")
        port = jetty.port
        sluice = self.start_sluice(harness.basic_config([jetty.endpoint]))
        r = request(sluice.port, "GET", "/health")
        self.assertEqual((r.status, r.body), (200, b"ok\n"))

        self.assertEqual(jetty.stop(), 143)  # the documented exit status after SIGTERM
        self.assertFalse(harness.port_accepts(port))
        for _ in range(3):  # whichever worker and whatever it had pooled
            r = request(sluice.port, "GET", "/echo")
            self.assertEqual(r.status, 503, r)
            self.assertTrue(r.text.startswith("upstream connect error"), r)
            self.assertIn(f"127.0.0.1:{port}", r.text)  # which endpoint
            self.assertIn("refused", r.text.lower())   # and why
            self.assertIn("jetty", r.text)              # which cluster

        restarted = self.start_jetty(name="flappy", port=port)
        self.assertEqual(restarted.port, port)
        deadline = time.monotonic() + 10
        while True:
            r = request(sluice.port, "GET", "/api/echo?back=1")
            if r.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(r.status, 200, r)
        self.assertIn("uri: /echo?back=1\n", r.text)
        # And it stays up (no stale pooled connection behind the first success).
        for _ in range(4):
            self.assertEqual(request(sluice.port, "GET", "/health").status, 200)


if __name__ == "__main__":
    unittest.main()
