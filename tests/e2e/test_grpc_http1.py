"""gRPC's protocol-neutral parts (issue 11) with the built sluice, over HTTP/1.1, against Jetty
and a small backend that answers in gRPC's shape (status in trailers or in a trailers-only head).

A request with `content-type: application/grpc` is gRPC whatever carried it, so these run before
the HTTP/2 codec exists: Sluice's own replies to it are gRPC "trailers-only" responses (HTTP 200,
grpc-status and grpc-message in the head, empty body), its `grpc-timeout` caps the route timeout,
and the route's gRPC exchanges are counted by grpc_code and logged with grpc_status. Real gRPC
clients over HTTP/2 come with the HTTP/2 codec.
"""

import json
import os
import socketserver
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import closed_port, request, settled_scrape  # noqa: E402

GRPC = {"content-type": "application/grpc", "te": "trailers"}
EMPTY_MESSAGE = b"\x00\x00\x00\x00\x00"  # one length-prefixed message of 0 bytes
UNROUTED = {"listener": "public", "vhost": "-", "route": "-"}


def labels(route):
    return {"listener": "public", "vhost": "app", "route": route}


# A backend that answers as a gRPC server would, in HTTP/1.1 framing: the status in chunked
# trailers, or in the head of a trailers-only response. Sluice reads grpc-status from either.
GRPC_RESPONSES = {
    b"/pkg.Backend/Trailers": (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ntransfer-encoding: chunked\r\n"
        b"trailer: grpc-status, grpc-message\r\nconnection: close\r\n\r\n"
        b"5\r\n\x00\x00\x00\x00\x00\r\n0\r\ngrpc-status: 0\r\ngrpc-message: ok\r\n\r\n"),
    b"/pkg.Backend/TrailersOnly": (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ngrpc-status: 7\r\n"
        b"grpc-message: denied\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"),
    b"/pkg.Backend/BadStatus": (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ntransfer-encoding: chunked\r\n"
        b"connection: close\r\n\r\n0\r\ngrpc-status: 99\r\n\r\n"),
}


class GrpcishHandler(socketserver.StreamRequestHandler):
    def handle(self):
        request_line = self.rfile.readline(65536)
        length = 0
        while True:
            line = self.rfile.readline(65536)
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        self.rfile.read(length)
        path = request_line.split(b" ")[1] if request_line.count(b" ") >= 2 else b""
        self.wfile.write(GRPC_RESPONSES.get(
            path, b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"))


class GrpcOverHttp1(harness.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        cls.jetty = cls.start_class_jetty(name="j1")
        cls.backend = socketserver.ThreadingTCPServer(("127.0.0.1", 0), GrpcishHandler)
        cls.backend.daemon_threads = True
        threading.Thread(target=cls.backend.serve_forever, daemon=True).start()
        cls.addClassCleanup(cls.backend.server_close)
        cls.addClassCleanup(cls.backend.shutdown)

    def setUp(self):
        super().setUp()
        self.log_path = os.path.join(self.tmp, "access.log")
        dead = f"127.0.0.1:{closed_port()}"
        self.sluice = self.start_sluice(f"""\
admin: {{ address: 127.0.0.1:0 }}
workers: 2
listeners:
  - name: public
    address: 127.0.0.1:0
    access_log: {{ path: {json.dumps(self.log_path)}, format: json }}
    virtual_hosts:
      - name: app
        domains: ["*"]
        routes:
          - name: slow
            match: {{ prefix: /slow }}
            cluster: jetty
            timeout: 10s
          - name: slow_no_route_timeout
            match: {{ prefix: /untimed/slow }}
            cluster: jetty
            prefix_rewrite: /slow
            timeout: 0s
          - name: slow_header_off
            match: {{ prefix: /headeroff/slow }}
            cluster: jetty
            prefix_rewrite: /slow
            timeout: 10s
            grpc_timeout_header: false
          - name: dead
            match: {{ prefix: /pkg.Dead/ }}
            cluster: dead
          - name: backend
            match: {{ prefix: /pkg.Backend/ }}
            cluster: grpcish
          - name: direct
            match: {{ prefix: /pkg.Direct/ }}
            direct_response: {{ status: 503, body: "maintenance\\n" }}
clusters:
  - name: jetty
    endpoints: [ {self.jetty.endpoint} ]
  - name: dead
    connect_timeout: 2s
    endpoints: [ {dead} ]
  - name: grpcish
    endpoints: [ 127.0.0.1:{self.backend.server_address[1]} ]
""")

    def grpc(self, path, extra=None, timeout=30.0):
        headers = dict(GRPC)
        headers.update(extra or {})
        start = time.monotonic()
        r = request(self.sluice.port, "POST", path, body=EMPTY_MESSAGE, headers=headers,
                    timeout=timeout)
        return r, time.monotonic() - start

    def assert_trailers_only(self, r, code, message):
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("content-type"), "application/grpc", r)
        self.assertEqual(r.header("grpc-status"), str(code), r)
        self.assertEqual(urllib.parse.unquote(r.header("grpc-message")), message, r)
        self.assertEqual(r.header("content-length"), "0", r)
        self.assertEqual(r.body, b"", r)

    def grpc_counts(self, m, lab):
        return {s["grpc_code"]: v for s, v in m.find("sluice_route_grpc_responses_total", **lab)}

    def log_lines(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                with open(self.log_path) as f:
                    lines = [json.loads(line) for line in f]
            except FileNotFoundError:
                lines = []
            if len(lines) >= n or time.monotonic() > deadline:
                return lines
            time.sleep(0.02)

    def test_no_route_is_unimplemented(self):
        r, _ = self.grpc("/pkg.Missing/Method")
        self.assert_trailers_only(
            r, 12, "no route matches the request in virtual host 'app'")
        # The same request without the gRPC content type gets the plain HTTP reply.
        plain = request(self.sluice.port, "POST", "/pkg.Missing/Method", body=EMPTY_MESSAGE)
        self.assertEqual(plain.status, 404, plain)
        self.assertIsNone(plain.header("grpc-status"), plain)
        # application/grpc+proto and parameters are gRPC too; gRPC-Web is not.
        r, _ = self.grpc("/pkg.Missing/Method", {"content-type": "application/grpc+proto"})
        self.assertEqual(r.header("grpc-status"), "12", r)
        r, _ = self.grpc("/pkg.Missing/Method", {"content-type": "application/grpc-web"})
        self.assertEqual(r.status, 404, r)

    def test_dead_endpoint_is_unavailable(self):
        r, _ = self.grpc("/pkg.Dead/Call")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("grpc-status"), "14", r)
        self.assertIn("upstream connect error", urllib.parse.unquote(r.header("grpc-message")))
        self.assertEqual(r.body, b"", r)

    def test_grpc_timeout_caps_the_route_timeout(self):
        # Route timeout 10 s, backend 5 s, client deadline 200 ms: DEADLINE_EXCEEDED after about
        # 200 ms. The bound is loose on purpose (a busy machine); what matters is that it is far
        # below both the backend's 5 s and the route's 10 s.
        r, elapsed = self.grpc("/slow?ms=5000", {"grpc-timeout": "200m"})
        self.assert_trailers_only(r, 4, "upstream request timeout")
        self.assertGreaterEqual(elapsed, 0.18)
        self.assertLess(elapsed, 2.5)
        # A route without a timeout (0 = none): the client's deadline alone applies.
        r, elapsed = self.grpc("/untimed/slow?ms=5000", {"grpc-timeout": "200000u"})
        self.assertEqual(r.header("grpc-status"), "4", r)
        self.assertLess(elapsed, 2.5)

    def test_grpc_timeout_ignored_when_invalid_off_or_not_grpc(self):
        # An invalid grpc-timeout is ignored: the backend's answer comes through.
        r, _ = self.grpc("/slow?ms=400", {"grpc-timeout": "200x"})
        self.assertEqual((r.status, r.body), (200, b"slow 400\n"), r)
        # grpc_timeout_header: false on the route.
        r, _ = self.grpc("/headeroff/slow?ms=400", {"grpc-timeout": "50m"})
        self.assertEqual((r.status, r.body), (200, b"slow 400\n"), r)
        # Not a gRPC request: the header means nothing.
        r = request(self.sluice.port, "POST", "/slow?ms=400", body=b"x",
                    headers={"grpc-timeout": "50m", "content-type": "text/plain"})
        self.assertEqual((r.status, r.body), (200, b"slow 400\n"), r)

    def test_status_from_the_upstreams_trailers_or_trailers_only_head(self):
        for path, code in (("/pkg.Backend/Trailers", 0), ("/pkg.Backend/TrailersOnly", 7),
                           ("/pkg.Backend/BadStatus", 2)):
            r, _ = self.grpc(path)
            self.assertEqual(r.status, 200, r)
        m = settled_scrape(
            self.sluice,
            lambda m: sum(self.grpc_counts(m, labels("backend")).values()) >= 3)
        counts = self.grpc_counts(m, labels("backend"))
        self.assertEqual({k: v for k, v in counts.items() if v},
                         {"OK": 1, "PERMISSION_DENIED": 1, "UNKNOWN": 1}, counts)
        lines = self.log_lines(3)
        self.assertEqual(sorted((e["path"], e.get("grpc_status")) for e in lines),
                         [("/pkg.Backend/BadStatus", 2), ("/pkg.Backend/Trailers", 0),
                          ("/pkg.Backend/TrailersOnly", 7)])

    def test_direct_response_is_kept_as_configured(self):
        r, _ = self.grpc("/pkg.Direct/Call")
        self.assertEqual((r.status, r.body), (503, b"maintenance\n"), r)
        self.assertIsNone(r.header("grpc-status"), r)

    def test_counts_by_grpc_code_access_log_and_promtool(self):
        self.grpc("/pkg.Missing/Method")                      # UNIMPLEMENTED, unrouted
        self.grpc("/pkg.Dead/Call")                           # UNAVAILABLE
        self.grpc("/pkg.Dead/Call")                           # UNAVAILABLE
        self.grpc("/slow?ms=3000", {"grpc-timeout": "100m"})  # DEADLINE_EXCEEDED
        # Jetty answers 200 without grpc-status: UNKNOWN, as a gRPC client would report it.
        self.grpc("/slow?ms=0")
        request(self.sluice.port, "GET", "/slow?ms=0")        # not gRPC: not counted, no field

        def done(m):
            return sum(v for _, v in m.find("sluice_route_grpc_responses_total")) >= 5
        m = settled_scrape(self.sluice, done)
        unrouted = self.grpc_counts(m, UNROUTED)
        self.assertEqual(unrouted.get("UNIMPLEMENTED"), 1, unrouted)
        self.assertEqual(self.grpc_counts(m, labels("dead")).get("UNAVAILABLE"), 2)
        slow = self.grpc_counts(m, labels("slow"))
        self.assertEqual(len(slow), 17, slow)  # the closed set, zeros included
        self.assertEqual(slow["DEADLINE_EXCEEDED"], 1, slow)
        self.assertEqual(slow["UNKNOWN"], 1, slow)
        self.assertEqual(sum(slow.values()), 2, slow)
        self.assertEqual(self.grpc_counts(m, labels("direct")), {})

        self.assert_promtool_accepts(self.sluice.scrape_text())

        lines = self.log_lines(6)
        self.assertEqual(len(lines), 6, lines)
        by_path = {}
        for e in lines:
            by_path.setdefault(e["path"], []).append(e)
        self.assertEqual([e.get("grpc_status") for e in by_path["/pkg.Missing/Method"]], [12])
        self.assertEqual([e["flags"] for e in by_path["/pkg.Missing/Method"]], ["NR"])
        self.assertEqual([e.get("grpc_status") for e in by_path["/pkg.Dead/Call"]], [14, 14])
        self.assertEqual([(e["status"], e.get("grpc_status"), e["flags"])
                          for e in by_path["/slow?ms=3000"]], [(200, 4, "UT")])
        self.assertEqual(sorted((e["method"], e.get("grpc_status", "absent"))
                                for e in by_path["/slow?ms=0"]),
                         [("GET", "absent"), ("POST", 2)])


if __name__ == "__main__":
    unittest.main()
