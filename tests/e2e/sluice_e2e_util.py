"""Helpers shared by test_reload.py, test_admin_stats.py and test_access_log.py.

Standard library only. Builds on harness.py (Jetty, E2ETestCase, request) and adds what those
tests need on top: a sluice process that knows its admin port and its start-up line, SIGHUP
reloads that wait for the outcome in the log, the admin endpoints, a Prometheus text parser and
process resource readings from /proc.

Every sluice this module starts is stopped by a cleanup registered on the test case (SIGTERM,
exit status 0 asserted), killed as a last resort when the Python process exits, and killed by
the kernel if the Python process dies (PR_SET_PDEATHSIG).
"""

import atexit
import ctypes
import http.client
import json
import math
import os
import re
import signal
import subprocess
import textwrap
import time

import harness

STOP_TIMEOUT = 30.0
START_TIMEOUT = 20.0

# "sluice 0.x started: 2 worker(s), listeners: public=127.0.0.1:41234, admin: 127.0.0.1:41235,
#  config version 1 (/tmp/.../sluice.yaml)"
STARTED_RE = re.compile(r"started: (\d+) worker\(s\), listeners: (.*), admin: ([0-9.]+):(\d+), "
                        r"config version (\d+) \((.*)\)$")
APPLIED_RE = re.compile(r"reload: configuration version (\d+) applied \(([0-9a-f]*)\)")
FAILED_RE = re.compile(r"reload failed; still serving configuration version (\d+):")
ADDED_LISTENER_RE = re.compile(r"reload: listener '([^']+)' listening on port (\d+)")


# --- processes -----------------------------------------------------------------------------------

_live = set()
_PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover
    _libc = None


def _child_setup():
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@atexit.register
def _kill_leftovers():
    for proc in list(_live):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
            except (ProcessLookupError, PermissionError, subprocess.TimeoutExpired):
                pass


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def write_atomically(path, text):
    """Replaces `path` in one rename, so a reader sees the old file or the new one, whole."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class SluiceProc:
    """One sluice process: config file, stderr/stdout captured to files, admin port known."""

    def __init__(self, workdir, config_text, name="sluice", args=("--log-level", "info"), env=None):
        stem = os.path.join(workdir, name)
        n = 1
        while os.path.exists(stem + ".yaml"):
            n += 1
            stem = os.path.join(workdir, f"{name}-{n}")
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
        write_atomically(self.config_path, text)

    def start(self, timeout=START_TIMEOUT):
        argv = [harness.sluice_binary(), "--config", self.config_path, *self.args]
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         start_new_session=True, preexec_fn=_child_setup,
                                         close_fds=True, env=self.env)
        _live.add(self.proc)
        deadline = time.monotonic() + timeout
        while True:
            m = None
            for line in self.stderr().splitlines():
                m = STARTED_RE.search(line)
                if m:
                    break
            if m:
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.name} did not start (status {self.proc.returncode})\n"
                                   f"--- stderr ---\n{self.stderr()[-4000:]}")
            time.sleep(0.02)
        self.workers = int(m.group(1))
        for item in m.group(2).split(", "):
            lm = re.fullmatch(r"([^=\s]+)=127\.0\.0\.1:(\d+)", item)
            if not lm:
                self.kill()
                raise RuntimeError(f"cannot parse the listeners in: {m.group(0)}")
            self.listeners[lm.group(1)] = int(lm.group(2))
        if m.group(3) != "127.0.0.1":
            self.kill()
            raise RuntimeError(f"admin is on {m.group(3)}, not 127.0.0.1")
        self.admin_port = int(m.group(4))
        return self

    @property
    def pid(self):
        return self.proc.pid

    @property
    def port(self):
        return self.listeners["public"] if "public" in self.listeners else next(
            iter(self.listeners.values()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stderr(self):
        return _read(self.stderr_path)

    def stdout(self):
        return _read(self.stdout_path)

    def wait(self, timeout=STOP_TIMEOUT):
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
        """SIGTERM and wait; asserts exit status 0. Returns the status."""
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
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
        if self.proc is not None:
            _live.discard(self.proc)

    # -- log --

    def wait_for_log(self, regex, count=1, timeout=15.0):
        """Waits until `regex` matched at least `count` lines of stderr; returns all matches."""
        if isinstance(regex, str):
            regex = re.compile(regex)
        deadline = time.monotonic() + timeout
        while True:
            matches = [m for m in (regex.search(line) for line in self.stderr().splitlines()) if m]
            if len(matches) >= count:
                return matches
            if not self.running():
                raise AssertionError(f"{self.name} exited (status {self.proc.returncode}) while "
                                     f"waiting for /{regex.pattern}/\n{self.stderr()[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not log /{regex.pattern}/ x{count} within "
                                     f"{timeout}s\n--- stderr ---\n{self.stderr()[-4000:]}")
            time.sleep(0.01)

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
        deadline = time.monotonic() + timeout
        while True:
            lines = self.stderr().splitlines()
            a = [m for m in (APPLIED_RE.search(x) for x in lines) if m]
            f = [m for m in (FAILED_RE.search(x) for x in lines) if m]
            if len(a) > applied:
                return "applied", int(a[-1].group(1))
            if len(f) > failed:
                return "failed", int(f[-1].group(1))
            if not self.running():
                raise AssertionError(f"{self.name} exited (status {self.proc.returncode}) after "
                                     f"SIGHUP\n{self.stderr()[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no reload outcome within {timeout}s after "
                                     f"SIGHUP\n{self.stderr()[-4000:]}")
            time.sleep(0.005)

    # -- admin --

    def admin(self, method="GET", path="/", timeout=10.0):
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=timeout)
        try:
            conn.request(method, path)
            r = conn.getresponse()
            return harness.Response(r.status, r.reason, r.getheaders(), r.read())
        finally:
            conn.close()

    def admin_json(self, path):
        r = self.admin("GET", path)
        if r.status != 200:
            raise AssertionError(f"GET {path} on admin: {r}")
        return json.loads(r.text)

    def scrape_text(self):
        r = self.admin("GET", "/stats/prometheus")
        if r.status != 200:
            raise AssertionError(f"GET /stats/prometheus: {r}")
        return r.text

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


def start_sluice(test, config_text, name="sluice", args=("--log-level", "info"), env=None):
    """Starts a sluice for `test`; a cleanup stops it (SIGTERM, exit 0 asserted)."""
    s = SluiceProc(test.tmp, config_text, name=name, args=args, env=env)
    test.addCleanup(s.stop)
    return s.start()


# --- configuration ---------------------------------------------------------------------------------

def config(clusters, routes, workers=2, listeners=None, access_log=None, domains=("*",),
           extra_listener_keys=""):
    """A sluice config.

    clusters: {name: [endpoint, ...]}
    routes:   [(route name, prefix, cluster name), ...] in one virtual host "app"
    listeners: {name: port} (default {"public": 0}); every listener gets the same routes.
    access_log: dict like {"path": FILE, "format": "json"} for every listener, or None.
    """
    listeners = listeners if listeners is not None else {"public": 0}
    out = ["admin: { address: 127.0.0.1:0 }", f"workers: {workers}", "listeners:"]
    for lname, port in listeners.items():
        out.append(f"  - name: {lname}")
        out.append(f"    address: 127.0.0.1:{port}")
        if access_log:
            items = ", ".join(f"{k}: {json.dumps(v)}" for k, v in access_log.items())
            out.append(f"    access_log: {{ {items} }}")
        if extra_listener_keys:
            out.append(textwrap.indent(extra_listener_keys.strip("\n"), "    "))
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
    return "\n".join(out) + "\n"


def closed_port():
    """A port on 127.0.0.1 where nothing listens (connect is refused)."""
    for _ in range(20):
        port = harness.free_port()
        if not harness.port_accepts(port, timeout=0.5):
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
