"""What machine a benchmark ran on, and how fast it was at the time: shared by every script under bench/.

A shared VM's speed moves with its neighbours' load, which no load average inside the VM shows; `cpu_probe_ms`,
taken before and after a measurement, says how fast the machine was while it ran.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_mib() -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 0


def _command_output(args: list[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info(dovecot: bool = False) -> dict[str, Any]:
    info: dict[str, Any] = {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "ram_mib": _mem_total_mib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "sqlite": sqlite3.sqlite_version,
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
    }
    if dovecot:
        info["dovecot"] = _command_output([shutil.which("dovecot") or "/usr/sbin/dovecot", "--version"])
    return info


def cpu_probe_ms(repeat: int = 5) -> float:
    """Best of `repeat` timings of a fixed pure-Python loop (about 125 ms on this machine when its host is quiet)."""
    best = float("inf")
    for _ in range(repeat):
        started, total = time.perf_counter(), 0
        for i in range(3_000_000):
            total += i * i
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)
