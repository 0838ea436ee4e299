"""SIGHUP reload of the built sluice, in front of two Jetty example backends "A" and "B".

The configuration file is rewritten (in one rename) and SIGHUP sent; each test waits for the
outcome line in sluice's log ("reload: configuration version N applied" or "reload failed; still
serving configuration version N:") before it checks anything.
"""

import hashlib
import http.client
import os
import re
import signal
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (ADDED_LISTENER_RE, config, request, route_labels,  # noqa: E402
                     settled_after)

RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def poll(fn, timeout=10.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def connection_refused(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


class Reload(harness.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        cls.a = cls.start_class_jetty(name="A")
        cls.b = cls.start_class_jetty(name="B")

    def cfg(self, cluster, routes=None, **kw):
        """Clusters a (Jetty A) and b (Jetty B); by default one route "main" (/) to `cluster`."""
        return config(clusters={"a": [self.a.endpoint], "b": [self.b.endpoint]},
                      routes=routes or [("main", "/", cluster)], **kw)

    def assert_backend(self, r, name, what=""):
        self.assertEqual(r.status, 200, f"{what}: {r}")
        self.assertEqual(r.header("x-backend"), name, f"{what}: {r}")

    def echo_backend(self, port, conn=None):
        r = request(port, "GET", "/echo", conn=conn)
        self.assertEqual(r.status, 200, r)
        first = r.text.split("\n", 1)[0]
        self.assertEqual(first, f"backend: {r.header('x-backend')}", r)
        return r.header("x-backend")

    # (a) --------------------------------------------------------------------------------------

    def test_switch_backend_in_flight_request_finishes_on_old_config(self):
        s = self.start_sluice(self.cfg("a"))
        keep = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        self.addCleanup(keep.close)
        self.assertEqual(self.echo_backend(s.port, conn=keep), "A")
        sock_before = keep.sock
        self.assertIsNotNone(sock_before)
        local_before = sock_before.getsockname()

        # A slow request on its own connection, read back raw so the bytes are checked exactly.
        slow = {}

        def slow_request():
            try:
                with socket.create_connection(("127.0.0.1", s.port), timeout=30) as c:
                    c.sendall(b"GET /slow?ms=2000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                    data = b""
                    while True:
                        chunk = c.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    slow["raw"] = data
            except Exception as e:  # reported by the main thread
                slow["error"] = repr(e)
            slow["done_at"] = time.monotonic()

        t = threading.Thread(target=slow_request)
        t.start()
        self.addCleanup(t.join, 30)
        a_active = dict(cluster="a", endpoint=self.a.endpoint)
        self.assertTrue(poll(lambda: s.scrape().get("sluice_endpoint_requests_active",
                                                    **a_active) == 1),
                        "the slow request never reached A")

        s.write_config(self.cfg("b"))
        self.assertEqual(s.reload(), ("applied", 2))
        applied_at = time.monotonic()
        # The slow request is still in flight on A: it was routed before the reload.
        self.assertEqual(s.scrape().value("sluice_endpoint_requests_active", **a_active), 1)

        # The next request on the existing keep-alive connection goes to B ...
        self.assertEqual(self.echo_backend(s.port, conn=keep), "B")
        self.assertIs(keep.sock, sock_before, "http.client opened a new connection")
        self.assertEqual(keep.sock.getsockname(), local_before)
        # ... and so does a request on a new connection.
        self.assertEqual(self.echo_backend(s.port), "B")

        t.join(30)
        self.assertNotIn("error", slow)
        self.assertGreater(slow["done_at"], applied_at, "the slow request ended before the reload")
        raw = slow["raw"]
        head, sep, body = raw.partition(b"\r\n\r\n")
        self.assertTrue(sep, raw)
        lines = head.decode("latin-1").split("\r\n")
        self.assertEqual(lines[0], "HTTP/1.1 200 OK")
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (line.partition(":") for line in lines[1:])}
        self.assertEqual(headers.get("x-backend"), "A", raw)
        self.assertEqual(headers.get("content-length"), "10", raw)
        self.assertEqual(body, b"slow 2000\n")

        m = settled_after(s, 4)
        self.assertEqual(m.value("sluice_route_requests_total", **route_labels("main"),
                                 code_class="2xx"), 4)
        self.assertEqual(m.value("sluice_cluster_upstream_requests_total", cluster="a",
                                 code_class="2xx"), 2)
        self.assertEqual(m.value("sluice_cluster_upstream_requests_total", cluster="b",
                                 code_class="2xx"), 2)

    # (b) --------------------------------------------------------------------------------------

    def test_invalid_file_keeps_old_config_and_reports_the_error(self):
        s = self.start_sluice(self.cfg("a"))
        keep = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        self.addCleanup(keep.close)
        self.assertEqual(self.echo_backend(s.port, conn=keep), "A")
        good_sha = sha256_file(s.config_path)

        bad = self.cfg("nosuch")
        line_no = next(i for i, line in enumerate(bad.splitlines(), 1) if "cluster: nosuch" in line)
        col = bad.splitlines()[line_no - 1].index("nosuch") + 1
        s.write_config(bad)
        self.assertEqual(s.reload(), ("failed", 1))
        self.assertIn(f"reload failed; still serving configuration version 1:\n"
                      f"{s.config_path}:{line_no}:", s.stderr())

        # The old configuration keeps serving, on old and new connections.
        self.assertEqual(self.echo_backend(s.port, conn=keep), "A")
        self.assertEqual(self.echo_backend(s.port), "A")

        info = s.server_info()
        self.assertEqual(info["state"], "serving")
        self.assertEqual(info["config"]["version"], 1)
        self.assertEqual(info["config"]["sha256"], good_sha)
        self.assertEqual(info["last_reload"]["result"], "failed")
        self.assertRegex(info["last_reload"]["time"], RFC3339_MS)
        self.assertRegex(info["last_reload"]["error"],
                         rf"^{re.escape(s.config_path)}:{line_no}:{col}: "
                         r"listeners\[0\]\.virtual_hosts\[0\]\.routes\[0\]\.cluster: .*nosuch")
        self.assertEqual(info["reloads"], {"success": 0, "failed": 1})
        m = s.scrape()
        self.assertEqual(m.value("sluice_server_reloads_total", result="failed"), 1)
        self.assertEqual(m.value("sluice_server_reloads_total", result="success"), 0)
        self.assertEqual(m.find("sluice_server_config_info"),
                         [({"version": "1", "sha256": good_sha}, 1)])

        # A YAML syntax error is a failure too, reported with its position.
        s.write_config("listeners: [\n")
        self.assertEqual(s.reload(), ("failed", 1))
        info = s.server_info()
        self.assertRegex(info["last_reload"]["error"], rf"^{re.escape(s.config_path)}:\d+:\d+: ")
        self.assertEqual(info["reloads"], {"success": 0, "failed": 2})
        self.assertEqual(s.scrape().value("sluice_server_reloads_total", result="failed"), 2)
        self.assertEqual(self.echo_backend(s.port, conn=keep), "A")

        # A good file again: applied as version 2, the failure is cleared.
        s.write_config(self.cfg("b"))
        self.assertEqual(s.reload(), ("applied", 2))
        new_sha = sha256_file(s.config_path)
        info = s.server_info()
        self.assertEqual(info["config"]["version"], 2)
        self.assertEqual(info["config"]["sha256"], new_sha)
        self.assertEqual(info["last_reload"]["result"], "success")
        self.assertIsNone(info["last_reload"]["error"])
        self.assertEqual(info["reloads"], {"success": 1, "failed": 2})
        self.assertIn(f"reload: configuration version 2 applied ({new_sha})", s.stderr())
        m = s.scrape()
        self.assertEqual(m.value("sluice_server_reloads_total", result="success"), 1)
        self.assertEqual(m.find("sluice_server_config_info"),
                         [({"version": "2", "sha256": new_sha}, 1)])
        self.assertEqual(self.echo_backend(s.port, conn=keep), "B")

    # (c) --------------------------------------------------------------------------------------

    def test_counters_never_decrease_across_reloads(self):
        routes1 = [("main", "/echo", "a"), ("other", "/other", "b")]
        # 'other' removed, 'fresh' added, 'main' moved to cluster b.
        routes2 = [("main", "/echo", "b"), ("fresh", "/fresh", "b")]
        s = self.start_sluice(self.cfg(None, routes=routes1))
        sent = {"main": 0, "other": 0, "fresh": 0}

        def traffic(paths):
            for path in paths:
                r = request(s.port, "GET", path)
                self.assertEqual(r.status, 200, f"{path}: {r}")
                sent[path.strip("/").split("?")[0].replace("echo", "main")] += 1

        traffic(["/echo"] * 5 + ["/other"] * 3)
        scrapes = [settled_after(s, sum(sent.values()))]
        steps = [
            (self.cfg(None, routes=routes1), "applied", ["/echo"] * 2 + ["/other"]),  # same file
            (self.cfg(None, routes=routes2), "applied", ["/echo"] * 3 + ["/fresh"] * 2),
            (self.cfg(None, routes=routes1), "applied", ["/echo", "/other"]),
            (self.cfg("nosuch"), "failed", ["/echo"]),
            (self.cfg(None, routes=routes1, workers=2) + "# a comment\n", "applied", ["/other"]),
        ]
        for text, outcome, paths in steps:
            s.write_config(text)
            self.assertEqual(s.reload()[0], outcome)
            traffic(paths)
            scrapes.append(settled_after(s, sum(sent.values())))

        compared = 0
        for i, earlier in enumerate(scrapes):
            before = earlier.counter_samples()
            for later in scrapes[i + 1:]:
                after = later.counter_samples()
                for key, v in before.items():
                    if key in after:
                        compared += 1
                        self.assertGreaterEqual(after[key], v,
                                                f"{key[0]}{dict(key[1])} went down across a reload")
        self.assertGreater(compared, 500)

        # Exact: a route's counter keeps counting across reloads, also when the route was absent
        # for a while ('other') or moved to another cluster ('main').
        last = scrapes[-1]
        for route, n in sent.items():
            self.assertEqual(last.value("sluice_route_requests_total", **route_labels(route),
                                        code_class="2xx"), n, route)
            self.assertEqual(last.value("sluice_route_request_duration_seconds_count",
                                        **route_labels(route)), n, route)
        self.assertEqual(last.value("sluice_listener_requests_total", listener="public"),
                         sum(sent.values()))
        self.assertEqual(last.value("sluice_server_reloads_total", result="success"), 4)
        self.assertEqual(last.value("sluice_server_reloads_total", result="failed"), 1)

    # (d) --------------------------------------------------------------------------------------

    def test_reloads_under_load_lose_no_request(self):
        texts = {"A": self.cfg("a"), "B": self.cfg("b"), "invalid": self.cfg("nosuch")}
        s = self.start_sluice(texts["A"])
        threads_n = 50
        stop = threading.Event()
        lock = threading.Lock()
        records = []   # (t_sent, t_done, backend)
        failures = []  # descriptions

        def client(i):
            conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
            n = 0
            try:
                while not stop.is_set():
                    t0 = time.monotonic()
                    try:
                        conn.request("GET", f"/echo?client={i}&n={n}")
                        resp = conn.getresponse()
                        body = resp.read()
                        t1 = time.monotonic()
                        backend = resp.getheader("x-backend")
                        if resp.status != 200 or backend not in ("A", "B") or \
                                not body.startswith(f"backend: {backend}\n".encode()):
                            with lock:
                                failures.append(f"client {i}: {resp.status} {backend} {body[:80]!r}")
                        else:
                            with lock:
                                records.append((t0, t1, backend))
                    except Exception as e:
                        with lock:
                            failures.append(f"client {i} request {n}: {e!r}")
                        conn.close()
                        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
                    n += 1
            finally:
                conn.close()

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(threads_n)]

        def stop_clients():
            stop.set()
            for t in threads:
                t.join(60)

        for t in threads:
            t.start()
        self.addCleanup(stop_clients)

        # windows: (from, until, backend): after a reload's outcome was logged and before the next
        # SIGHUP, every request routed must go to the backend of the configuration in force.
        active = "A"
        window_start = time.monotonic()
        windows = []
        plan = ["A", "B", "invalid"] * 7
        plan = plan[:20]
        versions = 1
        time.sleep(0.3)
        for kind in plan:
            s.write_config(texts[kind])
            sig_at = time.monotonic()
            windows.append((window_start, sig_at, active))
            outcome, version = s.reload()
            window_start = time.monotonic()
            if kind == "invalid":
                self.assertEqual((outcome, version), ("failed", versions))
            else:
                versions += 1
                self.assertEqual((outcome, version), ("applied", versions))
                active = kind
            time.sleep(0.3)
        windows.append((window_start, time.monotonic(), active))
        stop_clients()

        self.assertEqual(failures[:20], [], f"{len(failures)} failed requests")
        self.assertGreater(len(records), 200)
        seen = {b for _, _, b in records}
        self.assertEqual(seen, {"A", "B"})
        strict = 0
        for t0, t1, backend in records:
            for w0, w1, expected in windows:
                if w0 <= t0 and t1 <= w1:
                    strict += 1
                    self.assertEqual(backend, expected,
                                     "a request sent after a reload took effect went to the "
                                     "backend of another configuration")
                    break
        self.assertGreater(strict, len(records) // 2)
        sys.stderr.write(f"\n[reload under load] {len(records)} responses, {strict} checked against "
                         f"the configuration in force, {len(plan)} reloads ... ")

        m = settled_after(s, len(records))
        main = route_labels("main")
        self.assertEqual(m.value("sluice_route_requests_total", **main, code_class="2xx"),
                         len(records))
        for cc in ("1xx", "3xx", "4xx", "5xx"):
            self.assertEqual(m.value("sluice_route_requests_total", **main, code_class=cc), 0, cc)
        self.assertEqual(m.value("sluice_server_reloads_total", result="success"), versions - 1)
        self.assertEqual(m.value("sluice_server_reloads_total", result="failed"),
                         plan.count("invalid"))
        self.assertEqual(m.value("sluice_cluster_upstream_requests_total", cluster="a",
                                 code_class="2xx")
                         + m.value("sluice_cluster_upstream_requests_total", cluster="b",
                                   code_class="2xx"), len(records))

    # (e) --------------------------------------------------------------------------------------

    def test_sighup_storm_leaks_nothing(self):
        env = None
        if os.environ.get("SLUICE_SANITIZE_BUILD"):
            # AddressSanitizer keeps freed memory in a quarantine (256 MiB by default), so every
            # snapshot a reload frees would still count in RSS. A small quarantine keeps the RSS
            # bound below meaningful; LeakSanitizer checks for leaks at exit as well.
            env = dict(os.environ)
            env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=1"
        s = self.start_sluice(self.cfg("a"), env=env)
        keep = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        self.addCleanup(keep.close)

        def traffic():
            for _ in range(10):
                self.assertEqual(self.echo_backend(s.port, conn=keep), "A")
            for _ in range(5):
                self.assertEqual(self.echo_backend(s.port), "A")

        def settled_fds():
            # Short-lived client connections are gone once sluice counts one (keep) active.
            poll(lambda: s.scrape().value("sluice_listener_downstream_connections_active",
                                          listener="public") == 1)
            return s.open_fds()

        traffic()
        fds0 = settled_fds()
        rss0 = s.rss_bytes()

        during = []
        stop = threading.Event()

        def background():
            conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
            try:
                while not stop.is_set():
                    try:
                        r = request(s.port, conn=conn, path="/echo")
                        during.append(r.status if r.header("x-backend") == "A" else repr(r))
                    except Exception as e:
                        during.append(repr(e))
                        conn.close()
                        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
            finally:
                conn.close()

        bg = threading.Thread(target=background)
        bg.start()
        try:
            for _ in range(100):
                s.signal(signal.SIGHUP)
                time.sleep(0.01)

            # Wait until the reload count stops moving (signals may coalesce).
            last, stable_since = None, time.monotonic()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                info = s.server_info()["reloads"]
                if info != last:
                    last, stable_since = info, time.monotonic()
                elif time.monotonic() - stable_since > 1.0:
                    break
                time.sleep(0.05)
        finally:
            stop.set()
            bg.join(30)

        self.assertTrue(s.running())
        self.assertEqual(last["failed"], 0)
        self.assertGreaterEqual(last["success"], 1)
        self.assertLessEqual(last["success"], 100)
        self.assertEqual(s.count_log(r"reload: configuration version \d+ applied"), last["success"])
        self.assertEqual(s.server_info()["config"]["version"], last["success"] + 1)
        self.assertGreater(len(during), 0)
        self.assertEqual([x for x in during if x != 200], [])

        traffic()
        fds1 = settled_fds()
        rss1 = s.rss_bytes()
        self.assertLessEqual(fds1 - fds0, 4, f"open fds grew from {fds0} to {fds1}")
        m = s.scrape()
        self.assertLessEqual(abs(m.value("sluice_server_open_fds") - fds1), 3)
        self.assertLessEqual(rss1 - rss0, 20 * 1024 * 1024,
                             f"RSS grew from {rss0} to {rss1} bytes over {last['success']} reloads")
        sys.stderr.write(f"\n[SIGHUP storm] {last['success']} reloads applied; fds {fds0} -> {fds1}; "
                         f"RSS {rss0 >> 10} -> {rss1 >> 10} KiB; {len(during)} requests during ... ")
        keep.close()
        self.assertEqual(s.stop(), 0)

    # (f) --------------------------------------------------------------------------------------

    def test_listener_added_and_removed_by_reload(self):
        s = self.start_sluice(self.cfg("a", listeners={"public": 0}))
        public = s.port

        s.write_config(self.cfg("a", listeners={"public": 0, "extra": 0}))
        self.assertEqual(s.reload(), ("applied", 2))
        (m,) = s.wait_for_log(ADDED_LISTENER_RE)
        self.assertEqual(m.group(1), "extra")
        extra = int(m.group(2))
        self.assertNotEqual(extra, public)
        self.assertEqual(self.echo_backend(extra), "A")
        self.assertEqual(self.echo_backend(public), "A")
        self.assertEqual(s.scrape().value("sluice_listener_requests_total", listener="extra"), 1)

        # 'public' removed; 'extra' keeps its address, so it keeps its sockets.
        s.write_config(self.cfg("a", listeners={"extra": 0}))
        self.assertEqual(s.reload(), ("applied", 3))
        self.assertTrue(poll(lambda: connection_refused(public), timeout=10),
                        f"port {public} of the removed listener still accepts")
        for _ in range(3):
            self.assertTrue(connection_refused(public))
            self.assertEqual(self.echo_backend(extra), "A")
        self.assertEqual(s.count_log(ADDED_LISTENER_RE), 1)
        dump = s.admin_json("/config_dump")
        self.assertEqual([l["name"] for l in dump["listeners"]], ["extra"])
        m = s.scrape()
        self.assertEqual(m.value("sluice_listener_requests_total", listener="extra"), 4)
        self.assertEqual(m.value("sluice_listener_requests_total", listener="public"), 1)

    def test_removed_listener_answers_in_flight_requests_with_connection_close(self):
        s = self.start_sluice(self.cfg("a", listeners={"public": 0, "extra": 0}))
        public = s.listeners["public"]
        # One keep-alive connection idle, one with a slow request in flight, both on 'public'.
        idle = http.client.HTTPConnection("127.0.0.1", public, timeout=30)
        idle.request("GET", "/echo")
        idle.getresponse().read()
        busy = http.client.HTTPConnection("127.0.0.1", public, timeout=30)
        busy.request("GET", "/slow?ms=1500")
        time.sleep(0.3)  # the request is upstream now
        s.write_config(self.cfg("a", listeners={"extra": 0}))
        self.assertEqual(s.reload(), ("applied", 2))
        # The request in flight finishes normally, and says the connection ends with it.
        r = busy.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.read(), b"slow 1500\n")
        self.assertEqual(r.getheader("connection"), "close")
        # The idle keep-alive connection was closed by Sluice (EOF, not a reset or a hang).
        idle.sock.settimeout(10)
        self.assertEqual(idle.sock.recv(1), b"")
        busy.close()
        idle.close()

    # (g) --------------------------------------------------------------------------------------

    def test_reloads_while_health_probes_are_in_flight(self):
        """Every reload changes the health check, so the running checker is destroyed while its
        probe waits on Jetty's /slow, and a new one starts; every fourth removes the checked
        cluster altogether and the next brings it back. Under AddressSanitizer a probe that
        touched its destroyed checker aborts sluice (non-zero exit, report on stderr)."""
        def text(i):
            if i % 4 == 3:  # the checked cluster removed
                return config(clusters={"b": [self.b.endpoint]}, routes=[("main", "/", "b")])
            # /slow answers after 150 ms and a probe starts every 100 ms after the last answer,
            # so a probe is in flight 60% of the time; the query differs by reload so that
            # every reload replaces the checker.
            checks = (f"    health_check: {{ path: \"/slow?ms={150 + i % 2}\", interval: 100ms, "
                      f"timeout: 2s, healthy_threshold: 1, unhealthy_threshold: 1 }}\n")
            return config(clusters={"a": [self.a.endpoint], "b": [self.b.endpoint]},
                          routes=[("main", "/", "a")]).replace(
                f"    endpoints: [ {self.a.endpoint} ]\n",
                f"    endpoints: [ {self.a.endpoint} ]\n{checks}")

        self.assertIn("health_check", text(0))
        s = self.start_sluice(text(0))
        version = 1
        for i in range(1, 41):
            # Staggered against the probe cycle (250 ms), so reloads land in every phase of it.
            time.sleep(0.02 + (i * 37 % 100) / 1000)
            s.write_config(text(i))
            version += 1
            self.assertEqual(s.reload(), ("applied", version), f"reload {i}")
            self.assertEqual(self.echo_backend(s.port), "A" if i % 4 != 3 else "B", f"reload {i}")

        # The last checker keeps probing: the endpoint stays healthy and serves.
        time.sleep(0.6)
        clusters = s.admin_json("/clusters?format=json")["endpoints"]
        self.assertEqual([(e["cluster"], e["state"]) for e in clusters],
                         [("a", "healthy"), ("b", "healthy")])
        self.assertEqual(self.echo_backend(s.port), "A")
        self.assertEqual(s.stop(), 0)
        for report in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            self.assertNotIn(report, s.stderr())


if __name__ == "__main__":
    unittest.main()
