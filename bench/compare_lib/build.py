"""Builds the Sluice that bench/compare measures: a Release `sluice` in build-bench/.

Configured once (CMake, Ninja, Release, tests and micro benches off, ccache as the compiler
launcher when it is on PATH); then `ninja sluice` on every run, which rebuilds only what changed
since the last build and is a no-op when the binary is up to date. What it does is printed.
"""

import os
import shutil
import subprocess
import time

from .util import log


class BuildError(Exception):
    pass


def _run(argv, what):
    log(f"build: {' '.join(argv)}")
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        tail = "\n".join(r.stdout.strip().splitlines()[-25:])
        raise BuildError(f"{what} failed (exit {r.returncode}):\n{tail}")
    return r.stdout


def ensure_sluice(repo, build_dir, jobs):
    """Configures build_dir if it has no build.ninja, then builds the sluice target."""
    for tool in ("cmake", "ninja"):
        if shutil.which(tool) is None:
            raise BuildError(f"`{tool}` is needed to build Sluice (scripts/bootstrap installs it), "
                             f"or pass --sluice PATH / --no-build")
    t0 = time.monotonic()
    if not os.path.isfile(os.path.join(build_dir, "build.ninja")):
        argv = ["cmake", "-S", repo, "-B", build_dir, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                "-DSLUICE_BUILD_TESTS=OFF", "-DSLUICE_BUILD_BENCH=OFF"]
        if shutil.which("ccache"):
            argv += ["-DCMAKE_CXX_COMPILER_LAUNCHER=ccache", "-DCMAKE_C_COMPILER_LAUNCHER=ccache"]
        log(f"build: {build_dir} is not configured yet: configuring a Release build")
        _run(argv, "cmake configure")
    else:
        log(f"build: {build_dir} configured; bringing sluice up to date")
    out = _run(["ninja", "-C", build_dir, f"-j{jobs}", "sluice"], "ninja sluice")
    steps = [line for line in out.splitlines() if line.startswith("[")]
    if "no work to do" in out:
        log(f"build: {build_dir}/sluice is up to date")
    else:
        log(f"build: {len(steps)} build steps in {time.monotonic() - t0:.0f} s "
            f"({steps[-1] if steps else 'done'})")
    return os.path.join(build_dir, "sluice")
