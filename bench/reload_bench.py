#!/usr/bin/python3
"""Start-up, --validate and SIGHUP reload times of a large configuration, and RSS across reloads.

    bench/reload_bench.py --sluice build/release/sluice [--routes 10000] [--reloads 4] [--runs 3]

- validate: wall time of `sluice --validate --config FILE` (median of --runs)
- start:    from spawning `sluice --config FILE` to the first answer of GET /probe (median)
- reload:   from SIGHUP to GET /probe answering with the new configuration's body, for each of
            --reloads reloads (each writes the file again with a new /probe body)
- RSS:      VmRSS of the process after start and after each reload (settled 300 ms)
- CPU:      on-CPU time of all the process's threads (/proc/PID/task/*/schedstat) over the same
            intervals as start and reload: on a shared machine wall time includes waiting for a
            core, CPU time much less so

The configuration comes from bench/gen_routes.py (a third exact, prefix and regex routes).
"""
import argparse
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_routes  # noqa: E402


def probe(port):
    """The body of GET /probe, or None when nothing answers yet."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        c.request("GET", "/probe")
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        return body
    except OSError:
        return None


def wait_for(port, body, deadline_s=30):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if probe(port) == body:
            return time.monotonic()
        time.sleep(0.0005)
    raise RuntimeError("no answer %r on port %d" % (body, port))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_ms(pid):
    """On-CPU time of every thread of `pid` so far, in ms (threads that ended are not counted)."""
    total = 0
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, task)) as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total / 1e6


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sluice", default="build/release/sluice")
    p.add_argument("--routes", type=int, default=10000)
    p.add_argument("--reloads", type=int, default=4)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--port", type=int, default=18080)
    p.add_argument("--admin-port", type=int, default=19901)
    a = p.parse_args()

    d = tempfile.mkdtemp(prefix="sluice-reload-")
    path = os.path.join(d, "sluice.yaml")

    def write(tag):
        text = gen_routes.generate(a.routes, a.port, a.admin_port, tag, 4)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.rename(path + ".tmp", path)
        return len(text)

    size = write("v0")
    print("config: %d routes, %d bytes, %d worker(s)" % (a.routes, size, a.workers))

    validate = []
    for _ in range(a.runs):
        t0 = time.monotonic()
        subprocess.run([a.sluice, "--validate", "--config", path], check=True,
                       stdout=subprocess.DEVNULL)
        validate.append(time.monotonic() - t0)
    print("validate ms: %s  median %.0f" % (" ".join("%.0f" % (v * 1e3) for v in validate),
                                            statistics.median(validate) * 1e3))

    starts, reloads, rss_runs, start_cpu, reload_cpu = [], [], [], [], []
    for run in range(a.runs):
        write("v0")
        t0 = time.monotonic()
        proc = subprocess.Popen([a.sluice, "--config", path, "--workers", str(a.workers),
                                 "--log-level", "warn"])
        try:
            starts.append(wait_for(a.port, "v0") - t0)
            start_cpu.append(cpu_ms(proc.pid))
            time.sleep(0.3)
            rss = [rss_kib(proc.pid)]
            for k in range(1, a.reloads + 1):
                tag = "v%d" % k
                write(tag)
                c0 = cpu_ms(proc.pid)
                t0 = time.monotonic()
                proc.send_signal(signal.SIGHUP)
                reloads.append(wait_for(a.port, tag) - t0)
                reload_cpu.append(cpu_ms(proc.pid) - c0)
                time.sleep(0.3)
                rss.append(rss_kib(proc.pid))
            rss_runs.append(rss)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    print("start ms: %s  median %.0f" % (" ".join("%.0f" % (s * 1e3) for s in starts),
                                         statistics.median(starts) * 1e3))
    print("reload ms: %s  median %.0f  max %.0f" % (
        " ".join("%.0f" % (r * 1e3) for r in reloads), statistics.median(reloads) * 1e3,
        max(reloads) * 1e3))
    print("start CPU ms: %s  median %.0f" % (" ".join("%.0f" % c for c in start_cpu),
                                             statistics.median(start_cpu)))
    print("reload CPU ms: %s  median %.0f" % (" ".join("%.0f" % c for c in reload_cpu),
                                              statistics.median(reload_cpu)))
    for rss in rss_runs:
        print("RSS MB after start, then each reload: %s" % " → ".join("%.1f" % (r / 1024) for r in rss))


if __name__ == "__main__":
    main()
