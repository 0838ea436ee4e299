"""Downstream HTTP/2 with real clients (curl, nghttp, h2load, Python's h2, Chromium headless)
through the built sluice to the Jetty example: h2 by ALPN on a TLS listener, h2c with prior
knowledge on a plaintext port that still serves HTTP/1.1, the Upgrade: h2c offer declined, flow
control (a stream the client does not read stalls alone; a 1 GiB download with bounded memory),
bodies both ways, cookies re-joined, HEAD and 204, many concurrent streams, metrics, access log
and a reload under an open HTTP/2 connection."""

import hashlib
import json
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import tls_peers  # noqa: E402
from harness import echo_header_values, parse_echo, pattern_bytes  # noqa: E402

import h2.config  # noqa: E402  (python3-h2)
import h2.connection  # noqa: E402
import h2.events  # noqa: E402
import h2.exceptions  # noqa: E402
import h2.settings  # noqa: E402

PEER_TIMEOUT = 120


def run(argv, timeout=PEER_TIMEOUT, **kw):
    return subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw)


def curl(*args):
    """curl -sS with the response's HTTP version and status appended to stdout."""
    argv = [harness.require_program("curl", "curl"), "-sS", "--max-time", "60",
            "-w", "\n%{http_version} %{http_code}", *args]
    r = run(argv)
    out = r.stdout.decode("latin-1")
    body, _, tail = out.rpartition("\n")
    version, _, code = tail.partition(" ")
    return r.returncode, version, int(code or 0), body, r.stderr.decode("latin-1")


class H2Client:
    """A plain-socket HTTP/2 client on Python's h2 (python3-h2): full control of windows and
    resets, for what curl cannot show."""

    def __init__(self, port, window=65535):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.flush()
        self.responses = {}  # stream id -> {"headers": [...], "data": bytearray, "ended": bool}
        self.goaway = None

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def get(self, path, authority="app.test"):
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, [(":method", "GET"), (":path", path), (":scheme", "http"),
                                     (":authority", authority)], end_stream=True)
        self.responses[sid] = {"headers": [], "data": bytearray(), "ended": False}
        self.flush()
        return sid

    def pump(self, until, ack=lambda sid: True, timeout=30):
        """Reads frames until until() is true. DATA is acknowledged (WINDOW_UPDATE) only for the
        streams ack(sid) allows, and always at the connection level."""
        deadline = time.time() + timeout
        while not until():
            if time.time() > deadline:
                raise AssertionError("HTTP/2 client: timed out")
            self.sock.settimeout(max(0.1, deadline - time.time()))
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError("HTTP/2 client: connection closed")
            for ev in self.conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    self.responses[ev.stream_id]["headers"] = ev.headers
                elif isinstance(ev, h2.events.DataReceived):
                    self.responses[ev.stream_id]["data"] += ev.data
                    if ev.flow_controlled_length:
                        self.conn.increment_flow_control_window(ev.flow_controlled_length)
                        if ack(ev.stream_id) and not ev.stream_ended:
                            try:
                                self.conn.increment_flow_control_window(
                                    ev.flow_controlled_length, stream_id=ev.stream_id)
                            except h2.exceptions.StreamClosedError:
                                pass
                elif isinstance(ev, h2.events.TrailersReceived):
                    self.responses[ev.stream_id]["trailers"] = ev.headers
                elif isinstance(ev, h2.events.StreamEnded):
                    self.responses[ev.stream_id]["ended"] = True
                elif isinstance(ev, h2.events.StreamReset):
                    self.responses[ev.stream_id]["reset"] = ev.error_code
                    self.responses[ev.stream_id]["ended"] = True
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    self.goaway = ev
            self.flush()

    def status(self, sid):
        return dict(self.responses[sid]["headers"]).get(b":status")

    def close(self):
        self.sock.close()


class Http2Downstream(harness.E2ETestCase):
    """One Jetty and one sluice with an h2c listener (with a JSON access log), a TLS listener
    offering h2 and http/1.1, and a TLS listener offering http/1.1 only."""

    @classmethod
    def setUpClass(cls):
        cls.jetty = cls.start_class_jetty()
        pki = tls_peers.make_pki(os.path.join(cls.class_tmp(), "pki"))
        cls.ca = pki.ca_cert
        cls.access_log = os.path.join(cls.class_tmp(), "access.json")
        tls = tls_peers.tls_block([(pki.localhost_cert, pki.localhost_key)], alpn=["h2", "http/1.1"])
        tls11 = tls_peers.tls_block([(pki.localhost_cert, pki.localhost_key)])
        text = harness.config(
            {"jetty": [cls.jetty.endpoint]}, [("all", "/", "jetty")],
            listeners={"public": 0, "tls": 0, "tls11": 0},
            extra_listener_keys={
                "public": "http2: { prior_knowledge: true }\n"
                          f"access_log: {{ path: {json.dumps(cls.access_log)}, format: json }}\n",
                "tls": tls, "tls11": tls11},
            # 500 concurrent streams would open 500 connections to Jetty at once, beyond its
            # accept backlog (connects then time out: 503). With a connection cap, streams wait
            # for a pooled connection instead, which is what a deployment in front of Jetty sets.
            extra_cluster_keys={"jetty": "circuit_breakers: { max_connections: 64 }\n"})
        cls.sluice = cls.start_class_sluice(text)
        cls.h2c = cls.sluice.listeners["public"]
        cls.https = cls.sluice.listeners["tls"]
        cls.https11 = cls.sluice.listeners["tls11"]

    def h2c_url(self, path):
        return f"http://127.0.0.1:{self.h2c}{path}"

    def https_url(self, path, port=None):
        return f"https://localhost:{port or self.https}{path}"

    def tls_args(self, port=None):
        return ["--cacert", self.ca, "--resolve", f"localhost:{port or self.https}:127.0.0.1"]

    # -- protocol selection --

    def test_h2c_prior_knowledge_reaches_jetty(self):
        rc, version, code, body, err = curl("--http2-prior-knowledge", self.h2c_url("/echo?x=1"))
        self.assertEqual((rc, version, code), (0, "2", 200), err)
        fields, headers = parse_echo(body)
        self.assertEqual(fields.get("uri"), "/echo?x=1")
        self.assertEqual(fields.get("method"), "GET")
        # Upstream it is an HTTP/1.1 request with the forwarding fields.
        self.assertEqual(echo_header_values(headers, "x-forwarded-proto"), ["http"])
        self.assertEqual(len(echo_header_values(headers, "x-request-id")), 1)
        self.assertEqual(echo_header_values(headers, "host"), [f"127.0.0.1:{self.h2c}"])

    def test_same_port_still_serves_http11(self):
        rc, version, code, body, err = curl("--http1.1", self.h2c_url("/health"))
        self.assertEqual((rc, version, code, body), (0, "1.1", 200, "ok\n"), err)

    def test_upgrade_h2c_offer_is_declined_and_served_as_http11(self):
        # curl --http2 on http:// sends "Upgrade: h2c" with HTTP2-Settings; nginx declines it.
        rc, version, code, body, err = curl("--http2", "-v", self.h2c_url("/echo"))
        self.assertEqual((rc, version, code), (0, "1.1", 200), err)
        self.assertNotIn("101", err.split("< HTTP/1.1 ")[1][:4] if "< HTTP/1.1 " in err else "")
        _, headers = parse_echo(body)
        self.assertEqual(echo_header_values(headers, "upgrade"), [])
        self.assertEqual(echo_header_values(headers, "http2-settings"), [])

    def test_alpn_h2_over_tls(self):
        rc, version, code, body, err = curl("--http2", *self.tls_args(), self.https_url("/echo"))
        self.assertEqual((rc, version, code), (0, "2", 200), err)
        _, headers = parse_echo(body)
        self.assertEqual(echo_header_values(headers, "x-forwarded-proto"), ["https"])
        # A client offering only http/1.1 on the same listener speaks HTTP/1.1.
        rc, version, code, _, err = curl("--http1.1", *self.tls_args(), self.https_url("/health"))
        self.assertEqual((rc, version, code), (0, "1.1", 200), err)

    def test_listener_without_h2_in_alpn_speaks_http11(self):
        rc, version, code, _, err = curl("--http2", *self.tls_args(self.https11),
                                         self.https_url("/health", self.https11))
        self.assertEqual((rc, version, code), (0, "1.1", 200), err)

    # -- messages --

    def test_upload_1mib_arrives_whole(self):
        body = os.urandom(1024 * 1024)
        path = os.path.join(self.tmp, "up.bin")
        with open(path, "wb") as f:
            f.write(body)
        for extra in ([], ["-H", "content-length:"]):  # declared length, then none (framed upstream)
            rc, version, code, out, err = curl("--http2-prior-knowledge", "--data-binary", f"@{path}",
                                               *extra, self.h2c_url("/upload"))
            self.assertEqual((rc, version, code), (0, "2", 200), err)
            self.assertIn(f"bytes: {len(body)}", out)
            self.assertIn(f"sha256: {hashlib.sha256(body).hexdigest()}", out)

    def test_chunked_and_large_responses(self):
        rc, version, code, body, err = curl("--http2-prior-knowledge",
                                            self.h2c_url("/chunked?chunks=20&size=1000"))
        self.assertEqual((rc, version, code), (0, "2", 200), err)
        self.assertEqual(body.encode(), pattern_bytes(20 * 1000))
        rc, version, code, body, err = curl("--http2-prior-knowledge", self.h2c_url("/large?bytes=3000000"))
        self.assertEqual((rc, version, code), (0, "2", 200), err)
        self.assertEqual(body.encode(), pattern_bytes(3000000))

    def test_head_and_204_carry_no_body(self):
        rc, version, code, body, err = curl("--http2-prior-knowledge", "-I", self.h2c_url("/large?bytes=5000"))
        self.assertEqual((rc, version, code), (0, "2", 200), err)
        self.assertIn("content-length: 5000", body.lower())
        rc, version, code, body, err = curl("--http2-prior-knowledge", self.h2c_url("/status/204"))
        self.assertEqual((rc, version, code, body), (0, "2", 204, ""), err)

    def test_cookies_split_by_the_client_arrive_joined(self):
        c = H2Client(self.h2c)
        try:
            sid = c.conn.get_next_available_stream_id()
            c.conn.send_headers(sid, [(":method", "GET"), (":path", "/echo"), (":scheme", "http"),
                                      (":authority", "app.test"), ("cookie", "a=1"),
                                      ("cookie", "b=2"), ("cookie", "c=3")], end_stream=True)
            c.responses[sid] = {"headers": [], "data": bytearray(), "ended": False}
            c.flush()
            c.pump(lambda: c.responses[sid]["ended"])
            self.assertEqual(c.status(sid), b"200")
            _, headers = parse_echo(c.responses[sid]["data"].decode())
            self.assertEqual(echo_header_values(headers, "cookie"), ["a=1; b=2; c=3"])
            self.assertEqual(echo_header_values(headers, "host"), ["app.test"])
        finally:
            c.close()

    def test_unread_stream_stalls_alone(self):
        # Stream 1 downloads 8 MiB and its window is never opened beyond the initial 64 KiB;
        # streams opened after it on the same connection complete.
        c = H2Client(self.h2c)
        try:
            big = c.get("/large?bytes=8388608")
            smalls = [c.get("/health") for _ in range(5)]
            c.pump(lambda: all(c.responses[s]["ended"] for s in smalls), ack=lambda sid: sid != big)
            for s in smalls:
                self.assertEqual(c.status(s), b"200")
                self.assertEqual(bytes(c.responses[s]["data"]), b"ok\n")
            self.assertFalse(c.responses[big]["ended"])
            self.assertLessEqual(len(c.responses[big]["data"]), 65535)
            # Opening its window lets it finish, whole.
            c.conn.increment_flow_control_window(8 * 1024 * 1024, stream_id=big)
            c.flush()
            c.pump(lambda: c.responses[big]["ended"], timeout=60)
            self.assertEqual(bytes(c.responses[big]["data"]), pattern_bytes(8388608))
        finally:
            c.close()

    def test_1gib_download_with_bounded_memory(self):
        before = self.sluice.rss_bytes()
        peak = [before]
        done = threading.Event()

        def watch():
            while not done.is_set():
                peak[0] = max(peak[0], self.sluice.rss_bytes())
                time.sleep(0.05)

        t = threading.Thread(target=watch)
        t.start()
        try:
            r = run([harness.require_program("curl", "curl"), "-sS", "--http2-prior-knowledge",
                     "--max-time", "300", "-o", "/dev/null", "-w", "%{http_version} %{http_code} %{size_download}",
                     self.h2c_url(f"/large?bytes={1 << 30}")], timeout=320)
        finally:
            done.set()
            t.join()
        self.assertEqual(r.stdout.decode(), f"2 200 {1 << 30}", r.stderr)
        # The windows (1 MiB per stream, 4 MiB per connection) bound what sits in Sluice.
        self.assertLess(peak[0] - before, 64 * 1024 * 1024, f"RSS grew from {before} to {peak[0]}")

    def test_h2load_50_clients_10_streams_each(self):
        h2load = harness.require_program("h2load", "nghttp2-client")
        r = run([h2load, "-n", "5000", "-c", "50", "-m", "10", self.h2c_url("/health")])
        out = r.stdout.decode()
        self.assertEqual(r.returncode, 0, out + r.stderr.decode())
        local = [x for x in self.sluice.scrape_text().splitlines()
                 if x.startswith(("sluice_route_local_replies_total", "sluice_cluster_connect_failures"))]
        self.assertIn("5000 succeeded, 0 failed, 0 errored, 0 timeout", out, "\n".join(local))
        self.assertIn("status codes: 5000 2xx", out)
        r = run([h2load, "-n", "2000", "-c", "20", "-m", "10", f"https://127.0.0.1:{self.https}/health"])
        out = r.stdout.decode()
        self.assertIn("2000 succeeded, 0 failed", out, out + r.stderr.decode())
        self.assertIn("Application protocol: h2", out)

    def test_metrics_and_access_log(self):
        rc, version, code, _, err = curl("--http2-prior-knowledge", self.h2c_url("/health?log-me"))
        self.assertEqual((rc, version, code), (0, "2", 200), err)
        m = harness.settled_scrape(
            self.sluice, lambda m: m.get("sluice_http2_streams_total", 0, listener="public") >= 1)
        self.assertGreaterEqual(m.value("sluice_http2_connections_total", listener="public"), 1)
        self.assertGreaterEqual(m.value("sluice_http2_connections_total", listener="tls"), 0)
        # Every reason is present from the start (0), so alerts have a series.
        self.assertEqual(m.value("sluice_http2_violations_total", listener="public",
                                 reason="rapid_reset"), 0)
        # A listener that serves no HTTP/2 has no HTTP/2 series.
        self.assertIsNone(m.get("sluice_http2_connections_total", None, listener="tls11"))
        promtool = harness.require_program("promtool", "prometheus")
        r = subprocess.run([promtool, "check", "metrics"], input=self.sluice.scrape_text().encode(),
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())

        def logged():
            if not os.path.exists(self.access_log):
                return None
            with open(self.access_log) as f:
                for line in f:
                    e = json.loads(line)
                    if "log-me" in e.get("path", ""):
                        return e
            return None

        deadline = time.time() + 10
        while logged() is None and time.time() < deadline:
            time.sleep(0.1)
        entry = logged()
        self.assertIsNotNone(entry, "no access log line for the request")
        self.assertEqual(entry["protocol"], "HTTP/2")
        self.assertEqual(entry["status"], 200)

    def test_local_replies_over_h2(self):
        # Two fields of 31,000 bytes: over the limit once decoded, under the 64 KiB header block
        # that curl's nghttp2 is willing to send.
        rc, version, code, body, err = curl("--http2-prior-knowledge", "-H", "x-big1: " + "a" * 31000,
                                            "-H", "x-big2: " + "b" * 31000, self.h2c_url("/echo"))
        # Over max_header_list_size (60 KiB): 431 on the stream; the connection survives.
        self.assertEqual((rc, version, code), (0, "2", 431), err)
        rc, version, code, body, err = curl("--http2-prior-knowledge", "-X", "CONNECT",
                                            self.h2c_url("/x"))
        self.assertNotEqual(code, 200, err)


class Http2Chromium(harness.E2ETestCase):
    """Chromium headless loads a page through sluice over h2 (ALPN), from the Jetty example."""

    def test_chromium_loads_a_page_over_h2(self):
        chromium = harness.require_program("chromium", "chromium")
        jetty = self.start_jetty()
        pki = tls_peers.make_pki(os.path.join(self.tmp, "pki"))
        access_log = os.path.join(self.tmp, "access.json")
        tls = tls_peers.tls_block([(pki.localhost_cert, pki.localhost_key)], alpn=["h2", "http/1.1"])
        text = harness.config({"jetty": [jetty.endpoint]}, [("all", "/", "jetty")],
                              extra_listener_keys=tls +
                              f"access_log: {{ path: {json.dumps(access_log)}, format: json }}\n")
        sluice = self.start_sluice(text)
        home = os.path.join(self.tmp, "chromium-home")
        os.makedirs(home)
        r = run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors",
                 f"--user-data-dir={home}", "--dump-dom", f"https://127.0.0.1:{sluice.port}/echo?from=chromium"],
                timeout=120, env={**os.environ, "HOME": home})
        dom = r.stdout.decode("utf-8", "replace")
        self.assertIn("uri: /echo?from=chromium", dom, r.stderr.decode()[-3000:])
        deadline = time.time() + 10
        entries = []
        while time.time() < deadline:
            if os.path.exists(access_log):
                with open(access_log) as f:
                    entries = [json.loads(x) for x in f if "from=chromium" in x]
                if entries:
                    break
            time.sleep(0.1)
        self.assertTrue(entries, "chromium's request is not in the access log")
        self.assertEqual(entries[0]["protocol"], "HTTP/2")


class Http2Reload(harness.E2ETestCase):
    def test_open_connection_survives_a_reload_and_uses_the_new_routes(self):
        jetty = self.start_jetty()
        routes_before = [("all", "/", "jetty")]
        make = lambda routes: harness.config(  # noqa: E731
            {"jetty": [jetty.endpoint]}, routes, extra_listener_keys="http2: { prior_knowledge: true }\n")
        sluice = self.start_sluice(make(routes_before))
        c = H2Client(sluice.port)
        try:
            sid = c.get("/echo")
            c.pump(lambda: c.responses[sid]["ended"])
            self.assertEqual(c.status(sid), b"200")
            # The new config sends /echo nowhere: a 404 on the same connection proves the switch.
            sluice.write_config(make([("health_only", "/health", "jetty")]))
            sluice.reload()
            sid = c.get("/echo")
            c.pump(lambda: c.responses[sid]["ended"])
            self.assertEqual(c.status(sid), b"404")
            sid = c.get("/health")
            c.pump(lambda: c.responses[sid]["ended"])
            self.assertEqual(c.status(sid), b"200")
            self.assertIsNone(c.goaway)
        finally:
            c.close()



class TrailerBackend(socketserver.StreamRequestHandler):
    """HTTP/1.1 with a chunked body and trailer fields."""

    def handle(self):
        while self.rfile.readline(65536) not in (b"\r\n", b""):
            pass
        self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n"
                         b"trailer: x-checksum\r\nconnection: close\r\n\r\n"
                         b"5\r\nhello\r\n0\r\nx-checksum: abc123\r\nx-Count: 5\r\n\r\n")


class Http2TrailersAndDrain(harness.E2ETestCase):
    def start_backend(self):
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), TrailerBackend)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        return f"127.0.0.1:{server.server_address[1]}"

    def test_http11_trailers_reach_an_h2_client_as_trailers(self):
        backend = self.start_backend()
        sluice = self.start_sluice(harness.config(
            {"b": [backend]}, [("all", "/", "b")], extra_listener_keys="http2: { prior_knowledge: true }\n"))
        c = H2Client(sluice.port)
        try:
            sid = c.get("/t")
            c.pump(lambda: c.responses[sid]["ended"])
            self.assertEqual(c.status(sid), b"200")
            self.assertEqual(bytes(c.responses[sid]["data"]), b"hello")
            trailers = dict(c.responses[sid].get("trailers", []))
            self.assertEqual(trailers.get(b"x-checksum"), b"abc123")
            self.assertEqual(trailers.get(b"x-count"), b"5")  # lower-cased for HTTP/2
        finally:
            c.close()

    def test_reload_removing_the_listener_sends_goaway_and_finishes_open_streams(self):
        jetty = self.start_jetty()
        both = harness.config({"jetty": [jetty.endpoint]}, [("all", "/", "jetty")],
                              listeners={"public": 0, "other": 0},
                              extra_listener_keys="http2: { prior_knowledge: true }\n")
        sluice = self.start_sluice(both)
        c = H2Client(sluice.listeners["other"])
        try:
            slow = c.get("/slow?ms=1500")
            time.sleep(0.3)  # the request is on its way to Jetty
            sluice.write_config(harness.config({"jetty": [jetty.endpoint]}, [("all", "/", "jetty")],
                                               listeners={"public": 0},  # unchanged: no rebind
                                               extra_listener_keys="http2: { prior_knowledge: true }\n"))
            sluice.reload()
            # Python's h2 refuses frames after a GOAWAY, which RFC 9113 §6.8 allows for streams
            # up to its last stream id: read the frames raw from here on.
            goaway, data, ended = None, bytearray(), False
            buf = bytearray()
            c.sock.settimeout(20)
            while not (goaway and ended):
                chunk = c.sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
                while len(buf) >= 9:
                    length = int.from_bytes(buf[0:3], "big")
                    if len(buf) < 9 + length:
                        break
                    ftype, flags, sid = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
                    payload = bytes(buf[9:9 + length])
                    del buf[:9 + length]
                    if ftype == 7:  # GOAWAY: last stream id, error code
                        goaway = (int.from_bytes(payload[0:4], "big") & 0x7FFFFFFF,
                                  int.from_bytes(payload[4:8], "big"))
                    elif ftype == 0 and sid == slow:  # DATA
                        data += payload
                        ended = ended or bool(flags & 0x1)
                    elif ftype == 1 and sid == slow:  # HEADERS
                        ended = ended or bool(flags & 0x1)
            self.assertIsNotNone(goaway, sluice.stderr()[-3000:])
            self.assertEqual(goaway[1], 0)  # NO_ERROR
            self.assertGreaterEqual(goaway[0], slow)  # the open stream is processed...
            self.assertTrue(ended)
            self.assertEqual(bytes(data), b"slow 1500\n")  # ...and finishes whole
        finally:
            c.close()


class Http2BothWaysToJetty(harness.E2ETestCase):
    """The Jetty cases over HTTP/2 on both sides: h2c from curl to sluice, `protocol: http2`
    (h2c, the Jetty example's HTTP2CServerConnectionFactory) from sluice to Jetty; and an
    HTTP/1.1 client to the same HTTP/2 cluster."""

    @classmethod
    def setUpClass(cls):
        cls.jetty = cls.start_class_jetty()
        text = harness.config({"jetty": [cls.jetty.endpoint]}, [("all", "/", "jetty")],
                              extra_listener_keys="http2: { prior_knowledge: true }\n",
                              extra_cluster_keys={"jetty": "protocol: http2\n"})
        cls.sluice = cls.start_class_sluice(text)

    def url(self, path):
        return f"http://127.0.0.1:{self.sluice.port}{path}"

    def test_echo_is_http2_at_jetty_for_h2_and_http11_clients(self):
        for flag, version in (("--http2-prior-knowledge", "2"), ("--http1.1", "1.1")):
            rc, v, code, body, err = curl(flag, self.url("/echo?q=1"))
            self.assertEqual((rc, v, code), (0, version, 200), err)
            fields, headers = parse_echo(body)
            self.assertEqual(fields.get("protocol"), "HTTP/2.0", body)
            self.assertEqual(fields.get("uri"), "/echo?q=1")
            self.assertEqual(echo_header_values(headers, "x-forwarded-for"), ["127.0.0.1"])

    def test_bodies_both_ways(self):
        body = os.urandom(3 * 1024 * 1024)
        path = os.path.join(self.tmp, "up.bin")
        with open(path, "wb") as f:
            f.write(body)
        for flag in ("--http2-prior-knowledge", "--http1.1"):
            rc, _, code, out, err = curl(flag, "--data-binary", f"@{path}", self.url("/upload"))
            self.assertEqual((rc, code), (0, 200), err)
            self.assertIn(f"sha256: {hashlib.sha256(body).hexdigest()}", out)
            rc, _, code, out, err = curl(flag, self.url("/large?bytes=5000000"))
            self.assertEqual((rc, code, out.encode()), (0, 200, pattern_bytes(5000000)), err)
            rc, _, code, out, err = curl(flag, self.url("/chunked?chunks=10&size=333"))
            self.assertEqual((rc, code, out.encode()), (0, 200, pattern_bytes(3330)), err)

    def test_statuses_and_head(self):
        for status in (201, 204, 404, 503):
            rc, _, code, out, err = curl("--http2-prior-knowledge", self.url(f"/status/{status}"))
            self.assertEqual((rc, code), (0, status), err)
        rc, _, code, out, err = curl("--http2-prior-knowledge", "-I", self.url("/large?bytes=777"))
        self.assertEqual((rc, code), (0, 200), err)
        self.assertIn("content-length: 777", out.lower())

    def test_h2load_multiplexed_on_both_sides(self):
        h2load = harness.require_program("h2load", "nghttp2-client")
        r = run([h2load, "-n", "3000", "-c", "20", "-m", "10", self.url("/health")])
        out = r.stdout.decode()
        self.assertIn("3000 succeeded, 0 failed, 0 errored, 0 timeout", out, out + r.stderr.decode())
        m = self.sluice.scrape()
        # Multiplexed upstream: far fewer connections than the 200 concurrent streams.
        self.assertLessEqual(m.value("sluice_cluster_upstream_connections_total", cluster="jetty"),
                             2 * self.sluice.workers * 4)


if __name__ == "__main__":
    unittest.main()
