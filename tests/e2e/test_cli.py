"""The sluice command line, configuration errors, start-up failures and signals."""

import glob
import os
import subprocess
import shutil
import re
import signal
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import request, run_sluice  # noqa: E402


def position(text, line_marker, token):
    """1-based (line, column) of `token` on the first line of `text` containing `line_marker`."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line_marker in line:
            column = line.index(token)
            return number, column + 1
    raise AssertionError(f"no line contains {line_marker!r}")


def bad_config(listener_port):
    """Four mistakes: an unknown top-level key, a duration without a unit, an unknown route key
    and a route to a cluster that does not exist. The rest is valid."""
    return f"""\
worker: 2
drain_timeout: 30
listeners:
  - name: public
    address: 127.0.0.1:{listener_port}
    virtual_hosts:
      - name: app
        domains: ["*"]
        routes:
          - name: api
            match: {{ prefix: /api/ }}
            cluster: nowhere
            retries: 3
          - name: catch_all
            match: {{ prefix: / }}
            cluster: backend
clusters:
  - name: backend
    endpoints: [ 127.0.0.1:9 ]
"""


def expected_errors(text):
    """(line, column, key path, words the message must contain) for each error in bad_config."""
    route = "listeners[0].virtual_hosts[0].routes[0]"
    return [
        (*position(text, "worker: 2", "worker"), "worker", ["unknown key"]),
        (*position(text, "drain_timeout: 30", "30"), "drain_timeout", ["unit"]),
        (*position(text, "cluster: nowhere", "nowhere"), f"{route}.cluster", ["nowhere"]),
        (*position(text, "retries: 3", "retries"), f"{route}.retries", ["unknown key"]),
    ]


class CommandLine(harness.E2ETestCase):
    def test_version(self):
        r = run_sluice(["--version"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout.decode(), r"\Asluice \d+\.\d+\.\d+\n\Z")

    def test_help(self):
        r = run_sluice(["--help"])
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.decode()
        self.assertIn("usage:", out)
        for flag in ("--config", "--validate", "--workers", "--log-level", "--version", "--help"):
            self.assertIn(flag, out)

    def test_unknown_flag_exits_2(self):
        r = run_sluice(["--no-such-flag"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("--no-such-flag", r.stderr.decode())
        self.assertEqual(r.stdout, b"")

    def test_validate_good_config(self):
        path = os.path.join(self.tmp, "good.yaml")
        with open(path, "w") as f:
            f.write(harness.basic_config(["127.0.0.1:8080"], drain_timeout="5s"))
        r = run_sluice(["--validate", "--config", path])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"configuration OK\n")

    def test_validate_shipped_examples(self):
        found = sorted(set(glob.glob(os.path.join(harness.SOURCE_DIR, "config", "*.yaml")) +
                           glob.glob(os.path.join(harness.SOURCE_DIR, "examples", "**", "*.yaml"),
                                     recursive=True)))
        # The tree ships config/sluice.yaml at least: not finding it means the glob is wrong,
        # which must not pass as "nothing to check".
        self.assertIn(os.path.join(harness.SOURCE_DIR, "config", "sluice.yaml"), found)
        # config/sluice.yaml's HTTPS listener names tls/example.* next to it, which scripts/run
        # generates on first start: validate a copy beside a freshly generated pair, so the
        # test neither depends on nor writes into the source tree.
        subprocess.run([os.path.join(harness.SOURCE_DIR, "scripts", "example-cert"),
                        os.path.join(self.tmp, "tls")], check=True, capture_output=True)
        for path in found:
            with self.subTest(config=os.path.relpath(path, harness.SOURCE_DIR)):
                copy = os.path.join(self.tmp, os.path.basename(path))
                shutil.copyfile(path, copy)
                r = run_sluice(["--validate", "--config", copy])
                self.assertEqual(r.returncode, 0, r.stderr.decode())
                self.assertEqual(r.stdout, b"configuration OK\n")

    def test_validate_bad_config_reports_every_error(self):
        path = os.path.join(self.tmp, "bad.yaml")
        text = bad_config(harness.free_port())
        with open(path, "w") as f:
            f.write(text)
        r = run_sluice(["--validate", "--config", path])
        self.assertEqual(r.returncode, 1)
        self.assertNotIn(b"configuration OK", r.stdout)
        lines = r.stderr.decode().splitlines()
        error_lines = [l for l in lines if l.startswith(f"{path}:")]
        for line, column, key, words in expected_errors(text):
            prefix = f"{path}:{line}:{column}: {key}: "
            matching = [l for l in error_lines if l.startswith(prefix)]
            self.assertEqual(len(matching), 1, f"want one line starting {prefix!r} in:\n"
                                               + "\n".join(lines))
            for word in words:
                self.assertIn(word, matching[0])
        self.assertEqual(len(error_lines), 4, "\n".join(lines))

    def test_validate_unreadable_file(self):
        path = os.path.join(self.tmp, "missing.yaml")
        r = run_sluice(["--validate", "--config", path])
        self.assertEqual(r.returncode, 1)
        self.assertIn(path, r.stderr.decode())
        self.assertNotIn(b"configuration OK", r.stdout)


class StartUpFailures(harness.E2ETestCase):
    def test_bad_config_does_not_start(self):
        port = harness.free_port()
        path = os.path.join(self.tmp, "bad.yaml")
        text = bad_config(port)
        with open(path, "w") as f:
            f.write(text)
        r = run_sluice(["--config", path], timeout=30)
        self.assertEqual(r.returncode, 1)
        err = r.stderr.decode()
        for line, column, key, words in expected_errors(text):
            self.assertIn(f"{path}:{line}:{column}: {key}: ", err)
        self.assertNotIn("started:", err)
        self.assertFalse(harness.port_accepts(port))

    def test_address_in_use(self):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            port = holder.getsockname()[1]
            path = os.path.join(self.tmp, "busy.yaml")
            with open(path, "w") as f:
                f.write(harness.basic_config(["127.0.0.1:9"], listener_port=port))
            r = run_sluice(["--config", path], timeout=30)
        self.assertEqual(r.returncode, 1, r.stderr)
        err = r.stderr.decode()
        self.assertIn(f"127.0.0.1:{port}", err)
        self.assertIn("public", err)  # the listener's name
        self.assertRegex(err.lower(), r"address already in use|in use")
        self.assertNotIn("started:", err)

    def test_second_instance_on_the_same_address(self):
        # The address is in use by another sluice. SO_REUSEPORT (one acceptor per worker) must not
        # let a second process join the listening group and take part of the traffic.
        port = harness.free_port()
        config = harness.basic_config(["127.0.0.1:9"], listener_port=port)
        first = self.start_sluice(config, name="first")
        self.assertEqual(first.port, port)
        second = harness.Sluice(self.tmp, config, name="second")
        self.addCleanup(second.kill)
        second.spawn()
        # Wait for whichever comes first: an exit, or the line saying it is serving.
        deadline = time.monotonic() + 10
        while (second.proc.poll() is None and "started:" not in second.stderr()
               and time.monotonic() < deadline):
            time.sleep(0.05)
        code = second.proc.poll()
        self.assertEqual(code, 1, "a second sluice started on an address another sluice is "
                                  f"listening on:\n{second.stderr()}")
        self.assertIn(f"127.0.0.1:{port}", second.stderr())
        self.assertNotIn("started:", second.stderr())


class Running(harness.E2ETestCase):
    def test_workers_flag_overrides_file(self):
        sluice = self.start_sluice(harness.basic_config(["127.0.0.1:9"], workers=1),
                                   args=("--workers", "3"))
        self.assertEqual(sluice.workers, 3)
        self.assertEqual(list(sluice.listeners), ["public"])



class Signals(harness.E2ETestCase):
    def test_sigterm_drains_in_flight_request(self):
        jetty = self.start_jetty(name="drain")
        sluice = self.start_sluice(harness.basic_config([jetty.endpoint], drain_timeout="10s"))
        # A warm keep-alive connection: the slow request below needs no accept, so it is
        # certainly in flight (read, forwarded, waiting on Jetty) when SIGTERM arrives.
        conn = harness.http.client.HTTPConnection("127.0.0.1", sluice.port, timeout=30)
        self.addCleanup(conn.close)
        self.assertEqual(request(sluice.port, "GET", "/health", conn=conn).status, 200)

        result = {}

        def slow_request():
            started = time.monotonic()
            try:
                result["response"] = request(sluice.port, "GET", "/slow?ms=1500", conn=conn)
            except Exception as e:  # reported by the assertions below
                result["error"] = e
            result["elapsed"] = time.monotonic() - started

        client = threading.Thread(target=slow_request)
        client.start()
        time.sleep(0.5)  # the request is at Jetty now, sleeping
        sluice.signal(signal.SIGTERM)
        time.sleep(0.3)
        # Draining: still running, no longer accepting.
        self.assertTrue(sluice.running(), "exited before the in-flight request finished:\n"
                                          + sluice.stderr())
        self.assertFalse(harness.port_accepts(sluice.port), "still accepting after SIGTERM")
        client.join(30)
        self.assertFalse(client.is_alive())
        self.assertNotIn("error", result)
        r = result["response"]
        self.assertEqual((r.status, r.body), (200, b"slow 1500\n"), r)
        self.assertGreaterEqual(result["elapsed"], 1.4)
        self.assertEqual((r.header("connection") or "").lower(), "close")
        code = sluice.wait(15)
        self.assertEqual(code, 0, sluice.stderr())

    def test_sigterm_with_idle_keep_alive_connection(self):
        # An idle keep-alive client must not hold the drain open until drain_timeout (30s here):
        # there is nothing in flight, so sluice closes it and exits.
        jetty = self.start_jetty(name="idle")
        sluice = self.start_sluice(harness.basic_config([jetty.endpoint], drain_timeout="30s"))
        conn = harness.http.client.HTTPConnection("127.0.0.1", sluice.port, timeout=30)
        self.addCleanup(conn.close)
        self.assertEqual(request(sluice.port, "GET", "/health", conn=conn).status, 200)
        sent = time.monotonic()
        sluice.signal(signal.SIGTERM)
        code = sluice.wait(25)
        self.assertEqual(code, 0, sluice.stderr())
        self.assertLess(time.monotonic() - sent, 10, "waited for the idle connection")

    def test_sighup_does_not_kill(self):
        dead = harness.free_port()  # nothing listens there: requests get a local 503
        sluice = self.start_sluice(harness.basic_config([f"127.0.0.1:{dead}"]))
        for _ in range(3):
            sluice.signal(signal.SIGHUP)
            time.sleep(0.3)
            self.assertTrue(sluice.running(), "SIGHUP killed sluice:\n" + sluice.stderr())
        r = request(sluice.port, "GET", "/")
        self.assertEqual(r.status, 503, r)
        self.assertTrue(r.text.startswith("upstream connect error"), r)
        sluice.stop()  # and SIGTERM still works after SIGHUPs: exit 0


if __name__ == "__main__":
    unittest.main()
