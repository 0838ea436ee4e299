"""Load balancing and health with the real binary and real Jetty backends (issue 4).

Each Jetty example backend names itself (`--name`) and answers every path with `x-backend: NAME`,
so the backend a request reached is read straight from the response.

  - Maglev: two separate sluice processes with the same config map the same keys to the same
    backends, keys are sticky within a process, and weights shape the share of keys.
  - Active health checks: a killed backend is out within interval x unhealthy_threshold + 1 s and
    back after healthy_threshold passing probes once restarted on the same port.
  - Passive detection: the first connect failure takes an endpoint out long before any probe.
  - Panic mode: below panic_threshold every endpoint is tried again.
  - DNS: host:port endpoints resolve at start; a name that does not resolve stops start-up.
"""

import http.client
import os
import re
import sys
import textwrap
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import free_port, request  # noqa: E402


def lb_config(endpoints, cluster_extra="", workers=2):
    """One listener (port 0), admin on port 0, one cluster 'jetty'. `endpoints` are YAML items."""
    items = "\n".join(f"      - {e}" for e in endpoints)
    extra = textwrap.indent(textwrap.dedent(cluster_extra).strip("\n"), "    ")
    return textwrap.dedent(f"""\
        workers: {workers}
        admin: {{ address: 127.0.0.1:0 }}
        listeners:
          - name: public
            address: 127.0.0.1:0
            virtual_hosts:
              - name: app
                domains: ["*"]
                routes:
                  - name: all
                    match: {{ prefix: / }}
                    cluster: jetty
        clusters:
          - name: jetty
        """) + (extra + "\n" if extra.strip() else "") + "    endpoints:\n" + items + "\n"


def endpoints_state(sluice):
    """{endpoint key: entry} from /clusters?format=json."""
    return {e["endpoint"]: e for e in sluice.admin_json("/clusters?format=json")["endpoints"]}


def metric(sluice, name, labels):
    """The value of one sample from /stats/prometheus; `labels` is the exact label text."""
    text = sluice.scrape_text()
    m = re.search(r"^" + re.escape(f"{name}{{{labels}}}") + r" (\S+)$", text, re.M)
    if not m:
        raise AssertionError(f"no sample {name}{{{labels}}} in /stats/prometheus")
    return float(m.group(1))


def dead_endpoints(n):
    """n distinct 127.0.0.1 endpoints nobody listens on (ports that were free a moment ago)."""
    ports = set()
    while len(ports) < n:
        ports.add(free_port())
    return [f"127.0.0.1:{p}" for p in sorted(ports)]


def wait_for(predicate, timeout, interval=0.05):
    """Polls until predicate() is truthy; returns (value, seconds waited) or (None, timeout)."""
    start = time.monotonic()
    while True:
        value = predicate()
        if value:
            return value, time.monotonic() - start
        if time.monotonic() - start > timeout:
            return None, timeout
        time.sleep(interval)


class KeepAlive:
    """Requests over one keep-alive connection, reopened if the server closes it."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def get(self, path="/echo", headers=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            return request(self.port, "GET", path, headers=headers, conn=self.conn)
        except (http.client.HTTPException, ConnectionError):
            self.close()
            raise

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class LoadBalancing(harness.E2ETestCase):
    """Three Jetty backends shared by the tests; each test starts its own sluice."""

    @classmethod
    def setUpClass(cls):
        # One after the other, from this thread: the harness ties each child to the thread that
        # started it (PR_SET_PDEATHSIG), so a child started from a pool thread dies with it.
        cls.ja, cls.jb, cls.jc = [cls.start_class_jetty(name) for name in ("ja", "jb", "jc")]

    def backends_of(self, sluice, n, headers=None):
        """n requests over one keep-alive connection; asserts all 200; returns x-backend values."""
        client = KeepAlive(sluice.port)
        try:
            out = []
            for _ in range(n):
                r = client.get(headers=headers)
                self.assertEqual(r.status, 200, r)
                out.append(r.header("x-backend"))
            return out
        finally:
            client.close()

    # --- Maglev ---------------------------------------------------------------------------------

    def map_keys(self, sluice, keys, connections=1):
        """key -> backend name, spreading the keys over `connections` keep-alive connections (so
        over both workers)."""
        clients = [KeepAlive(sluice.port) for _ in range(connections)]
        try:
            out = {}
            for i, key in enumerate(keys):
                r = clients[i % connections].get(headers={"x-user-id": key})
                self.assertEqual(r.status, 200, r)
                out[key] = r.header("x-backend")
            return out
        finally:
            for c in clients:
                c.close()

    def test_maglev_same_keys_same_backends_across_processes(self):
        config = lb_config(
            [f"{{ address: {self.ja.endpoint}, weight: 1 }}",
             f"{{ address: {self.jb.endpoint}, weight: 1 }}",
             f"{{ address: {self.jc.endpoint}, weight: 2 }}"],
            "lb: maglev\nhash_on: { header: x-user-id }\n")
        s1 = self.start_sluice(config, name="sluice-maglev-1")
        s2 = self.start_sluice(config, name="sluice-maglev-2")
        self.assertNotEqual(s1.port, s2.port)
        self.assertNotEqual(s1.admin_port, s2.admin_port)

        keys = [f"user-{i:04d}-{(i * 7919) % 10007}" for i in range(1000)]
        first = self.map_keys(s1, keys)
        second = self.map_keys(s2, keys)
        differing = [k for k in keys if first[k] != second[k]]
        self.assertEqual(differing, [], f"{len(differing)} of 1000 keys map differently across "
                                        f"the two processes, e.g. {differing[:5]}")

        # Sticky within a process, whichever worker a connection lands on: the same keys again,
        # over four connections (each process has two workers).
        again = self.map_keys(s1, keys[:500], connections=4)
        moved = [k for k in keys[:500] if again[k] != first[k]]
        self.assertEqual(moved, [], f"keys not sticky in one process: {moved[:5]}")

        # Weights shape the share of keys. The table gives ja/jb/jc 25/25/50% of its slots; 1000
        # keys hashed onto it are binomial (sd 1.6 points at 50%, 1.4 at 25%), so these loose
        # bounds are > 6 sd wide.
        counts = {name: sum(1 for v in first.values() if v == name) for name in ("ja", "jb", "jc")}
        self.assertEqual(sum(counts.values()), 1000, counts)
        shares = {name: n / 1000 for name, n in counts.items()}
        self.assertGreater(shares["jc"], 0.40, shares)
        self.assertLess(shares["jc"], 0.60, shares)
        for name in ("ja", "jb"):
            self.assertGreater(shares[name], 0.16, shares)
            self.assertLess(shares[name], 0.34, shares)
        self.assertGreater(shares["jc"], max(shares["ja"], shares["jb"]) * 1.4, shares)

    # --- active health checks --------------------------------------------------------------------

    def test_active_health_check_takes_a_dead_backend_out_and_back(self):
        jd = self.start_jetty("jd")
        d_key = jd.endpoint
        config = lb_config(
            [self.ja.endpoint, jd.endpoint],
            """\
            health_check: { path: /health, interval: 500ms, timeout: 300ms,
                            healthy_threshold: 2, unhealthy_threshold: 2 }
            """)
        s = self.start_sluice(config, name="sluice-health")
        backends = self.backends_of(s, 20)
        self.assertEqual(sorted(set(backends)), ["ja", "jd"], backends)

        jd.kill()
        killed_at = time.monotonic()
        # Only the admin endpoint is polled here, no proxied request: what takes jd out must be
        # the active checker, not passive detection.
        state, waited = wait_for(lambda: endpoints_state(s)[d_key]["state"] == "unhealthy", 5.0)
        detected = time.monotonic() - killed_at
        self.assertTrue(state, f"{d_key} still healthy 5 s after its backend was killed")
        # interval x unhealthy_threshold + 1 s.
        self.assertLessEqual(detected, 2.0, f"took {detected:.2f}s to mark {d_key} unhealthy")

        backends = self.backends_of(s, 20)
        self.assertEqual(backends, ["ja"] * 20)
        self.assertEqual(endpoints_state(s)[d_key]["connect_failures"], 0,
                         "a request was sent to the dead backend")
        self.assertEqual(endpoints_state(s)[self.ja.endpoint]["state"], "healthy")
        self.assertEqual(metric(s, "sluice_cluster_endpoints", 'cluster="jetty",state="unhealthy"'), 1)
        self.assertEqual(metric(s, "sluice_cluster_endpoints", 'cluster="jetty",state="healthy"'), 1)
        # Taken out by the probes (connection refused), not by a request.
        self.assertIn(f"cluster 'jetty': endpoint {d_key} is unhealthy: connect: Connection refused",
                      s.stderr())
        self.assertNotIn("request could not connect", s.stderr())

        # Back on the same port: healthy again after 2 passing probes (~1 s after it listens).
        restarted = self.start_jetty("jd", port=jd.port)
        self.assertEqual(restarted.endpoint, d_key)
        back, waited = wait_for(lambda: endpoints_state(s)[d_key]["state"] == "healthy", 6.0)
        self.assertTrue(back, f"{d_key} not healthy 6 s after its backend came back")
        self.assertGreaterEqual(waited, 0.4, "back before healthy_threshold probes could pass")
        backends = self.backends_of(s, 20)
        # Two healthy endpoints in rotation again: about half each.
        self.assertGreaterEqual(backends.count("jd"), 8, backends)
        self.assertGreaterEqual(backends.count("ja"), 8, backends)
        self.assertEqual(metric(s, "sluice_cluster_endpoints", 'cluster="jetty",state="unhealthy"'), 0)
        log = s.stderr()
        self.assertRegex(log, rf"endpoint {re.escape(d_key)} is unhealthy")
        self.assertRegex(log, rf"endpoint {re.escape(d_key)} is healthy again \(2 passing checks\)")
        self.assertLess(log.index(f"endpoint {d_key} is unhealthy"),
                        log.index(f"endpoint {d_key} is healthy again"))

    # --- passive detection ------------------------------------------------------------------------

    def test_passive_detection_on_first_connect_failure(self):
        dead = dead_endpoints(1)[0]
        # Listed first, so the first request of either worker's rotation goes to it. A 30 s
        # interval and unhealthy_threshold 3: probes alone would need a minute.
        config = lb_config(
            [dead, self.ja.endpoint, self.jb.endpoint],
            """\
            health_check: { path: /health, interval: 30s, timeout: 1s, unhealthy_threshold: 3 }
            """)
        s = self.start_sluice(config, name="sluice-passive")
        started = time.monotonic()
        self.assertEqual(endpoints_state(s)[dead]["state"], "healthy")

        r = request(s.port, "GET", "/echo")
        # The connect failure is retried on the next endpoint before anything was sent.
        self.assertEqual(r.status, 200, r)
        self.assertIn(r.header("x-backend"), ("ja", "jb"))
        out, waited = wait_for(lambda: endpoints_state(s)[dead]["state"] == "unhealthy", 3.0)
        self.assertTrue(out, "one connect failure did not take the endpoint out")
        self.assertLess(time.monotonic() - started, 30.0)  # before the next probe could run
        self.assertEqual(endpoints_state(s)[dead]["connect_failures"], 1)

        backends = self.backends_of(s, 30)
        self.assertEqual(set(backends), {"ja", "jb"}, backends)
        # No further request tried the dead endpoint, so none needed a second connect.
        self.assertEqual(endpoints_state(s)[dead]["connect_failures"], 1)
        self.assertEqual(metric(s, "sluice_cluster_connect_failures_total", 'cluster="jetty"'), 1)
        self.assertEqual(metric(s, "sluice_cluster_endpoints", 'cluster="jetty",state="unhealthy"'), 1)
        self.assertRegex(s.stderr(), rf"endpoint {re.escape(dead)} is unhealthy: request could not "
                                     r"connect")

    # --- panic mode --------------------------------------------------------------------------------

    # unhealthy_threshold 2: the first transition comes one interval after start-up, once the
    # first snapshot is published (see test_dead_at_start_up_is_published_unhealthy for why).
    FAST_CHECKS = textwrap.dedent("""\
        health_check: { path: /health, interval: 200ms, timeout: 200ms,
                        healthy_threshold: 1, unhealthy_threshold: 2 }
        """)

    def wait_unhealthy(self, s, keys):
        ok, _ = wait_for(lambda: all(endpoints_state(s)[k]["state"] == "unhealthy" for k in keys), 5.0)
        self.assertTrue(ok, f"not all of {keys} unhealthy: {endpoints_state(s)}")

    def test_panic_when_every_endpoint_is_down(self):
        dead = dead_endpoints(2)
        s = self.start_sluice(lb_config(dead, self.FAST_CHECKS), name="sluice-panic-all")
        self.wait_unhealthy(s, dead)
        self.assertTrue(all(e["panic"] for e in endpoints_state(s).values()))
        panics = metric(s, "sluice_cluster_lb_panic_total", 'cluster="jetty"')
        failures = metric(s, "sluice_cluster_connect_failures_total", 'cluster="jetty"')
        for _ in range(3):
            r = request(s.port, "GET", "/echo")
            # Attempted (and failed to connect), not refused for want of a healthy endpoint.
            self.assertEqual(r.status, 503, r)
            self.assertIn("upstream connect error", r.text)
            self.assertNotIn("no healthy upstream", r.text)
        self.assertEqual(metric(s, "sluice_cluster_lb_panic_total", 'cluster="jetty"'), panics + 3)
        # Each request tried both endpoints.
        self.assertEqual(metric(s, "sluice_cluster_connect_failures_total", 'cluster="jetty"'),
                         failures + 6)

        # The same cluster with panic_threshold 0 never panics: nothing is attempted.
        s0 = self.start_sluice(lb_config(dead, self.FAST_CHECKS + "panic_threshold: 0\n"),
                               name="sluice-panic-off")
        self.wait_unhealthy(s0, dead)
        r = request(s0.port, "GET", "/echo")
        self.assertEqual(r.status, 503, r)
        self.assertIn("no healthy upstream (cluster 'jetty')", r.text)
        self.assertEqual(metric(s0, "sluice_cluster_lb_panic_total", 'cluster="jetty"'), 0)
        self.assertFalse(any(e["panic"] for e in endpoints_state(s0).values()))

    def test_panic_with_one_of_three_up_still_reaches_it(self):
        dead = dead_endpoints(2)
        s = self.start_sluice(lb_config([dead[0], self.ja.endpoint, dead[1]], self.FAST_CHECKS),
                              name="sluice-panic-one")
        self.wait_unhealthy(s, dead)
        state = endpoints_state(s)
        self.assertEqual(state[self.ja.endpoint]["state"], "healthy")
        self.assertTrue(state[self.ja.endpoint]["panic"], state)  # 1 of 3 = 33% < 50%
        panics = metric(s, "sluice_cluster_lb_panic_total", 'cluster="jetty"')
        backends = self.backends_of(s, 12)
        self.assertEqual(backends, ["ja"] * 12)
        self.assertEqual(metric(s, "sluice_cluster_lb_panic_total", 'cluster="jetty"'), panics + 12)
        # Balanced over all three: the dead ones were tried (and skipped) too.
        self.assertGreater(metric(s, "sluice_cluster_connect_failures_total", 'cluster="jetty"'), 0)
        self.assertRegex(s.stderr(), r"cluster 'jetty': 1 of 3 endpoints healthy, below "
                                     r"panic_threshold 50%; balancing over all")

    def test_dead_at_start_up_is_published_unhealthy(self):
        # With unhealthy_threshold 1 the very first probe, started while the server is still
        # being created, takes a dead endpoint out. That transition must reach the snapshot the
        # workers and /clusters use, however it interleaves with the first publish; the checker
        # reports no second transition for an endpoint it already holds unhealthy, so a lost one
        # is lost for good. The window is narrow (it was hit in ~1 of 10 start-ups here), so 25
        # start-ups of ~0.1 s each.
        checks = "health_check: { interval: 200ms, timeout: 200ms, unhealthy_threshold: 1 }\n"
        lost = []
        for i in range(25):
            dead = dead_endpoints(2)
            s = self.start_sluice(lb_config(dead, checks), name=f"sluice-start-{i}")
            ok, _ = wait_for(lambda: all(endpoints_state(s)[k]["state"] == "unhealthy" for k in dead),
                             1.0)
            if not ok:
                lost.append((i, {k: e["state"] for k, e in endpoints_state(s).items()},
                             s.stderr().count("is unhealthy")))
            s.stop()
        self.assertEqual(lost, [], "start-ups whose /clusters still shows dead endpoints healthy "
                                   "(start-up index, states, 'is unhealthy' lines in the log)")

    # --- DNS -----------------------------------------------------------------------------------

    def test_host_name_endpoint_resolves(self):
        ep = f"localhost:{self.jb.port}"
        s = self.start_sluice(lb_config([ep]), name="sluice-dns")
        backends = self.backends_of(s, 5)
        self.assertEqual(backends, ["jb"] * 5)
        state = endpoints_state(s)
        key = f"127.0.0.1:{self.jb.port}"
        self.assertIn(key, state)
        self.assertEqual(state[key]["hostname"], "localhost")
        # Any other address localhost has (::1 on some hosts) is an endpoint of its own.
        for e in state.values():
            self.assertEqual(e["hostname"], "localhost")

    def test_unresolvable_host_name_stops_start_up(self):
        path = os.path.join(self.tmp, "unresolvable.yaml")
        with open(path, "w") as f:
            f.write(lb_config([self.ja.endpoint, "no-such-host.invalid:80"]))
        # --validate checks the syntax only: a well-formed host name is fine.
        v = harness.run_sluice(["--validate", "--config", path])
        self.assertEqual(v.returncode, 0, v.stderr)
        self.assertIn(b"configuration OK", v.stdout)
        # Start-up resolves it, and fails.
        r = harness.run_sluice(["--config", path], timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        err = r.stderr.decode("utf-8", "replace")
        self.assertIn("cluster 'jetty': cannot resolve 'no-such-host.invalid'", err)
        self.assertNotIn("started:", err)

    # --- validation of the cluster keys through the CLI ----------------------------------------

    def test_validate_reports_an_unknown_hash_on_kind(self):
        # A typo in hash_on must be a configuration error (exit 1, file:line:column), never an
        # abort: the same loader runs on SIGHUP, where an abort would take the proxy down.
        path = os.path.join(self.tmp, "hash_on.yaml")
        with open(path, "w") as f:
            f.write(lb_config([self.ja.endpoint], "lb: maglev\nhash_on: { query: user }\n"))
        v = harness.run_sluice(["--validate", "--config", path])
        err = v.stderr.decode("utf-8", "replace")
        self.assertEqual(v.returncode, 1, err)
        self.assertIn(f"{path}:16:16: clusters[0].hash_on.query: unknown key (known keys: header, "
                      "cookie, source_ip, path)", err)


if __name__ == "__main__":
    unittest.main()
