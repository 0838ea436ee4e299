"""HTTP/2 hardening (issue 11): the known HTTP/2 attacks against the built sluice, each performed
with hand-built frames over a raw socket (python3-h2 refuses to produce most of them), each
checking that

  (a) the attacking connection ends with GOAWAY and the expected error code,
  (b) sluice_http2_violations_total{reason} went up by exactly one,
  (c) a second, well-behaved connection still gets 200s, and
  (d) where it matters, the RSS of the process stayed bounded (never timings).

Plus the cases that are not attacks but must not break the connection: a header list over
max_header_list_size (431, the connection lives), invalid pseudo-headers (RST_STREAM on that
stream only), a zero-window client (its stream ends after idle_timeout), a GOAWAY from the client
and a drain on SIGTERM (GOAWAY NO_ERROR, the slow stream still finishes).

The backend is a small HTTP/1.1 server in this process (`/`, `/slow?ms=N`, `/large?n=N`); every
test starts its own sluice with one worker, so the attack and the well-behaved connection share
the worker thread. Frames, HPACK (literal fields, no Huffman) and the reader are in H2Client;
python3-hpack only decodes the responses.
"""

import collections
import http.server
import os
import signal
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import pki as pki_module  # noqa: E402
from harness import config  # noqa: E402

try:
    import hpack  # Debian: python3-hpack (comes with python3-h2)
except ImportError as e:  # a missing peer fails, never skips (harness.MissingPeer)
    raise harness.MissingPeer("python3-hpack is not installed: apt-get install python3-h2") from e

# --- HTTP/2 wire format (RFC 9113 §4, §6) ---------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR, STREAM_CLOSED, CANCEL, COMPRESSION_ERROR, \
    ENHANCE_YOUR_CALM = 0x0, 0x1, 0x3, 0x5, 0x8, 0x9, 0xb

# The listener's limits (config.h defaults) and the codec's thresholds (http2_connection.cc).
MAX_HEADER_LIST_SIZE = 60 * 1024
HEADER_BOMB_FACTOR = 8
PREMATURE_RESET_MINIMUM = 100
CONTROL_FRAME_BURST = 1000
EMPTY_DATA_BURST = 100

# RSS may grow by this much during an attack (allocator slack, nghttp2's buffers); an unbounded
# codec grows by the attack's size, which each test makes larger than this.
RSS_BOUND = 48 * 1024 * 1024
WAIT = 20.0  # the most any wait below takes before it fails (never a timing assertion)


def frame(ftype, flags, stream_id, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream_id & 0x7fffffff) + payload


def settings_frame(settings=None):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v)
                                          for k, v in (settings or {}).items()))


def hpack_int(value, prefix_bits, first=0):
    """RFC 7541 §5.1 integer with an N-bit prefix; `first` holds the bits above the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7f) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def literal(name, value, indexed=False):
    """A literal field with a literal name (RFC 7541 §6.2.1/§6.2.2), no Huffman, as given:
    upper case and connection-specific names go out unchanged."""
    name = name.encode() if isinstance(name, str) else name
    value = value.encode() if isinstance(value, str) else value
    return (b"\x40" if indexed else b"\x00") + hpack_int(len(name), 7) + name + \
        hpack_int(len(value), 7) + value


def request_block(path="/", method="GET", extra=(), pseudo=None):
    fields = pseudo if pseudo is not None else [
        (":method", method), (":scheme", "http"), (":authority", "sluice.test"), (":path", path)]
    return b"".join(literal(n, v) for n, v in list(fields) + list(extra))


class H2Client:
    """One HTTP/2 connection over a raw socket. A reader thread parses what sluice sends
    (responses, RST_STREAM, GOAWAY, SETTINGS to acknowledge); the test thread sends frames."""

    def __init__(self, port, settings=None, window_updates=True, preface=PREFACE, tls_ca=None,
                 first=b""):
        """`preface` (None: nothing) and the client's SETTINGS go first, with `first` after
        them. Over TLS (`tls_ca`, ALPN h2) only the reader thread may use the socket once it
        runs (an SSL object is not for two threads), so all a TLS test sends is in `first`."""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.alpn = None
        if tls_ca:
            ctx = ssl.create_default_context(cafile=tls_ca)
            ctx.set_alpn_protocols(["h2"])
            self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
            self.alpn = self.sock.selected_alpn_protocol()
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 24
        self.send_lock = threading.Lock()
        self.cv = threading.Condition()
        self.streams = collections.defaultdict(
            lambda: {"headers": None, "trailers": None, "data": bytearray(), "ended": False,
                     "reset": None})
        self.goaways = []          # (last stream id, error code), in order
        self.closed = False        # sluice closed the connection
        self.window_updates = window_updates
        self.next_id = 1
        if preface is not None:
            self.send(preface + settings_frame(settings) + first)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    # -- sending --

    def send(self, data):
        """False if sluice has closed (or reset) the connection meanwhile."""
        try:
            with self.send_lock:
                self.sock.sendall(data)
            return True
        except OSError:
            return False

    def new_id(self):
        sid = self.next_id
        self.next_id += 2
        return sid

    def headers(self, sid, block, end_stream=True):
        return frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), sid, block)

    def request(self, path="/", method="GET", extra=(), end_stream=True, pseudo=None):
        sid = self.new_id()
        self.send(self.headers(sid, request_block(path, method, extra, pseudo), end_stream))
        return sid

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.reader.join(5)

    # -- reading --

    def _read(self):
        buf = bytearray()
        try:
            while True:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    break
                buf += chunk
                while len(buf) >= 9:
                    length = int.from_bytes(buf[:3], "big")
                    if len(buf) < 9 + length:
                        break
                    ftype, flags = buf[3], buf[4]
                    sid = int.from_bytes(buf[5:9], "big") & 0x7fffffff
                    payload = bytes(buf[9:9 + length])
                    del buf[:9 + length]
                    self._on_frame(ftype, flags, sid, payload)
        except OSError:
            pass
        with self.cv:
            self.closed = True
            self.cv.notify_all()

    def _on_frame(self, ftype, flags, sid, payload):
        replies = b""
        with self.cv:
            if ftype == HEADERS:
                assert flags & END_HEADERS, "sluice split a response header block"
                fields = [(n if isinstance(n, str) else n.decode(),
                           v if isinstance(v, str) else v.decode())
                          for n, v in self.decoder.decode(payload)]
                s = self.streams[sid]
                if s["headers"] is None:
                    s["headers"] = fields
                else:
                    s["trailers"] = fields
                s["ended"] = s["ended"] or bool(flags & END_STREAM)
            elif ftype == DATA:
                s = self.streams[sid]
                s["data"] += payload
                s["ended"] = s["ended"] or bool(flags & END_STREAM)
                if payload and self.window_updates:
                    inc = struct.pack(">I", len(payload))
                    replies = frame(WINDOW_UPDATE, 0, 0, inc) + frame(WINDOW_UPDATE, 0, sid, inc)
            elif ftype == RST_STREAM:
                self.streams[sid]["reset"] = struct.unpack(">I", payload)[0]
            elif ftype == GOAWAY:
                last, code = struct.unpack(">II", payload[:8])
                self.goaways.append((last & 0x7fffffff, code))
            elif ftype == SETTINGS and not flags & ACK:
                replies = frame(SETTINGS, ACK, 0)
            self.cv.notify_all()
        if replies:
            self.send(replies)
        if ftype == SETTINGS and not flags & ACK:
            with self.cv:
                self.settings_acked = True
                self.cv.notify_all()

    def wait_settings_acked(self, timeout=10):
        """Until this client has acknowledged sluice's SETTINGS: the reader thread sends that
        ACK, and an ACK between a HEADERS and its CONTINUATION frames is a PROTOCOL_ERROR."""
        with self.cv:
            self.cv.wait_for(lambda: getattr(self, "settings_acked", False) or self.closed, timeout)

    def wait(self, pred, what, timeout=WAIT):
        with self.cv:
            if not self.cv.wait_for(pred, timeout):
                raise AssertionError(f"timed out waiting for {what}; goaways={self.goaways} "
                                     f"closed={self.closed} streams={dict(self.streams)}")

    def response(self, sid):
        """(status, body) once the stream ended; fails if it was reset or the connection ended."""
        self.wait(lambda: self.streams[sid]["ended"] or self.streams[sid]["reset"] is not None
                  or self.closed, f"the response on stream {sid}")
        with self.cv:
            s = self.streams[sid]
            if not s["ended"]:
                raise AssertionError(f"stream {sid} did not end with a response: reset="
                                     f"{s['reset']} goaways={self.goaways} closed={self.closed}")
            return int(dict(s["headers"])[":status"]), bytes(s["data"])

    def reset_code(self, sid):
        self.wait(lambda: self.streams[sid]["reset"] is not None or self.closed,
                  f"RST_STREAM on stream {sid}")
        with self.cv:
            return self.streams[sid]["reset"]

    def goaway(self):
        """The first GOAWAY (last stream id, error code) sluice sent."""
        self.wait(lambda: self.goaways or self.closed, "GOAWAY")
        with self.cv:
            if not self.goaways:
                raise AssertionError("the connection closed without a GOAWAY")
            return self.goaways[0]

    def wait_closed(self):
        self.wait(lambda: self.closed, "the connection to close")


# --- the backend ---------------------------------------------------------------------------------

class Backend(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    started = collections.Counter()  # path → requests that arrived (the slow tests wait for it)
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        with Backend.lock:
            Backend.started[url.path] += 1
        try:
            if url.path == "/slow":
                time.sleep(int(query.get("ms", ["500"])[0]) / 1000)
                self._reply(b"slow done\n")
            elif url.path == "/large":
                n = int(query["n"][0])
                self.send_response(200)
                self.send_header("Content-Length", str(n))
                self.end_headers()
                chunk = b"x" * 65536
                while n > 0:
                    self.wfile.write(chunk[:min(n, len(chunk))])
                    n -= min(n, len(chunk))
            else:
                self._reply(b"ok\n")
        except OSError:
            pass  # sluice gave up on the response (the zero-window test)

    do_POST = do_GET

    def _reply(self, body):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class BackendServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # Sluice closing a pooled upstream connection (the attacks cancel requests) is normal.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


# --- the tests -----------------------------------------------------------------------------------

class Http2HardeningTest(harness.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        cls.backend = BackendServer(("127.0.0.1", 0), Backend)
        cls.backend_thread = threading.Thread(target=cls.backend.serve_forever, daemon=True)
        cls.backend_thread.start()
        cls.addClassCleanup(cls.backend.server_close)
        cls.addClassCleanup(cls.backend.shutdown)

    def start(self, idle_timeout="30s", extra_top=""):
        endpoint = f"127.0.0.1:{self.backend.server_address[1]}"
        text = config({"backend": [endpoint]}, [("all", "/", "backend")], workers=1,
                      extra_listener_keys=f"idle_timeout: {idle_timeout}\n"
                                          "http2: { prior_knowledge: true }\n")
        self.sluice = self.start_sluice(extra_top + text)
        self.port = self.sluice.port
        return self.sluice

    def start_with_tls(self):
        """A sluice with the h2c listener "public" and a TLS one, "tls", offering ALPN h2; returns
        the CA file a client trusts."""
        p = pki_module.create_ca(os.path.join(self.tmp, "pki"))
        cert, key = p.issue("localhost", "ecdsa", "/CN=localhost", ["DNS:localhost"])
        endpoint = f"127.0.0.1:{self.backend.server_address[1]}"
        text = config({"backend": [endpoint]}, [("all", "/", "backend")], workers=1,
                      listeners={"public": 0, "tls": 0},
                      extra_listener_keys={
                          "public": "http2: { prior_knowledge: true }\n",
                          "tls": f"tls: {{ certificates: [{{ cert: {cert}, key: {key} }}], "
                                 "alpn: [h2, http/1.1] }\n"})
        self.sluice = self.start_sluice(text)
        self.port = self.sluice.listeners["public"]
        self.tls_port = self.sluice.listeners["tls"]
        return p.ca_cert

    def violations(self, listener="public"):
        m = self.sluice.scrape()
        return {labels["reason"]: v for labels, v in m.find("sluice_http2_violations_total",
                                                          listener=listener)}

    def goaways_sent(self, code):
        return self.sluice.scrape().value("sluice_http2_goaway_sent_total", listener="public",
                                          code=code)

    def assert_one_violation(self, before, reason, listener="public"):
        """Exactly one more violation, of `reason`, than `before` (counted when GOAWAY goes)."""
        deadline = time.monotonic() + WAIT
        while True:
            after = self.violations(listener)
            if after.get(reason, 0) > before.get(reason, 0) or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self.assertIn(reason, after, f"no violation reason {reason!r} exported")
        diff = {r: after[r] - before.get(r, 0) for r in after if after[r] != before.get(r, 0)}
        self.assertEqual(diff, {reason: 1})

    def assert_serves(self, n=3):
        """A well-behaved connection gets 200s (the attack did not affect other connections)."""
        c = H2Client(self.port)
        try:
            for _ in range(n):
                status, body = c.response(c.request("/"))
                self.assertEqual((status, body), (200, b"ok\n"))
        finally:
            c.close()

    def assert_rss_bounded(self, rss_before):
        self.assertLess(self.sluice.rss_bytes() - rss_before, RSS_BOUND,
                        "sluice's RSS grew by more than the bound during the attack")

    def attack(self, client, chunks, stop_when_goaway=True):
        """Sends `chunks` (bytes each) until sluice closes the connection or says GOAWAY."""
        for chunk in chunks:
            if not client.send(chunk):
                return
            if stop_when_goaway and (client.goaways or client.closed):
                return

    # -- attacks that end the connection --

    def test_rapid_reset(self):
        """CVE-2023-44487: HEADERS + RST_STREAM pairs, each stream cancelled before its response,
        on requests that would go upstream."""
        self.start()
        before = self.violations()
        rss = self.sluice.rss_bytes()
        c = H2Client(self.port)
        good = H2Client(self.port)  # opened before the attack, used during and after it
        slow = good.request("/slow?ms=300")

        def pairs():
            for _ in range(5000):
                sid = c.new_id()
                yield c.headers(sid, request_block("/slow?ms=200")) + \
                    frame(RST_STREAM, 0, sid, struct.pack(">I", CANCEL))
        self.attack(c, pairs())
        last, code = c.goaway()
        self.assertEqual(code, ENHANCE_YOUR_CALM)
        # Streams above the last one sluice processed were not: a client may retry them.
        self.assertLess(last, c.next_id)
        c.wait_closed()
        self.assertEqual(good.response(slow), (200, b"slow done\n"))
        good.close()
        c.close()
        self.assert_one_violation(before, "rapid_reset")
        self.assert_serves()
        self.assert_rss_bounded(rss)

    def test_continuation_flood(self):
        """CVE-2024-27316 family: a HEADERS without END_HEADERS, then CONTINUATION frames without
        end, each with a small field (so the header-list limit is not what stops it)."""
        self.start()
        before = self.violations()
        rss = self.sluice.rss_bytes()
        c = H2Client(self.port)
        c.wait_settings_acked()
        sid = c.new_id()
        first = frame(HEADERS, END_STREAM, sid, request_block("/"))

        def flood():
            yield first
            for i in range(100000):
                yield frame(CONTINUATION, 0, sid, literal(f"x-c{i % 10}", "v"))
        self.attack(c, flood())
        self.assertEqual(c.goaway()[1], ENHANCE_YOUR_CALM)
        c.wait_closed()
        c.close()
        self.assert_one_violation(before, "continuation_flood")
        self.assert_serves()
        self.assert_rss_bounded(rss)

    def test_settings_flood(self):
        self.start()
        before = self.violations()
        c = H2Client(self.port)
        # Sent in batches, several times the burst the budget allows.
        batch = settings_frame({SETTINGS_INITIAL_WINDOW_SIZE: 65535}) * 200
        self.attack(c, [batch] * (10 * CONTROL_FRAME_BURST // 200))
        self.assertEqual(c.goaway()[1], ENHANCE_YOUR_CALM)
        c.wait_closed()
        c.close()
        self.assert_one_violation(before, "control_frame_flood")
        self.assert_serves()

    def test_ping_flood(self):
        self.start()
        before = self.violations()
        c = H2Client(self.port)
        batch = frame(PING, 0, 0, b"12345678") * 200
        self.attack(c, [batch] * (10 * CONTROL_FRAME_BURST // 200))
        self.assertEqual(c.goaway()[1], ENHANCE_YOUR_CALM)
        c.wait_closed()
        c.close()
        self.assert_one_violation(before, "control_frame_flood")
        self.assert_serves()

    def test_empty_data_flood(self):
        """DATA frames without payload and without END_STREAM on an open request stream."""
        self.start()
        before = self.violations()
        c = H2Client(self.port)
        sid = c.new_id()
        c.send(c.headers(sid, request_block("/slow?ms=2000", method="POST"), end_stream=False))
        batch = frame(DATA, 0, sid) * 100
        self.attack(c, [batch] * (20 * EMPTY_DATA_BURST // 100))
        self.assertEqual(c.goaway()[1], ENHANCE_YOUR_CALM)
        c.wait_closed()
        c.close()
        self.assert_one_violation(before, "empty_data_flood")
        self.assert_serves()

    def test_hpack_bomb(self):
        """A 4 KiB field added to the HPACK dynamic table once, then referenced by index
        thousands of times in one small header block: it decodes to megabytes."""
        self.start()
        before = self.violations()
        rss = self.sluice.rss_bytes()
        c = H2Client(self.port)
        big = literal("x-bomb", "b" * 4000, indexed=True)  # dynamic table entry 62
        refs = 3000
        decoded = refs * (len("x-bomb") + 4000 + 32)
        self.assertGreater(decoded, HEADER_BOMB_FACTOR * MAX_HEADER_LIST_SIZE)
        block = request_block("/") + big + bytes([0x80 | 62]) * refs
        self.assertLess(len(block), 16384)  # one HEADERS frame of the default maximum size
        c.send(c.headers(c.new_id(), block))
        self.assertEqual(c.goaway()[1], ENHANCE_YOUR_CALM)
        c.wait_closed()
        c.close()
        self.assert_one_violation(before, "header_list_bomb")
        self.assert_serves()
        self.assert_rss_bounded(rss)

    def test_broken_hpack_block(self):
        """An indexed field whose index is in neither table: COMPRESSION_ERROR (RFC 9113 §4.3)."""
        self.start()
        before = self.violations()
        c = H2Client(self.port)
        c.send(c.headers(c.new_id(), request_block("/") + hpack_int(5000, 7, 0x80)))
        self.assertEqual(c.goaway()[1], COMPRESSION_ERROR)
        c.wait_closed()
        c.close()
        self.assert_one_violation(before, "compression_error")
        self.assert_serves()

    def test_stream_id_reuse(self):
        """A HEADERS on a stream that already ended. RFC 9113 §5.1 ("closed"): a connection
        error of type STREAM_CLOSED, which is what nghttp2 sends for a stream it knows closed."""
        self.start()
        before = self.violations()
        c = H2Client(self.port)
        first = c.request("/")
        second = c.request("/")
        self.assertEqual(c.response(first), (200, b"ok\n"))
        self.assertEqual(c.response(second), (200, b"ok\n"))
        c.send(c.headers(second, request_block("/")))  # stream 3 again
        last, code = c.goaway()
        self.assertEqual((last, code), (second, STREAM_CLOSED))
        c.wait_closed()
        c.close()
        self.assert_one_violation(before, "protocol_error")
        self.assert_serves()

    def test_even_stream_id(self):
        """A client stream on an even id (RFC 9113 §5.1.1: clients use odd ids): PROTOCOL_ERROR."""
        self.start()
        before = self.violations()
        c = H2Client(self.port)
        c.send(c.headers(2, request_block("/")))
        self.assertEqual(c.goaway()[1], PROTOCOL_ERROR)
        c.wait_closed()
        c.close()
        self.assert_one_violation(before, "protocol_error")
        self.assert_serves()

    def test_lower_unused_stream_id_is_ignored(self):
        """A HEADERS on a lower id the client never used (stream 1 after stream 3). RFC 9113
        §5.1.1 asks for PROTOCOL_ERROR; nghttp2 ignores the block instead, because it cannot tell
        such an id from a closed stream it forgot, on which a client may rightly still send
        trailers after a RST_STREAM it had not seen (nghttp2_session.c,
        session_on_request_headers_received). What must hold: no request is opened on it, no
        state is kept, and the connection goes on."""
        self.start()
        before = self.violations()
        streams = self.sluice.scrape().value("sluice_http2_streams_total", listener="public")
        c = H2Client(self.port)
        c.next_id = 3
        third = c.request("/")
        self.assertEqual(c.response(third), (200, b"ok\n"))
        for _ in range(1000):
            c.send(c.headers(1, request_block("/")))
        self.assertEqual(c.response(c.request("/")), (200, b"ok\n"))
        self.assertEqual(c.goaways, [])
        self.assertNotIn(1, c.streams)
        c.close()
        self.assertEqual(self.sluice.scrape().value("sluice_http2_streams_total",
                                                    listener="public"), streams + 2)
        self.assertEqual(self.violations(), before)

    def test_invalid_frame(self):
        """A frame the protocol forbids where it came: DATA on stream 0 (RFC 9113 §6.1)."""
        self.start()
        before = self.violations()
        c = H2Client(self.port)
        self.assertEqual(c.response(c.request("/")), (200, b"ok\n"))
        c.send(frame(DATA, 0, 0, b"stray"))
        self.assertEqual(c.goaway()[1], PROTOCOL_ERROR)
        c.wait_closed()
        c.close()
        self.assert_one_violation(before, "protocol_error")
        self.assert_serves()

    def test_window_overflow(self):
        """A WINDOW_UPDATE that takes the connection window past 2^31-1 (RFC 9113 §6.9.1)."""
        self.start()
        before = self.violations()
        c = H2Client(self.port)
        inc = struct.pack(">I", 0x7fffffff)
        c.send(frame(WINDOW_UPDATE, 0, 0, inc) * 2)
        self.assertEqual(c.goaway()[1], FLOW_CONTROL_ERROR)
        c.wait_closed()
        c.close()
        self.assert_one_violation(before, "flow_control_error")
        self.assert_serves()

    def test_bad_preface_on_h2c_port(self):
        """The 24-byte magic, then not the SETTINGS frame that must follow it (RFC 9113 §3.4)."""
        self.start()
        before = self.violations()
        c = H2Client(self.port, preface=None)
        c.send(PREFACE + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.goaway()[1], PROTOCOL_ERROR)
        c.wait_closed()
        c.close()
        self.assert_one_violation(before, "bad_preface")
        self.assert_serves()

    def test_bad_preface_over_tls(self):
        """ALPN chose h2, then the client speaks HTTP/1.1: not the connection preface."""
        ca = self.start_with_tls()
        before = self.violations("tls")
        c = H2Client(self.tls_port, tls_ca=ca, preface=b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.alpn, "h2")
        self.assertEqual(c.goaway()[1], PROTOCOL_ERROR)
        c.wait_closed()
        c.close()
        self.assert_one_violation(before, "bad_preface", listener="tls")
        good = H2Client(self.tls_port, tls_ca=ca, first=frame(HEADERS, END_HEADERS | END_STREAM,
                                                              1, request_block("/")))
        self.assertEqual(good.response(1), (200, b"ok\n"))
        good.close()

    # -- not attacks: the stream is refused, the connection lives --

    def test_header_list_over_limit_gets_431(self):
        self.start()
        before = self.violations()
        c = H2Client(self.port)
        # 10 fields of 7,000 bytes: over 60 KiB decoded, far below the bomb factor; in a HEADERS
        # and CONTINUATION frames of at most 16 KiB each.
        block = request_block("/", extra=[(f"x-big-{i}", "v" * 7000) for i in range(10)])
        sid = c.new_id()
        pieces = [block[i:i + 16000] for i in range(0, len(block), 16000)]
        data = frame(HEADERS, END_STREAM, sid, pieces[0])
        for i, piece in enumerate(pieces[1:], 1):
            data += frame(CONTINUATION, END_HEADERS if i == len(pieces) - 1 else 0, sid, piece)
        c.send(data)
        status, _ = c.response(sid)
        self.assertEqual(status, 431)
        self.assertEqual(c.response(c.request("/")), (200, b"ok\n"))
        self.assertEqual(c.goaways, [])
        c.close()
        self.assertEqual(self.violations(), before)

    def test_invalid_pseudo_headers_reset_the_stream_only(self):
        self.start()
        before = self.violations()
        c = H2Client(self.port)
        base = [(":method", "GET"), (":scheme", "http"), (":authority", "sluice.test")]
        cases = {
            "missing :path": base,
            "unknown :foo": base + [(":path", "/"), (":foo", "bar")],
            "upper-case name": base + [(":path", "/"), ("X-Upper", "1")],
            "connection-specific field": base + [(":path", "/"), ("connection", "keep-alive")],
            "pseudo-header after a regular one": base[:2] + [("x-a", "1"), (":path", "/")],
        }
        for what, fields in cases.items():
            with self.subTest(what):
                sid = c.request(pseudo=fields)
                self.assertEqual(c.reset_code(sid), PROTOCOL_ERROR, what)
                # The connection stays usable.
                self.assertEqual(c.response(c.request("/")), (200, b"ok\n"))
        self.assertEqual(c.goaways, [])
        c.close()
        self.assertEqual(self.violations(), before)

    def test_zero_window_stall(self):
        """SETTINGS_INITIAL_WINDOW_SIZE 0 and never a WINDOW_UPDATE, on a large download: the
        stream ends after idle_timeout, sluice did not buffer the response meanwhile, and other
        connections are served."""
        self.start(idle_timeout="1s")
        before = self.violations()
        rss = self.sluice.rss_bytes()
        size = 4 * RSS_BOUND
        c = H2Client(self.port, settings={SETTINGS_INITIAL_WINDOW_SIZE: 0}, window_updates=False)
        sid = c.request(f"/large?n={size}")
        c.wait(lambda: c.streams[sid]["headers"] is not None, "the response head")
        self.assert_serves()
        self.assert_rss_bounded(rss)
        # The stream is cut (its response cannot end), never completed.
        self.assertNotEqual(c.reset_code(sid), None)
        self.assertFalse(c.streams[sid]["ended"])
        self.assertEqual(len(c.streams[sid]["data"]), 0)
        c.close()
        self.assert_serves()
        self.assert_rss_bounded(rss)
        self.assertEqual(self.violations(), before)

    # -- GOAWAY both ways --

    def test_client_goaway_is_honoured(self):
        """A client GOAWAY while its stream 1 is open: the stream still gets its whole response,
        then sluice closes the connection. (The last stream id of a client's GOAWAY names
        server-initiated streams, RFC 9113 §6.8: none here, so 0.)"""
        self.start()
        c = H2Client(self.port)
        sid = c.request("/slow?ms=500")
        c.send(frame(GOAWAY, 0, 0, struct.pack(">II", 0, NO_ERROR)))
        self.assertEqual(c.response(sid), (200, b"slow done\n"))
        c.wait_closed()
        c.close()
        self.assertEqual(self.violations().get("protocol_error"), 0)

    def test_sigterm_sends_goaway_and_lets_the_slow_stream_finish(self):
        sluice = self.start(extra_top="drain_timeout: 20s\n")
        c = H2Client(self.port)
        self.assertEqual(c.response(c.request("/")), (200, b"ok\n"))
        arrived = Backend.started["/slow"]
        sid = c.request("/slow?ms=1500")
        deadline = time.monotonic() + WAIT
        while Backend.started["/slow"] == arrived and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertGreater(Backend.started["/slow"], arrived, "the slow request never arrived")
        sluice.signal(signal.SIGTERM)
        last, code = c.goaway()
        self.assertEqual((last, code), (sid, NO_ERROR))
        self.assertEqual(c.response(sid), (200, b"slow done\n"))
        c.wait_closed()
        c.close()
        self.assertEqual(sluice.wait(), 0)


if __name__ == "__main__":
    unittest.main()
