#!/usr/bin/python3
"""An h2c (prior knowledge) server on python3-h2 that does what nginx will not on demand, for
test_upstream_http2.py: refuse a stream, send GOAWAY before processing, hang, answer late, echo
the request's fields, send trailers. One thread per connection.

    h2_misbehaving_peer.py PORT

Paths:
  /echo        200, body: JSON {"fields": [[name, value], ...]} of the request's fields
  /refuse      REFUSED_STREAM on the first request of this path, 200 "ok" afterwards
  /goaway      on the first request of this path: GOAWAY(last_stream_id below it) and close;
               200 "ok" afterwards
  /hang        never answers (the stream stays open)
  /late        200 "late" after 600 ms
  /trailers    200 with body "x" and trailers grpc-status: 0
  /stats       200, body: JSON {"resets": [[path, error_code], ...], "requests": {path: n},
               "trailers": {path: [[name, value], ...]}, "bodies": {path: bytes received}}
Prints "listening PORT" once serving.
"""

import json
import socket
import sys
import threading
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

lock = threading.Lock()
requests = {}
resets = []
trailers = {}  # path: [[name, value], ...] of the request trailers received
bodies = {}    # path: bytes of request body received


def serve(sock):
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False,
                                                                  header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    paths = {}
    send_lock = threading.Lock()

    def send():
        data = conn.data_to_send()
        if data:
            sock.sendall(data)

    def respond(sid, status, body, headers=(), trailers=None):
        # Like gRPC servers, no content-length on a response with trailers.
        length = [] if trailers else [("content-length", str(len(body)))]
        with send_lock:
            conn.send_headers(sid, [(":status", str(status))] + length + list(headers),
                              end_stream=not body and not trailers)
            if body:
                conn.send_data(sid, body, end_stream=not trailers)
            if trailers:
                conn.send_headers(sid, trailers, end_stream=True)
            send()

    def late(sid):
        time.sleep(0.6)
        try:
            respond(sid, 200, b"late")
        except Exception:
            pass

    while True:
        try:
            data = sock.recv(65536)
        except OSError:
            return
        if not data:
            return
        with send_lock:
            events = conn.receive_data(data)
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                fields = [(n, v) for n, v in ev.headers]
                path = dict(fields)[":path"].split("?")[0]
                paths[ev.stream_id] = path
                with lock:
                    requests[path] = requests.get(path, 0) + 1
                    n = requests[path]
                if path == "/echo":
                    respond(ev.stream_id, 200, json.dumps({"fields": fields}).encode())
                elif path == "/refuse" and n == 1:
                    with send_lock:
                        conn.reset_stream(ev.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
                        send()
                elif path == "/goaway" and n == 1:
                    with send_lock:
                        conn.close_connection(last_stream_id=ev.stream_id - 2)
                        send()
                    time.sleep(0.05)
                    sock.close()
                    return
                elif path == "/hang":
                    pass
                elif path == "/late":
                    threading.Thread(target=late, args=(ev.stream_id,), daemon=True).start()
                elif path == "/trailers":
                    respond(ev.stream_id, 200, b"x", trailers=[("grpc-status", "0")])
                elif path == "/stats":
                    with lock:
                        body = json.dumps({"resets": resets, "requests": requests,
                                           "trailers": trailers, "bodies": bodies}).encode()
                    respond(ev.stream_id, 200, body)
                else:
                    respond(ev.stream_id, 200, b"ok")
            elif isinstance(ev, h2.events.StreamReset):
                with lock:
                    resets.append([paths.get(ev.stream_id, "?"), int(ev.error_code)])
            elif isinstance(ev, h2.events.TrailersReceived):
                with lock:
                    trailers[paths.get(ev.stream_id, "?")] = [[n, v] for n, v in ev.headers]
            elif isinstance(ev, h2.events.DataReceived):
                with lock:
                    p = paths.get(ev.stream_id, "?")
                    bodies[p] = bodies.get(p, 0) + len(ev.data)
                with send_lock:
                    try:
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    except h2.exceptions.StreamClosedError:
                        pass
            elif isinstance(ev, h2.events.ConnectionTerminated):
                sock.close()
                return
        with send_lock:
            send()


def main():
    port = int(sys.argv[1])
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(64)
    print(f"listening {port}", flush=True)
    while True:
        s, _ = srv.accept()
        threading.Thread(target=serve, args=(s,), daemon=True).start()


if __name__ == "__main__":
    main()
