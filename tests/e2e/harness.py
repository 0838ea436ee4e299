"""End-to-end test harness: the built `sluice` binary against real peers.

The one place the e2e tests start processes and build what they send and check:
  - Sluice: a sluice process (config file, start-up line, SIGHUP reloads that wait for their
    outcome in the log, the admin endpoints, /proc readings), started by
    E2ETestCase.start_sluice() / start_class_sluice();
  - Jetty: the example backend (examples/jetty), started by start_jetty() / start_class_jetty();
  - a gRPC server (grpc_peer.py), started by start_grpc_peer() / start_class_grpc_peer();
  - config() and basic_config(): configuration texts; request() and read_response(): HTTP;
    Metrics: a parsed Prometheus scrape; settled_scrape(): a scrape once the counters settled.

Standard library only (ws_client.py adds Debian's python3-websockets). Every process is started
in its own session (process group) and bound to 127.0.0.1; every process a test starts is stopped
by a cleanup that runs even when the test fails, and, as a last resort, when the Python process
exits or dies (PR_SET_PDEATHSIG). A real peer that is missing (java, curl, promtool, ...) fails
the test with the Debian package to install (require_program()); nothing passes by skipping.

Environment (set by ctest, see tests/CMakeLists.txt):
  SLUICE_BINARY      path of the built sluice binary
  SLUICE_SOURCE_DIR  repository root (for examples/jetty/run.sh)
"""

import atexit
import ctypes
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

SOURCE_DIR = os.environ.get("SLUICE_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JETTY_RUN = os.path.join(SOURCE_DIR, "examples", "jetty", "run.sh")

# Generous: the first Jetty start may compile the example (~1.5 s) on a busy 2-core machine.
JETTY_START_TIMEOUT = 90.0
SLUICE_START_TIMEOUT = 20.0
STOP_TIMEOUT = 30.0


def sluice_binary():
    path = os.environ.get("SLUICE_BINARY")
    if not path:
        raise RuntimeError("SLUICE_BINARY is not set; run through ctest or set it to the built "
                           "sluice binary")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"SLUICE_BINARY={path} is not an executable file")
    return path


# --- process bookkeeping ---------------------------------------------------------------------

_live = set()  # every Popen still running, for the atexit safety net

_PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover
    _libc = None


def _child_setup():
    # Runs in the child between fork and exec: if this test process dies (even by SIGKILL from a
    # ctest timeout), the kernel kills the child too. It survives exec (run.sh execs java).
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _kill_group(proc, sig):
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@atexit.register
def _kill_leftovers():
    for proc in list(_live):
        if proc.poll() is None:
            _kill_group(proc, signal.SIGKILL)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass


def _spawn(argv, stdout_path, stderr_path, env=None):
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True, preexec_fn=_child_setup, env=env,
                                close_fds=True)
    _live.add(proc)
    return proc


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def _unique(workdir, stem):
    """workdir/stem, or workdir/stem-2, -3... if files with that stem exist already."""
    path = os.path.join(workdir, stem)
    n = 1
    while any(os.path.exists(path + ext) for ext in (".stdout", ".stderr", ".yaml")):
        n += 1
        path = os.path.join(workdir, f"{stem}-{n}")
    return path


def _wait_for_line(proc, path, pattern, timeout, what):
    """Polls the file `path` until a line matches `pattern`; returns the match."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        for line in _read(path).splitlines():
            m = regex.search(line)
            if m:
                return m
        if proc.poll() is not None:
            # One last look: the line may have been written just before the exit.
            for line in _read(path).splitlines():
                m = regex.search(line)
                if m:
                    return m
            raise RuntimeError(f"{what} exited with status {proc.returncode} before printing "
                               f"/{pattern}/")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not print /{pattern}/ within {timeout:.0f}s")
        time.sleep(0.02)


def write_atomically(path, text):
    """Replaces `path` in one rename, so a reader sees the old file or the new one, whole."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


# --- real peers --------------------------------------------------------------------------------

class MissingPeer(AssertionError):
    """A program a test needs is not installed. A failure, never a skip (DESIGN.md §8)."""


def require_program(program, packages):
    """The path of `program`; fails the test, naming the Debian package(s), when it is missing."""
    path = shutil.which(program)
    if not path:
        raise MissingPeer(f"{program} is not installed: apt-get install {packages} "
                          "(scripts/bootstrap installs every test peer)")
    return path


# --- ports and sockets -------------------------------------------------------------------------

def free_port():
    """A port that was free a moment ago on 127.0.0.1 (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_accepts(port, timeout=1.0):
    """True if something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


# --- Jetty (examples/jetty) --------------------------------------------------------------------

class Jetty:
    """The example Jetty backend, run through examples/jetty/run.sh."""

    def __init__(self, workdir, name="jetty", port=0):
        self.workdir = workdir
        self.name = name
        self.requested_port = port
        self.port = None
        self.proc = None
        stem = _unique(workdir, f"jetty-{name}")
        self.stdout_path = stem + ".stdout"
        self.stderr_path = stem + ".stderr"

    def start(self, timeout=JETTY_START_TIMEOUT):
        require_program("java", "default-jdk-headless jetty9")
        require_program("javac", "default-jdk-headless jetty9")
        argv = [JETTY_RUN, "--host", "127.0.0.1", "--port", str(self.requested_port),
                "--name", self.name]
        self.proc = _spawn(argv, self.stdout_path, self.stderr_path)
        try:
            m = _wait_for_line(self.proc, self.stdout_path,
                               r"^sluice-example-backend (\S+) listening on ([0-9.]+):(\d+)$",
                               timeout, f"jetty {self.name}")
        except RuntimeError as e:
            self.kill()
            raise RuntimeError(f"{e}\n--- jetty stderr ---\n{_read(self.stderr_path)[-4000:]}")
        if m.group(1) != self.name or m.group(2) != "127.0.0.1":
            self.kill()
            raise RuntimeError(f"unexpected jetty start-up line: {m.group(0)}")
        self.port = int(m.group(3))
        return self

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM to the process group; SIGKILL if it lingers. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            _kill_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _kill_group(self.proc, signal.SIGKILL)
                self.proc.wait(10)
        _live.discard(self.proc)
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            _kill_group(self.proc, signal.SIGKILL)
            self.proc.wait(10)
        if self.proc is not None:
            _live.discard(self.proc)

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.port}"


# --- sluice ------------------------------------------------------------------------------------

APPLIED_RE = re.compile(r"reload: configuration version (\d+) applied \(([0-9a-f]*)\)")
FAILED_RE = re.compile(r"reload failed; still serving configuration version (\d+):")
ADDED_LISTENER_RE = re.compile(r"reload: listener '([^']+)' listening on port (\d+)")


def basic_config(endpoints, workers=2, listener_port=0, drain_timeout=None):
    """The shape from the project docs: /api/ (prefix rewritten to /) and a catch-all route."""
    # The admin server on an ephemeral port: never the default 9901, which may be taken.
    lines = [f"workers: {workers}", "admin: { address: 127.0.0.1:0 }"]
    if drain_timeout:
        lines.append(f"drain_timeout: {drain_timeout}")
    lines.append(textwrap.dedent(f"""\
        listeners:
          - name: public
            address: 127.0.0.1:{listener_port}
            virtual_hosts:
              - name: app
                domains: ["*"]
                routes:
                  - name: api
                    match: {{ prefix: /api/ }}
                    cluster: jetty
                    prefix_rewrite: /
                  - name: catch_all
                    match: {{ prefix: / }}
                    cluster: jetty
        clusters:
          - name: jetty
            endpoints: [ {", ".join(endpoints)} ]
        """))
    return "\n".join(lines)


class Sluice:
    """One sluice process: its config file in `workdir`, stdout and stderr captured to files,
    the worker count, listener ports and admin port read from its start-up line.

    Every E2ETestCase starts it through start_sluice()/start_class_sluice(), which register a
    cleanup that stops it (SIGTERM, exit status 0 asserted). As a last resort it is killed when
    the Python process exits, and by the kernel if the Python process dies (PR_SET_PDEATHSIG).
    """

    # e.g. "sluice 0.1.0 started: 2 worker(s), listeners: public=127.0.0.1:41234, admin: ..."
    STARTED = r"started: (\d+) worker\(s\), listeners: (.*)$"
    LISTENER = re.compile(r"([^\s=,]+)=(\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d+)")
    ADMIN = re.compile(r"\badmin: (\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d+)")

    def __init__(self, workdir, config_text, name="sluice", args=("--log-level", "info"),
                 env=None):
        self.workdir = workdir
        stem = _unique(workdir, name)
        self.name = os.path.basename(stem)
        self.config_path = stem + ".yaml"
        self.stdout_path = stem + ".stdout"
        self.stderr_path = stem + ".stderr"
        self.args = list(args)
        self.env = env  # None: inherit
        self.proc = None
        self.workers = None
        self.listeners = {}  # name -> port
        self.admin_port = None
        self.write_config(config_text)

    # -- life cycle --

    def write_config(self, text):
        """Replaces the config file in one rename (a reload reads the old file or the new one)."""
        write_atomically(self.config_path, text)

    @property
    def argv(self):
        return [sluice_binary(), "--config", self.config_path, *self.args]

    def spawn(self):
        """Starts the process without waiting for it to serve (see start())."""
        self.proc = _spawn(self.argv, self.stdout_path, self.stderr_path, env=self.env)
        return self

    def start(self, timeout=SLUICE_START_TIMEOUT):
        """Starts the process and waits for its start-up line; raises if it exits first."""
        self.spawn()
        try:
            m = _wait_for_line(self.proc, self.stderr_path, self.STARTED, timeout, self.name)
        except RuntimeError as e:
            self.kill()
            raise RuntimeError(f"{e}\n--- {self.name} stderr ---\n{self.stderr()[-4000:]}")
        self.workers = int(m.group(1))
        rest = m.group(2)
        admin = self.ADMIN.search(rest)
        if admin:
            if admin.group(1) != "127.0.0.1":
                self.kill()
                raise RuntimeError(f"the admin server is on {admin.group(1)}, not 127.0.0.1")
            self.admin_port = int(admin.group(2))
            rest = rest[:admin.start()]
        for name, ip, port in self.LISTENER.findall(rest):
            if ip != "127.0.0.1":
                self.kill()
                raise RuntimeError(f"listener {name} is on {ip}, not 127.0.0.1: {m.group(0)}")
            self.listeners[name] = int(port)
        if not self.listeners:
            self.kill()
            raise RuntimeError(f"cannot parse the listeners in: {m.group(0)}")
        return self

    @property
    def pid(self):
        return self.proc.pid

    @property
    def port(self):
        """The port of the listener "public", or else of the first one."""
        if "public" in self.listeners:
            return self.listeners["public"]
        return next(iter(self.listeners.values()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stderr(self):
        return _read(self.stderr_path)

    def stdout(self):
        return _read(self.stdout_path)

    def wait(self, timeout=STOP_TIMEOUT):
        """Waits for exit and returns the status; on timeout kills it and raises AssertionError."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not exit within {timeout}s\n--- stderr ---\n"
                                 f"{self.stderr()[-4000:]}")
        finally:
            if self.proc.poll() is not None:
                _live.discard(self.proc)

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM and wait; asserts exit status 0 (a clean drain). Returns the status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.wait(timeout)
        if code != 0:
            raise AssertionError(f"{self.name} exited with status {code} after SIGTERM, not 0\n"
                                 f"--- stderr ---\n{self.stderr()[-4000:]}")
        return code

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            _kill_group(self.proc, signal.SIGKILL)
            self.proc.wait(10)
        if self.proc is not None:
            _live.discard(self.proc)

    # -- log --

    def wait_for_log(self, regex, count=1, timeout=15.0):
        """Waits until `regex` matched at least `count` lines of stderr; returns all matches."""
        if isinstance(regex, str):
            regex = re.compile(regex)

        def found():
            matches = [m for m in (regex.search(line) for line in self.stderr().splitlines()) if m]
            return matches if len(matches) >= count else None
        return self._poll(found, f"/{regex.pattern}/ x{count} in the log", timeout, 0.01)

    def count_log(self, regex):
        if isinstance(regex, str):
            regex = re.compile(regex)
        return sum(1 for line in self.stderr().splitlines() if regex.search(line))

    def reload(self, timeout=15.0):
        """SIGHUP, then waits for the outcome line. Returns ("applied", version) or
        ("failed", version still serving)."""
        applied = self.count_log(APPLIED_RE)
        failed = self.count_log(FAILED_RE)
        self.signal(signal.SIGHUP)

        def outcome():
            lines = self.stderr().splitlines()
            a = [m for m in (APPLIED_RE.search(x) for x in lines) if m]
            f = [m for m in (FAILED_RE.search(x) for x in lines) if m]
            if len(a) > applied:
                return "applied", int(a[-1].group(1))
            if len(f) > failed:
                return "failed", int(f[-1].group(1))
            return None
        return self._poll(outcome, "reload outcome after SIGHUP", timeout, 0.005)

    def _poll(self, check, what, timeout, interval):
        """Calls check() until it returns something other than None; fails when sluice exits
        first or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result is not None:
                return result
            if not self.running():
                raise AssertionError(f"{self.name} exited (status {self.proc.returncode}) while "
                                     f"waiting for {what}\n{self.stderr()[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no {what} within {timeout}s\n--- stderr ---\n"
                                     f"{self.stderr()[-4000:]}")
            time.sleep(interval)

    # -- admin --

    def admin(self, method="GET", path="/", timeout=10.0):
        """One request to the admin server, any status."""
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=timeout)
        try:
            conn.request(method, path)
            r = conn.getresponse()
            return Response(r.status, r.reason, r.getheaders(), r.read())
        finally:
            conn.close()

    def admin_text(self, path):
        """GET `path` on the admin server; the body as text. Anything but 200 fails."""
        r = self.admin("GET", path)
        if r.status != 200:
            raise AssertionError(f"GET {path} on admin: {r}")
        return r.text

    def admin_json(self, path):
        return json.loads(self.admin_text(path))

    def scrape_text(self):
        return self.admin_text("/stats/prometheus")

    def scrape(self):
        return Metrics(self.scrape_text())

    def server_info(self):
        return self.admin_json("/server_info")

    # -- resources (from /proc, independent of what the process reports) --

    def open_fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss_bytes(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc/PID/status")

    def cpu_seconds(self):
        """User + system CPU time the process has used, from /proc/PID/stat."""
        with open(f"/proc/{self.pid}/stat") as f:
            # The command name (field 2) may contain spaces; the fields after it do not.
            fields = f.read().rsplit(")", 1)[1].split()
        # utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def runnable_seconds(self):
        """Time the process's threads spent on a CPU or waiting in a run queue for one, from
        /proc/PID/task/*/schedstat. Unlike cpu_seconds() it does not depend on how busy the
        machine is: a thread that never sleeps adds one second per second even when other work
        gets most of the CPU."""
        total = 0
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            try:
                with open(f"/proc/{self.pid}/task/{tid}/schedstat") as f:
                    on_cpu, waiting, _ = f.read().split()
            except FileNotFoundError:  # the thread ended meanwhile
                continue
            total += int(on_cpu) + int(waiting)
        return total / 1e9


def run_sluice(args, timeout=30, input_bytes=None):
    """Runs sluice to completion (CLI checks). Returns CompletedProcess with str stdout/stderr."""
    return subprocess.run([sluice_binary(), *args], input=input_bytes, capture_output=True,
                          timeout=timeout, start_new_session=True, preexec_fn=_child_setup)


# --- HTTP --------------------------------------------------------------------------------------

class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) in arrival order
        self.body = body        # bytes

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return f"<Response {self.status} {self.reason} {self.headers!r} {self.body[:300]!r}>"


def request(port, method="GET", path="/", body=None, headers=None, timeout=30.0, conn=None):
    """One request over http.client. Pass `conn` to reuse a keep-alive connection."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, r.reason, r.getheaders(), data)
    finally:
        if own:
            conn.close()


def read_response(stream, head_only=False):
    """Reads one HTTP/1.1 response from a buffered binary stream (sock.makefile('rb')).

    Handles Content-Length, chunked and (last) close-delimited bodies. Used where http.client
    cannot go: several responses read back from one raw socket (pipelining).
    """
    status_line = stream.readline(65536)
    if not status_line:
        raise ConnectionError("connection closed before a status line")
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ?(.*)\r\n$", status_line)
    if not m:
        raise ValueError(f"bad status line {status_line!r}")
    headers = []
    while True:
        line = stream.readline(65536)
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    resp = Response(int(m.group(1)), m.group(2).decode("latin-1"), headers, b"")
    if head_only or resp.status in (204, 304) or resp.status < 200:
        return resp
    te = (resp.header("transfer-encoding") or "").lower()
    if "chunked" in te:
        parts = []
        while True:
            size_line = stream.readline(65536)
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while stream.readline(65536) not in (b"\r\n", b""):
                    pass  # trailers
                break
            parts.append(stream.read(size))
            if stream.read(2) != b"\r\n":
                raise ValueError("chunk not followed by CRLF")
        resp.body = b"".join(parts)
    elif resp.header("content-length") is not None:
        n = int(resp.header("content-length"))
        resp.body = stream.read(n)
        if len(resp.body) != n:
            raise ConnectionError(f"body cut short: {len(resp.body)} of {n} bytes")
    else:
        resp.body = stream.read()
    return resp


def parse_echo(text):
    """Jetty's /echo body → (fields dict, headers list of (name, value))."""
    fields = {}
    headers = []
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if not sep:
            continue
        if key == "header":
            name, _, hv = value.partition(": ")
            headers.append((name, hv))
        else:
            fields[key] = value
    return fields, headers


def echo_header_values(headers, name):
    return [v for k, v in headers if k == name.lower()]


def pattern_bytes(n, offset=0):
    """The /large and /chunked body: '0123456789abcdef' repeated, `n` bytes from `offset`."""
    unit = b"0123456789abcdef"
    reps = (offset + n) // len(unit) + 2
    return (unit * reps)[offset % 16: offset % 16 + n]


# --- configuration -----------------------------------------------------------------------------

def config(clusters, routes, workers=2, listeners=None, access_log=None, domains=("*",),
           extra_listener_keys="", extra_cluster_keys=None):
    """A sluice config.

    clusters: {name: [endpoint, ...]}
    routes:   [(route name, prefix, cluster name), ...] in one virtual host "app"
    listeners: {name: port} (default {"public": 0}); every listener gets the same routes.
    access_log: dict like {"path": FILE, "format": "json"} for every listener, or None.
    extra_listener_keys: YAML added to every listener, or {listener name: YAML} for some.
    extra_cluster_keys: {cluster name: YAML} added to those clusters.
    """
    listeners = listeners if listeners is not None else {"public": 0}
    out = ["admin: { address: 127.0.0.1:0 }", f"workers: {workers}", "listeners:"]
    for lname, port in listeners.items():
        out.append(f"  - name: {lname}")
        out.append(f"    address: 127.0.0.1:{port}")
        if access_log:
            items = ", ".join(f"{k}: {json.dumps(v)}" for k, v in access_log.items())
            out.append(f"    access_log: {{ {items} }}")
        extra = (extra_listener_keys.get(lname, "") if isinstance(extra_listener_keys, dict)
                 else extra_listener_keys)
        if extra:
            out.append(textwrap.indent(extra.strip("\n"), "    "))
        out.append("    virtual_hosts:")
        out.append("      - name: app")
        out.append(f"        domains: [{', '.join(json.dumps(d) for d in domains)}]")
        out.append("        routes:")
        for rname, prefix, cluster in routes:
            out.append(f"          - name: {rname}")
            out.append(f"            match: {{ prefix: {json.dumps(prefix)} }}")
            out.append(f"            cluster: {cluster}")
    out.append("clusters:")
    for cname, endpoints in clusters.items():
        out.append(f"  - name: {cname}")
        out.append("    connect_timeout: 2s")
        out.append(f"    endpoints: [ {', '.join(endpoints)} ]")
        if extra_cluster_keys and cname in extra_cluster_keys:
            out.append(textwrap.indent(extra_cluster_keys[cname].strip("\n"), "    "))
    return "\n".join(out) + "\n"


def closed_port():
    """A port on 127.0.0.1 where nothing listens (connect is refused)."""
    for _ in range(20):
        port = free_port()
        if not port_accepts(port, timeout=0.5):
            return port
    raise RuntimeError("no closed port found")


# --- Prometheus text format --------------------------------------------------------------------

_SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$")
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def _parse_value(s):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    return float(s)


def parse_labels(text):
    labels = {}
    pos = 0
    while pos < len(text):
        m = _LABEL_RE.match(text, pos)
        if not m:
            raise ValueError(f"bad label list: {text!r}")
        value = m.group(2).replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        labels[m.group(1)] = value
        pos = m.end()
    return labels


class Metrics:
    """A parsed scrape: samples keyed by (name, frozenset(labels.items())), and family types."""

    def __init__(self, text):
        self.text = text
        self.samples = {}
        self.types = {}   # family name -> counter|gauge|histogram|...
        self.helps = {}
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("# TYPE "):
                _, _, name, typ = line.split(" ", 3)
                self.types[name] = typ
                continue
            if line.startswith("# HELP "):
                parts = line.split(" ", 3)
                self.helps[parts[2]] = parts[3] if len(parts) > 3 else ""
                continue
            if line.startswith("#"):
                continue
            m = _SAMPLE_RE.match(line)
            if not m:
                raise ValueError(f"bad sample line: {line!r}")
            labels = parse_labels(m.group(3) or "")
            key = (m.group(1), frozenset(labels.items()))
            if key in self.samples:
                raise ValueError(f"duplicate sample: {line!r}")
            self.samples[key] = _parse_value(m.group(4))

    def get(self, name, default=None, **labels):
        """The one sample `name` whose labels are exactly `labels`."""
        return self.samples.get((name, frozenset(labels.items())), default)

    def value(self, name, **labels):
        """Like get(), but the sample must exist; a missing sample fails loudly."""
        v = self.get(name, **labels)
        if v is None:
            near = [k for k in self.samples if k[0] == name][:10]
            raise AssertionError(f"no sample {name}{labels}; samples of that name: {near}")
        return v

    def find(self, name, **labels):
        """All samples `name` whose labels include `labels`: list of (labels dict, value)."""
        want = set(labels.items())
        return [(dict(k[1]), v) for k, v in self.samples.items()
                if k[0] == name and want <= k[1]]

    def family_of(self, sample_name):
        if sample_name in self.types:
            return sample_name
        for suffix in ("_bucket", "_sum", "_count"):
            if sample_name.endswith(suffix):
                base = sample_name[: -len(suffix)]
                if self.types.get(base) == "histogram":
                    return base
        return None

    def counter_samples(self):
        """Samples that may never decrease: counters and histogram buckets, sums and counts."""
        out = {}
        for key, v in self.samples.items():
            fam = self.family_of(key[0])
            if fam is None:
                continue
            if self.types[fam] in ("counter", "histogram"):
                out[key] = v
        return out

    def histogram(self, name, **labels):
        """(buckets [(le, cumulative)] in exposition order, sum, count) for one label set."""
        buckets = []
        for line in self.text.splitlines():
            if not line.startswith(name + "_bucket{"):
                continue
            m = _SAMPLE_RE.match(line)
            lab = parse_labels(m.group(3))
            le = lab.pop("le")
            if lab == labels:
                buckets.append((_parse_value(le), _parse_value(m.group(4))))
        return buckets, self.value(name + "_sum", **labels), self.value(name + "_count", **labels)


def route_labels(route, vhost="app", listener="public"):
    return {"listener": listener, "vhost": vhost, "route": route}


def settled_scrape(sluice, pred=lambda m: True, timeout=10.0):
    """A scrape taken once `pred(scrape)` holds and the counters stopped moving.

    Sluice records an exchange's numbers when the exchange ends, just after the last response
    byte was written, so a client can read its response a moment before the counters move. This
    waits for that moment: until `pred` holds and two scrapes in a row show the same counters.
    After `timeout` it returns the last scrape anyway, so the caller's exact assertions fail and
    show the values.
    """
    deadline = time.monotonic() + timeout
    prev = sluice.scrape()
    while True:
        cur = sluice.scrape()
        if pred(cur) and cur.counter_samples() == prev.counter_samples():
            return cur
        if time.monotonic() > deadline:
            return cur
        prev = cur
        time.sleep(0.01)


def route_requests_total(m):
    """Every request sluice finished, over all routes and code classes (local replies too)."""
    return sum(v for _, v in m.find("sluice_route_requests_total"))


def settled_after(sluice, n_requests, timeout=10.0):
    """settled_scrape() once sluice has recorded at least `n_requests` requests in all."""
    return settled_scrape(sluice, lambda m: route_requests_total(m) >= n_requests, timeout)


# --- base test case ----------------------------------------------------------------------------

class E2ETestCase(unittest.TestCase):
    """Gives each test a temp dir and start helpers whose processes are always stopped."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sluice-e2e-")
        self.addCleanup(self._remove_tmp)

    def _remove_tmp(self):
        # Keep the logs of a failed test for a post-mortem; remove them otherwise.
        outcome = getattr(self, "_outcome", None)
        if outcome is not None and not outcome.success:
            sys.stderr.write(f"\n[e2e] logs of {self.id()} kept in {self.tmp}\n")
            type(self)._keep_class_tmp = True  # the shared processes' logs too
            return
        shutil.rmtree(self.tmp, ignore_errors=True)

    def assert_promtool_accepts(self, text):
        """`promtool check metrics` accepts the scrape `text` (kept in the test's temp dir)."""
        path = os.path.join(self.tmp, "scrape.prom")
        with open(path, "w") as f:
            f.write(text)
        promtool = require_program("promtool", "prometheus")
        with open(path, "rb") as f:
            r = subprocess.run([promtool, "check", "metrics"], stdin=f, capture_output=True,
                               timeout=60)
        self.assertEqual(r.returncode, 0,
                         f"promtool check metrics failed:\nstdout: {r.stdout.decode()}\n"
                         f"stderr: {r.stderr.decode()}\n--- scrape (kept in {path}) ---\n"
                         f"{text[:4000]}")

    def start_jetty(self, name="jetty", port=0):
        j = Jetty(self.tmp, name=name, port=port)
        self.addCleanup(j.stop)
        return j.start()

    def start_grpc_peer(self, name="grpc", port=0, tls=None, ca=None):
        """The gRPC server of grpc_peer.py as its own process; tls: (cert, key) for TLS with
        ALPN h2, ca: what its control calls verify it with."""
        import grpc_peer  # python3-grpcio: imported only by the tests that use it
        p = grpc_peer.GrpcPeer(self.tmp, name=name, port=port, tls=tls, ca=ca)
        self.addCleanup(p.stop)
        return p.start()

    def start_sluice(self, config_text, name="sluice", args=("--log-level", "info"),
                     check_exit=True, env=None):
        s = Sluice(self.tmp, config_text, name=name, args=args, env=env)
        # A process the test did not stop itself is stopped here; a non-zero exit fails the test.
        self.addCleanup(s.stop if check_exit else s.kill)
        return s.start()

    # Class-wide processes (started in setUpClass, stopped by class cleanups even when
    # setUpClass itself fails half-way).
    @classmethod
    def class_tmp(cls):
        if "_class_tmp" not in cls.__dict__:
            cls._class_tmp = tempfile.mkdtemp(prefix=f"sluice-e2e-{cls.__name__}-")
            cls._keep_class_tmp = False
            cls.addClassCleanup(cls._remove_class_tmp)
        return cls._class_tmp

    @classmethod
    def _remove_class_tmp(cls):
        if cls._keep_class_tmp:
            sys.stderr.write(f"\n[e2e] logs of {cls.__name__} kept in {cls._class_tmp}\n")
        else:
            shutil.rmtree(cls._class_tmp, ignore_errors=True)

    @classmethod
    def start_class_jetty(cls, name="jetty", port=0):
        j = Jetty(cls.class_tmp(), name=name, port=port)
        cls.addClassCleanup(j.stop)
        return j.start()

    @classmethod
    def start_class_grpc_peer(cls, name="grpc", port=0, tls=None, ca=None):
        import grpc_peer  # python3-grpcio: imported only by the tests that use it
        p = grpc_peer.GrpcPeer(cls.class_tmp(), name=name, port=port, tls=tls, ca=ca)
        cls.addClassCleanup(p.stop)
        return p.start()

    @classmethod
    def start_class_sluice(cls, config_text, name="sluice", args=("--log-level", "info"), env=None):
        s = Sluice(cls.class_tmp(), config_text, name=name, args=args, env=env)
        cls.addClassCleanup(s.stop)
        return s.start()
