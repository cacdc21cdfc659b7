"""``tf.distribute`` strategies by name, for runs that outgrow one device."""

from __future__ import annotations

import contextlib

from rol_hashing.errors import InputError

STRATEGIES = ("default", "mirrored", "multiworker")


def get_strategy(name: str | None):
    """The strategy for ``name``: "default" (one device), "mirrored" (all local
    GPUs, or CPUs split into logical devices) or "multiworker" (hosts from TF_CONFIG).
    """
    import tensorflow as tf  # lazy: cli/train imports STRATEGIES for --help

    name = name or "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise InputError(f"strategy must be one of {STRATEGIES}, got {name!r}")


def strategy_scope(strategy) -> contextlib.AbstractContextManager:
    """``strategy.scope()``, or a null context for None."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()
