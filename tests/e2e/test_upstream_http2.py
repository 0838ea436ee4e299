"""HTTP/1.1 clients → Sluice → HTTP/2 backends (`protocol: http2` clusters), against real
HTTP/2 servers: Debian's nginx serving h2c (prior knowledge) and h2 over TLS (ALPN, the test
PKI), and a python3-grpcio server for gRPC health checks (grpc_health_peer.py).

Covers GET and 1 MiB bodies (POST, and PUT read back through nginx's DAV module), a 64 MiB
download with bounded RSS, 100 concurrent requests multiplexed on few connections, nginx reloads
(GOAWAY) under traffic with no failed request, the ALPN refusal, health checks over HTTP/2 and
the gRPC health check."""

import concurrent.futures
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import tls_peers  # noqa: E402
from harness import request  # noqa: E402

NGINX_CONF = """\
# master_process on (a reload is what sends GOAWAY); `user root` keeps the workers able to read
# the test's private temp dir when the tests run as root.
daemon off;
master_process on;
{user}
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    log_format h2 '$server_port $connection $server_protocol $request_method $request_uri '
                  '$status $request_length';
    access_log {dir}/access.log h2;
    http2_max_concurrent_streams 128;
    server {{
        listen 127.0.0.1:{h2c} http2;
{common}
    }}
    server {{
        listen 127.0.0.1:{h2tls} ssl http2;
        ssl_certificate {cert};
        ssl_certificate_key {key};
{common}
    }}
    server {{
        # TLS without h2: ALPN selects nothing (or http/1.1).
        listen 127.0.0.1:{h1tls} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
{common}
    }}
}}
"""

COMMON = """\
        root {dir}/www;
        client_max_body_size 100m;
        location = /hello {{ return 200 "hello $server_protocol $request_method\\n"; }}
        location = /post {{ return 200 "$request_method $content_length\\n"; }}
        location = /health {{ try_files /healthy =503; }}
        location /dav/ {{ dav_methods PUT; create_full_put_path on; }}
        location /slow/ {{ limit_rate 512k; }}
        location / {{ }}
"""


class H2Nginx:
    """nginx with h2c, h2-over-TLS and TLS-only servers, static files and a DAV location."""

    def __init__(self, workdir, pki):
        self.dir = os.path.join(workdir, "nginx")
        for d in ("", "client_body", "proxy", "fastcgi", "uwsgi", "scgi", "www", "www/slow",
                  "www/dav"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        self.h2c, self.h2tls, self.h1tls = (harness.free_port() for _ in range(3))
        user = "user root;" if os.geteuid() == 0 else ""
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(NGINX_CONF.format(dir=self.dir, user=user, h2c=self.h2c, h2tls=self.h2tls,
                                      h1tls=self.h1tls, cert=pki.localhost_cert,
                                      key=pki.localhost_key,
                                      common=COMMON.format(dir=self.dir)))
        self.proc = None

    def www(self, name):
        return os.path.join(self.dir, "www", name)

    def start(self, timeout=20.0):
        binary = harness.require_program("nginx", "nginx-light")
        check = subprocess.run([binary, "-t", "-p", self.dir, "-c", self.conf],
                               capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t refused the test config:\n{check.stderr}")
        self.proc = harness._spawn([binary, "-p", self.dir, "-c", self.conf],
                                   os.path.join(self.dir, "stdout"),
                                   os.path.join(self.dir, "stderr"))
        deadline = time.monotonic() + timeout
        while not all(harness.port_accepts(p) for p in (self.h2c, self.h2tls, self.h1tls)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nginx did not start:\n{self.error_log()[-3000:]}")
            time.sleep(0.05)

    def reload(self):
        """SIGHUP: new workers take the sockets; the old ones send GOAWAY and finish."""
        os.kill(self.proc.pid, signal.SIGHUP)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            harness._kill_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(harness.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                harness._kill_group(self.proc, signal.SIGKILL)
                self.proc.wait(10)
        harness._live.discard(self.proc)

    def error_log(self):
        return harness._read(os.path.join(self.dir, "error.log"))

    def access_log(self):
        """[{port, conn, proto, method, uri, status, length}]"""
        out = []
        for line in harness._read(os.path.join(self.dir, "access.log")).splitlines():
            parts = line.split()
            if len(parts) != 7:
                raise AssertionError(f"unexpected nginx access log line: {line!r}")
            out.append(dict(zip(("port", "conn", "proto", "method", "uri", "status", "length"),
                                parts)))
        return out


def cluster(name, port, extra=""):
    return f"- name: {name}\n  protocol: http2\n  endpoints: [ 127.0.0.1:{port} ]\n{extra}"


def route(name, prefix, cluster_name):
    return f"- name: {name}\n  match: {{ prefix: {prefix} }}\n  cluster: {cluster_name}\n"


class UpstreamHttp2(harness.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = tls_peers.make_pki(os.path.join(cls.class_tmp(), "pki"))
        cls.nginx = H2Nginx(cls.class_tmp(), cls.pki)
        cls.addClassCleanup(cls.nginx.stop)
        with open(cls.nginx.www("big64m"), "wb") as f:
            block = bytes(range(256)) * 4096  # 1 MiB, not all zeros
            for i in range(64):
                f.write(block[i:] + block[:i])
        with open(cls.nginx.www("slow/1m"), "wb") as f:
            f.write(os.urandom(256 * 1024))
        cls.nginx.start()
        clusters = (cluster("h2c", cls.nginx.h2c) +
                    cluster("h2tls", cls.nginx.h2tls, f"  tls: {{ ca: {cls.pki.ca_cert} }}\n") +
                    cluster("h1tls", cls.nginx.h1tls, f"  tls: {{ ca: {cls.pki.ca_cert} }}\n") +
                    cluster("pinged", cls.nginx.h2c,
                            "  http2: { ping_interval: 500ms, ping_timeout: 1s }\n"))
        routes = (route("tls", "/tls/", "h2tls") + "  prefix_rewrite: /\n" +
                  route("notls", "/h1tls/", "h1tls") + "  prefix_rewrite: /\n" +
                  route("ping", "/ping/", "pinged") + "  prefix_rewrite: /\n" +
                  route("all", "/", "h2c"))
        env = None
        if os.environ.get("SLUICE_SANITIZE_BUILD"):
            # AddressSanitizer keeps freed memory in a quarantine (256 MiB by default), which
            # would count in the RSS bounds below; a small one keeps them meaningful.
            env = dict(os.environ)
            env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=1"
        cls.sluice = cls.start_class_sluice(tls_peers.config(
            [tls_peers.listener("public", routes=routes)], clusters=clusters, workers=2), env=env)

    def test_get_goes_as_http2(self):
        r = request(self.sluice.port, "GET", "/hello")
        self.assertEqual((r.status, r.text), (200, "hello HTTP/2.0 GET\n"), r)
        self.assertTrue(r.header("x-request-id"), r)
        lines = [x for x in self.nginx.access_log() if x["uri"] == "/hello"]
        self.assertTrue(lines and all(x["proto"] == "HTTP/2.0" for x in lines), lines)

    def test_post_with_1mib_body(self):
        body = os.urandom(1024 * 1024)
        r = request(self.sluice.port, "POST", "/post?x=1", body=body)
        self.assertEqual((r.status, r.text), (200, f"POST {len(body)}\n"), r)
        line = [x for x in self.nginx.access_log() if x["uri"] == "/post?x=1"][-1]
        self.assertEqual((line["proto"], line["method"]), ("HTTP/2.0", "POST"), line)
        # nginx discards a body it does not use: the PUT test below checks the bytes themselves.

    def test_put_1mib_then_read_it_back(self):
        # nginx's DAV module writes exactly the bytes it received over HTTP/2.
        body = os.urandom(1024 * 1024 + 17)
        r = request(self.sluice.port, "PUT", "/dav/put.bin", body=body)
        self.assertIn(r.status, (201, 204), r)
        with open(self.nginx.www("dav/put.bin"), "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), hashlib.sha256(body).hexdigest())
        r = request(self.sluice.port, "GET", "/dav/put.bin")
        self.assertEqual((r.status, r.body), (200, body))

    def test_64mib_download_with_bounded_rss(self):
        with open(self.nginx.www("big64m"), "rb") as f:
            expected = hashlib.sha256(f.read()).hexdigest()
        rss_before = self.sluice.rss_bytes()
        conn = http.client.HTTPConnection("127.0.0.1", self.sluice.port, timeout=60)
        try:
            conn.request("GET", "/big64m")
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            h = hashlib.sha256()
            n = 0
            peak = rss_before
            while True:
                chunk = r.read(1 << 20)
                if not chunk:
                    break
                h.update(chunk)
                n += len(chunk)
                if n < 8 << 20:
                    time.sleep(0.05)  # a slow start: flow control holds the backend back
                peak = max(peak, self.sluice.rss_bytes())
        finally:
            conn.close()
        self.assertEqual((n, h.hexdigest()), (64 << 20, expected))
        # The stream window (1 MiB) bounds what Sluice buffers, not the file size.
        self.assertLess(peak - rss_before, 24 << 20, (rss_before, peak))

    def test_a_stalled_client_holds_back_only_its_own_stream(self):
        # One worker: every request shares one connection to nginx. A client that stops
        # reading a 64 MiB download must not stop the others (per-stream flow control).
        s = self.start_sluice(tls_peers.config(
            [tls_peers.listener("public", routes=route("all", "/", "h2c"))],
            clusters=cluster("h2c", self.nginx.h2c), workers=1))
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as stalled:
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            stalled.sendall(b"GET /big64m HTTP/1.1\r\nHost: x\r\n\r\n")
            stalled.recv(1024)  # the download started, then nothing more is read
            time.sleep(1.0)
            rss = s.rss_bytes()
            for _ in range(20):
                r = request(s.port, "GET", "/hello", timeout=5)
                self.assertEqual((r.status, r.text), (200, "hello HTTP/2.0 GET\n"), r)
            # Sluice holds at most the stream window (1 MiB) of the stalled download.
            self.assertLess(s.rss_bytes() - rss, 8 << 20)
        m = harness.Metrics(s.scrape_text())
        self.assertEqual(m.value("sluice_cluster_upstream_connections_total", cluster="h2c"), 1)

    def test_stream_limit_and_connection_cap_queue_requests(self):
        # One connection allowed, two streams on it: six slow requests take turns, none fails
        # (a stream's end wakes a request waiting in the circuit breaker's queue).
        s = self.start_sluice(tls_peers.config(
            [tls_peers.listener("public", routes=route("all", "/", "h2c") + "  timeout: 20s\n")],
            clusters=cluster("h2c", self.nginx.h2c,
                             "  http2: { max_concurrent_streams: 2 }\n"
                             "  circuit_breakers: { max_connections: 1 }\n"), workers=1))
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            results = list(pool.map(
                lambda _: (lambda r: (r.status, len(r.body)))(
                    request(s.port, "GET", "/slow/1m", timeout=30)), range(6)))
        self.assertEqual(results, [(200, 256 * 1024)] * 6)
        m = harness.Metrics(s.scrape_text())
        self.assertEqual(m.value("sluice_cluster_upstream_connections_total", cluster="h2c"), 1)

    def test_100_concurrent_requests_share_few_connections(self):
        before = harness.Metrics(self.sluice.scrape_text())
        opened_before = before.value("sluice_cluster_upstream_connections_total", cluster="h2c")
        start = threading.Barrier(100)

        def one(i):
            start.wait(30)
            r = request(self.sluice.port, "GET", "/slow/1m", timeout=60)
            return r.status, len(r.body)

        with concurrent.futures.ThreadPoolExecutor(100) as pool:
            results = list(pool.map(one, range(100)))
        self.assertEqual(results, [(200, 256 * 1024)] * 100)
        m = harness.Metrics(self.sluice.scrape_text())
        opened = m.value("sluice_cluster_upstream_connections_total", cluster="h2c") - opened_before
        # One connection per worker (2) carries up to 100 streams; a few more only if a
        # connection was found closed.
        self.assertLessEqual(opened, 4, opened)
        self.assertGreaterEqual(m.value("sluice_cluster_upstream_connections_active", cluster="h2c"), 1)

    def test_backend_reload_fails_no_idempotent_request(self):
        stop = threading.Event()
        failures = []
        done = [0]

        def client():
            conn = None
            while not stop.is_set():
                try:
                    conn = conn or http.client.HTTPConnection("127.0.0.1", self.sluice.port,
                                                              timeout=30)
                    r = request(self.sluice.port, "GET", "/hello", conn=conn)
                    if r.status != 200:
                        failures.append((r.status, r.text))
                    done[0] += 1
                except (OSError, http.client.HTTPException) as e:
                    failures.append(repr(e))
                    conn = None
            if conn:
                conn.close()

        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        try:
            for _ in range(4):
                time.sleep(0.5)
                self.nginx.reload()
            time.sleep(1.0)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        self.assertEqual(failures, [])
        self.assertGreater(done[0], 100)
        self.assertIn("gracefully shutting down", self.nginx.error_log())

    def test_ping_timeout_finds_a_frozen_backend(self):
        self.assertEqual(request(self.sluice.port, "GET", "/ping/hello").status, 200)
        # A frozen backend keeps its sockets open: only the missing PING ack tells. Without the
        # keepalive this request would wait for ever (the route has no timeout).
        harness._kill_group(self.nginx.proc, signal.SIGSTOP)
        try:
            # The client's 20 s timeout is the bound (tests assert no timings): the connection is
            # declared dead within ping_interval x 2 + ping_timeout, twice (the request is
            # retried once on a fresh connection, which no one answers either), about 4 s.
            r = request(self.sluice.port, "GET", "/ping/hello", timeout=20)
        finally:
            harness._kill_group(self.nginx.proc, signal.SIGCONT)
        self.assertEqual(r.status, 502, r)
        self.assertEqual(request(self.sluice.port, "GET", "/ping/hello").status, 200)

    def test_tls_with_alpn_h2(self):
        r = request(self.sluice.port, "GET", "/tls/hello")
        self.assertEqual((r.status, r.text), (200, "hello HTTP/2.0 GET\n"), r)
        lines = [x for x in self.nginx.access_log() if x["port"] == str(self.nginx.h2tls)]
        self.assertTrue(lines and all(x["proto"] == "HTTP/2.0" for x in lines), lines)

    def test_new_tls_material_moves_streams_to_a_new_connection(self):
        # A reload that changes the cluster's TLS settings brings a new client context: the old
        # connection takes no new stream and closes once empty (EndpointPool::use_tls).
        def conf(extra):
            return tls_peers.config(
                [tls_peers.listener("public", routes=route("tls", "/", "h2tls"))],
                clusters=cluster("h2tls", self.nginx.h2tls,
                                 f"  tls: {{ ca: {self.pki.ca_cert}{extra} }}\n"), workers=1)
        s = self.start_sluice(conf(""))

        def nginx_conns():
            return [x["conn"] for x in self.nginx.access_log()
                    if x["port"] == str(self.nginx.h2tls) and x["uri"] == "/hello?rot"]
        for _ in range(2):
            self.assertEqual(request(s.port, "GET", "/hello?rot").status, 200)
        first = nginx_conns()
        self.assertEqual(len(set(first)), 1, first)  # both streams on one connection
        s.write_config(conf(", sni: localhost"))
        self.assertEqual(s.reload()[0], "applied")
        self.assertEqual(request(s.port, "GET", "/hello?rot").status, 200)
        after = nginx_conns()
        self.assertNotEqual(after[-1], first[0], after)
        m = harness.Metrics(s.scrape_text())
        self.assertEqual(m.value("sluice_cluster_upstream_connections_total", cluster="h2tls"), 2)
        self.assertEqual(m.value("sluice_cluster_upstream_connections_active", cluster="h2tls"), 1)

    def test_tls_backend_without_h2_is_refused(self):
        r = request(self.sluice.port, "GET", "/h1tls/hello")
        self.assertEqual(r.status, 503, r)
        self.assertIn("upstream TLS: backend did not agree to h2 (ALPN)", r.text)


class MisbehavingBackend(harness.E2ETestCase):
    """Against h2_misbehaving_peer.py (python3-h2): what nginx does not do on demand."""

    @classmethod
    def setUpClass(cls):
        try:
            import h2  # noqa: F401
        except ImportError:
            raise harness.MissingPeer("python3-h2 is not installed: apt-get install python3-h2 "
                                      "(scripts/bootstrap)")
        tmp = cls.class_tmp()
        cls.peer_port = harness.free_port()
        peer = os.path.join(os.path.dirname(os.path.abspath(__file__)), "h2_misbehaving_peer.py")
        out = os.path.join(tmp, "peer.stdout")
        proc = harness._spawn([sys.executable, peer, str(cls.peer_port)], out,
                              os.path.join(tmp, "peer.stderr"))

        def stop_peer():
            harness._kill_group(proc, signal.SIGKILL)
            proc.wait(10)
            harness._live.discard(proc)
        cls.addClassCleanup(stop_peer)
        harness._wait_for_line(proc, out, r"^listening", 30, "h2_misbehaving_peer.py")
        routes = (route("timeout", "/timeout/", "odd") + "  prefix_rewrite: /\n  timeout: 300ms\n" +
                  route("idle", "/idle/", "brief") + "  prefix_rewrite: /\n" +
                  route("ws", "/ws/", "odd") + "  prefix_rewrite: /\n  upgrades: [ websocket ]\n" +
                  route("all", "/", "odd"))
        # One worker: one connection to the peer carries every stream.
        cls.sluice = cls.start_class_sluice(tls_peers.config(
            [tls_peers.listener("public", routes=routes)],
            clusters=cluster("odd", cls.peer_port) +
            cluster("brief", cls.peer_port, "  idle_timeout: 1s\n"), workers=1))

    def peer_stats(self):
        return json.loads(request(self.sluice.port, "GET", "/stats").text)

    def test_fields_follow_http2_rules(self):
        r = request(self.sluice.port, "GET", "/echo?q=1", headers={
            "Content-Type": "application/grpc+proto", "Connection": "x-hop", "X-Hop": "1",
            "Keep-Alive": "timeout=5", "X-Forwarded-For": "10.0.0.1", "X-Custom": "Kept"})
        self.assertEqual(r.status, 200, r)
        fields = json.loads(r.text)["fields"]
        names = [n for n, _ in fields]
        self.assertEqual(names[:4], [":method", ":scheme", ":authority", ":path"], fields)
        got = dict(fields)
        self.assertEqual((got[":method"], got[":scheme"], got[":path"]), ("GET", "http", "/echo?q=1"))
        self.assertTrue(got[":authority"].startswith("127.0.0.1:"), got)
        self.assertTrue(all(n == n.lower() for n in names), names)
        for gone in ("connection", "x-hop", "keep-alive", "host", "transfer-encoding", "upgrade"):
            self.assertNotIn(gone, got)
        # gRPC servers expect te: trailers; the forwarding fields as over HTTP/1.
        self.assertEqual(got["te"], "trailers")
        self.assertEqual(got["x-forwarded-for"], "10.0.0.1, 127.0.0.1")
        self.assertEqual(got["x-forwarded-proto"], "http")
        self.assertEqual(got["x-custom"], "Kept")
        self.assertTrue(got["x-request-id"])

    def test_an_upgrade_offer_is_dropped_and_served_plain(self):
        # HTTP/2 cannot carry the HTTP/1 tunnel: the route's websocket upgrade is not offered
        # upstream; the request is answered as a plain one.
        r = request(self.sluice.port, "GET", "/ws/echo", headers={
            "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
        self.assertEqual(r.status, 200, r)
        got = dict(json.loads(r.text)["fields"])
        self.assertNotIn("upgrade", got)
        self.assertNotIn("connection", got)
        self.assertEqual(got[":method"], "GET")

    def test_te_other_than_trailers_is_dropped(self):
        fields = dict(json.loads(request(self.sluice.port, "GET", "/echo",
                                         headers={"TE": "gzip"}).text)["fields"])
        self.assertNotIn("te", fields)

    def test_refused_stream_is_retried_whatever_the_method(self):
        # A POST without a body: the backend said it did not process it, so it goes again.
        r = request(self.sluice.port, "POST", "/refuse", body=b"")
        self.assertEqual((r.status, r.text), (200, "ok"), r)
        self.assertEqual(self.peer_stats()["requests"]["/refuse"], 2)

    def test_goaway_above_the_stream_is_retried(self):
        r = request(self.sluice.port, "DELETE", "/goaway")
        self.assertEqual((r.status, r.text), (200, "ok"), r)
        self.assertEqual(self.peer_stats()["requests"]["/goaway"], 2)

    def test_route_timeout_resets_only_its_stream(self):
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            hang = pool.submit(request, self.sluice.port, "GET", "/timeout/hang")
            time.sleep(0.05)
            late = pool.submit(request, self.sluice.port, "GET", "/late")
            self.assertEqual(hang.result().status, 504)
            # The sibling stream on the same connection was not cut by the deadline.
            self.assertEqual((late.result().status, late.result().text), (200, "late"))
        resets = self.peer_stats()["resets"]
        self.assertIn(["/hang", 8], resets)  # RST_STREAM CANCEL

    def test_response_trailers_reach_an_http1_client(self):
        with socket.create_connection(("127.0.0.1", self.sluice.port), timeout=10) as s:
            s.sendall(b"GET /trailers HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n")
            data = b""
            while not data.endswith(b"\r\n\r\n") or b"grpc-status" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        self.assertIn(b"grpc-status: 0\r\n", data.lower())


    def test_connection_without_streams_closes_after_idle_timeout(self):
        self.assertEqual(request(self.sluice.port, "GET", "/idle/x").status, 200)
        m = harness.Metrics(self.sluice.scrape_text())
        self.assertEqual(m.value("sluice_cluster_upstream_connections_active", cluster="brief"), 1)
        self.assertEqual(m.value("sluice_cluster_upstream_connections_idle", cluster="brief"), 1)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            m = harness.Metrics(self.sluice.scrape_text())
            if m.value("sluice_cluster_upstream_connections_active", cluster="brief") == 0:
                break
            time.sleep(0.1)
        self.assertEqual(m.value("sluice_cluster_upstream_connections_active", cluster="brief"), 0)
        self.assertEqual(m.value("sluice_cluster_upstream_connections_idle", cluster="brief"), 0)
        # The next request opens a new connection.
        self.assertEqual(request(self.sluice.port, "GET", "/idle/x").status, 200)
        m = harness.Metrics(self.sluice.scrape_text())
        self.assertEqual(m.value("sluice_cluster_upstream_connections_total", cluster="brief"), 2)

    def test_request_trailers_go_upstream(self):
        with socket.create_connection(("127.0.0.1", self.sluice.port), timeout=10) as s:
            s.sendall(b"POST /rtrailers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"5\r\nhello\r\n0\r\nX-Check: 1\r\n\r\n")
            data = b""
            while b"\r\n\r\nok" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data)
        stats = self.peer_stats()
        self.assertEqual(stats["trailers"]["/rtrailers"], [["x-check", "1"]])
        self.assertEqual(stats["bodies"]["/rtrailers"], 5)


class Http2HealthChecks(harness.E2ETestCase):
    def wait_state(self, sluice, key, state, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            eps = {e["endpoint"]: e for e in sluice.admin_json("/clusters?format=json")["endpoints"]}
            if eps.get(key, {}).get("state") == state:
                return
            time.sleep(0.1)
        self.fail(f"{key} not {state} within {timeout}s: {eps}")

    def test_http_probe_over_h2c_marks_down_and_up(self):
        pki = tls_peers.make_pki(os.path.join(self.tmp, "pki"))
        nginx = H2Nginx(self.tmp, pki)
        self.addCleanup(nginx.stop)
        healthy = nginx.www("healthy")
        with open(healthy, "w") as f:
            f.write("ok\n")
        nginx.start()
        # panic_threshold 0: with its only endpoint out, the cluster answers 503.
        check = ("  health_check: { path: /health, interval: 200ms, timeout: 1s, "
                 "healthy_threshold: 1, unhealthy_threshold: 1 }\n  panic_threshold: 0\n")
        s = self.start_sluice(tls_peers.config(
            [tls_peers.listener("public", routes=route("all", "/", "h2c"))],
            clusters=cluster("h2c", nginx.h2c, check), workers=1))
        key = f"127.0.0.1:{nginx.h2c}"
        self.wait_state(s, key, "healthy")
        os.remove(healthy)
        self.wait_state(s, key, "unhealthy")
        self.assertEqual(request(s.port, "GET", "/hello").status, 503)
        with open(healthy, "w") as f:
            f.write("ok\n")
        self.wait_state(s, key, "healthy")
        self.assertEqual(request(s.port, "GET", "/hello").status, 200)
        probes = [x for x in nginx.access_log() if x["uri"] == "/health"]
        self.assertTrue(probes and all(x["proto"] == "HTTP/2.0" for x in probes), probes)

    def test_http_probe_over_tls_needs_alpn_h2(self):
        pki = tls_peers.make_pki(os.path.join(self.tmp, "pki"))
        nginx = H2Nginx(self.tmp, pki)
        self.addCleanup(nginx.stop)
        with open(nginx.www("healthy"), "w") as f:
            f.write("ok\n")
        nginx.start()
        check = (f"  tls: {{ ca: {pki.ca_cert} }}\n"
                 "  health_check: { path: /health, interval: 200ms, timeout: 1s, "
                 "healthy_threshold: 1, unhealthy_threshold: 1 }\n  panic_threshold: 0\n")
        s = self.start_sluice(tls_peers.config(
            [tls_peers.listener("public", routes=route("a", "/a/", "good") + route("b", "/", "noh2"))],
            clusters=cluster("good", nginx.h2tls, check) + cluster("noh2", nginx.h1tls, check),
            workers=1))
        self.wait_state(s, f"127.0.0.1:{nginx.h1tls}", "unhealthy")
        self.wait_state(s, f"127.0.0.1:{nginx.h2tls}", "healthy")
        self.assertTrue(s.wait_for_log(r"unhealthy: TLS: .*no application protocol"))
        probes = [x for x in nginx.access_log() if x["uri"] == "/health"]
        self.assertTrue(probes and all(x["proto"] == "HTTP/2.0" and x["port"] == str(nginx.h2tls)
                                       for x in probes), probes)

    def test_grpc_health_check(self):
        harness.require_program("python3", "python3")
        try:
            import grpc  # noqa: F401
        except ImportError:
            raise harness.MissingPeer("python3-grpcio is not installed: apt-get install "
                                      "python3-grpcio (scripts/bootstrap)")
        port = harness.free_port()
        status_file = os.path.join(self.tmp, "serving")
        with open(status_file, "w") as f:
            f.write("1\n")
        peer = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grpc_health_peer.py")
        proc = harness._spawn([sys.executable, peer, str(port), status_file],
                              os.path.join(self.tmp, "grpc.stdout"),
                              os.path.join(self.tmp, "grpc.stderr"))

        def stop_peer():
            harness._kill_group(proc, signal.SIGKILL)
            proc.wait(10)
            harness._live.discard(proc)
        self.addCleanup(stop_peer)
        harness._wait_for_line(proc, os.path.join(self.tmp, "grpc.stdout"), r"^listening",
                               30, "grpc_health_peer.py")
        check = ("  health_check: { grpc: { service: \"sluice.test\" }, interval: 200ms, "
                 "timeout: 1s, healthy_threshold: 1, unhealthy_threshold: 1 }\n")
        s = self.start_sluice(tls_peers.config(
            [tls_peers.listener("public", routes=route("all", "/", "grpc"))],
            clusters=cluster("grpc", port, check), workers=1))
        key = f"127.0.0.1:{port}"
        self.wait_state(s, key, "healthy")
        harness.write_atomically(status_file, "2\n")  # NOT_SERVING
        self.wait_state(s, key, "unhealthy")
        self.assertTrue(s.wait_for_log(r"unhealthy: gRPC: serving status 2"))
        harness.write_atomically(status_file, "1\n")
        self.wait_state(s, key, "healthy")
        with open(status_file + ".log") as f:
            services = set(f.read().split())
        self.assertEqual(services, {"sluice.test"})


if __name__ == "__main__":
    import unittest
    unittest.main()
