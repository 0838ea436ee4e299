"""The backend, the Jetty example and the proxies under test: configs rendered from bench/peers/
templates, processes started from a temp dir (never as system services) and stopped after use.

A route set is a list of Route(kind, value, cluster), tried in order, first match wins; each
proxy gets the equivalent of it in its own syntax (see routes_* below).
"""

import dataclasses
import http.client
import os
import re
import shutil
import signal
import ssl
import subprocess
import time

from . import procstat, tls
from .util import free_port, log

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS_DIR = os.path.join(os.path.dirname(HERE), "peers")
REPO = os.path.dirname(os.path.dirname(HERE))


@dataclasses.dataclass
class Route:
    kind: str  # "prefix" | "exact" | "regex" (regex: full match of the path)
    value: str
    cluster: str


@dataclasses.dataclass
class Cluster:
    name: str
    port: int
    # "http1", or "http2": the backend speaks h2c (prior knowledge), e.g. the gRPC backend.
    protocol: str = "http1"


# Idle upstream connections per backend that nginx and Sluice keep in the HTTP/2 scenarios
# (64 otherwise). Those scenarios keep 500 requests in flight (50 connections × 10 streams), and
# nginx relays each on an upstream connection of its own (HTTP/1.1, and grpc_pass too), as does
# Sluice's HTTP/1 pool: with 64 kept idle they closed and reopened some 400 upstream connections
# per second (nginx's gRPC runs: 1,400 sockets in TIME-WAIT per 6,000 calls), measuring
# connection churn instead of HTTP/2. HAProxy keeps every idle connection by default.
H2_IDLE_POOL = 512


@dataclasses.dataclass
class Http2:
    """How a variant's client speaks HTTP/2 to the proxy: downstream "alpn" (TLS, ALPN h2 and
    http/1.1 offered) or "h2c" (plaintext, prior knowledge). request: (file, headers) of the
    POST the readiness probe sends (a framed gRPC call), None: a GET."""
    downstream: str
    request: tuple = None

    @property
    def protocol(self):
        """What h2load reports having spoken."""
        return "h2" if self.downstream == "alpn" else "h2c"


def render(template_name, values):
    with open(os.path.join(PEERS_DIR, template_name)) as f:
        text = f.read()

    def sub(m):
        key = m.group(1)
        if key not in values:
            raise KeyError(f"{template_name}: no value for {{{{{key}}}}}")
        return str(values[key])

    return re.sub(r"\{\{(\w+)\}\}", sub, text)


def wait_http(port, path, deadline_s=15.0, proc=None, expect=200, interval_s=0.1, tls_ca=None):
    """Polls GET path (a new connection each time) until it answers `expect`. Returns None or
    a reason string. With tls_ca, over TLS, verifying the proxy's certificate against it."""
    end = time.monotonic() + deadline_s
    last = "no answer"
    ctx = None
    if tls_ca:
        ctx = ssl.create_default_context(cafile=tls_ca)
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            return f"exited with status {proc.returncode} while starting"
        try:
            c = (http.client.HTTPSConnection("127.0.0.1", port, timeout=2, context=ctx) if ctx
                 else http.client.HTTPConnection("127.0.0.1", port, timeout=2))
            c.request("GET", path, headers={"Host": "bench.local"})
            r = c.getresponse()
            r.read()
            c.close()
            if r.status == expect:
                return None
            last = f"status {r.status}"
        except OSError as e:
            last = str(e)
        time.sleep(interval_s)
    return f"not ready after {deadline_s:.0f}s: {last}"


def wait_h2(port, path, h2, deadline_s=15.0, proc=None, interval_s=0.1):
    """wait_http over HTTP/2: polls one request (h2load -n1, a new connection each time) until
    it answers 2xx over h2 (ALPN) or h2c as `h2` (an Http2) says. Returns None or a reason."""
    scheme = "https" if h2.downstream == "alpn" else "http"
    argv = ["h2load", "-n1", "-c1", "-t1"]
    if h2.request:
        argv += ["-d", h2.request[0]]
        for h in h2.request[1]:
            argv += ["-H", h]
    argv.append(f"{scheme}://127.0.0.1:{port}{path}")
    end = time.monotonic() + deadline_s
    last = "no answer"
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            return f"exited with status {proc.returncode} while starting"
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            out = r.stdout
            proto = re.search(r"^Application protocol: (\S+)$", out, re.M)
            if proto and proto.group(1) != h2.protocol:
                last = f"spoke {proto.group(1)}, not {h2.protocol}"
            elif re.search(r"status codes: 1 2xx", out):
                return None
            else:
                # Its request and status summary says what went wrong (errored: the connection
                # failed or was closed; 4xx/5xx: an answer).
                summary = re.findall(r"^(requests: .*|status codes: .*)$", out, re.M)
                text = (r.stderr + out).strip().splitlines()
                last = ("h2load " + "; ".join(summary) if summary else
                        text[-1] if text else f"h2load exited {r.returncode}")
        except (OSError, subprocess.TimeoutExpired) as e:
            last = str(e)
        time.sleep(interval_s)
    return f"not ready after {deadline_s:.0f}s: {last}"


class Process:
    """A process started in its own session, from its own temp dir, with its output in a file."""

    # `nice -n N` in front of every benchmark process when --nice is given (set by bench/compare).
    nice = 0

    def __init__(self, name, argv, workdir, cpus=None, env=None):
        self.name = name
        self.workdir = workdir
        self.log_path = os.path.join(workdir, "output.log")
        full = ((["nice", "-n", str(Process.nice)] if Process.nice else []) +
                (["taskset", "-c", cpus] if cpus else []) + argv)
        self.argv = full
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(full, cwd=workdir, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, env=env)
        self.pid = self.proc.pid  # nice and taskset exec the program: same pid
        if Process.nice:
            procstat.set_autogroup_nice(self.pid, Process.nice)

    def pids(self):
        return procstat.tree(self.pid) if self.proc.poll() is None else []

    def running(self):
        return self.proc.poll() is None

    def tail(self, n=15):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log(f"  {self.name}: still running {timeout:.0f}s after {sig.name}; SIGKILL")
        # Whatever is left in the session we created (nginx workers, …): kill it.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.log_file.close()
        return self.proc.returncode


def _mkdir(base, name, mode=0o755):
    """nginx workers drop to an unprivileged user when started as root: they must be able to
    read the config tree and write their temp dirs (mode 0o777 for those)."""
    d = os.path.join(base, name)
    os.makedirs(d, exist_ok=True)
    os.chmod(d, mode)
    return d


# --------------------------------------------------------------------------------------------
# Backends


def _start_nginx(workdir, template, label, cpus):
    """A backend nginx in `workdir`: its temp dirs, a free port, the rendered `template` (which
    takes dir and port); returns (port, Process). The caller waits for it to answer."""
    for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        _mkdir(workdir, d, 0o777)
    port = free_port()
    conf = os.path.join(workdir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(render(template, {"dir": workdir, "port": port}))
    return port, Process(label, ["nginx", "-p", workdir, "-c", conf], workdir, cpus)


class NginxBackend:
    name = "backend"

    def __init__(self, tmp, cpus):
        self.dir = _mkdir(tmp, "backend-nginx")
        www = _mkdir(self.dir, "www")
        with open(os.path.join(www, "16k"), "wb") as f:
            f.write((b"0123456789abcdef" * 1024))
        os.chmod(os.path.join(www, "16k"), 0o644)
        # The static handler answers POST for an existing file with 405 (see backend.conf).
        with open(os.path.join(www, "upload"), "wb"):
            pass
        os.chmod(os.path.join(www, "upload"), 0o644)
        self.port, self.process = _start_nginx(self.dir, "backend.conf", "backend nginx", cpus)
        err = wait_http(self.port, "/", proc=self.process.proc)
        if err:
            raise RuntimeError(f"backend nginx: {err}\n{self.process.tail()}")

    def stop(self):
        self.process.stop(signal.SIGTERM)


# What the gRPC backend answers to every call of sluice.test.Echo/Unary, and what the
# load generator sends: the framed protobuf Message{payload: "hello, bench", count: 1} of
# tests/e2e/grpc_peer.py (field 1 bytes, field 2 varint), written out by hand because this
# harness runs on any python3 and grpcio is only Debian's. The self-test
# (tests/e2e/test_grpc_peer_selftest.py) checks grpc_peer's encoding of the same message.
GRPC_MESSAGE = b"\x0a\x0chello, bench\x10\x01"
GRPC_FRAME = b"\x00" + len(GRPC_MESSAGE).to_bytes(4, "big") + GRPC_MESSAGE
GRPC_PATH = "/sluice.test.Echo/Unary"
GRPC_HEADERS = ("content-type: application/grpc", "te: trailers")


class GrpcBackend:
    """A gRPC unary backend that costs next to nothing per call, so the proxies are measured,
    not the backend: nginx over h2c answering every POST to GRPC_PATH with GRPC_FRAME and the
    trailer grpc-status: 0 (see peers/grpc-backend.conf). A real gRPC client accepts it
    (checked with grpc_peer.Client when this was written); a Python grpcio server would manage
    a few thousand calls per second on this machine and set everyone's ceiling."""
    name = "grpc"

    def __init__(self, tmp, cpus):
        self.dir = _mkdir(tmp, "backend-grpc")
        www = _mkdir(self.dir, "www")
        svc = _mkdir(www, GRPC_PATH.split("/")[1])
        reply = os.path.join(svc, GRPC_PATH.split("/")[2])
        with open(reply, "wb") as f:
            f.write(GRPC_FRAME)
        os.chmod(reply, 0o644)
        # The request body the load generator and the readiness probes POST.
        self.request_file = os.path.join(self.dir, "request.bin")
        with open(self.request_file, "wb") as f:
            f.write(GRPC_FRAME)
        os.chmod(self.request_file, 0o644)
        self.port, self.process = _start_nginx(self.dir, "grpc-backend.conf",
                                               "backend grpc (nginx)", cpus)
        err = wait_h2(self.port, GRPC_PATH, Http2("h2c", (self.request_file, GRPC_HEADERS)),
                      proc=self.process.proc)
        if err:
            raise RuntimeError(f"backend grpc: {err}\n{self.process.tail()}")

    def stop(self):
        self.process.stop(signal.SIGTERM)


def grpc_call_fails(port, request_file):
    """One gRPC unary call (GRPC_FRAME) over h2c to 127.0.0.1:port with nghttp, which prints
    the trailers: None when it answers 200, application/grpc, GRPC_FRAME and grpc-status 0;
    else what was wrong."""
    argv = ["nghttp", "-v", "-d", request_file] + \
        [x for h in GRPC_HEADERS for x in ("-H", h)] + [f"http://127.0.0.1:{port}{GRPC_PATH}"]
    try:
        r = subprocess.run(argv, capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"nghttp: {e}"
    out = r.stdout.decode("latin-1")
    fields = dict(re.findall(r"recv \(stream_id=\d+\) ([^:\s][^:]*|:status): (.*)", out))
    problems = []
    if r.returncode != 0:
        problems.append(f"nghttp exited {r.returncode}")
    if fields.get(":status") != "200":
        problems.append(f":status {fields.get(':status')}")
    if not (fields.get("content-type") or "").startswith("application/grpc"):
        problems.append(f"content-type {fields.get('content-type')}")
    if fields.get("grpc-status") != "0":
        problems.append(f"grpc-status {fields.get('grpc-status')} "
                        f"({fields.get('grpc-message', 'no grpc-message')})")
    if GRPC_FRAME.decode("latin-1") not in out:
        problems.append("the reply message is not the backend's")
    return "; ".join(problems) or None


class JettyBackend:
    name = "jetty"

    def __init__(self, tmp, cpus):
        self.dir = _mkdir(tmp, "backend-jetty")
        run = os.path.join(REPO, "examples", "jetty", "run.sh")
        # A long idle timeout so no proxy reuses a connection Jetty has just closed mid-run.
        self.process = Process("jetty", [run, "--port", "0", "--name", "bench-jetty",
                                         "--idle-timeout-ms", "600000"], self.dir, cpus)
        end = time.monotonic() + 60
        self.port = None
        while time.monotonic() < end and self.port is None:
            if not self.process.running():
                raise RuntimeError(f"jetty exited:\n{self.process.tail()}")
            m = re.search(r"listening on [\d.]+:(\d+)", self.process.tail(50))
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.1)
        if self.port is None:
            raise RuntimeError(f"jetty did not start in 60s:\n{self.process.tail()}")
        err = wait_http(self.port, "/health", proc=self.process.proc)
        if err:
            raise RuntimeError(f"jetty: {err}")

    def stop(self):
        self.process.stop(signal.SIGTERM)


# --------------------------------------------------------------------------------------------
# Proxies. Each has: name, available() -> None or why it is skipped, version(), and start()
# returning a Process; port is where it listens.


def _version(argv, pattern=None):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unknown ({e})"
    text = (r.stdout + r.stderr).strip()
    if pattern:
        m = re.search(pattern, text)
        if m:
            return m.group(0)
    return text.splitlines()[0] if text else "unknown"


class Proxy:
    name = "?"
    binary = "?"
    # Route kinds this proxy can express (see routes_for in bench/compare); a variant using
    # another kind is reported as not applicable for it.
    route_kinds = ("prefix", "exact", "regex")
    # Whether prepare() can terminate TLS (the TLS scenarios); see compare_lib/tls.py.
    tls_ready = False
    # Whether prepare() can serve HTTP/2 downstream (h2 by ALPN, h2c) and speak h2c upstream
    # (the HTTP/2 and gRPC scenarios).
    h2_ready = False

    def __init__(self, tmp, workers, cpus):
        self.tmp = tmp
        self.workers = workers
        self.cpus = cpus
        self.process = None
        self.port = None
        self.startup_s = None
        # Set by bench/compare before start() for a TLS variant: (tls.Certificates, key type).
        self.tls = None
        # Set by bench/compare before start() for an HTTP/2 variant: an Http2.
        self.h2 = None

    def available(self):
        if shutil.which(self.binary) is None:
            return f"`{self.binary}` not on PATH"
        return None

    def supports(self, routes):
        """None, or why this proxy cannot be given this route set."""
        kinds = sorted({r.kind for r in routes} - set(self.route_kinds))
        if kinds:
            return f"its configuration here has no {'/'.join(kinds)} routes"
        return None

    def start(self, variant, routes, clusters, ready_path):
        """Starts the proxy and waits until ready_path answers 200; startup_s is the time from
        starting the process to that first 200 (polled every 10 ms on new connections)."""
        self.dir = _mkdir(self.tmp, f"{self.name}-{variant}")
        self.port = free_port()
        argv = self.prepare(routes, clusters)
        t0 = time.monotonic()
        self.process = Process(self.name, argv, self.dir, self.cpus, env=self.env())
        if self.h2:
            err = wait_h2(self.port, ready_path, self.h2, deadline_s=60.0,
                          proc=self.process.proc, interval_s=0.01)
        else:
            err = wait_http(self.port, ready_path, deadline_s=60.0, proc=self.process.proc,
                            interval_s=0.01, tls_ca=self.tls[0].ca if self.tls else None)
        if err:
            tail = self.process.tail()
            self.process.stop(signal.SIGKILL)
            raise RuntimeError(f"{self.name}: {err}\n{tail}")
        self.startup_s = time.monotonic() - t0
        return self.process

    def rewrite(self, routes, clusters):
        """Writes a new configuration in place (same port) for a reload; returns nothing."""
        self.prepare(routes, clusters)

    def reload(self):
        """Asks the running proxy to load its rewritten configuration; None, or why it can't."""
        return "no reload mechanism wired up"

    def env(self):
        return None

    def stop(self):
        if self.process is not None:
            self.process.stop(signal.SIGTERM)
            self.process = None


class SluiceProxy(Proxy):
    name = "sluice"
    tls_ready = True
    h2_ready = True

    def __init__(self, tmp, workers, cpus, binary):
        super().__init__(tmp, workers, cpus)
        self.binary = binary

    def available(self):
        if not (os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)):
            return f"no sluice binary at {self.binary} (build it, or pass --sluice PATH)"
        return None

    def version(self):
        built = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(self.binary)))
        return f"{_version([self.binary, '--version'])} ({self.binary}, built {built})"

    def reload(self):
        self.process.proc.send_signal(signal.SIGHUP)
        return None

    def prepare(self, routes, clusters):
        if getattr(self, "_admin_for", None) != self.port:
            self._admin_for, self._admin_port = self.port, free_port()
        lines = []
        for i, r in enumerate(routes):
            key = {"prefix": "prefix", "exact": "path", "regex": "regex"}[r.kind]
            lines.append(f"          - name: r{i}\n"
                         f"            match: {{ {key}: '{r.value}' }}\n"
                         f"            cluster: {r.cluster}")
        cl = []
        for c in clusters:
            cl.append(f"  - name: {c.name}\n"
                      f"    idle_timeout: 300s\n"
                      + (f"    max_idle_connections: {H2_IDLE_POOL}\n" if self.h2 else "")
                      + ("    protocol: http2\n" if c.protocol == "http2" else "") +
                      f"    endpoints: [ 127.0.0.1:{c.port} ]")
        listener_tls = ""
        if self.tls:
            cert, key = self.tls[0].pairs[self.tls[1]]
            # Sluice's defaults are the settings the others get spelled out (compare_lib/tls.py).
            listener_tls = (f"    tls:\n"
                            f"      certificates: [ {{ cert: {cert}, key: {key} }} ]\n")
            if self.h2:
                listener_tls += "      alpn: [ h2, http/1.1 ]\n"
        if self.h2 and self.h2.downstream == "h2c":
            # The HTTP/2 limits stay at their defaults (100 streams, 1 MiB / 4 MiB windows).
            listener_tls += "    http2: { prior_knowledge: true }\n"
        conf = os.path.join(self.dir, "sluice.yaml")
        with open(conf, "w") as f:
            f.write(render("sluice.yaml", {"admin_port": self._admin_port, "workers": self.workers,
                                           "port": self.port, "routes": "\n".join(lines),
                                           "clusters": "\n".join(cl),
                                           "listener_tls": listener_tls}))
        return [self.binary, "--config", conf, "--workers", str(self.workers), "--log-level", "warn"]


def nginx_version():
    return _version(["nginx", "-v"], r"nginx/[\w.\-]+")


class NginxProxy(Proxy):
    name = "nginx"
    binary = "nginx"
    tls_ready = True
    h2_ready = True

    def version(self):
        return nginx_version()

    def reload(self):
        # What `nginx -s reload` does: SIGHUP to the master, which starts new workers and asks
        # the old ones to finish.
        self.process.proc.send_signal(signal.SIGHUP)
        return None

    def prepare(self, routes, clusters):
        for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            _mkdir(self.dir, d, 0o777)
        ups = []
        for c in clusters:
            ups.append(f"    upstream {c.name} {{\n"
                       f"        server 127.0.0.1:{c.port};\n"
                       f"        keepalive {H2_IDLE_POOL if self.h2 else 64};\n"
                       f"        keepalive_requests 100000000;\n"
                       f"        keepalive_timeout 300s;\n"
                       f"    }}")
        locs = []
        http2_clusters = {c.name for c in clusters if c.protocol == "http2"}
        for r in routes:
            # nginx picks locations by its own rules (exact, then longest prefix, then regexes in
            # order); with routes that never overlap, that selects the same route as first-match.
            modifier = {"prefix": "", "exact": "= ", "regex": "~ "}[r.kind]
            value = f"^{r.value}$" if r.kind == "regex" else r.value
            if r.cluster in http2_clusters:
                # gRPC over h2c upstream (nginx's proxy_pass speaks only HTTP/1.x upstream);
                # grpc_pass takes its own copies of the forwarding headers the server sets.
                locs.append(f"        location {modifier}{value} {{\n"
                            f"            grpc_pass grpc://{r.cluster};\n"
                            + "".join(f"            grpc_set_header {h};\n" for h in (
                                "X-Forwarded-For $proxy_add_x_forwarded_for",
                                "X-Forwarded-Proto $scheme", "X-Forwarded-Host $http_host",
                                "X-Request-Id $bench_request_id"))
                            + "        }")
            else:
                locs.append(f"        location {modifier}{value} {{ proxy_pass http://{r.cluster}; }}")
        listen_tls, server_tls = "", ""
        # nginx 1.22 turns HTTP/2 on per listen socket: with ssl it is offered by ALPN next to
        # http/1.1; without ssl the socket speaks only h2c by prior knowledge.
        if self.h2:
            listen_tls = " http2"
        if self.tls:
            certs, key_type = self.tls
            cert, key = certs.pairs[key_type]
            listen_tls = " ssl" + listen_tls
            # TLS 1.3 suites through ssl_conf_command: nginx 1.22 has no directive of its own.
            server_tls = "\n".join(f"        {d};" for d in (
                f"ssl_certificate {cert}", f"ssl_certificate_key {key}",
                "ssl_protocols TLSv1.2 TLSv1.3", f"ssl_ciphers {tls.CIPHERS_TLS12}",
                f"ssl_conf_command Ciphersuites {tls.CIPHERSUITES_TLS13}",
                "ssl_prefer_server_ciphers on", "ssl_session_tickets on",
                "ssl_session_timeout 1d"))
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(render("nginx.conf", {"dir": self.dir, "workers": self.workers, "port": self.port,
                                          "upstreams": "\n".join(ups), "locations": "\n".join(locs),
                                          "listen_tls": listen_tls, "server_tls": server_tls}))
        return ["nginx", "-p", self.dir, "-c", conf]


class HaproxyProxy(Proxy):
    name = "haproxy"
    binary = "haproxy"
    tls_ready = True
    h2_ready = True
    # Master-worker mode (-W), only for the reload scenario: the master re-reads the
    # configuration on SIGUSR2 and starts a new worker; the old one finishes its connections
    # (at most hard-stop-after).
    master_worker = False

    def reload(self):
        if not self.master_worker:
            return "not started in master-worker mode"
        self.process.proc.send_signal(signal.SIGUSR2)
        return None

    def version(self):
        return _version(["haproxy", "-v"], r"HAProxy version [\w.\-+~]+")

    def prepare(self, routes, clusters):
        rules = []
        for r in routes:
            fetch = {"prefix": "path_beg", "exact": "path", "regex": "path_reg"}[r.kind]
            value = f"^{r.value}$" if r.kind == "regex" else r.value
            rules.append(f"    use_backend {r.cluster} if {{ {fetch} {value} }}")
        bes = []
        for c in clusters:
            # proto h2: h2c to the server (prior knowledge), one multiplexed connection reused
            # for many streams.
            bes.append(f"backend {c.name}\n    server s1 127.0.0.1:{c.port}"
                       + (" proto h2" if c.protocol == "http2" else ""))
        global_extra = ["    hard-stop-after 10s"] if self.master_worker else []
        bind_tls, proto = "", "http"
        if self.tls:
            certs, key_type = self.tls
            # Tickets are on by default (`no-tls-tickets` would turn them off); HAProxy uses
            # the server's cipher order unless `prefer-client-ciphers`.
            bind_tls = (f" ssl crt {certs.combined[key_type]} ssl-min-ver TLSv1.2 "
                        f"alpn {'h2,http/1.1' if self.h2 else 'http/1.1'}")
            proto = "https"
            global_extra += [f"    ssl-default-bind-ciphers {tls.CIPHERS_TLS12}",
                             f"    ssl-default-bind-ciphersuites {tls.CIPHERSUITES_TLS13}"]
        elif self.h2 and self.h2.downstream == "h2c":
            # proto h2: the bind speaks only HTTP/2 (prior knowledge), no HTTP/1.1.
            bind_tls = " proto h2"
        conf = os.path.join(self.dir, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(render("haproxy.cfg", {
                "dir": self.dir, "workers": self.workers, "port": self.port,
                "rules": "\n".join(rules), "backends": "\n\n".join(bes),
                "global_extra": "\n".join(global_extra), "bind_tls": bind_tls,
                "proto": proto}))
        return ["haproxy"] + (["-W"] if self.master_worker else []) + ["-db", "-f", conf]


class EnvoyProxy(Proxy):
    name = "envoy"
    binary = "envoy"

    def version(self):
        return _version(["envoy", "--version"], r"envoy\s+version:\s*\S+")

    def prepare(self, routes, clusters):
        rl = []
        for r in routes:
            if r.kind == "regex":
                match = f'safe_regex: {{ regex: "{r.value}" }}'
            else:
                match = f'{"prefix" if r.kind == "prefix" else "path"}: "{r.value}"'
            rl.append(f"                        - match: {{ {match} }}\n"
                      f"                          route: {{ cluster: {r.cluster}, timeout: 15s }}")
        cl = []
        for c in clusters:
            cl.append(
                f"    - name: {c.name}\n"
                f"      type: STATIC\n"
                f"      connect_timeout: 1s\n"
                f"      lb_policy: ROUND_ROBIN\n"
                f"      circuit_breakers:\n"
                f"        thresholds: [ {{ max_connections: 100000, max_pending_requests: 100000,"
                f" max_requests: 100000 }} ]\n"
                f"      load_assignment:\n"
                f"        cluster_name: {c.name}\n"
                f"        endpoints:\n"
                f"          - lb_endpoints:\n"
                f"              - endpoint: {{ address: {{ socket_address:"
                f" {{ address: 127.0.0.1, port_value: {c.port} }} }} }}")
        conf = os.path.join(self.dir, "envoy.yaml")
        with open(conf, "w") as f:
            f.write(render("envoy.yaml", {"admin_port": free_port(), "port": self.port,
                                          "workers": self.workers, "routes": "\n".join(rl),
                                          "clusters": "\n".join(cl)}))
        return ["envoy", "-c", conf, "--concurrency", str(self.workers), "--disable-hot-restart",
                "--log-level", "warn"]


class CaddyProxy(Proxy):
    name = "caddy"
    binary = "caddy"

    def version(self):
        return "Caddy " + _version(["caddy", "version"], r"v?\d+\.\d+\.\d+")

    def env(self):
        env = dict(os.environ)
        # Caddy keeps state under HOME/XDG dirs: point them into its temp dir. GOMAXPROCS is its
        # worker count (the Go scheduler's threads running Go code).
        env.update({"HOME": self.dir, "XDG_DATA_HOME": self.dir, "XDG_CONFIG_HOME": self.dir,
                    "GOMAXPROCS": str(self.workers)})
        return env

    def prepare(self, routes, clusters):
        ports = {c.name: c.port for c in clusters}
        lines = []
        for i, r in enumerate(routes):
            if r.kind == "regex":
                matcher = f"path_regexp ^{r.value}$"
            elif r.kind == "exact":
                matcher = f"path {r.value}"
            else:
                matcher = f"path {r.value}*"
            lines.append(f"\t\t@r{i} {matcher}\n"
                         f"\t\treverse_proxy @r{i} 127.0.0.1:{ports[r.cluster]} {{\n"
                         f"\t\t\timport upstream\n\t\t}}")
        conf = os.path.join(self.dir, "Caddyfile")
        with open(conf, "w") as f:
            f.write(render("Caddyfile", {"port": self.port, "workers": self.workers,
                                         "routes": "\n".join(lines)}))
        return ["caddy", "run", "--config", conf, "--adapter", "caddyfile"]


class TrafficServerProxy(Proxy):
    name = "trafficserver"
    binary = "traffic_server"
    # remap.config `map` rules match a path prefix; exact paths and regexes would need other
    # plugins (regex_remap), so only prefix route sets are given to it.
    route_kinds = ("prefix",)
    ETC = "/etc/trafficserver"

    def available(self):
        why = super().available()
        if why is None and not os.path.isdir(self.ETC):
            why = f"{self.ETC} missing (Debian package trafficserver)"
        return why

    def version(self):
        return _version(["traffic_server", "-V"], r"Apache Traffic Server - traffic_server - [\d.]+"
                        ).replace("Apache Traffic Server - traffic_server - ", "Traffic Server ")

    def prepare(self, routes, clusters):
        # ATS reads everything from one "runroot": its layout file points every directory into
        # the temp dir, and the packaged configuration files are copied there as defaults.
        etc = _mkdir(self.dir, "etc")
        for d in ("run", "log", "cache", "var"):
            _mkdir(self.dir, d, 0o777)
        for name in os.listdir(self.ETC):
            src = os.path.join(self.ETC, name)
            if os.path.isfile(src) and not os.path.exists(os.path.join(etc, name)):
                shutil.copy(src, etc)
        for empty in ("storage.config", "plugin.config"):
            open(os.path.join(etc, empty), "w").close()
        with open(os.path.join(etc, "records.config"), "w") as f:
            f.write(render("trafficserver.records.config", {"port": self.port,
                                                            "workers": self.workers}))
        shutil.copy(os.path.join(PEERS_DIR, "trafficserver.headers.conf"),
                    os.path.join(etc, "headers.conf"))
        ports = {c.name: c.port for c in clusters}
        with open(os.path.join(etc, "remap.config"), "w") as f:
            for r in routes:
                # The target keeps the path (map rewrites the matched prefix into the target's).
                f.write(f"map {r.value} http://127.0.0.1:{ports[r.cluster]}{r.value} "
                        f"@plugin=header_rewrite.so @pparam={etc}/headers.conf\n")
        layout = os.path.join(self.dir, "runroot.yaml")
        with open(layout, "w") as f:
            d = self.dir
            f.write(f"prefix: {d}\nexec_prefix: /usr\nbindir: /usr/bin\nsbindir: /usr/sbin\n"
                    f"sysconfdir: {etc}\ndatadir: /usr/share/trafficserver\n"
                    f"includedir: /usr/include\nlibdir: /usr/lib/trafficserver\n"
                    f"libexecdir: /usr/lib/trafficserver/modules\nlocalstatedir: {d}/var\n"
                    f"runtimedir: {d}/run\nlogdir: {d}/log\ncachedir: {d}/cache\n")
        return ["traffic_server", f"--run-root={layout}"]


class Direct:
    """The floor: the same load straight to the backend (no proxy)."""
    name = "direct"
