"""What the results were measured on, and how busy the machine was while they were."""

import os
import platform
import re
import socket
import subprocess


def _first(path, pattern):
    try:
        with open(path) as f:
            for line in f:
                m = re.match(pattern, line)
                if m:
                    return m.group(1).strip()
    except OSError:
        pass
    return None


def _tool_version(argv, pattern):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        m = re.search(pattern, r.stdout + r.stderr)
        return m.group(0) if m else (r.stdout + r.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def git_revision(repo):
    try:
        rev = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+uncommitted changes" if dirty else "") if rev else "unknown"
    except OSError:
        return "unknown"


def describe():
    mem_kib = _first("/proc/meminfo", r"MemTotal:\s+(\d+)")
    return {
        "host": socket.gethostname(),
        "cores": os.cpu_count(),
        "cpu_model": _first("/proc/cpuinfo", r"model name\s*:\s*(.*)") or platform.processor(),
        "kernel": platform.release(),
        "os": _first("/etc/os-release", r'PRETTY_NAME="?([^"]*)"?') or platform.platform(),
        "memory_gib": round(int(mem_kib) / 1048576, 1) if mem_kib else None,
        "virtualised": "hypervisor" in (_first("/proc/cpuinfo", r"flags\s*:\s*(.*)") or ""),
        "tools": {
            "wrk": _tool_version(["wrk", "-v"], r"wrk \S+"),
            "h2load": _tool_version(["h2load", "--version"], r"h2load \S+"),
            "python": platform.python_version(),
        },
    }


def cpu_times(cpus=None):
    """(busy, total) jiffies from /proc/stat: of all CPUs, or of the CPU numbers in `cpus`."""
    busy = total = 0
    with open("/proc/stat") as f:
        for line in f:
            if not line.startswith("cpu"):
                break
            parts = line.split()
            name = parts[0]
            if cpus is None:
                if name != "cpu":
                    continue
            elif name == "cpu" or int(name[3:]) not in cpus:
                continue
            vals = [int(x) for x in parts[1:9]]  # user nice system idle iowait irq softirq steal
            total += sum(vals)
            busy += sum(vals) - vals[3] - vals[4]
    return busy, total


def parse_cpu_list(text):
    """'0', '0-3', '0,2-3' → {0, 1, 2, 3}; None → None."""
    if not text:
        return None
    out = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])
