"""Which machine a number came from (numbers move between CPUs): one line to record
beside a measured result. A bottom-layer module: no package imports."""

from __future__ import annotations

import os
import platform


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


def hardware(line: str) -> str:
    """A ``machine()`` line without its OS release: the part that moves the numbers (CPU,
    cores, memory). Two VMs of one kind differ only in their kernel's build string."""
    head, sep, tail = line.rpartition(", ")
    return head if sep and tail.split(" ")[0] in ("Linux", "Darwin", "Windows") else line
