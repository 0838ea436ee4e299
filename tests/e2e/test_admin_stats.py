"""The admin server and the Prometheus metrics of the built sluice, in front of the Jetty example.

Every test starts its own sluice (admin on an ephemeral port) in front of one shared Jetty, sends a
known number of requests and checks that the numbers move by exactly that much.
"""

import hashlib
import json
import os
import re
import resource
import signal
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (closed_port, config, request, route_labels,  # noqa: E402
                     settled_after)

RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
UNROUTED = {"listener": "public", "vhost": "-", "route": "-"}
CODE_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")

# Family → type, as the brief and README promise them.
FAMILIES = {
    "sluice_route_requests_total": "counter",
    "sluice_route_requests_active": "gauge",
    "sluice_route_request_duration_seconds": "histogram",
    "sluice_route_upstream_duration_seconds": "histogram",
    "sluice_route_received_bytes_total": "counter",
    "sluice_route_sent_bytes_total": "counter",
    "sluice_route_local_replies_total": "counter",
    "sluice_route_grpc_responses_total": "counter",  # HELP and TYPE only until a gRPC exchange
    "sluice_cluster_upstream_requests_total": "counter",
    "sluice_cluster_upstream_connections_total": "counter",
    "sluice_cluster_upstream_connections_active": "gauge",
    "sluice_cluster_upstream_connections_idle": "gauge",
    "sluice_cluster_connect_failures_total": "counter",
    "sluice_cluster_upstream_connection_reuse_total": "counter",
    "sluice_cluster_endpoints": "gauge",
    "sluice_endpoint_requests_total": "counter",
    "sluice_endpoint_requests_active": "gauge",
    "sluice_endpoint_connections_active": "gauge",
    "sluice_endpoint_connect_failures_total": "counter",
    "sluice_listener_downstream_connections_total": "counter",
    "sluice_listener_downstream_connections_active": "gauge",
    "sluice_listener_requests_total": "counter",
    "sluice_server_uptime_seconds": "gauge",
    "sluice_server_workers": "gauge",
    "sluice_server_reloads_total": "counter",
    "sluice_server_config_info": "gauge",
    "sluice_server_resident_memory_bytes": "gauge",
    "sluice_server_open_fds": "gauge",
    "sluice_access_log_dropped_lines_total": "counter",
    # Families of TLS listeners (none here: HELP and TYPE only) and of loaded certificates.
    "sluice_tls_handshakes_total": "counter",
    "sluice_tls_resumed_handshakes_total": "counter",
    "sluice_tls_handshake_failures_total": "counter",
    "sluice_tls_handshakes_by_version_total": "counter",
    "sluice_tls_handshakes_by_cipher_total": "counter",
    "sluice_tls_certificate_expiry_timestamp_seconds": "gauge",
    "sluice_tls_reload_failures_total": "counter",
}


def poll(fn, timeout=10.0, interval=0.02):
    """Calls fn() until it returns a truthy value or `timeout` passes; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


class AdminAndStats(harness.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        cls.jetty = cls.start_class_jetty(name="j1")

    def setUp(self):
        super().setUp()
        self.dead_endpoint = f"127.0.0.1:{closed_port()}"
        self.sluice = self.start_sluice(config(
            clusters={"jetty": [self.jetty.endpoint], "dead": [self.dead_endpoint]},
            routes=[("echo", "/echo", "jetty"), ("slow", "/slow", "jetty"),
                    ("upload", "/upload", "jetty"), ("dead", "/dead", "dead")]))

    # -- helpers --

    def get(self, path, **kw):
        return request(self.sluice.port, "GET", path, **kw)

    def assert_histogram_consistent(self, m, name, labels):
        buckets, total, count = m.histogram(name, **labels)
        self.assertGreater(len(buckets), 1, f"{name}{labels} has no buckets")
        les = [le for le, _ in buckets]
        self.assertEqual(les, sorted(les), f"{name}{labels}: le not increasing: {les}")
        self.assertEqual(les[-1], float("inf"), f"{name}{labels}: last bucket is not +Inf")
        values = [v for _, v in buckets]
        for a, b in zip(values, values[1:]):
            self.assertLessEqual(a, b, f"{name}{labels}: buckets decrease: {values}")
        self.assertEqual(values[-1], count, f"{name}{labels}: +Inf bucket != _count")
        self.assertGreaterEqual(total, 0.0)
        if count == 0:
            self.assertEqual(total, 0.0)
        return count

    # -- tests --

    def test_promtool_accepts_a_scrape_after_200_404_503(self):
        for _ in range(3):
            self.assertEqual(self.get("/echo").status, 200)
        self.assertEqual(self.get("/nothing/here").status, 404)
        self.assertEqual(self.get("/dead").status, 503)
        settled_after(self.sluice, 5)
        self.assert_promtool_accepts(self.sluice.scrape_text())
        m = self.sluice.scrape()
        for fam, typ in FAMILIES.items():
            self.assertEqual(m.types.get(fam), typ, f"family {fam}")
            self.assertTrue(m.helps.get(fam), f"family {fam} has no HELP")
        # Every sample of the documented families uses only the documented label names.
        allowed = {
            "sluice_route_": {"listener", "vhost", "route", "code_class", "reason", "le",
                              "grpc_code"},
            "sluice_cluster_": {"cluster", "code_class", "state"},
            "sluice_endpoint_": {"cluster", "endpoint"},
            "sluice_listener_": {"listener"},
            "sluice_server_": {"result", "version", "sha256"},
            "sluice_access_log_": set(),
            "sluice_tls_": {"listener", "cluster", "certificate", "reason", "version", "cipher"},
        }
        for (name, labels), _ in m.samples.items():
            self.assertTrue(name.startswith("sluice_"), name)
            if m.family_of(name) not in FAMILIES:
                continue
            prefix = next(p for p in allowed if name.startswith(p))
            self.assertLessEqual({k for k, _ in labels}, allowed[prefix], f"{name}{dict(labels)}")
        for labels, _ in m.find("sluice_route_requests_total"):
            self.assertIn(labels["code_class"], CODE_CLASSES)

    def test_counters_move_by_exactly_the_requests_sent(self):
        m0 = self.sluice.scrape()
        echo = route_labels("echo")
        bodies = 0
        for i in range(7):
            r = self.get(f"/echo?i={i}")  # a fresh client connection each
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("x-backend"), "j1")
            bodies += len(r.body)
        m1 = settled_after(self.sluice, 7)

        def delta(name, **labels):
            return m1.value(name, **labels) - m0.value(name, **labels)

        for cc in CODE_CLASSES:
            self.assertEqual(delta("sluice_route_requests_total", **echo, code_class=cc),
                             7 if cc == "2xx" else 0, cc)
            self.assertEqual(delta("sluice_cluster_upstream_requests_total", cluster="jetty",
                                   code_class=cc), 7 if cc == "2xx" else 0, cc)
        self.assertEqual(delta("sluice_route_request_duration_seconds_count", **echo), 7)
        self.assertEqual(delta("sluice_route_upstream_duration_seconds_count", **echo), 7)
        self.assertGreater(delta("sluice_route_request_duration_seconds_sum", **echo), 0)
        self.assertEqual(delta("sluice_route_sent_bytes_total", **echo), bodies)
        self.assertEqual(delta("sluice_route_received_bytes_total", **echo), 0)
        self.assertEqual(delta("sluice_endpoint_requests_total", cluster="jetty",
                               endpoint=self.jetty.endpoint), 7)
        self.assertEqual(delta("sluice_listener_requests_total", listener="public"), 7)
        self.assertEqual(delta("sluice_listener_downstream_connections_total", listener="public"), 7)
        # Each upstream request went on a new connection or a pooled one, never both, never none.
        self.assertEqual(delta("sluice_cluster_upstream_connections_total", cluster="jetty")
                         + delta("sluice_cluster_upstream_connection_reuse_total", cluster="jetty"),
                         7)
        for reason_labels, v in m1.find("sluice_route_local_replies_total", **echo):
            self.assertEqual(v, 0, reason_labels)
        self.assertEqual(m1.value("sluice_route_requests_active", **echo), 0)
        self.assertEqual(m1.value("sluice_endpoint_requests_active", cluster="jetty",
                                  endpoint=self.jetty.endpoint), 0)
        for name in ("sluice_route_request_duration_seconds",
                     "sluice_route_upstream_duration_seconds"):
            self.assertEqual(self.assert_histogram_consistent(m1, name, echo),
                             m1.value(name + "_count", **echo))
            self.assert_histogram_consistent(m0, name, echo)
        # The pool: every upstream connection Sluice has open is idle now.
        self.assertEqual(m1.value("sluice_cluster_upstream_connections_active", cluster="jetty"),
                         m1.value("sluice_cluster_upstream_connections_idle", cluster="jetty"))
        self.assertGreaterEqual(m1.value("sluice_cluster_upstream_connections_idle",
                                         cluster="jetty"), 1)

    def test_body_bytes_and_active_gauges(self):
        m0 = self.sluice.scrape()
        up = route_labels("upload")
        payload = b"x" * 12345
        r = request(self.sluice.port, "POST", "/upload", body=payload)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.text, f"bytes: 12345\nsha256: {hashlib.sha256(payload).hexdigest()}\n")
        m1 = settled_after(self.sluice, 1)
        self.assertEqual(m1.value("sluice_route_received_bytes_total", **up)
                         - m0.value("sluice_route_received_bytes_total", **up), 12345)
        self.assertEqual(m1.value("sluice_route_sent_bytes_total", **up)
                         - m0.value("sluice_route_sent_bytes_total", **up), len(r.body))

        # A request in flight shows in the active gauges, and leaves them when it is done.
        slow = route_labels("slow")
        result = {}
        t = threading.Thread(target=lambda: result.update(r=self.get("/slow?ms=1500")))
        t.start()
        try:
            seen = poll(lambda: self.sluice.scrape().get("sluice_route_requests_active", **slow) == 1)
            self.assertTrue(seen, "sluice_route_requests_active{route=slow} never reached 1")
            m = self.sluice.scrape()
            self.assertEqual(m.value("sluice_endpoint_requests_active", cluster="jetty",
                                     endpoint=self.jetty.endpoint), 1)
            # The earlier POST's connection is closed by the client; once sluice has seen that,
            # the slow request's connection is the only one.
            self.assertTrue(poll(lambda: self.sluice.scrape().value(
                "sluice_listener_downstream_connections_active", listener="public") == 1),
                "sluice_listener_downstream_connections_active never settled at 1")
        finally:
            t.join(30)
        self.assertEqual(result["r"].status, 200)
        self.assertEqual(result["r"].body, b"slow 1500\n")
        m = settled_after(self.sluice, 2)
        self.assertEqual(m.value("sluice_route_requests_active", **slow), 0)
        self.assertEqual(m.value("sluice_endpoint_requests_active", cluster="jetty",
                                 endpoint=self.jetty.endpoint), 0)
        self.assertTrue(poll(lambda: self.sluice.scrape().value(
            "sluice_listener_downstream_connections_active", listener="public") == 0),
            "the closed client connection is still counted as active")

    def test_no_route_counts_as_local_reply_on_route_dash(self):
        m0 = self.sluice.scrape()
        body_bytes = 0
        for path in ("/nothing", "/also/nothing", "/x?y=z"):
            r = self.get(path)
            self.assertEqual(r.status, 404, r)
            self.assertIn(b"no route", r.body)
            body_bytes += len(r.body)
        m1 = settled_after(self.sluice, 3)

        def delta(name, **labels):
            return m1.value(name, **labels) - m0.get(name, 0, **labels)

        self.assertEqual(delta("sluice_route_local_replies_total", **UNROUTED, reason="no_route"), 3)
        self.assertEqual(delta("sluice_route_requests_total", **UNROUTED, code_class="4xx"), 3)
        self.assertEqual(delta("sluice_route_request_duration_seconds_count", **UNROUTED), 3)
        # Local-reply bodies count as sent bytes: they are what the client received.
        self.assertGreater(body_bytes, 0)
        self.assertEqual(delta("sluice_route_sent_bytes_total", **UNROUTED), body_bytes)
        for labels, v in m1.find("sluice_route_local_replies_total", **UNROUTED):
            if labels["reason"] != "no_route":
                self.assertEqual(v, 0, labels)
        # Nothing went upstream.
        self.assertEqual(delta("sluice_route_upstream_duration_seconds_count", **UNROUTED), 0)
        for cc in CODE_CLASSES:
            self.assertEqual(delta("sluice_cluster_upstream_requests_total", cluster="jetty",
                                   code_class=cc), 0)
        # Configured routes did not count them.
        for labels, v in m1.find("sluice_route_requests_total", listener="public", vhost="app"):
            self.assertEqual(v - m0.get("sluice_route_requests_total", 0, **labels), 0, labels)

    def test_local_replies_answer_each_request_once_on_keep_alive(self):
        # A 404 (no route) and a 503 (connect failure) keep the connection open; the next
        # request on it must get its own response, not another copy of the local reply.
        with socket.create_connection(("127.0.0.1", self.sluice.port), timeout=10) as sock:
            stream = sock.makefile("rb")
            for path, status in (("/nothing", 404), ("/echo", 200), ("/dead", 503),
                                 ("/echo", 200)):
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
                r = harness.read_response(stream)
                self.assertEqual(r.status, status, f"GET {path}: {r}")
                if status == 200:
                    self.assertEqual(r.header("x-backend"), "j1", r)
            # Nothing more arrives: one request, one response.
            sock.settimeout(0.5)
            try:
                extra = stream.read1(65536)  # what is buffered already, else one read
            except OSError:  # the timeout: nothing came
                extra = b""
            self.assertEqual(extra, b"", "bytes after the last response")
        m = settled_after(self.sluice, 4)
        self.assertEqual(m.value("sluice_route_local_replies_total", **UNROUTED,
                                 reason="no_route"), 1)
        self.assertEqual(m.value("sluice_route_local_replies_total", **route_labels("dead"),
                                 reason="connect_failure"), 1)
        self.assertEqual(m.value("sluice_listener_requests_total", listener="public"), 4)

    def test_connect_failure(self):
        m0 = self.sluice.scrape()
        for _ in range(2):
            r = self.get("/dead")
            self.assertEqual(r.status, 503, r)
            self.assertIn(b"upstream connect error", r.body)
        m1 = settled_after(self.sluice, 2)
        dead = route_labels("dead")

        def delta(name, **labels):
            return m1.value(name, **labels) - m0.value(name, **labels)

        self.assertEqual(delta("sluice_route_local_replies_total", **dead,
                               reason="connect_failure"), 2)
        self.assertEqual(delta("sluice_route_requests_total", **dead, code_class="5xx"), 2)
        self.assertEqual(delta("sluice_cluster_connect_failures_total", cluster="dead"), 2)
        self.assertEqual(delta("sluice_endpoint_connect_failures_total", cluster="dead",
                               endpoint=self.dead_endpoint), 2)
        self.assertEqual(delta("sluice_cluster_upstream_connections_total", cluster="dead"), 0)
        for cc in CODE_CLASSES:  # no upstream ever answered
            self.assertEqual(delta("sluice_cluster_upstream_requests_total", cluster="dead",
                                   code_class=cc), 0)
        self.assertEqual(delta("sluice_cluster_connect_failures_total", cluster="jetty"), 0)
        clusters = self.sluice.admin_json("/clusters?format=json")
        (ep,) = [e for e in clusters["endpoints"] if e["cluster"] == "dead"]
        self.assertEqual(ep["endpoint"], self.dead_endpoint)
        self.assertEqual(ep["connect_failures"], 2)

    def test_ready_and_healthcheck_fail_ok(self):
        r = self.sluice.admin("GET", "/ready")
        self.assertEqual((r.status, r.text), (200, "ready\n"))
        r = self.sluice.admin("POST", "/healthcheck/fail")
        self.assertEqual(r.status, 200, r)
        r = self.sluice.admin("GET", "/ready")
        self.assertEqual(r.status, 503, r)
        self.assertEqual(self.sluice.server_info()["state"], "failing")
        # Failing the health check drains traffic from a load balancer; it does not stop serving.
        self.assertEqual(self.get("/echo").status, 200)
        self.assertEqual(self.sluice.admin("GET", "/healthcheck/ok").status, 405)
        self.assertEqual(self.sluice.admin("GET", "/ready").status, 503)
        r = self.sluice.admin("POST", "/healthcheck/ok")
        self.assertEqual(r.status, 200, r)
        r = self.sluice.admin("GET", "/ready")
        self.assertEqual((r.status, r.text), (200, "ready\n"))
        self.assertEqual(self.sluice.server_info()["state"], "serving")

    def test_ready_says_draining_during_sigterm_drain(self):
        result = {}
        t = threading.Thread(target=lambda: result.update(r=self.get("/slow?ms=2000")))
        t.start()
        try:
            self.assertTrue(poll(lambda: self.sluice.scrape().get(
                "sluice_route_requests_active", **route_labels("slow")) == 1),
                "the slow request never became active")
            self.sluice.signal(signal.SIGTERM)
            r = poll(lambda: (lambda x: x if x.status == 503 else None)(
                self.sluice.admin("GET", "/ready")), timeout=10)
            self.assertIsNotNone(r, "/ready never answered 503 after SIGTERM")
            self.assertEqual(r.text, "draining\n")
            self.assertEqual(self.sluice.server_info()["state"], "draining")
        finally:
            t.join(30)
        self.assertEqual(result["r"].status, 200)
        self.assertEqual(result["r"].body, b"slow 2000\n")
        self.assertEqual(self.sluice.wait(30), 0)

    def test_server_info(self):
        with open(self.sluice.config_path, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        version = harness.run_sluice(["--version"]).stdout.decode().strip()
        info = self.sluice.server_info()
        self.assertEqual(set(info), {"version", "state", "uptime_seconds", "workers", "config",
                                     "last_reload", "reloads"})
        self.assertEqual(f"sluice {info['version']}", version)
        self.assertEqual(info["state"], "serving")
        self.assertIsInstance(info["uptime_seconds"], (int, float))
        self.assertGreaterEqual(info["uptime_seconds"], 0)
        self.assertEqual(info["workers"], 2)
        self.assertEqual(info["workers"], self.sluice.workers)
        self.assertEqual(info["config"]["path"], self.sluice.config_path)
        self.assertEqual(info["config"]["version"], 1)
        self.assertEqual(info["config"]["sha256"], sha)
        self.assertRegex(info["config"]["applied_at"], RFC3339_MS)
        self.assertEqual(info["last_reload"], {"time": None, "result": None, "error": None})
        self.assertEqual(info["reloads"], {"success": 0, "failed": 0})
        later = self.sluice.server_info()
        self.assertGreaterEqual(later["uptime_seconds"], info["uptime_seconds"])

        m = self.sluice.scrape()
        self.assertEqual(m.value("sluice_server_workers"), 2)
        self.assertEqual(m.value("sluice_server_reloads_total", result="success"), 0)
        self.assertEqual(m.value("sluice_server_reloads_total", result="failed"), 0)
        self.assertEqual(m.value("sluice_server_config_info", version="1", sha256=sha), 1)
        self.assertEqual(len(m.find("sluice_server_config_info")), 1)
        self.assertGreater(m.value("sluice_server_resident_memory_bytes"), 1 << 20)
        fds = self.sluice.open_fds()
        self.assertLessEqual(abs(m.value("sluice_server_open_fds") - fds), 3,
                             f"sluice_server_open_fds vs /proc/PID/fd ({fds})")
        self.assertEqual(m.value("sluice_cluster_endpoints", cluster="jetty", state="healthy"), 1)
        self.assertEqual(m.value("sluice_cluster_endpoints", cluster="jetty", state="unhealthy"), 0)

    def test_config_dump_has_defaults_filled_in(self):
        dump = self.sluice.admin_json("/config_dump")
        self.assertEqual(dump["source_path"], self.sluice.config_path)
        self.assertEqual(dump["workers"], 2)
        self.assertEqual(dump["admin"], {"address": "127.0.0.1:0"})
        self.assertEqual(dump["drain_timeout"], "15000ms")
        (listener,) = dump["listeners"]
        self.assertEqual(listener["name"], "public")
        self.assertEqual(listener["address"], "127.0.0.1:0")
        # Not in the file: defaults.
        self.assertEqual(listener["idle_timeout"], "60000ms")
        self.assertEqual(listener["request_headers_timeout"], "10000ms")
        self.assertEqual(listener["max_request_headers_size"], 60 * 1024)
        self.assertEqual(listener["max_request_headers_count"], 100)
        self.assertEqual(listener["max_request_body_size"], 0)
        self.assertIsNone(listener["access_log"])
        (vhost,) = listener["virtual_hosts"]
        self.assertEqual(vhost["domains"], ["*"])
        self.assertEqual([r["name"] for r in vhost["routes"]], ["echo", "slow", "upload", "dead"])
        echo = vhost["routes"][0]
        self.assertEqual(echo["match"]["prefix"], "/echo")
        self.assertEqual(echo["cluster"], "jetty")
        self.assertEqual(echo["timeout"], "15000ms")
        self.assertIsNone(echo["prefix_rewrite"])
        clusters = {c["name"]: c for c in dump["clusters"]}
        self.assertEqual(set(clusters), {"jetty", "dead"})
        jetty = clusters["jetty"]
        self.assertEqual(jetty["lb"], "round_robin")
        self.assertEqual(jetty["connect_timeout"], "2000ms")  # set in the file
        self.assertEqual(jetty["idle_timeout"], "20000ms")    # default
        self.assertEqual(jetty["max_idle_connections"], 64)
        self.assertEqual(jetty["endpoints"], [{"address": self.jetty.endpoint, "weight": 1}])

    def test_clusters_text_and_json(self):
        for _ in range(3):
            self.assertEqual(self.get("/echo").status, 200)
        settled_after(self.sluice, 3)
        js = self.sluice.admin_json("/clusters?format=json")
        self.assertEqual(set(js), {"endpoints"})
        by_key = {(e["cluster"], e["endpoint"]): e for e in js["endpoints"]}
        self.assertEqual(set(by_key), {("jetty", self.jetty.endpoint), ("dead", self.dead_endpoint)})
        ep = by_key[("jetty", self.jetty.endpoint)]
        # The documented fields (later versions may add more).
        self.assertLessEqual({"cluster", "endpoint", "state", "weight", "connections_active",
                              "requests_active", "requests_total", "connect_failures"}, set(ep))
        self.assertEqual(ep["state"], "healthy")
        self.assertEqual(ep["weight"], 1)
        self.assertEqual(ep["requests_total"], 3)
        self.assertEqual(ep["requests_active"], 0)
        self.assertEqual(ep["connect_failures"], 0)
        self.assertGreaterEqual(ep["connections_active"], 1)  # pooled, idle
        r = self.sluice.admin("GET", "/clusters")
        self.assertEqual(r.status, 200)
        self.assertIn(f"jetty::{self.jetty.endpoint}::requests_total::3\n", r.text)
        self.assertIn(f"jetty::{self.jetty.endpoint}::state::healthy\n", r.text)
        self.assertIn(f"dead::{self.dead_endpoint}::connect_failures::0\n", r.text)

    def test_unknown_admin_path_is_404_listing_endpoints(self):
        r = self.sluice.admin("GET", "/nope")
        self.assertEqual(r.status, 404, r)
        for endpoint in ("/stats/prometheus", "/stats", "/ready", "/server_info", "/config_dump",
                         "/clusters", "/healthcheck/fail", "/healthcheck/ok"):
            self.assertIn(endpoint, r.text)
        self.assertIn("/nope", r.text)
        self.assertEqual(self.sluice.admin("POST", "/stats/prometheus").status, 405)

    def test_stats_json_and_text(self):
        for _ in range(4):
            self.assertEqual(self.get("/echo").status, 200)
        self.assertEqual(self.get("/nothing").status, 404)
        settled_after(self.sluice, 5)
        r = self.sluice.admin("GET", "/stats?format=json")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("content-type", "").startswith("application/json"), r.headers)
        js = json.loads(r.text)
        self.assertEqual(js["server"]["workers"], 2)
        self.assertEqual(js["server"]["config_version"], 1)
        self.assertEqual(js["server"]["reloads"], {"success": 0, "failed": 0})
        routes = {(x["listener"], x["vhost"], x["route"]): x for x in js["routes"]}
        echo = routes[("public", "app", "echo")]
        self.assertEqual(echo["requests"]["2xx"], 4)
        self.assertEqual(echo["duration_seconds"]["count"], 4)
        self.assertEqual(routes[("public", "-", "-")]["local_replies"]["no_route"], 1)
        clusters = {x["cluster"]: x for x in js["clusters"]}
        self.assertEqual(clusters["jetty"]["upstream_requests"]["2xx"], 4)
        self.assertEqual(clusters["jetty"]["endpoints"], {"healthy": 1, "unhealthy": 0})
        (listener,) = js["listeners"]
        self.assertEqual(listener["requests_total"], 5)

        text = self.sluice.admin("GET", "/stats")
        self.assertEqual(text.status, 200)
        self.assertIn("route.public.app.echo.requests.2xx: 4\n", text.text)
        self.assertIn("cluster.jetty.upstream_requests.2xx: 4\n", text.text)
        self.assertIn("server.workers: 2\n", text.text)


class AdminLimits(harness.E2ETestCase):
    """Descriptor exhaustion and the admin connection limit. No backend needed: the cluster's
    endpoint is never used."""

    ADMIN_MAX_CONNECTIONS = 64  # kMaxAdminConnections, documented in the README

    def start(self):
        return self.start_sluice(config(clusters={"none": [f"127.0.0.1:{closed_port()}"]},
                                        routes=[("all", "/", "none")], workers=1))

    @staticmethod
    def ask_ready(sock):
        """One keep-alive GET /ready on `sock`; the status, or None when the server closed."""
        stream = sock.makefile("rb")
        try:
            sock.sendall(b"GET /ready HTTP/1.1\r\nhost: admin\r\n\r\n")
            return harness.read_response(stream).status
        except (ConnectionError, OSError):
            return None
        finally:
            stream.close()

    def test_out_of_descriptors_backs_off_and_answers_afterwards(self):
        s = self.start()
        self.assertEqual(s.admin("GET", "/ready").status, 200)
        # A few descriptors above what it uses now, so the connections below exhaust them.
        limit = s.open_fds() + 6
        resource.prlimit(s.pid, resource.RLIMIT_NOFILE, (limit, limit))

        held = []
        self.addCleanup(lambda: [c.close() for c in held])
        # More than the limit to both the admin server and the listener: the first few are
        # accepted, the others wait in the kernel's backlog, so both acceptors stay readable
        # while accept() fails with EMFILE.
        for port in (s.admin_port, s.port):
            for _ in range(40):
                held.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        self.assertTrue(poll(lambda: s.open_fds() >= limit, timeout=10),
                        f"sluice has {s.open_fds()} descriptors open, the limit is {limit}")
        time.sleep(0.3)

        # Behaviour, not speed: a loop that retries at once never sleeps (the admin loop did
        # not). Backing off sleeps nearly all the time; half a core is a generous bound. CPU time
        # alone cannot tell on a busy machine, where a spinning thread gets a fraction of a core
        # (about 25% here while four others built), so the time spent runnable (on a CPU or
        # waiting for one) is checked too: about 1 s per second for a spinning thread.
        cpu0, run0, t0 = s.cpu_seconds(), s.runnable_seconds(), time.monotonic()
        time.sleep(2.0)
        cpu1, run1, t1 = s.cpu_seconds(), s.runnable_seconds(), time.monotonic()
        cpu_share, runnable_share = (cpu1 - cpu0) / (t1 - t0), (run1 - run0) / (t1 - t0)
        self.assertLess(cpu_share, 0.5,
                        f"sluice used {cpu_share:.0%} of a core while out of descriptors")
        self.assertLess(runnable_share, 0.5,
                        f"sluice's threads were runnable {runnable_share:.0%} of the time while "
                        "out of descriptors (a thread that never sleeps)")
        # Said once per stretch of failures, not once per retry.
        s.wait_for_log(r"admin: accept failed: Too many open files; retrying every 50ms")
        s.wait_for_log(r"listener 'public': accept failed: Too many open files")
        self.assertEqual(s.count_log(r"admin: accept failed"), 1, s.stderr()[-3000:])

        for c in held:
            c.close()
        held.clear()
        ready = poll(lambda: s.admin("GET", "/ready").status == 200, timeout=15)
        self.assertTrue(ready, "the admin server did not answer after descriptors were free\n"
                        + s.stderr()[-3000:])
        s.wait_for_log(r"admin: accepting again after \d+ failed attempt\(s\)")
        r = request(s.port, "GET", "/")
        self.assertEqual(r.status, 503, r)  # the listener serves again too (nothing upstream)

    def test_admin_connections_are_capped(self):
        s = self.start()
        held = []
        self.addCleanup(lambda: [c.close() for c in held])
        for i in range(self.ADMIN_MAX_CONNECTIONS):
            c = socket.create_connection(("127.0.0.1", s.admin_port), timeout=10)
            held.append(c)
            # Answered, so certainly accepted and counted; it stays open (keep-alive).
            self.assertEqual(self.ask_ready(c), 200, f"connection {i}")

        over = socket.create_connection(("127.0.0.1", s.admin_port), timeout=10)
        self.addCleanup(over.close)
        self.assertIsNone(self.ask_ready(over), "a connection over the limit was served")
        s.wait_for_log(rf"admin: {self.ADMIN_MAX_CONNECTIONS} connections open \(the limit\)")
        # The connections within the limit still work.
        self.assertEqual(self.ask_ready(held[0]), 200)

        # One closed: its slot is free again (once sluice has seen the close).
        held.pop().close()

        def served():
            with socket.create_connection(("127.0.0.1", s.admin_port), timeout=10) as c:
                return self.ask_ready(c) == 200
        self.assertTrue(poll(served, timeout=10), "no slot freed after a connection closed")


if __name__ == "__main__":
    unittest.main()
