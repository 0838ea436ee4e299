"""Access logs of the built sluice (listener `access_log: { path, format }`), against Jetty.

Lines are batched per worker and written within ~100 ms; the tests poll for the expected number of
lines, then wait a little longer and check that no more appeared.
"""

import datetime
import json
import os
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import closed_port, config, request  # noqa: E402

RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
FIELDS = {"start_time", "request_id", "client_address", "method", "authority", "path", "protocol",
          "status", "bytes_received", "bytes_sent", "duration_ms", "upstream", "upstream_time_ms",
          "route", "cluster", "flags"}
# Text format: time client "method path protocol" status flags received sent duration_ms
#              upstream_ms route cluster upstream "authority" request_id
TEXT_LINE = re.compile(r'^(\S+) (\S+) "(\S+) (\S+) (\S+)" (\d{3}) (\S+) (\d+) (\d+) (\d+\.\d{3}) '
                       r'(\S+) (\S+) (\S+) (\S+) "([^"]*)" (\S+)$')
SETTLE = 0.5  # after the expected lines are there: well past the 100 ms batch delay


def read_lines(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    return data.decode("utf-8").splitlines(keepends=True)


def wait_lines(path, n, timeout=10.0):
    """Waits until `path` has at least n lines, then SETTLE more seconds; returns all lines."""
    deadline = time.monotonic() + timeout
    while len(read_lines(path)) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(SETTLE)
    return read_lines(path)


def parse_time(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class AccessLog(harness.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        cls.jetty = cls.start_class_jetty(name="j1")

    def start(self, fmt="json", path=None):
        self.log_path = path or os.path.join(self.tmp, "access.log")
        self.dead_endpoint = f"127.0.0.1:{closed_port()}"
        self.sluice = self.start_sluice(config(
            clusters={"jetty": [self.jetty.endpoint], "dead": [self.dead_endpoint]},
            routes=[("echo", "/echo", "jetty"), ("upload", "/upload", "jetty"),
                    ("dead", "/dead", "dead")],
            access_log={"path": self.log_path, "format": fmt}))
        return self.sluice

    def test_json_one_well_formed_line_per_request(self):
        s = self.start("json")
        t_before = time.time()
        sent = []  # (kind, response, request path)
        for i in range(4):
            headers = {"x-request-id": f"given-id-{i}"} if i == 1 else None
            sent.append(("ok", request(s.port, "GET", f"/echo?i={i}", headers=headers),
                         f"/echo?i={i}"))
        sent.append(("post", request(s.port, "POST", "/upload", body=b"z" * 100), "/upload"))
        sent.append(("no_route", request(s.port, "GET", "/nothing?q=1"), "/nothing?q=1"))
        sent.append(("dead", request(s.port, "GET", "/dead/x"), "/dead/x"))
        t_after = time.time()
        expected_status = {"ok": 200, "post": 200, "no_route": 404, "dead": 503}
        for kind, r, path in sent:
            self.assertEqual(r.status, expected_status[kind], f"{path}: {r}")
            self.assertTrue(r.header("x-request-id"), f"{path}: no x-request-id in {r}")
        self.assertEqual(sent[1][1].header("x-request-id"), "given-id-1")

        lines = wait_lines(self.log_path, len(sent))
        self.assertEqual(len(lines), len(sent), "one line per request:\n" + "".join(lines[:20]))
        entries = {}
        for line in lines:
            self.assertTrue(line.endswith("\n"))
            self.assertEqual(line.count("\n"), 1)
            e = json.loads(line)
            self.assertEqual(set(e), FIELDS, line)
            for key in ("start_time", "request_id", "client_address", "method", "authority",
                        "path", "protocol", "route", "flags"):
                self.assertIsInstance(e[key], str, f"{key} in {line}")
            for key in ("status", "bytes_received", "bytes_sent"):
                self.assertIs(type(e[key]), int, f"{key} in {line}")
                self.assertGreaterEqual(e[key], 0)
            self.assertIsInstance(e["duration_ms"], (int, float))
            self.assertGreaterEqual(e["duration_ms"], 0)
            self.assertIsInstance(e["upstream"], (str, type(None)))
            self.assertIsInstance(e["upstream_time_ms"], (int, float, type(None)))
            self.assertIsInstance(e["cluster"], (str, type(None)))
            self.assertRegex(e["start_time"], RFC3339_MS)
            self.assertGreaterEqual(parse_time(e["start_time"]), t_before - 1.0)
            self.assertLessEqual(parse_time(e["start_time"]), t_after + 1.0)
            self.assertEqual(e["client_address"], "127.0.0.1")
            self.assertEqual(e["protocol"], "HTTP/1.1")
            self.assertEqual(e["authority"], f"127.0.0.1:{s.port}")
            self.assertNotIn(e["request_id"], entries, "request ids repeat")
            entries[e["request_id"]] = e

        for kind, r, path in sent:
            e = entries.get(r.header("x-request-id"))
            self.assertIsNotNone(e, f"no line for {path} (request id {r.header('x-request-id')})")
            self.assertEqual(e["path"], path)
            self.assertEqual(e["status"], r.status)
            if kind in ("ok", "post"):
                self.assertEqual(e["bytes_sent"], len(r.body), f"{path}: {e}")
                self.assertEqual(e["method"], "GET" if kind == "ok" else "POST")
                self.assertEqual(e["route"], "upload" if kind == "post" else "echo")
                self.assertEqual(e["cluster"], "jetty")
                self.assertEqual(e["upstream"], self.jetty.endpoint)
                self.assertEqual(e["flags"], "-")
                self.assertIsInstance(e["upstream_time_ms"], (int, float))
                self.assertGreaterEqual(e["upstream_time_ms"], 0)
                # Both from the same monotonic clock; the upstream part lies inside the whole.
                self.assertLessEqual(e["upstream_time_ms"], e["duration_ms"] + 0.002)
                self.assertEqual(e["bytes_received"], 100 if kind == "post" else 0)
            elif kind == "no_route":
                # bytes_sent is the body the client received, local replies included.
                self.assertGreater(len(r.body), 0)
                self.assertEqual(e["bytes_sent"], len(r.body))
                self.assertEqual(e["method"], "GET")
                self.assertEqual(e["flags"], "NR")
                self.assertEqual(e["route"], "-")
                self.assertIsNone(e["cluster"])
                self.assertIsNone(e["upstream"])
                self.assertIsNone(e["upstream_time_ms"])
            else:  # connect failure
                self.assertEqual(e["flags"], "UF")
                self.assertEqual(e["route"], "dead")
                self.assertEqual(e["cluster"], "dead")
                self.assertEqual(e["bytes_sent"], len(r.body))  # the 503's own body
                self.assertIsNone(e["upstream"])  # documented: null for 503 connect failures
                self.assertIsNone(e["upstream_time_ms"])
        self.assertIn("given-id-1", entries)

    def test_text_format_line_shape(self):
        s = self.start("text")
        ok = request(s.port, "GET", "/echo?a=b", headers={"x-request-id": "text-1"})
        nr = request(s.port, "GET", "/nothing", headers={"x-request-id": "text-2"})
        self.assertEqual((ok.status, nr.status), (200, 404))
        lines = wait_lines(self.log_path, 2)
        self.assertEqual(len(lines), 2, "".join(lines[:20]))
        parsed = {}
        for line in lines:
            m = TEXT_LINE.match(line.rstrip("\n"))
            self.assertIsNotNone(m, f"text line does not have the documented shape: {line!r}")
            parsed[m.group(16)] = m.groups()
        (ts, client, method, path, proto, status, flags, received, sent, duration, up_ms, route,
         cluster, upstream, authority, rid) = parsed["text-1"]
        self.assertRegex(ts, RFC3339_MS)
        self.assertEqual((client, method, path, proto, status, flags),
                         ("127.0.0.1", "GET", "/echo?a=b", "HTTP/1.1", "200", "-"))
        self.assertEqual((int(received), int(sent)), (0, len(ok.body)))
        self.assertRegex(up_ms, r"^\d+\.\d{3}$")
        self.assertEqual((route, cluster, upstream, authority),
                         ("echo", "jetty", self.jetty.endpoint, f"127.0.0.1:{s.port}"))
        (ts, client, method, path, proto, status, flags, received, sent, duration, up_ms, route,
         cluster, upstream, authority, rid) = parsed["text-2"]
        self.assertEqual((method, path, status, flags, received, sent, up_ms, route, cluster,
                          upstream, authority),
                         ("GET", "/nothing", "404", "NR", "0", str(len(nr.body)), "-", "-", "-",
                          "-", f"127.0.0.1:{s.port}"))

    def test_sigusr1_reopens_the_file_after_a_rename(self):
        s = self.start("json")
        rotated = self.log_path + ".1"

        def get(n, tag):
            for i in range(n):
                r = request(s.port, "GET", f"/echo?{tag}={i}")
                self.assertEqual(r.status, 200, r)

        get(3, "before")
        self.assertEqual(len(wait_lines(self.log_path, 3)), 3)
        os.rename(self.log_path, rotated)
        # Until SIGUSR1 the open descriptor keeps writing into the renamed file.
        get(2, "renamed")
        self.assertEqual(len(wait_lines(rotated, 5)), 5)
        self.assertFalse(os.path.exists(self.log_path))

        s.signal(signal.SIGUSR1)
        s.wait_for_log(r"access log: files reopened")
        get(4, "after")
        new_lines = wait_lines(self.log_path, 4)
        self.assertEqual(len(new_lines), 4, "".join(new_lines))
        for line in new_lines:
            self.assertIn("?after=", json.loads(line)["path"])
        old_lines = read_lines(rotated)
        self.assertEqual(len(old_lines), 5)
        self.assertEqual([json.loads(x)["path"].split("=")[0] for x in old_lines],
                         ["/echo?before"] * 3 + ["/echo?renamed"] * 2)
        umask = os.umask(0)
        os.umask(umask)
        self.assertEqual(oct(os.stat(self.log_path).st_mode & 0o777), oct(0o644 & ~umask))

    def test_stdout_destination(self):
        s = self.start_sluice(config(clusters={"jetty": [self.jetty.endpoint]},
                                    routes=[("echo", "/echo", "jetty")],
                                    access_log={"path": "stdout"}))  # format defaults to json
        for i in range(3):
            self.assertEqual(request(s.port, "GET", f"/echo?i={i}").status, 200)
        deadline = time.monotonic() + 10
        while len(s.stdout().splitlines()) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(SETTLE)
        lines = s.stdout().splitlines()
        self.assertEqual(len(lines), 3, s.stdout())
        self.assertEqual(sorted(json.loads(x)["path"] for x in lines),
                         ["/echo?i=0", "/echo?i=1", "/echo?i=2"])
        self.assertNotIn('"path"', s.stderr())  # the process log stays separate


if __name__ == "__main__":
    unittest.main()
