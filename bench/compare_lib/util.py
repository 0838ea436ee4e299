"""Small helpers shared by the harness modules."""

import socket
import sys
import time

_START = time.monotonic()
_used_ports = set()


def log(msg):
    """A progress line on stderr (stdout carries only the final table)."""
    t = time.monotonic() - _START
    print(f"[{int(t // 60):02d}:{int(t % 60):02d}] {msg}", file=sys.stderr, flush=True)


def free_port():
    """A TCP port that was free on 127.0.0.1 a moment ago, never handed out twice by this run."""
    for _ in range(100):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _used_ports:
            _used_ports.add(port)
            return port
    raise RuntimeError("no free port")


def median(values):
    v = sorted(values)
    n = len(v)
    if n == 0:
        return None
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(-(-p / 100.0 * len(sorted_values) // 1)) - 1))
    return sorted_values[k]
