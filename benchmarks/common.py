"""Shared benchmark helpers: timing with repeats, machine and library descriptions."""

from __future__ import annotations

import importlib
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rol_hashing.machine import cpu_model, machine  # noqa: F401  (re-exported)


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
