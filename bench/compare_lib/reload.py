"""The reload scenario: start-up time and SIGHUP reload time of a 10,000-route configuration
under load, and resident memory across four reloads.

For each proxy: start it on the 10,000-route set (start-up = process start until the last route
answers 200, polled every 10 ms on new connections); put wrk load on the first route
(50 connections, keep-alive) for the whole scenario; then four times: rewrite the configuration
with one more route, an exact path /reload-marker-<k> that the old configuration does not
route (404 or 503 before), send the proxy's reload signal, and poll that path every 10 ms on a
new connection until it answers 200. Reload time = signal sent → first 200. RSS (VmRSS of every
process of the proxy, summed) is read after 1 s of load, before the first reload, 1 s after
each reload answered, and once more when old worker processes (nginx, HAProxy) have exited.
"""

import signal
import subprocess
import time

from . import procstat
from .peers import Route, wait_http
from .util import log

MARKER = "/reload-marker-{k}"
RELOADS = 4


def run(proxy, routes, clusters, load_cpus, script, load_path):
    """Returns a dict with startup_ms, reload_ms (list), rss_mib (list: before, after each
    reload), wrk (requests and errors under load) or {"error": reason}."""
    out = {"proxy": proxy.name, "routes": len(routes)}
    try:
        proxy.start("reload", routes, clusters, routes[-1].value + "item/42")
    except (RuntimeError, OSError) as e:
        return {"proxy": proxy.name, "error": f"did not start: {str(e).splitlines()[0]}"}
    out["startup_ms"] = proxy.startup_s * 1000
    wrk = None
    try:
        url = f"http://127.0.0.1:{proxy.port}{load_path}"
        # Load for the whole scenario; stopped below with SIGINT, which makes wrk print its
        # summary (the Lua done() hook) as if the duration had ended.
        argv = (["taskset", "-c", load_cpus] if load_cpus else []) + [
            "wrk", "-t1", "-c50", "-d600s", "--timeout", "5s", "-s", script, url]
        wrk = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
        time.sleep(1.0)
        procs = len(proxy.process.pids())
        rss = [procstat.rss_kib(proxy.process.pids())]
        times = []
        for k in range(1, RELOADS + 1):
            marker = MARKER.format(k=k)
            proxy.rewrite(routes + [Route("exact", marker, routes[-1].cluster)], clusters)
            t0 = time.monotonic()
            why = proxy.reload()
            if why:
                out["error"] = why
                break
            err = wait_http(proxy.port, marker, deadline_s=30.0, proc=proxy.process.proc,
                            interval_s=0.01)
            if err:
                out["error"] = f"reload {k}: {err}"
                break
            times.append((time.monotonic() - t0) * 1000)
            log(f"  {proxy.name}: reload {k} answered after {times[-1]:.0f} ms")
            time.sleep(1.0)
            rss.append(procstat.rss_kib(proxy.process.pids()))
        out["reload_ms"] = times
        out["rss_mib"] = [r / 1024 if r is not None else None for r in rss]
        # Multi-process proxies (nginx, HAProxy) keep old workers until their connections are
        # done: also read the RSS once only as many processes are left as before the reloads.
        end = time.monotonic() + 15
        while len(proxy.process.pids()) > procs and time.monotonic() < end:
            time.sleep(0.2)
        settled = procstat.rss_kib(proxy.process.pids())
        out["rss_settled_mib"] = settled / 1024 if settled is not None else None
        out["settled_after_s"] = round(15 - max(0.0, end - time.monotonic()), 1)
    finally:
        if wrk is not None:
            wrk.send_signal(signal.SIGINT)
            try:
                text, _ = wrk.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                wrk.kill()
                text, _ = wrk.communicate()
            out["load"] = summarise_wrk(text)
        proxy.stop()
    return out


def summarise_wrk(text):
    import json
    import re
    m = re.search(r"^WRKJSON (\{.*\})$", text or "", re.M)
    if not m:
        return {"error": (text or "no output").strip().splitlines()[-1:]}
    d = json.loads(m.group(1))
    errors = sum(d[k] for k in ("connect", "read", "write", "timeout", "status"))
    return {"requests": d["requests"], "errors": errors,
            "error_kinds": {k: d[k] for k in ("connect", "read", "write", "timeout", "status")
                            if d[k]}}
