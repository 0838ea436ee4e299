"""The gRPC peer (grpc_peer.py) against its own client, no Sluice in between: every call shape the
HTTP/2 and gRPC e2e tests send through Sluice works straight to the peer, over h2c and over TLS,
and a non-gRPC HTTP/2 client (curl) gets a well-formed gRPC answer. So a failure of those tests
is Sluice's, not the peer's.

Run: ctest -R e2e.test_grpc_peer_selftest (or /usr/bin/python3 tests/e2e/test_grpc_peer_selftest.py).
"""

import hashlib
import os
import socket
import ssl
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import grpc_peer  # noqa: E402
import harness  # noqa: E402
import tls_peers  # noqa: E402
from grpc_peer import metadata_dict  # noqa: E402

MIB = 1024 * 1024


class GrpcPeerH2c(harness.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        cls.peer = cls.start_class_grpc_peer(name="g1")

    def client(self):
        c = grpc_peer.Client(self.peer.endpoint)
        self.addCleanup(c.close)
        return c

    def test_unary_echoes_message_and_metadata(self):
        md = [("x-request-tag", "abc"), ("x-blob-bin", b"\x00\xffbin"), ("other", "not echoed")]
        reply, initial, trailing = self.client().unary(b"hello", 7, metadata=md, timeout=20)
        self.assertEqual((reply.payload, reply.count), (b"hello", 7))
        initial, trailing = metadata_dict(initial), metadata_dict(trailing)
        self.assertEqual(initial["x-backend"], "g1")
        self.assertEqual(initial["x-request-tag"], "abc")
        self.assertEqual(initial["x-blob-bin"], b"\x00\xffbin")
        self.assertNotIn("other", initial)
        # The deadline the call arrived with (grpc-timeout), about the 20 s sent: gRPC rounds
        # the header's value up to its unit, so it may be a little more (20,099 ms seen in CI),
        # the bound test_grpc.py uses for the same header.
        self.assertTrue(10_000 < int(initial["sluice-deadline-ms"]) <= 21_000, initial)
        self.assertEqual(trailing["trailer-x-request-tag"], "abc")
        self.assertEqual(trailing["trailer-x-blob-bin"], b"\x00\xffbin")

    def test_no_deadline_no_deadline_metadata(self):
        _, initial, _ = self.client().unary(b"x", timeout=None)
        self.assertNotIn("sluice-deadline-ms", metadata_dict(initial))

    def test_server_stream(self):
        replies, initial, _ = self.client().server_stream(b"chunk", 1000)
        self.assertEqual([r.count for r in replies], list(range(1000)))
        self.assertTrue(all(r.payload == b"chunk" for r in replies))
        self.assertEqual(metadata_dict(initial)["x-backend"], "g1")

    def test_client_stream(self):
        payloads = [os.urandom(100) for _ in range(1000)]
        reply, _, _ = self.client().client_stream(payloads)
        self.assertEqual(reply.count, 1000)
        self.assertEqual(reply.payload, hashlib.sha256(b"".join(payloads)).digest())

    def test_bidi_10000_messages(self):
        payloads = [i.to_bytes(4, "big") * 8 for i in range(10_000)]
        replies, _, trailing = self.client().bidi(payloads, metadata=[("x-bidi", "1")])
        self.assertEqual(len(replies), 10_000)
        self.assertEqual([r.payload for r in replies], payloads)
        self.assertEqual([r.count for r in replies], list(range(10_000)))
        self.assertEqual(metadata_dict(trailing)["trailer-x-bidi"], "1")

    def test_4mib_messages_every_shape(self):
        big = os.urandom(4 * MIB)
        c = self.client()
        reply, _, _ = c.unary(big)
        self.assertEqual(reply.payload, big)
        replies, _, _ = c.server_stream(big, 3)
        self.assertEqual([r.payload == big for r in replies], [True] * 3)
        reply, _, _ = c.client_stream([big, big])
        self.assertEqual(reply.payload, hashlib.sha256(big + big).digest())
        replies, _, _ = c.bidi([big] * 3)
        self.assertEqual([r.payload == big for r in replies], [True] * 3)

    def test_error_status_message_and_trailers(self):
        e = self.client().fail(7, "no entry for you", metadata=[("x-why", "test")])
        self.assertEqual(e.code(), grpc.StatusCode.PERMISSION_DENIED)
        self.assertEqual(e.details(), "no entry for you")
        trailing = metadata_dict(e.trailing_metadata())
        self.assertEqual(trailing["x-error-detail"], "fail")
        self.assertEqual(trailing["x-error-detail-bin"], grpc_peer.FAIL_DETAIL_BIN)
        self.assertEqual(trailing["trailer-x-why"], "test")
        self.assertEqual(trailing["x-backend"], "g1")
        # Trailers-only: no initial metadata of its own.
        self.assertNotIn("x-backend", metadata_dict(e.initial_metadata()))

    def test_error_after_headers(self):
        e = self.client().fail(14, "", metadata=[("sluice-headers-first", "1")])
        self.assertEqual(e.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(e.details(), "requested failure")
        self.assertEqual(metadata_dict(e.initial_metadata())["x-backend"], "g1")

    def test_every_status_code(self):
        c = self.client()
        for code in grpc.StatusCode:
            if code is grpc.StatusCode.OK:
                continue
            self.assertEqual(c.fail(code.value[0]).code(), code)

    def test_slow_call_and_deadline(self):
        c = self.client()
        reply, _, _ = c.slow(300, timeout=10)
        self.assertEqual(reply.count, 300)
        with self.assertRaises(grpc.RpcError) as ctx:
            c.slow(5000, timeout=0.3)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)

    def test_health(self):
        c = self.client()
        self.assertEqual(c.health(""), grpc_peer.SERVING)
        self.assertEqual(c.health(grpc_peer.SERVICE), grpc_peer.SERVING)
        self.peer.set_health("svc.a", grpc_peer.NOT_SERVING)
        self.assertEqual(c.health("svc.a"), grpc_peer.NOT_SERVING)
        self.peer.set_health("svc.a", grpc_peer.SERVING)
        self.assertEqual(c.health("svc.a"), grpc_peer.SERVING)
        self.peer.set_health("svc.a", 0)
        with self.assertRaises(grpc.RpcError) as ctx:
            c.health("svc.a")
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_many_concurrent_calls(self):
        # 2,000 calls, 200 in flight on one channel (streams of one connection), and 8 channels
        # (connections) doing the same at once.
        errors = []

        def run(n):
            try:
                with grpc_peer.Client(self.peer.endpoint) as c:
                    replies = c.concurrent_unary(250, payload=b"p%d" % n, parallel=200)
                if [r.count for r in replies] != list(range(250)):
                    errors.append(f"client {n}: replies out of order or missing")
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(f"client {n}: {e!r}")
        before = self.peer.calls().get("Unary", 0)
        threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        self.assertEqual(self.peer.calls()["Unary"] - before, 2000)

    def test_curl_speaks_grpc_to_it(self):
        # A plain HTTP/2 client (what a proxy is to the peer): one framed Message POSTed over h2c
        # prior knowledge gets 200, content-type application/grpc, the framed reply and
        # grpc-status 0 in the trailers.
        curl = harness.require_program("curl", "curl")
        frame = grpc_peer.grpc_frame(grpc_peer.Message(payload=b"from curl", count=3))
        path = os.path.join(self.tmp, "req.bin")
        with open(path, "wb") as f:
            f.write(frame)
        out = subprocess.run(
            [curl, "-sS", "-v", "--http2-prior-knowledge", "--max-time", "20",
             "-H", "content-type: application/grpc", "-H", "te: trailers",
             "--data-binary", f"@{path}", "-o", os.path.join(self.tmp, "resp.bin"),
             f"http://{self.peer.endpoint}/{grpc_peer.SERVICE}/Unary"],
            capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("< HTTP/2 200", out.stderr)
        self.assertIn("< content-type: application/grpc", out.stderr)
        self.assertIn("< grpc-status: 0", out.stderr)
        with open(os.path.join(self.tmp, "resp.bin"), "rb") as f:
            self.assertEqual(f.read(), frame)


class GrpcPeerTls(harness.E2ETestCase):
    def test_tls_with_alpn_h2(self):
        pki = tls_peers.make_pki(os.path.join(self.tmp, "pki"))
        peer = self.start_grpc_peer(name="gtls", tls=(pki.localhost_cert, pki.localhost_key),
                                    ca=pki.ca_cert)
        with grpc_peer.Client(peer.endpoint, ca=pki.ca_cert) as c:
            reply, initial, _ = c.unary(b"secure")
            self.assertEqual(reply.payload, b"secure")
            self.assertEqual(metadata_dict(initial)["x-backend"], "gtls")
            replies, _, _ = c.bidi([b"a"] * 100)
            self.assertEqual(len(replies), 100)
        self.assertEqual(peer.calls()["Unary"], 1)
        # What a proxy's TLS upstream sees: ALPN h2 (offered with http/1.1), a verified chain.
        ctx = ssl.create_default_context(cafile=pki.ca_cert)
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with socket.create_connection(("127.0.0.1", peer.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                self.assertEqual(s.selected_alpn_protocol(), "h2")


class GrpcPeerStops(harness.E2ETestCase):
    def test_sigterm_stops_it_cleanly(self):
        peer = grpc_peer.GrpcPeer(self.tmp, name="g2").start()
        self.addCleanup(peer.kill)
        with grpc_peer.Client(peer.endpoint) as c:
            c.unary(b"x")
        self.assertEqual(peer.stop(), 0, peer.stderr())
        self.assertFalse(harness.port_accepts(peer.port))


if __name__ == "__main__":
    unittest.main()
