"""CPU time and peak memory of a process tree, from /proc.

CPU: utime + stime of /proc/<pid>/stat for every process of the tree. For a process (thread
group leader) these fields already include all its threads, live and exited, so threads are
covered without reading /proc/<pid>/task; the task list is read only to count threads.
Memory: VmHWM ("high water mark" of resident memory) of every process, summed. Writing "5" to
/proc/<pid>/clear_refs resets VmHWM to the current RSS, so each run measures its own peak.
"""

import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def _stat_fields(pid):
    text = _read(f"/proc/{pid}/stat")
    if text is None:
        return None
    # The command name is in parentheses and may contain spaces; fields resume after the last ')'.
    rest = text[text.rindex(")") + 2:].split()
    return rest  # rest[0] is field 3 (state)


def ppid_of(pid):
    f = _stat_fields(pid)
    return int(f[1]) if f else None


def tree(root):
    """root and all its descendants that are alive now."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        f = _stat_fields(name)
        if f is None:
            continue
        children.setdefault(int(f[1]), []).append(int(name))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        if _read(f"/proc/{p}/stat") is None:
            continue
        out.append(p)
        todo.extend(children.get(p, []))
    return sorted(out)


def cpu_ticks(pid):
    """utime + stime (clock ticks) of the process, all its threads included."""
    f = _stat_fields(pid)
    if f is None:
        return None
    # Fields 14 and 15 (utime, stime) are rest[11] and rest[12].
    return int(f[11]) + int(f[12])


def cpu_seconds(pids):
    """Sum over pids; a process that has gone is counted as missing (None in the dict)."""
    per = {p: cpu_ticks(p) for p in pids}
    total = sum(v for v in per.values() if v is not None) / CLK_TCK
    return total, per


def threads(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        return 0


def status_kib(pid, key):
    text = _read(f"/proc/{pid}/status")
    if text is None:
        return None
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def reset_peak(pids):
    """Resets VmHWM of each process; returns the pids where that failed (old kernels, no rights)."""
    failed = []
    for p in pids:
        try:
            with open(f"/proc/{p}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            failed.append(p)
    return failed


def peak_rss_kib(pids):
    vals = [status_kib(p, "VmHWM") for p in pids]
    vals = [v for v in vals if v is not None]
    return sum(vals) if vals else None


def alive(pid):
    f = _stat_fields(pid)
    return f is not None and f[0] != "Z"


def set_autogroup_nice(pid, nice):
    """With kernel.sched_autogroup_enabled (the default on desktop-ish kernels), CPU time is
    shared between sessions first and `nice` only orders processes inside a session. Every
    benchmark process runs in its own session, so its session's nice is what gives it priority
    over other work. Returns an error string or None."""
    try:
        with open(f"/proc/{pid}/autogroup", "w") as f:
            f.write(str(nice))
        return None
    except OSError as e:
        return str(e)


def rss_kib(pids):
    """Current resident memory (VmRSS) of the processes, summed (shared pages counted in each)."""
    vals = [status_kib(p, "VmRSS") for p in pids]
    vals = [v for v in vals if v is not None]
    return sum(vals) if vals else None
