#!/usr/bin/python3
"""The example Jetty's WebSocket echo endpoint (/ws/echo), talked to directly, without Sluice.

This proves the peer and the client helper (ws_client.py) that the proxy's WebSocket tests build
on: when those fail, this one tells whether the backend or the proxy is at fault.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import ws_client  # noqa: E402

MIB = 1024 * 1024


class JettyWebSocketEcho(harness.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        cls.jetty = cls.start_class_jetty(name="jetty-ws")
        cls.url = f"ws://127.0.0.1:{cls.jetty.port}/ws/echo"

    def connect(self):
        ws = ws_client.connect(self.url)
        self.addCleanup(ws.close)
        return ws

    def test_text_comes_back_as_text_and_binary_as_binary(self):
        ws = self.connect()
        self.assertEqual(ws.response_headers.get("x-backend"), "jetty-ws")
        got = ws.echo("hello, ünïcode ✓")
        self.assertIsInstance(got, str)
        self.assertEqual(got, "hello, ünïcode ✓")
        payload = bytes(range(256))
        got = ws.echo(payload)
        self.assertIsInstance(got, bytes)
        self.assertEqual(got, payload)
        # Text that looks like the close command, but is not exactly it, is echoed.
        self.assertEqual(ws.echo("close-me "), "close-me ")
        self.assertEqual(ws.echo(b"close-me"), b"close-me")
        self.assertEqual(ws.echo(""), "")
        self.assertEqual(ws.echo(b""), b"")

    def test_large_messages_up_to_and_above_two_mib(self):
        ws = self.connect()
        for size in (64 * 1024 + 1, 2 * MIB, 2 * MIB + 7):
            with self.subTest(binary=size):
                data = os.urandom(size)
                self.assertEqual(ws.echo(data), data)
        # 2 MiB of UTF-8 made of 2-byte characters, so a frame split inside a character would
        # show as a decoding failure.
        text = "é" * MIB
        self.assertEqual(len(text.encode()), 2 * MIB)
        got = ws.echo(text)
        self.assertIsInstance(got, str)
        self.assertEqual(got, text)

    def test_fragmented_messages_are_echoed_whole(self):
        ws = self.connect()
        ws.send_fragmented(["frag", "mented ", "text"])
        self.assertEqual(ws.recv_text(), "fragmented text")
        parts = [os.urandom(300 * 1024) for _ in range(4)]
        ws.send_fragmented(parts)
        self.assertEqual(ws.recv_binary(), b"".join(parts))

    def test_many_messages_in_order(self):
        ws = self.connect()
        messages = [f"text {i}" if i % 3 else f"binary {i}".encode() * (i % 50 + 1)
                    for i in range(600)]
        self.assertEqual(ws.echo_many(messages), messages)

    def test_close_me_closes_with_1000(self):
        ws = self.connect()
        self.assertEqual(ws.echo("before"), "before")
        code, _ = ws.request_close()
        self.assertEqual(code, 1000)

    def test_connections_are_independent(self):
        a, b = self.connect(), self.connect()
        a.send_text("to a")
        b.send_text("to b")
        self.assertEqual(b.recv_text(), "to b")
        self.assertEqual(a.recv_text(), "to a")
        self.assertEqual(a.request_close()[0], 1000)
        self.assertEqual(b.echo(b"b still open"), b"b still open")

    def test_plain_get_is_not_upgraded(self):
        r = harness.request(self.jetty.port, "GET", "/ws/echo")
        self.assertNotEqual(r.status, 101)
        self.assertGreaterEqual(r.status, 400, r)


if __name__ == "__main__":
    unittest.main()
