#!/usr/bin/python3
"""WebSocket tunnels through Sluice to the example Jetty's /ws/echo, with a real client
(Debian's python3-websockets through ws_client.py): text and binary frames, a 1 MiB message,
1000 messages in order, close from either side, a reload while the tunnel is open, the idle
timeout, the access-log line and the stats of a tunnel, and routes that do not allow upgrades.
"""

import json
import os
import socket
import sys
import textwrap
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import ws_client  # noqa: E402

MIB = 1024 * 1024


def config(jetty_port, access_log, idle="1h", ws_upgrades="[websocket]"):
    # upgrade_idle_timeout only goes with a route that tunnels something (the loader says so).
    idle_line = f"upgrade_idle_timeout: {idle}" if ws_upgrades != "[]" else ""
    return textwrap.dedent(f"""\
        workers: 1
        admin: {{ address: 127.0.0.1:0 }}
        listeners:
          - name: public
            address: 127.0.0.1:0
            access_log: {{ path: {access_log}, format: json }}
            virtual_hosts:
              - name: app
                domains: ["*"]
                routes:
                  - name: ws
                    match: {{ prefix: /ws/ }}
                    cluster: jetty
                    upgrades: {ws_upgrades}
                    {idle_line}
                  - name: plain
                    match: {{ prefix: / }}
                    cluster: jetty
        clusters:
          - name: jetty
            endpoints: [ 127.0.0.1:{jetty_port} ]
        """)


class WebSocketThroughSluice(harness.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        cls.jetty = cls.start_class_jetty(name="jetty-ws")

    def start(self, **kw):
        self.access_log = os.path.join(self.tmp, "access.log")
        sluice = self.start_sluice(config(self.jetty.port, self.access_log, **kw))
        return sluice

    def connect(self, sluice, path="/ws/echo"):
        ws = ws_client.connect(f"ws://127.0.0.1:{sluice.port}{path}")
        self.addCleanup(ws.close)
        return ws

    def log_lines(self, sluice, count, timeout=10.0):
        # Access-log batches reach the file within ~100 ms; wait for `count` lines.
        deadline = time.time() + timeout
        while True:
            lines = []
            if os.path.exists(self.access_log):
                with open(self.access_log) as f:
                    lines = [json.loads(line) for line in f if line.strip()]
            if len(lines) >= count or time.time() > deadline:
                return lines
            time.sleep(0.1)

    def test_text_binary_large_and_many_messages(self):
        sluice = self.start()
        ws = self.connect(sluice)
        self.assertEqual(ws.response_headers.get("x-backend"), "jetty-ws")
        self.assertEqual(ws.echo("hello through sluice"), "hello through sluice")
        self.assertEqual(ws.echo(bytes(range(256))), bytes(range(256)))
        big = os.urandom(MIB)
        self.assertEqual(ws.echo(big), big)
        messages = [f"message {i}" if i % 2 else f"binary {i}".encode() for i in range(1000)]
        self.assertEqual(ws.echo_many(messages), messages)

    def test_server_closes_and_the_tunnel_is_logged_once_with_bytes_both_ways(self):
        sluice = self.start()
        ws = self.connect(sluice)
        payload = "x" * 10000
        self.assertEqual(ws.echo(payload), payload)
        code, _ = ws.request_close()  # Jetty closes with 1000
        self.assertEqual(code, 1000)
        lines = self.log_lines(sluice, 1)
        self.assertEqual(len(lines), 1, lines)
        entry = lines[0]
        self.assertEqual(entry["status"], 101)
        self.assertEqual(entry["route"], "ws")
        # Frames both ways: at least the payload each way (client frames are masked, +headers).
        self.assertGreater(entry["bytes_received"], 10000)
        self.assertGreater(entry["bytes_sent"], 10000)
        scrape = sluice.scrape_text()
        self.assertRegex(scrape, r'sluice_route_requests_total\{listener="public",vhost="app",'
                                 r'route="ws",code_class="1xx"\} 1')

    def test_client_closes(self):
        sluice = self.start()
        ws = self.connect(sluice)
        self.assertEqual(ws.echo("bye"), "bye")
        ws.close()
        lines = self.log_lines(sluice, 1)
        self.assertEqual(len(lines), 1, lines)
        self.assertEqual(lines[0]["status"], 101)
        # The proxy is fine afterwards.
        ws2 = self.connect(sluice)
        self.assertEqual(ws2.echo("again"), "again")

    def test_tunnel_survives_a_reload(self):
        sluice = self.start()
        ws = self.connect(sluice)
        self.assertEqual(ws.echo("before reload"), "before reload")
        # A new config (the plain route renamed) while the tunnel is open.
        sluice.write_config(config(self.jetty.port, self.access_log).replace("name: plain",
                                                                             "name: plain2"))
        sluice.reload()
        for i in range(50):
            self.assertEqual(ws.echo(f"after reload {i}"), f"after reload {i}")
        big = os.urandom(256 * 1024)
        self.assertEqual(ws.echo(big), big)

    def test_idle_tunnel_is_closed_after_upgrade_idle_timeout(self):
        sluice = self.start(idle="1s")
        ws = self.connect(sluice)
        self.assertEqual(ws.echo("ping"), "ping")
        time.sleep(2.5)
        with self.assertRaises(ws_client.WsClosed):
            ws.recv()
        lines = self.log_lines(sluice, 1)
        self.assertEqual(lines[0]["status"], 101)

    def test_route_without_upgrades_serves_the_handshake_as_plain_http(self):
        sluice = self.start(ws_upgrades="[]")
        with self.assertRaises(Exception):
            ws_client.connect(f"ws://127.0.0.1:{sluice.port}/ws/echo", timeout=10)
        # What Jetty received had no Upgrade: it answered as plain HTTP, and the connection stays
        # usable for a next request.
        s = socket.create_connection(("127.0.0.1", sluice.port), timeout=10)
        req = (b"GET /echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        s.sendall(req + b"GET /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        self.assertEqual(data.count(b"HTTP/1.1 200 "), 2, data[:500])
        self.assertNotIn(b"101 Switching", data)
        self.assertNotIn(b"upgrade: websocket", data.lower())


if __name__ == "__main__":
    unittest.main()
