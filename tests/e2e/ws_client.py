"""A small synchronous WebSocket client for the e2e tests, on Debian's `websockets` module.

Debian 12 ships websockets 10.4, which has only the asyncio API; the tests are plain unittest
code, so each WsClient runs its own event loop and every call blocks until it is done (or its
timeout passes). Run the tests with /usr/bin/python3: a python3 earlier on PATH may not see
Debian's modules.

    from ws_client import WsClient, connect

    # Through Sluice, or straight to Jetty:
    with connect("ws://127.0.0.1:10000/ws/echo") as ws:
        ws.send_text("hello");   assert ws.recv_text() == "hello"
        ws.send_binary(b"\\0\\1"); assert ws.recv_binary() == b"\\0\\1"
        assert ws.echo(b"x" * (2 << 20)) == b"x" * (2 << 20)  # one large message
        assert ws.echo_many(["a", b"b", "c"]) == ["a", b"b", "c"]  # pipelined, order kept
        ws.send_fragmented(["he", "llo"]); assert ws.recv() == "hello"  # one message, 2 frames
        code, reason = ws.request_close()                        # Jetty's "close-me" → 1000

Messages are `str` (text frames) or `bytes` (binary frames) both ways, so a test can assert the
type it got back as well as the content.
"""

import asyncio

try:
    import websockets
    import websockets.exceptions
except ImportError as e:  # never skip: a missing peer library is a failure that says what to do
    raise ImportError("the e2e WebSocket client needs Debian's python3-websockets: "
                      "apt-get install python3-websockets (or scripts/bootstrap), and run the "
                      "tests with /usr/bin/python3") from e

DEFAULT_TIMEOUT = 30.0
# Above the 2 MiB the proxy's WebSocket tests send; websockets' own default is 1 MiB.
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# The text message on which the example Jetty's /ws/echo closes with code 1000.
CLOSE_COMMAND = "close-me"


class WsClosed(AssertionError):
    """The connection closed while a message was expected. `code` and `reason` are what the
    peer sent in its close frame (None, "" when it sent none)."""

    def __init__(self, message, code=None, reason=""):
        super().__init__(message)
        self.code = code
        self.reason = reason


class WsClient:
    """One WebSocket connection. Use connect() or WsClient(url).open(); close() or a `with`
    block ends it."""

    def __init__(self, url, headers=None, timeout=DEFAULT_TIMEOUT,
                 max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES):
        self.url = url
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.max_message_bytes = max_message_bytes
        self._loop = asyncio.new_event_loop()
        self._ws = None

    # -- life cycle --

    def open(self):
        """Opens the connection (the HTTP upgrade). Raises on anything but a 101."""
        async def go():
            # Made inside the loop: websockets 10's connect() binds the running loop when built.
            return await websockets.connect(
                self.url, extra_headers=self.headers, max_size=self.max_message_bytes,
                # Large messages are written in one go; the default 64 KiB write limit would
                # only add drain pauses. No compression: the bytes on the wire are the bytes sent.
                write_limit=2 ** 20, compression=None, open_timeout=self.timeout,
                close_timeout=self.timeout, ping_interval=None)
        self._ws = self._run(go())
        return self

    def close(self, code=1000, reason=""):
        """Sends a close frame and waits for the peer's (no-op when already closed)."""
        if self._ws is not None:
            try:
                self._run(self._ws.close(code, reason))
            finally:
                self._ws = None
        if not self._loop.is_closed():
            self._loop.close()

    def __enter__(self):
        return self if self._ws is not None else self.open()

    def __exit__(self, *exc):
        self.close()

    @property
    def response_headers(self):
        """The headers of the 101 response (case-insensitive lookup: .get("x-backend"))."""
        return self._connection().response_headers

    # -- messages --

    def send_text(self, text):
        if not isinstance(text, str):
            raise TypeError(f"send_text takes str, not {type(text).__name__}")
        self._run(self._connection().send(text))

    def send_binary(self, data):
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"send_binary takes bytes, not {type(data).__name__}")
        self._run(self._connection().send(bytes(data)))

    def send(self, message):
        """str → one text message, bytes → one binary message."""
        if isinstance(message, str):
            self.send_text(message)
        else:
            self.send_binary(message)

    def send_fragmented(self, fragments):
        """One message sent as several frames (a first frame, continuations, FIN on the last):
        all str for a text message, all bytes for a binary one."""
        fragments = list(fragments)
        kinds = {isinstance(f, str) for f in fragments}
        if len(fragments) < 2 or len(kinds) != 1:
            raise ValueError("send_fragmented takes two or more fragments, all str or all bytes")
        self._run(self._connection().send(iter(fragments)))

    def recv(self):
        """The next whole message: str (text) or bytes (binary). Raises WsClosed on a close."""
        ws = self._connection()
        try:
            return self._run(ws.recv())
        except websockets.exceptions.ConnectionClosed as e:
            raise WsClosed(f"{self.url}: connection closed while waiting for a message "
                           f"({_describe_close(e)})", *_close_of(e)) from None

    def recv_text(self):
        m = self.recv()
        if not isinstance(m, str):
            raise AssertionError(f"expected a text message, got binary ({len(m)} bytes)")
        return m

    def recv_binary(self):
        m = self.recv()
        if not isinstance(m, bytes):
            raise AssertionError(f"expected a binary message, got text ({len(m)} characters)")
        return m

    def echo(self, message):
        """Sends one message and returns the next one received (same type expected by callers)."""
        self.send(message)
        return self.recv()

    def echo_many(self, messages):
        """Sends every message first (pipelined, no waiting), then reads as many back, in order."""
        async def go():
            ws = self._connection()
            for m in messages:
                await ws.send(m)
            return [await ws.recv() for _ in messages]
        try:
            return self._run(go())
        except websockets.exceptions.ConnectionClosed as e:
            raise WsClosed(f"{self.url}: connection closed during echo_many "
                           f"({_describe_close(e)})", *_close_of(e)) from None

    def request_close(self, command=CLOSE_COMMAND):
        """Sends `command` (Jetty's /ws/echo closes on "close-me") and waits for the server's
        close. Returns (code, reason) of the server's close frame; fails if a message arrives
        instead or the connection ends without a close frame."""
        self.send_text(command)
        return self.wait_closed()

    def wait_closed(self):
        """Waits for the peer to close; returns (code, reason) of its close frame."""
        ws = self._connection()
        try:
            m = self._run(ws.recv())
        except websockets.exceptions.ConnectionClosed as e:
            self._ws = None
            code, reason = _close_of(e)
            if code is None:
                raise WsClosed(f"{self.url}: the connection ended without a close frame "
                               f"({_describe_close(e)})") from None
            return code, reason
        raise AssertionError(f"expected the peer to close, got a message: {m[:200]!r}")

    # -- internals --

    def _connection(self):
        if self._ws is None:
            raise RuntimeError(f"{self.url}: not connected (call open() or use connect())")
        return self._ws

    def _run(self, coro):
        return self._loop.run_until_complete(asyncio.wait_for(coro, self.timeout))


def connect(url, headers=None, timeout=DEFAULT_TIMEOUT,
            max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES):
    """Opens a WsClient on `url` (ws://host:port/path); use it in a `with` block."""
    return WsClient(url, headers=headers, timeout=timeout,
                    max_message_bytes=max_message_bytes).open()


def _close_of(e):
    rcvd = getattr(e, "rcvd", None)
    return (rcvd.code, rcvd.reason) if rcvd is not None else (None, "")


def _describe_close(e):
    code, reason = _close_of(e)
    return f"close code {code}, reason {reason!r}" if code is not None else "no close frame"
