"""Shared benchmark helpers: timing with repeats, machine and library descriptions."""

from __future__ import annotations

import importlib
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Timing:
    """Seconds of each repeat; ``per`` divides them (e.g. per query)."""

    seconds: list[float]
    per: int = 1

    @property
    def min(self) -> float:
        return min(self.seconds) / self.per

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) / self.per


def time_repeats(fn: Callable[[], Any], repeats: int, per: int = 1) -> tuple[Timing, Any]:
    """Runs ``fn`` ``repeats`` times; returns the timing and the last result."""
    seconds, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - start)
    return Timing(seconds, per), result


def cpu_model() -> str:
    """The CPU's model name (Linux), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    """One line: CPU, cores usable by this process, memory, OS."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 2**30:.0f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        memory = ""
    return f"{cpu_model()}, {cores} cores{memory}, {platform.system()} {platform.release()}"


def versions(names: tuple[str, ...] = ("numpy", "numba", "faiss", "keras", "tensorflow")) -> str:
    """``name version`` of each importable library, comma-separated."""
    found = []
    for name in names:
        try:
            module = importlib.import_module(name)
        except ImportError:
            found.append(f"{name} (not installed)")
            continue
        found.append(f"{name} {getattr(module, '__version__', '?')}")
    return f"Python {platform.python_version()}, " + ", ".join(found)


def ms(seconds: float) -> str:
    """Seconds as milliseconds with 3 significant digits."""
    return f"{seconds * 1e3:.3g}"
