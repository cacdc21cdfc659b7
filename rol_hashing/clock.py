"""Wall-clock timing: ``Stopwatch`` (seconds since it started)."""

from __future__ import annotations

import time


class Stopwatch:
    """Seconds since construction (``time.perf_counter``): ``clock()`` reads it."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start
