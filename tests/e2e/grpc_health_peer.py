#!/usr/bin/python3
"""A real gRPC server (python3-grpcio) answering grpc.health.v1.Health/Check, for the HTTP/2
health-check tests (test_upstream_http2.py). No generated code: a generic handler with
hand-written protobuf bytes.

    grpc_health_peer.py PORT STATUS_FILE

STATUS_FILE holds the ServingStatus to answer (1 SERVING, 2 NOT_SERVING), read on every call, so
a test flips it without restarting the server. The services asked for are appended to
STATUS_FILE + ".log", one per line. Prints "listening PORT" once serving.
"""

import sys
from concurrent import futures

import grpc


def decode_service(request):
    # HealthCheckRequest{string service = 1}: tag 0x0a, varint length, bytes (empty: absent).
    if not request:
        return ""
    if request[0] != 0x0A:
        raise ValueError("unexpected field")
    length, shift, i = 0, 0, 1
    while True:
        b = request[i]
        i += 1
        length |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return request[i:i + length].decode()


def main():
    port, status_file = int(sys.argv[1]), sys.argv[2]

    def check(request, context):
        with open(status_file + ".log", "a") as f:
            f.write(decode_service(request) + "\n")
        with open(status_file) as f:
            status = int(f.read().strip() or "0")
        return bytes([0x08, status])  # HealthCheckResponse{status = 1 field, varint}

    handler = grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
        "Check": grpc.unary_unary_rpc_method_handler(
            check, request_deserializer=lambda b: b, response_serializer=lambda b: b),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"listening {port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
