"""TLS for the TLS scenarios: the certificates (made once per run with the test PKI of
tests/e2e/pki.py, the same files for every proxy), the settings every proxy gets, a check of what
each proxy negotiates, and the resumed-handshake load (`openssl s_time -reuse`).

Every proxy terminates TLS 1.2 and 1.3 with the same certificate and the same Mozilla
"intermediate" cipher suites in server preference order (what Sluice uses by default, issue 10),
the default groups (X25519 first), session tickets on.

Full and resumed handshakes are driven by `openssl s_time` (run_s_time below says why not wrk).
"""

import os
import re
import socket
import ssl
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import pki as test_pki  # noqa: E402

# Mozilla's "intermediate" profile (v5.7): TLS 1.2 ciphers, and the TLS 1.3 suites in its order.
CIPHERS_TLS12 = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                 "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                 "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                 "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384")
CIPHERSUITES_TLS13 = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

# The names wrk, s_time and the readiness probe use: 127.0.0.1 (IP SAN), Host bench.local.
SAN = ["DNS:bench.local", "DNS:localhost", "IP:127.0.0.1"]


class Certificates:
    """Per key type ("ecdsa": P-256, "rsa": 2048 bits) a (cert, key) pair, and the CA."""

    def __init__(self, tmp):
        d = os.path.join(tmp, "tls")
        pki = test_pki.create_ca(d)
        self.ca = pki.ca_cert
        self.pairs = {kt: pki.issue(f"bench-{kt}", kt, "/CN=bench.local", SAN)
                      for kt in ("ecdsa", "rsa")}
        # Keys stay owner-only: nginx's master and HAProxy read them before dropping privileges.
        # HAProxy's `crt` wants the certificate and key in one file.
        self.combined = {}
        for kt, (cert, key) in self.pairs.items():
            path = os.path.join(d, f"bench-{kt}.combined.pem")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out, open(cert) as c, open(key) as k:
                out.write(c.read() + k.read())
            self.combined[kt] = path


def negotiated(port, ca):
    """What a default client (Python's ssl, i.e. OpenSSL) negotiates, verifying the certificate
    against the run's CA: "TLSv1.3 TLS_AES_128_GCM_SHA256", or why the handshake failed."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            ctx = ssl.create_default_context(cafile=ca)
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                cipher = s.cipher()
                return f"{s.version()} {cipher[0]}"
    except (OSError, ssl.SSLError) as e:
        return f"handshake failed: {e}"


class LoadError(Exception):
    pass


# s_time writes "GET <path> HTTP/1.0\r\n\r\n" and has no option for headers. Without a Host,
# Sluice and nginx forward an empty Host to the HTTP/1.1 backend, which answers 400 and closes
# its connection, so each of their handshakes also paid a new upstream TCP connection that
# HAProxy (which forwards HTTP/1.0 as is) did not: the handshake rows compared connection churn
# (strace: a socket/connect/close per handshake for those two, none for HAProxy). The path
# therefore carries a Host line; the request line's tail lands in a header of its own
# ("X-Bench: s_time HTTP/1.0"), and `check_s_time_request` makes sure it is answered 200.
S_TIME_HEADERS = "\r\nHost: bench.local\r\nX-Bench: s_time"


def s_time_request(path):
    """The bytes `openssl s_time -www` sends for `path` with S_TIME_HEADERS appended."""
    return f"GET {path} HTTP/1.0{S_TIME_HEADERS} HTTP/1.0\r\n\r\n".encode()


def check_s_time_request(port, path):
    """None if the request s_time will send is answered 200 over TLS, else why not. Like
    s_time, it does not verify the certificate (negotiated() does, after each start)."""
    ctx = ssl._create_unverified_context()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(s_time_request(path))
                data = b""
                while b"\r\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
    except (OSError, ssl.SSLError) as e:
        return f"the s_time request failed: {e}"
    status = data.split(b"\r\n", 1)[0].decode("latin-1")
    if not re.match(r"HTTP/1\.[01] 200", status):
        return f"the s_time request was answered {status!r}, not 200"
    return None


def run_s_time(port, path, clients, duration_s, resume, cpus=None, nice=0):
    """New TLS connections, each with one GET path over HTTP/1.0 read to the close: `clients`
    parallel `openssl s_time` processes, each a sequential loop (s_time blocks, so it takes
    several to keep a server busy). resume=False (-new): every connection a full handshake (a new
    SSL object each time). resume=True (-reuse): every connection resumes the first one's
    session. s_time prints 'r' per resumed connection and '*' per full handshake; each one of
    the wrong kind counts as an error, so a proxy is never measured doing the other thing.

    Not wrk with 'Connection: close': wrk keeps its SSL objects across reconnects (SSL_clear),
    so after the first connection it resumes the TLS 1.3 ticket the server sent (seen in nginx's
    $ssl_session_reused: 156 of 157).

    One request first, outside s_time, checks that the proxy answers s_time's request with a
    200 (one connection among thousands in the CPU it measures)."""
    err = check_s_time_request(port, path)
    if err:
        raise LoadError(err)
    argv = ((["nice", "-n", str(nice)] if nice else []) +
            (["taskset", "-c", cpus] if cpus else []) +
            ["openssl", "s_time", "-connect", f"127.0.0.1:{port}",
             "-reuse" if resume else "-new", "-time", str(duration_s),
             "-www", path + S_TIME_HEADERS])
    t0 = time.monotonic()
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              stdin=subprocess.DEVNULL, start_new_session=True)
             for _ in range(clients)]
    outs = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=duration_s + 60)
            outs.append((p.returncode, out))
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        raise LoadError("openssl s_time did not finish")
    wall = time.monotonic() - t0
    total = resumed = not_resumed = nbytes = 0
    for rc, out in outs:
        m = re.search(r"^(\d+) connections in [\d.]+s;.*bytes read (\d+)", out, re.M)
        if rc != 0 or not m:
            lines = out.strip().splitlines()
            raise LoadError(f"openssl s_time exited {rc}: {lines[-1][-300:] if lines else 'no output'}")
        total += int(m.group(1))
        nbytes += int(m.group(2))
        # One character per connection: 'r' resumed, '*' a full handshake; after "starting"
        # (-reuse) or "Collecting connection statistics for N seconds" (-new).
        m = re.search(r"^(?:starting|Collecting connection statistics.*)\n([r*\n]*)", out, re.M)
        marks = m.group(1) if m else ""
        resumed += marks.count("r")
        not_resumed += marks.count("*")
    errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0, "status": 0}
    if resume:
        errors["not_resumed"] = not_resumed
    else:
        errors["resumed"] = resumed
    return {
        "tool": "openssl s_time",
        "command": f"{clients} × " + " ".join(argv).replace("\r\n", "\\r\\n"),
        "requests": total,
        "resumed": resumed,
        "full_handshakes": not_resumed,
        "duration_s": wall,
        "rps": total / wall if wall > 0 else 0.0,
        "bytes": nbytes,
        # s_time measures no per-connection latency.
        "p50_ms": None, "p99_ms": None, "p999_ms": None, "max_ms": None,
        "errors": errors,
        "error_total": sum(errors.values()),
    }
