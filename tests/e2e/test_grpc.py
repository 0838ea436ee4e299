"""gRPC end to end through the built sluice, with a real gRPC client and server (Debian's
python3-grpcio, tests/e2e/grpc_peer.py): HTTP/2 on both sides (h2c and TLS with ALPN h2 from the
client, `protocol: http2` to the backend). Unary, server/client/bidirectional streaming with
10,000 messages, 4 MiB messages, metadata and trailers, error statuses (trailers-only and after
headers), deadlines (grpc-timeout), many concurrent calls, Sluice's own gRPC-shaped replies
(no route, no upstream), the per-route grpc_code counters and the access log field, and the
gRPC health check of a cluster."""

import hashlib
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import tls_peers  # noqa: E402

import grpc  # noqa: E402  (python3-grpcio)
import grpc_peer  # noqa: E402
from grpc_peer import Client, metadata_dict  # noqa: E402

ECHO = "/sluice.test.Echo/"


def grpc_config(peer_endpoint, access_log, tls=None, dead_endpoint=None, health=None):
    """Listeners "public" (h2c) and, with `tls`, "tls" (ALPN h2); routes: the Echo service to the
    peer (HTTP/2), "/sluice.test.Dead/" to a cluster nobody listens on; nothing else."""
    listeners = {"public": 0}
    extra = {"public": "http2: { prior_knowledge: true }\n"}
    if tls:
        listeners["tls"] = 0
        extra["tls"] = tls
    text = harness.config(
        {"grpc": [peer_endpoint], "dead": [dead_endpoint or f"127.0.0.1:{harness.closed_port()}"]},
        [("echo", ECHO, "grpc"), ("dead", "/sluice.test.Dead/", "dead")],
        listeners=listeners, access_log={"path": access_log, "format": "json"},
        extra_listener_keys=extra,
        extra_cluster_keys={"grpc": "protocol: http2\n" + (health or ""),
                            "dead": "protocol: http2\n"})
    return text


class GrpcThroughSluice(harness.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        pki = tls_peers.make_pki(os.path.join(cls.class_tmp(), "pki"))
        cls.ca = pki.ca_cert
        cls.peer = cls.start_class_grpc_peer(name="g1")
        cls.access_log = os.path.join(cls.class_tmp(), "access.json")
        tls = tls_peers.tls_block([(pki.localhost_cert, pki.localhost_key)], alpn=["h2", "http/1.1"])
        cls.sluice = cls.start_class_sluice(grpc_config(cls.peer.endpoint, cls.access_log, tls=tls))

    def client(self, tls=False):
        if tls:
            return Client(f"localhost:{self.sluice.listeners['tls']}", ca=self.ca)
        return Client(f"127.0.0.1:{self.sluice.port}")

    def test_unary_with_metadata_and_trailers(self):
        for tls in (False, True):
            with self.client(tls) as c:
                reply, initial, trailing = c.unary(b"hello", 7, metadata=[("x-a", "1"), ("x-b-bin", b"\x00\xff")])
            self.assertEqual((reply.payload, reply.count), (b"hello", 7))
            initial, trailing = metadata_dict(initial), metadata_dict(trailing)
            self.assertEqual(initial.get("x-backend"), "g1")
            self.assertEqual(initial.get("x-a"), "1")
            self.assertEqual(initial.get("x-b-bin"), b"\x00\xff")
            self.assertEqual(trailing.get("trailer-x-a"), "1")

    def test_server_streaming(self):
        with self.client() as c:
            replies, _, _ = c.server_stream(b"s", 500)
        self.assertEqual([r.count for r in replies], list(range(500)))

    def test_client_streaming(self):
        payloads = [os.urandom(100) for _ in range(2000)]
        with self.client() as c:
            reply, _, _ = c.client_stream(payloads)
        self.assertEqual(reply.count, 2000)
        self.assertEqual(reply.payload, hashlib.sha256(b"".join(payloads)).digest())

    def test_bidi_streaming_10000_messages(self):
        payloads = [i.to_bytes(4, "big") * 8 for i in range(10000)]
        with self.client() as c:
            replies, _, _ = c.bidi(payloads)
        self.assertEqual(len(replies), 10000)
        self.assertEqual([r.payload for r in replies], payloads)

    def test_4mib_messages(self):
        big = os.urandom(4 * 1024 * 1024)
        with self.client() as c:
            reply, _, _ = c.unary(big)
            self.assertEqual(reply.payload, big)
            replies, _, _ = c.bidi([big, big[::-1]])
            self.assertEqual([r.payload for r in replies], [big, big[::-1]])

    def test_error_statuses_pass_end_to_end(self):
        with self.client() as c:
            for headers_first in (False, True):
                md = [("sluice-headers-first", "1")] if headers_first else None
                e = c.fail(5, "no such thing", metadata=md)
                self.assertEqual(e.code(), grpc.StatusCode.NOT_FOUND)
                self.assertEqual(e.details(), "no such thing")
                trailing = metadata_dict(e.trailing_metadata())
                self.assertEqual(trailing.get("x-error-detail"), "fail")
                self.assertEqual(trailing.get("x-error-detail-bin"), b"\x00\x01\xfe\xff")

    def test_deadline_exceeded(self):
        with self.client() as c:
            start = time.monotonic()
            with self.assertRaises(grpc.RpcError) as cm:
                c.slow(10000, timeout=0.5)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
            self.assertLess(time.monotonic() - start, 8.0)
            # The deadline reached the backend as grpc-timeout (gRPC rounds the header's value
            # up to its unit, so the backend may see a little more than 20 s).
            _, initial, _ = c.slow(1, timeout=20)
            self.assertLessEqual(float(metadata_dict(initial)["sluice-deadline-ms"]), 21000)

    def test_route_timeout_after_the_response_head_ends_the_call_with_deadline_exceeded(self):
        # The peer sends its initial metadata at once, then sleeps: the route's 300 ms timeout
        # expires mid-response, long before the client's own 10 s deadline.
        text = grpc_config(self.peer.endpoint, os.path.join(self.tmp, "timeout.json"))
        marker = "            cluster: grpc\n"
        self.assertIn(marker, text)
        text = text.replace(marker, marker + "            timeout: 300ms\n", 1)
        sluice = self.start_sluice(text)
        with Client(f"127.0.0.1:{sluice.port}") as c:
            start = time.monotonic()
            with self.assertRaises(grpc.RpcError) as cm:
                c.slow(5000, timeout=10)
            elapsed = time.monotonic() - start
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertEqual(cm.exception.details(), "upstream request timeout")
        self.assertLess(elapsed, 4.0)

    def test_many_concurrent_calls(self):
        with self.client() as c:
            replies = c.concurrent_unary(2000, parallel=200)
        self.assertEqual([r.count for r in replies], list(range(2000)))

    def test_sluice_answers_in_grpc_shape(self):
        with self.client() as c:
            # No route for this service: UNIMPLEMENTED.
            with self.assertRaises(grpc.RpcError) as cm:
                c.call("Unary", grpc_peer.Message(), service="sluice.test.Nowhere")
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
            # A cluster that does not answer: UNAVAILABLE.
            with self.assertRaises(grpc.RpcError) as cm:
                c.call("Unary", grpc_peer.Message(), service="sluice.test.Dead")
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
            self.assertIn("upstream", cm.exception.details())

    def test_stats_and_access_log(self):
        with self.client() as c:
            c.unary(b"counted")
            c.fail(14, "down")
        m = harness.settled_scrape(self.sluice, lambda m: m.get(
            "sluice_route_grpc_responses_total", 0, route="echo", grpc_code="UNAVAILABLE") >= 1)
        self.assertGreaterEqual(m.value("sluice_route_grpc_responses_total", listener="public",
                                        vhost="app", route="echo", grpc_code="OK"), 1)
        # The JSON view has the same counts, by code name.
        routes = self.sluice.admin_json("/stats?format=json")["routes"]
        echo = [r for r in routes if r["listener"] == "public" and r["route"] == "echo"]
        self.assertEqual(len(echo), 1, routes)
        self.assertGreaterEqual(echo[0]["grpc"]["OK"], 1)
        self.assertGreaterEqual(echo[0]["grpc"]["UNAVAILABLE"], 1)
        self.assertEqual(len(echo[0]["grpc"]), 17)
        deadline = time.time() + 10
        statuses = set()
        while time.time() < deadline and not {0, 14} <= statuses:
            if os.path.exists(self.access_log):
                with open(self.access_log) as f:
                    statuses = {json.loads(x).get("grpc_status") for x in f if ECHO in x}
            time.sleep(0.1)
        self.assertLessEqual({0, 14}, statuses)
        with open(self.access_log) as f:
            protocols = {json.loads(x)["protocol"] for x in f if ECHO in x}
        self.assertEqual(protocols, {"HTTP/2"})


class GrpcHealthCheck(harness.E2ETestCase):
    def test_grpc_health_check_follows_serving_status(self):
        peer = self.start_grpc_peer(name="hc")
        access_log = os.path.join(self.tmp, "access.json")
        # panic_threshold 0: with its only endpoint unhealthy the cluster answers 503 (by default
        # it would balance over all endpoints in panic mode).
        health = ("health_check: { grpc: { service: \"sluice.test.Echo\" }, interval: 200ms, "
                  "timeout: 1s, healthy_threshold: 1, unhealthy_threshold: 1 }\npanic_threshold: 0\n")
        sluice = self.start_sluice(grpc_config(peer.endpoint, access_log, health=health))

        def healthy():
            m = sluice.scrape()
            return m.get("sluice_cluster_endpoints", None, cluster="grpc", state="healthy")

        def wait_for(value):
            deadline = time.time() + 15
            while time.time() < deadline and healthy() != value:
                time.sleep(0.1)
            self.assertEqual(healthy(), value)

        wait_for(1)
        peer.set_health("sluice.test.Echo", grpc_peer.NOT_SERVING)
        wait_for(0)
        with Client(f"127.0.0.1:{sluice.port}") as c:
            with self.assertRaises(grpc.RpcError) as cm:
                c.unary(b"x")
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        peer.set_health("sluice.test.Echo", grpc_peer.SERVING)
        wait_for(1)
        with Client(f"127.0.0.1:{sluice.port}") as c:
            reply, _, _ = c.unary(b"back")
        self.assertEqual(reply.payload, b"back")


if __name__ == "__main__":
    unittest.main()
