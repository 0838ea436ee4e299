"""Load generators: wrk (closed loop) and h2load --h1 --rps (fixed rate), with their results
turned into one dict per run:

  requests, duration_s, rps, bytes, p50_ms, p99_ms, p999_ms, max_ms,
  errors (dict: connect, read, write, timeout, status = non-2xx/3xx), error_total
"""

import json
import os
import re
import subprocess

from . import procstat
from .util import percentile

WRK_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    latency.max))
end
"""

UPLOAD_BODY = r"""
wrk.method = "POST"
wrk.body = string.rep("0123456789abcdef", {count})
wrk.headers["Content-Type"] = "application/octet-stream"
"""


def write_scripts(tmp, upload_bytes):
    plain = os.path.join(tmp, "wrk-get.lua")
    with open(plain, "w") as f:
        f.write(WRK_DONE)
    upload = os.path.join(tmp, "wrk-upload.lua")
    with open(upload, "w") as f:
        f.write(UPLOAD_BODY.replace("{count}", str(upload_bytes // 16)) + WRK_DONE)
    return {"get": plain, "upload": upload}


class LoadError(Exception):
    pass


NICE = 0  # set by bench/compare --nice


def _run(argv, timeout):
    """Runs a load generator in its own session (so --nice can raise its session's priority)."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    if NICE:
        procstat.set_autogroup_nice(p.pid, NICE)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


def _taskset(cpus):
    return (["nice", "-n", str(NICE)] if NICE else []) + (["taskset", "-c", cpus] if cpus else [])


def run_wrk(url, connections, duration_s, script, threads=1, headers=(), cpus=None, timeout_s=5):
    argv = _taskset(cpus) + ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s}s",
                             f"--timeout", f"{timeout_s}s", "-s", script]
    for h in headers:
        argv += ["-H", h]
    argv.append(url)
    try:
        r = _run(argv, timeout=duration_s + 60)
    except subprocess.TimeoutExpired:
        raise LoadError("wrk did not finish")
    m = re.search(r"^WRKJSON (\{.*\})$", r.stdout, re.M)
    if r.returncode != 0 or not m:
        text = (r.stderr or r.stdout).strip().splitlines()
        raise LoadError(f"wrk exited {r.returncode}: {text[-1][-300:] if text else 'no output'}")
    d = json.loads(m.group(1))
    dur = d["duration_us"] / 1e6
    errors = {k: d[k] for k in ("connect", "read", "write", "timeout", "status")}
    return {
        "tool": "wrk",
        "command": " ".join(argv),
        "requests": d["requests"],
        "duration_s": dur,
        "rps": d["requests"] / dur if dur > 0 else 0.0,
        "bytes": d["bytes"],
        "p50_ms": d["p50_us"] / 1000.0,
        "p99_ms": d["p99_us"] / 1000.0,
        "p999_ms": d["p999_us"] / 1000.0,
        "max_ms": d["max_us"] / 1000.0,
        "errors": errors,
        "error_total": sum(errors.values()),
    }


def run_h2load_rate(url, connections, rate, duration_s, log_path, cpus=None):
    """Open loop: each of `connections` clients sends rate/connections requests per second,
    whether or not earlier ones have been answered (a busy HTTP/1.1 connection queues them)."""
    per_client = max(1, round(rate / connections))
    argv = _taskset(cpus) + ["h2load", "--h1", "-t1", f"-c{connections}", f"--rps={per_client}",
                             f"-D{duration_s}", f"--log-file={log_path}", url]
    res = _run_h2load(argv, duration_s, log_path)
    res["target_rps"] = per_client * connections
    return res


def run_h2load(url, clients, streams, duration_s, log_path, threads=1, cpus=None, data=None,
               headers=(), protocol="h2"):
    """Closed loop over HTTP/2: `clients` connections with up to `streams` requests in flight
    on each (h2load -c -m). https negotiates h2 by ALPN; http speaks h2c by prior knowledge.
    data: a file POSTed as every request's body (else GET). A run that did not speak
    `protocol` ("h2" or "h2c") fails, so an HTTP/1.1 fallback is never measured as HTTP/2."""
    argv = _taskset(cpus) + ["h2load", f"-t{threads}", f"-c{clients}", f"-m{streams}",
                             f"-D{duration_s}", f"--log-file={log_path}"]
    if data:
        argv += ["-d", data]
    for h in headers:
        argv += ["-H", h]
    argv.append(url)
    return _run_h2load(argv, duration_s, log_path, protocol)


def _run_h2load(argv, duration_s, log_path, protocol=None):
    """Runs h2load and reads its summary and per-request log (status, latency) into a run."""
    try:
        r = _run(argv, timeout=duration_s + 60)
    except subprocess.TimeoutExpired:
        raise LoadError("h2load did not finish")
    out = r.stdout
    m_req = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                      r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
    m_fin = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s, ([\d.]+)(\w+)B/s", out)
    m_codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if r.returncode != 0 or not (m_req and m_fin and m_codes):
        text = (r.stderr + out).strip().splitlines()
        raise LoadError(f"h2load exited {r.returncode}: {text[-1][-300:] if text else 'no output'}")
    if protocol:
        m_proto = re.search(r"^Application protocol: (\S+)$", out, re.M)
        if not m_proto or m_proto.group(1) != protocol:
            raise LoadError(f"h2load spoke {m_proto.group(1) if m_proto else 'nothing'}, "
                            f"not {protocol}")
    lat = []
    try:
        with open(log_path) as f:
            for line in f:
                parts = line.split("\t")
                if len(parts) >= 3:
                    lat.append(int(parts[2]))
    except OSError as e:
        raise LoadError(f"h2load log: {e}")
    lat.sort()
    if not lat:
        raise LoadError("h2load logged no request")
    dur = float(m_fin.group(1)) / (1000.0 if m_fin.group(2) == "ms" else 1.0)
    done = int(m_req.group(3))
    failed, errored, timeouts = int(m_req.group(5)), int(m_req.group(6)), int(m_req.group(7))
    c4, c5 = int(m_codes.group(3)), int(m_codes.group(4))
    errors = {"connect": 0, "read": errored, "write": 0, "timeout": timeouts,
              "status": c4 + c5, "failed": max(0, failed - errored - timeouts)}
    m_bytes = re.search(r"^traffic: .*?\((\d+)\) total", out, re.M)
    return {
        "tool": "h2load",
        "command": " ".join(argv),
        "requests": done,
        "duration_s": dur,
        "rps": float(m_fin.group(3)),
        "bytes": int(m_bytes.group(1)) if m_bytes else None,
        "p50_ms": percentile(lat, 50) / 1000.0,
        "p99_ms": percentile(lat, 99) / 1000.0,
        "p999_ms": percentile(lat, 99.9) / 1000.0,
        "max_ms": lat[-1] / 1000.0,
        "errors": errors,
        "error_total": sum(errors.values()),
    }
