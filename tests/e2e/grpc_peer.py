"""A real gRPC server and client for the e2e tests: Debian's python3-grpcio (1.51) and
python3-protobuf, so run with /usr/bin/python3. No protoc: the messages are built at run time
from a hand-written FileDescriptorProto (google.protobuf's descriptor_pool and message_factory),
so they are real protobuf messages on the wire.

The server (started as its own process, like the Jetty example, or in-process with serve()):

  service sluice.test.Echo            messages: Message { bytes payload = 1; int64 count = 2; }
    Unary(Message) -> Message         the request back (payload and count)
    ServerStream(Message) -> stream   `count` messages, each the payload with count = 0, 1, ...
    ClientStream(stream) -> Message   count = messages received, payload = SHA-256 of all their
                                      payloads concatenated
    BidiStream(stream) -> stream      each message back as it arrives
    Fail(Message) -> error            status code `count` (1..16, else 9 FAILED_PRECONDITION) with
                                      grpc-message = payload (UTF-8, default "requested failure")
                                      and trailing metadata x-backend: NAME, x-error-detail:
                                      fail and x-error-detail-bin: b"\\x00\\x01\\xfe\\xff";
                                      trailers-only (no initial metadata) unless the request
                                      metadata has sluice-headers-first: 1
    Slow(Message) -> Message          sleeps `count` ms (stops early when the call is cancelled
                                      or its deadline passes), then answers like Unary
  service grpc.health.v1.Health
    Check(HealthCheckRequest{service}) -> HealthCheckResponse{status}: SERVING (1) or NOT_SERVING
                                      (2) as set; an unknown service is NOT_FOUND (the protocol's
                                      rule). "" and "sluice.test.Echo" start SERVING.
  service sluice.test.Control         for tests, spoken to directly (not through the proxy)
    SetHealth(Message)                payload = service name, count = status (1 SERVING,
                                      2 NOT_SERVING, 0 forget the service)
    Stats(Message) -> Message         payload = JSON {"calls": {"Unary": n, ...}}

Every Echo method answers with initial metadata x-backend: NAME and every request metadata entry
whose key starts with "x-" (as received; "-bin" keys keep their bytes), and trailing metadata
with the same entries under "trailer-" + key. Initial metadata also carries
sluice-deadline-ms: the time the call had left when it arrived (absent without a deadline), so a
test can see the grpc-timeout a proxy forwarded.

Messages up to MAX_MESSAGE_BYTES (16 MiB) both ways, on the server and on clients made here.

Command line (what GrpcPeer runs):
  /usr/bin/python3 tests/e2e/grpc_peer.py [--port N] [--name NAME] [--tls-cert C --tls-key K]
prints "grpc-peer NAME listening on 127.0.0.1:PORT" once serving (h2c, or TLS with ALPN h2 when
a certificate is given) and stops on SIGTERM (in-flight calls get STOP_GRACE_S).

In a test (a harness.E2ETestCase; start_grpc_peer() is GrpcPeer(...).start() with a cleanup):
  peer = self.start_grpc_peer(name="g1")     # or tls=(cert, key), ca=pki.ca_cert
  # a Sluice cluster with `protocol: http2` and endpoints: [ peer.endpoint ]
  with grpc_peer.Client(f"127.0.0.1:{sluice.port}") as c:   # or Client(addr, ca=..., server_name=...)
      reply, initial, trailing = c.unary(b"hi", metadata=[("x-a", "1")])
      c.server_stream(b"x", 100); c.client_stream([b"a", b"b"]); c.bidi(msgs)
      e = c.fail(14, "down"); e.code(), e.details(), e.trailing_metadata()
  peer.set_health("", grpc_peer.NOT_SERVING); peer.calls()["Unary"]
"""

import argparse
import concurrent.futures
import hashlib
import json
import os
import signal
import sys
import threading
import time

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SERVICE = "sluice.test.Echo"
CONTROL_SERVICE = "sluice.test.Control"
HEALTH_SERVICE = "grpc.health.v1.Health"
METHODS = ("Unary", "ServerStream", "ClientStream", "BidiStream", "Fail", "Slow")

# 4 MiB messages are part of the tests; grpc's default limit for received messages is 4 MiB
# (payload plus a few bytes of framing would not fit), so both sides allow 16 MiB.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# Enough threads for "many concurrent calls" (each streaming call holds one thread while open).
SERVER_THREADS = 256
STOP_GRACE_S = 2.0
# A call's time_remaining() above this (ten years) means it has no deadline.
NO_DEADLINE_S = 10 * 365 * 86400

SERVING = 1
NOT_SERVING = 2

FAIL_DETAIL_BIN = b"\x00\x01\xfe\xff"


# --- messages ---------------------------------------------------------------------------------

def _build_messages():
    """The message classes, from descriptors written here (what protoc would generate)."""
    F = descriptor_pb2.FieldDescriptorProto
    pool = descriptor_pool.DescriptorPool()

    test = descriptor_pb2.FileDescriptorProto(name="sluice_test.proto", package="sluice.test",
                                              syntax="proto3")
    m = test.message_type.add(name="Message")
    m.field.add(name="payload", number=1, type=F.TYPE_BYTES, label=F.LABEL_OPTIONAL)
    m.field.add(name="count", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    pool.Add(test)

    # grpc/health/v1/health.proto, the parts Check uses.
    health = descriptor_pb2.FileDescriptorProto(name="grpc/health/v1/health.proto",
                                                package="grpc.health.v1", syntax="proto3")
    req = health.message_type.add(name="HealthCheckRequest")
    req.field.add(name="service", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    resp = health.message_type.add(name="HealthCheckResponse")
    enum = resp.enum_type.add(name="ServingStatus")
    for name, number in (("UNKNOWN", 0), ("SERVING", 1), ("NOT_SERVING", 2),
                         ("SERVICE_UNKNOWN", 3)):
        enum.value.add(name=name, number=number)
    resp.field.add(name="status", number=1, type=F.TYPE_ENUM, label=F.LABEL_OPTIONAL,
                   type_name=".grpc.health.v1.HealthCheckResponse.ServingStatus")
    pool.Add(health)

    factory = message_factory.MessageFactory(pool)

    def cls(name):
        return factory.GetPrototype(pool.FindMessageTypeByName(name))
    return (cls("sluice.test.Message"), cls("grpc.health.v1.HealthCheckRequest"),
            cls("grpc.health.v1.HealthCheckResponse"))


Message, HealthCheckRequest, HealthCheckResponse = _build_messages()


def grpc_frame(message):
    """A message in gRPC's length-prefixed framing (uncompressed): what a unary request body is
    on the wire (for raw HTTP/2 clients such as h2load -d)."""
    data = message.SerializeToString()
    return b"\x00" + len(data).to_bytes(4, "big") + data


def _ser(m):
    return m.SerializeToString()


# --- server -----------------------------------------------------------------------------------

def _echoed(context):
    """The request metadata entries the methods echo: keys starting with "x-"."""
    return [(k, v) for k, v in context.invocation_metadata() if k.startswith("x-")]


class _Peer:
    """The state and method bodies of one server."""

    def __init__(self, name):
        self.name = name
        self.lock = threading.Lock()
        self.health = {"": SERVING, SERVICE: SERVING}
        self.calls = {}

    def _begin(self, method, context, send_headers=True):
        with self.lock:
            self.calls[method] = self.calls.get(method, 0) + 1
        echoed = _echoed(context)
        if send_headers:
            initial = [("x-backend", self.name)] + echoed
            remaining = context.time_remaining()
            # Without a deadline grpc reports its "infinite" one: some 10^20 seconds.
            if remaining is not None and remaining < NO_DEADLINE_S:
                initial.append(("sluice-deadline-ms", str(int(remaining * 1000))))
            context.send_initial_metadata(initial)
        context.set_trailing_metadata([("trailer-" + k, v) for k, v in echoed])
        return echoed

    def unary(self, request, context):
        self._begin("Unary", context)
        return Message(payload=request.payload, count=request.count)

    def server_stream(self, request, context):
        self._begin("ServerStream", context)
        for i in range(request.count):
            yield Message(payload=request.payload, count=i)

    def client_stream(self, request_iterator, context):
        self._begin("ClientStream", context)
        digest = hashlib.sha256()
        n = 0
        for m in request_iterator:
            digest.update(m.payload)
            n += 1
        return Message(payload=digest.digest(), count=n)

    def bidi_stream(self, request_iterator, context):
        self._begin("BidiStream", context)
        for m in request_iterator:
            yield m

    def fail(self, request, context):
        headers_first = dict(context.invocation_metadata()).get("sluice-headers-first") == "1"
        echoed = self._begin("Fail", context, send_headers=headers_first)
        code = _status_code(request.count) or grpc.StatusCode.FAILED_PRECONDITION
        context.set_trailing_metadata([("x-backend", self.name), ("x-error-detail", "fail"),
                                       ("x-error-detail-bin", FAIL_DETAIL_BIN)] +
                                      [("trailer-" + k, v) for k, v in echoed])
        context.abort(code, request.payload.decode("utf-8", "replace") or "requested failure")

    def slow(self, request, context):
        self._begin("Slow", context)
        end = time.monotonic() + request.count / 1000.0
        while context.is_active() and time.monotonic() < end:
            time.sleep(min(0.01, max(0.0, end - time.monotonic())))
        return Message(payload=request.payload, count=request.count)

    def health_check(self, request, context):
        with self.lock:
            self.calls["Health.Check"] = self.calls.get("Health.Check", 0) + 1
            status = self.health.get(request.service)
        if status is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return HealthCheckResponse(status=status)

    def set_health(self, request, context):
        service = request.payload.decode("utf-8")
        with self.lock:
            if request.count == 0:
                self.health.pop(service, None)
            else:
                self.health[service] = int(request.count)
        return Message()

    def stats(self, request, context):
        with self.lock:
            text = json.dumps({"calls": dict(self.calls)})
        return Message(payload=text.encode())


def _status_code(number):
    for code in grpc.StatusCode:
        if code.value[0] == number and number != 0:
            return code
    return None


def _handlers(peer):
    def handler(kind, fn, req_cls):
        return getattr(grpc, f"{kind}_rpc_method_handler")(
            fn, request_deserializer=req_cls.FromString, response_serializer=_ser)
    echo = grpc.method_handlers_generic_handler(SERVICE, {
        "Unary": handler("unary_unary", peer.unary, Message),
        "ServerStream": handler("unary_stream", peer.server_stream, Message),
        "ClientStream": handler("stream_unary", peer.client_stream, Message),
        "BidiStream": handler("stream_stream", peer.bidi_stream, Message),
        "Fail": handler("unary_unary", peer.fail, Message),
        "Slow": handler("unary_unary", peer.slow, Message),
    })
    health = grpc.method_handlers_generic_handler(HEALTH_SERVICE, {
        "Check": handler("unary_unary", peer.health_check, HealthCheckRequest),
    })
    control = grpc.method_handlers_generic_handler(CONTROL_SERVICE, {
        "SetHealth": handler("unary_unary", peer.set_health, Message),
        "Stats": handler("unary_unary", peer.stats, Message),
    })
    return [echo, health, control]


MESSAGE_OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]


def serve(name="grpc", port=0, host="127.0.0.1", tls_cert=None, tls_key=None):
    """Starts a server in this process; returns (grpc.Server, port). h2c, or TLS (ALPN h2) when
    tls_cert and tls_key (PEM file paths) are given."""
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=SERVER_THREADS),
                         handlers=_handlers(_Peer(name)), options=MESSAGE_OPTIONS,
                         maximum_concurrent_rpcs=None)
    address = f"{host}:{port}"
    if tls_cert:
        with open(tls_cert, "rb") as c, open(tls_key, "rb") as k:
            creds = grpc.ssl_server_credentials([(k.read(), c.read())])
        bound = server.add_secure_port(address, creds)
    else:
        bound = server.add_insecure_port(address)
    if bound == 0:
        raise RuntimeError(f"grpc-peer: cannot listen on {address}")
    server.start()
    return server, bound


# --- the server as a process, for the tests -----------------------------------------------------

class GrpcPeer:
    """This file's server as its own process (started like harness.Jetty: own session, output in
    files in `workdir`, killed with the test process). tls: (cert, key) or None; ca: the CA the
    control calls (set_health, calls) verify the TLS peer with."""

    def __init__(self, workdir, name="grpc", port=0, tls=None, ca=None):
        import harness  # the e2e harness; only needed when a test starts a process
        self._harness = harness
        self.name = name
        self.requested_port = port
        self.tls = tls
        self.tls_ca = ca
        self.port = None
        self.proc = None
        stem = harness._unique(workdir, f"grpc-{name}")
        self.stdout_path = stem + ".stdout"
        self.stderr_path = stem + ".stderr"

    def start(self, timeout=30.0):
        h = self._harness
        argv = [sys.executable, os.path.abspath(__file__), "--port", str(self.requested_port),
                "--name", self.name]
        if self.tls:
            argv += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        self.proc = h._spawn(argv, self.stdout_path, self.stderr_path)
        try:
            m = h._wait_for_line(self.proc, self.stdout_path,
                                 r"^grpc-peer (\S+) listening on 127\.0\.0\.1:(\d+)$", timeout,
                                 f"grpc-peer {self.name}")
        except RuntimeError as e:
            self.kill()
            raise RuntimeError(f"{e}\n--- grpc-peer stderr ---\n{h._read(self.stderr_path)[-4000:]}")
        self.port = int(m.group(2))
        return self

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.port}"

    def stop(self, timeout=30.0):
        """SIGTERM (graceful stop), SIGKILL if it lingers. Returns the exit status."""
        h = self._harness
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            h._kill_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except Exception:  # subprocess.TimeoutExpired
                h._kill_group(self.proc, signal.SIGKILL)
                self.proc.wait(10)
        h._live.discard(self.proc)
        return self.proc.returncode

    def kill(self):
        h = self._harness
        if self.proc is not None and self.proc.poll() is None:
            h._kill_group(self.proc, signal.SIGKILL)
            self.proc.wait(10)
        if self.proc is not None:
            h._live.discard(self.proc)

    def stderr(self):
        return self._harness._read(self.stderr_path)

    # Control calls, always straight to the peer (never through a proxy).
    def set_health(self, service, status):
        with Client(self.endpoint, ca=self.tls_ca) as c:
            c.call("SetHealth", Message(payload=service.encode(), count=status),
                   service=CONTROL_SERVICE)

    def calls(self):
        """{"Unary": n, ...}: the calls this peer has seen, by method."""
        with Client(self.endpoint, ca=self.tls_ca) as c:
            reply, _, _ = c.call("Stats", Message(), service=CONTROL_SERVICE)
        return json.loads(reply.payload)["calls"]


# --- client -----------------------------------------------------------------------------------

class Client:
    """A channel to `target` ("127.0.0.1:PORT") and one helper per call shape. h2c unless `ca`
    (PEM path) is given: then TLS verified against it, with `server_name` (default: the host of
    the target) for SNI and the certificate check. Every helper takes metadata (a list of
    (key, value)) and timeout (seconds, sent as grpc-timeout) and returns the reply (or the
    list of replies), the initial metadata and the trailing metadata; a failed call raises
    grpc.RpcError (its code(), details(), initial_metadata(), trailing_metadata())."""

    def __init__(self, target, ca=None, server_name=None, options=()):
        opts = list(MESSAGE_OPTIONS) + list(options)
        if ca:
            with open(ca, "rb") as f:
                creds = grpc.ssl_channel_credentials(root_certificates=f.read())
            if server_name:
                opts.append(("grpc.ssl_target_name_override", server_name))
            self.channel = grpc.secure_channel(target, creds, options=opts)
        else:
            self.channel = grpc.insecure_channel(target, options=opts)

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _method(self, kind, name, service, req_cls=Message, resp_cls=Message):
        return getattr(self.channel, kind)(f"/{service}/{name}", request_serializer=_ser,
                                           response_deserializer=resp_cls.FromString)

    def call(self, method, request, service=SERVICE, metadata=None, timeout=30.0,
             resp_cls=Message):
        """Any unary method: (reply, initial metadata, trailing metadata)."""
        fn = self._method("unary_unary", method, service, resp_cls=resp_cls)
        reply, call = fn.with_call(request, metadata=metadata, timeout=timeout)
        return reply, call.initial_metadata(), call.trailing_metadata()

    def unary(self, payload=b"", count=0, **kw):
        return self.call("Unary", Message(payload=payload, count=count), **kw)

    def fail(self, code, message="", **kw):
        """Fail with status `code` (an int); raises grpc.RpcError, which it returns."""
        try:
            self.call("Fail", Message(payload=message.encode(), count=code), **kw)
        except grpc.RpcError as e:
            return e
        raise AssertionError("Fail answered without an error")

    def slow(self, ms, **kw):
        return self.call("Slow", Message(count=ms), **kw)

    def health(self, service="", **kw):
        """The HealthCheckResponse status (1 SERVING, 2 NOT_SERVING)."""
        reply, _, _ = self.call("Check", HealthCheckRequest(service=service),
                                service=HEALTH_SERVICE, resp_cls=HealthCheckResponse, **kw)
        return reply.status

    def server_stream(self, payload, count, metadata=None, timeout=60.0):
        call = self._method("unary_stream", "ServerStream", SERVICE)(
            Message(payload=payload, count=count), metadata=metadata, timeout=timeout)
        replies = list(call)
        return replies, call.initial_metadata(), call.trailing_metadata()

    def client_stream(self, payloads, metadata=None, timeout=60.0):
        fn = self._method("stream_unary", "ClientStream", SERVICE)
        reply, call = fn.with_call((Message(payload=p) for p in payloads), metadata=metadata,
                                   timeout=timeout)
        return reply, call.initial_metadata(), call.trailing_metadata()

    def bidi(self, payloads, metadata=None, timeout=120.0):
        """Sends every payload (count = its index) while reading the echoes; returns the
        replies."""
        call = self._method("stream_stream", "BidiStream", SERVICE)(
            (Message(payload=p, count=i) for i, p in enumerate(payloads)), metadata=metadata,
            timeout=timeout)
        replies = list(call)
        return replies, call.initial_metadata(), call.trailing_metadata()

    def concurrent_unary(self, n, payload=b"x", parallel=100, timeout=60.0):
        """n Unary calls with up to `parallel` in flight at once (futures on one channel, so
        they are concurrent streams of one HTTP/2 connection). Returns the replies in order."""
        fn = self._method("unary_unary", "Unary", SERVICE)
        replies = []
        for start in range(0, n, parallel):
            futures = [fn.future(Message(payload=payload, count=i), timeout=timeout)
                       for i in range(start, min(n, start + parallel))]
            replies += [f.result() for f in futures]
        return replies


def metadata_dict(md):
    """Metadata (a tuple of _Metadatum or pairs) as {key: value}; the last of a repeated key."""
    return {m[0]: m[1] for m in (md or ())}


# --- main -------------------------------------------------------------------------------------

def main(argv):
    ap = argparse.ArgumentParser(description="The e2e tests' gRPC server (see the docstring).")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--name", default="grpc")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    a = ap.parse_args(argv)
    if bool(a.tls_cert) != bool(a.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    server, port = serve(a.name, a.port, a.host, a.tls_cert, a.tls_key)
    stopped = threading.Event()

    def on_signal(signum, frame):
        stopped.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"grpc-peer {a.name} listening on {a.host}:{port}", flush=True)
    while not stopped.wait(1.0):
        pass
    server.stop(STOP_GRACE_S).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
