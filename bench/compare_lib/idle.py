"""The idle-connections scenario: resident memory per idle keep-alive client connection.

For each proxy (basic configuration, upstream pools warmed by 1 s of wrk at 50 connections):
read the RSS of all its processes (VmRSS, summed), open N client connections from this one
process with non-blocking sockets, send one small GET on each and read its response (in waves of
WAVE connections, so the proxy never needs more than WAVE upstream connections at once), wait
1 s, read the RSS again; per connection = (RSS with N idle connections − RSS before) / N. Then
close them all, wait 1 s and read it once more: what was not returned after close.

The client needs N descriptors and the proxy N plus its upstream pool; with the machine's
open-file limit (20,000 here) N = 10,000 fits both. Lower N with --idle-connections.
"""

import errno
import resource
import selectors
import socket
import time

from . import procstat

WAVE = 50
REQUEST = b"GET / HTTP/1.1\r\nHost: bench.local\r\nUser-Agent: bench-idle\r\n\r\n"


def fd_room():
    """Raises this process's soft open-file limit to the hard one; returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _complete(buf):
    """True once buf holds a whole response with a Content-Length body (all the backend sends)."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    length = 0
    for line in buf[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return len(buf) >= end + 4 + length


def _one_wave(port, n, timeout_s=30.0):
    """Opens n connections, sends a GET on each, waits for every response. Returns (sockets,
    failures)."""
    sel = selectors.DefaultSelector()
    socks, bufs, failed = [], {}, 0
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex(("127.0.0.1", port))
        if err not in (0, errno.EINPROGRESS):
            s.close()
            failed += 1
            continue
        socks.append(s)
        bufs[s] = b""
        sel.register(s, selectors.EVENT_WRITE)
    pending = len(socks)
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        for key, ev in sel.select(timeout=1.0):
            s = key.fileobj
            try:
                if ev & selectors.EVENT_WRITE:
                    s.send(REQUEST)  # 60 bytes: one send on a fresh connection
                    sel.modify(s, selectors.EVENT_READ)
                    continue
                chunk = s.recv(65536)
            except OSError:
                chunk = b""
            if chunk:
                bufs[s] += chunk
                if not _complete(bufs[s]):
                    continue
                if not bufs[s].startswith(b"HTTP/1.1 200"):
                    failed += 1
            else:
                failed += 1
            sel.unregister(s)
            pending -= 1
    failed += pending
    sel.close()
    return socks, failed


def run(proxy, n, settle_s=1.0):
    """Returns {n, rss_before_mib, rss_idle_mib, rss_after_close_mib, kib_per_conn, failed} or
    {"error": reason}. The proxy must be running."""
    pids = proxy.process.pids()
    time.sleep(settle_s)
    before = procstat.rss_kib(pids)
    socks, failed, attempts = [], 0, 0
    try:
        while attempts < n:
            wave = min(WAVE, n - attempts)
            got, bad = _one_wave(proxy.port, wave)
            attempts += wave
            socks += got
            failed += bad
            if failed > n // 100:
                break
        time.sleep(settle_s)
        pids = proxy.process.pids()
        idle = procstat.rss_kib(pids)
        # Only connections that answered are divided by (the others may have been closed).
        ok = attempts - failed
    finally:
        for s in socks:
            s.close()
    if failed > n // 100:
        return {"proxy": proxy.name, "n": n, "failed": failed,
                "error": f"{failed} of the first {attempts} connections failed"}
    time.sleep(settle_s)
    after = procstat.rss_kib(proxy.process.pids())
    if before is None or idle is None or after is None:
        return {"proxy": proxy.name, "n": n, "error": "could not read RSS"}
    return {"proxy": proxy.name, "n": n, "ok": ok, "failed": failed,
            "rss_before_mib": before / 1024, "rss_idle_mib": idle / 1024,
            "rss_after_close_mib": after / 1024,
            "kib_per_conn": (idle - before) / max(1, ok)}
