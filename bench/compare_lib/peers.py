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
        for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            _mkdir(self.dir, d, 0o777)
        self.port = free_port()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(render("backend.conf", {"dir": self.dir, "port": self.port}))
        self.process = Process("backend nginx", ["nginx", "-p", self.dir, "-c", conf], self.dir, cpus)
        err = wait_http(self.port, "/", proc=self.process.proc)
        if err:
            raise RuntimeError(f"backend nginx: {err}\n{self.process.tail()}")

    def stop(self):
        self.process.stop(signal.SIGTERM)


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

    def __init__(self, tmp, workers, cpus):
        self.tmp = tmp
        self.workers = workers
        self.cpus = cpus
        self.process = None
        self.port = None
        self.startup_s = None
        # Set by bench/compare before start() for a TLS variant: (tls.Certificates, key type).
        self.tls = None

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
                      f"    endpoints: [ 127.0.0.1:{c.port} ]")
        listener_tls = ""
        if self.tls:
            cert, key = self.tls[0].pairs[self.tls[1]]
            # Sluice's defaults are the settings the others get spelled out (compare_lib/tls.py).
            listener_tls = (f"    tls:\n"
                            f"      certificates: [ {{ cert: {cert}, key: {key} }} ]\n")
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
                       f"        keepalive 64;\n"
                       f"        keepalive_requests 100000000;\n"
                       f"        keepalive_timeout 300s;\n"
                       f"    }}")
        locs = []
        for r in routes:
            # nginx picks locations by its own rules (exact, then longest prefix, then regexes in
            # order); with routes that never overlap, that selects the same route as first-match.
            modifier = {"prefix": "", "exact": "= ", "regex": "~ "}[r.kind]
            value = f"^{r.value}$" if r.kind == "regex" else r.value
            locs.append(f"        location {modifier}{value} {{ proxy_pass http://{r.cluster}; }}")
        listen_tls, server_tls = "", ""
        if self.tls:
            certs, key_type = self.tls
            cert, key = certs.pairs[key_type]
            listen_tls = " ssl"
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
            bes.append(f"backend {c.name}\n    server s1 127.0.0.1:{c.port}")
        global_extra = ["    hard-stop-after 10s"] if self.master_worker else []
        bind_tls, proto = "", "http"
        if self.tls:
            certs, key_type = self.tls
            # Tickets are on by default (`no-tls-tickets` would turn them off); HAProxy uses
            # the server's cipher order unless `prefer-client-ciphers`.
            bind_tls = (f" ssl crt {certs.combined[key_type]} ssl-min-ver TLSv1.2 "
                        f"alpn http/1.1")
            proto = "https"
            global_extra += [f"    ssl-default-bind-ciphers {tls.CIPHERS_TLS12}",
                             f"    ssl-default-bind-ciphersuites {tls.CIPHERSUITES_TLS13}"]
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
