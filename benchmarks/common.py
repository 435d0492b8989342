"""Shared helpers of the benchmarks: median timing, one result row per measurement, versions and machine."""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass
from importlib import metadata
from typing import Callable

PACKAGES = ("numpy", "pandas", "scipy", "statsmodels", "linearmodels", "pyfixest", "dask", "distributed",
            "wildboottest", "pysyncon", "diff-diff")


@dataclass(frozen=True)
class Row:
    """One benchmark line: the median seconds of ``runs`` runs, an optional comparison, and the target."""

    name: str
    seconds: float
    runs: int
    target: str = ""            # e.g. "< 2 s" or ">= 1.8x"
    passed: bool | None = None  # None: no target
    comparison: str = ""        # e.g. "wildboottest 1.37 s (196x slower)"


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    """(median seconds, all run times) of ``repeats`` calls of ``fn`` (time.perf_counter)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} CPU(s), {platform.system()} {platform.release()}, Python "
            f"{platform.python_version()}; 1-min load average at start {load:.2f}")
