"""Shared by the scale benchmarks: run a command in a fresh process and measure it; describe the machine.

Peak RSS comes from wait4's rusage of the child, which the kernel reports as the largest resident set among that
process and the descendants it waited for (the sysscan parent and its workers): the biggest single process, not a
sum. CPU is user+sys of the child and all its waited-for descendants.
"""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    wall: float
    cpu: float
    rss_mb: float
    rc: int
    stdout: str = ""
    stderr: str = ""


def measure(cmd: list[str], env: dict | None = None, cwd: Path | str | None = ROOT, capture: bool = False,
            timeout: float | None = None) -> Run:
    import tempfile

    with tempfile.TemporaryFile("w+") as fo, tempfile.TemporaryFile("w+") as fe:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=fo if capture else subprocess.DEVNULL,
                                stderr=fe if capture else subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)  # not proc.wait(): wait4 gives this child's rusage
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out = err = ""
        if capture:
            fo.seek(0)
            fe.seek(0)
            out, err = fo.read(), fe.read()
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode, out, err)


def precompile() -> None:
    """Write the analyzer's bytecode before timing anything, as an installed package has it. Without this, a machine
    with PYTHONDONTWRITEBYTECODE set (this one) or a fresh checkout pays compiling ~13k lines in every "cold" run,
    ~0.04-0.1 s that no user of an installed sysscan pays."""
    import compileall

    compileall.compile_dir(str(ROOT / "analyzer"), quiet=1)


def sysscan_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "analyzer.cli", *args]


def machine() -> str:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / 1024 / 1024:.1f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{platform.node()}: {cpu}, {os.cpu_count()} cores, {mem}, Linux {platform.release()}, "
            f"Python {platform.python_version()}")


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def header() -> str:
    return f"machine: {machine()}\ndate: {time.strftime('%Y-%m-%d %H:%M %Z')}\nat start: {load()}"


def best_median(xs: list[float]) -> str:
    return f"{min(xs):.2f} / {statistics.median(xs):.2f}"


def env_with_cache(cache_home: str | None, **extra: str) -> dict:
    env = dict(os.environ)
    env.pop("SYSSCAN_NO_CACHE", None)
    env.pop("SYSSCAN_DEBUG", None)
    if cache_home is not None:
        env["XDG_CACHE_HOME"] = cache_home
    env.update(extra)
    return env
