"""Fault-injection points: where a test stops the process on purpose.

A test that kills a process "in the middle of an epoch" or "while a file is written"
must not guess the moment with a sleep: on a faster machine the epoch has ended by
then. Instead the process itself stops at a named point and says so, and the test
kills it there. Nothing happens unless the environment variable ``ROL_HASHING_FAULT``
names a point:

    ROL_HASHING_FAULT="train_batch:epoch=2,batch=3"          # stall in batch 3 of epoch 2
    ROL_HASHING_FAULT="atomic_write:phase=before_rename,hit=2"  # the 2nd write, temp full

A spec is ``<point>[:key=value,...]``; it matches a call ``fault_point(point, **where)``
when every key but ``hit`` equals ``str(where[key])``; ``hit=N`` (default 1) picks the
N-th matching call of the process. At the match the process prints
``FAULT <point> key=value ...`` on standard output (flushed) and then waits to be
killed: after ``ROL_HASHING_FAULT_STALL_S`` seconds (default 600) it exits with code 3,
so a test that forgot to kill it cannot hang a suite for ever.

The points: ``train_batch`` (``epoch``, ``batch``: 1-based, at the start of the
batch; every training loop), ``atomic_write`` (``name``: the target's file name,
``phase``: ``after_create`` with an empty temporary file beside the target,
``before_rename`` with the whole new version in the temporary file, ``after_rename``
with the new version in place). This is a bottom-layer module: no package imports.
"""

from __future__ import annotations

import os
import sys
import threading

FAULT_ENV = "ROL_HASHING_FAULT"
STALL_ENV = "ROL_HASHING_FAULT_STALL_S"
STALL_EXIT_CODE = 3

_hits: dict[str, int] = {}


def parse_spec(spec: str) -> tuple[str, dict[str, str], int]:
    """``"point:k=v,hit=2"`` -> ``("point", {"k": "v"}, 2)``.

    Raises:
        ValueError: a malformed spec (a part without ``=``, or a hit below 1).
    """
    point, _, rest = spec.strip().partition(":")
    where: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{FAULT_ENV}={spec!r}: expected key=value, got {part!r}")
        where[key.strip()] = value.strip()
    hit = int(where.pop("hit", "1"))
    if hit < 1:
        raise ValueError(f"{FAULT_ENV}={spec!r}: hit must be at least 1")
    return point.strip(), where, hit


def armed(point: str | None = None) -> bool:
    """Whether ``ROL_HASHING_FAULT`` is set (and names ``point``, when given)."""
    spec = os.environ.get(FAULT_ENV, "")
    if not spec:
        return False
    return point is None or parse_spec(spec)[0] == point


def fault_point(point: str, **where: object) -> None:
    """Stops here (prints ``FAULT ...``, waits to be killed) if the spec names this call."""
    spec = os.environ.get(FAULT_ENV, "")
    if not spec:
        return
    name, wanted, hit = parse_spec(spec)
    if name != point or any(str(where.get(k)) != v for k, v in wanted.items()):
        return
    _hits[spec] = _hits.get(spec, 0) + 1
    if _hits[spec] != hit:
        return
    shown = " ".join(f"{k}={v}" for k, v in where.items())
    sys.stdout.write(f"FAULT {point} {shown}\n")
    sys.stdout.flush()
    threading.Event().wait(float(os.environ.get(STALL_ENV, "600")))
    os._exit(STALL_EXIT_CODE)
