"""The epoch loop every training run shares: one ``fit`` per epoch, then a checkpoint.

Fitting one epoch at a time lets each epoch get its own seeded data order and
learning rate, so a run resumed from the checkpoint of epoch k continues exactly
as an uninterrupted run would.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence

import keras
import numpy as np

from rol_hashing import viz
from rol_hashing.clock import Stopwatch
from rol_hashing.faults import armed, fault_point
from rol_hashing.training.checkpoints import (
    list_checkpoints,
    read_log,
    save_checkpoint,
    truncate_log,
)
from rol_hashing.training.layout import Run


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class _LogLearningRate(keras.callbacks.Callback):
    """Adds the epoch's learning rate to the logs (so log.csv has it)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(
                keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
            )


class EpochLog(keras.callbacks.Callback):
    """Progress with the run's real epoch numbers ("Epoch 3/8", not Keras' "Epoch 1/1" of
    a one-epoch ``fit``): the line at each epoch's start, a step bar only when ``bar``
    (a terminal), and one line of the epoch's logs and seconds at its end."""

    def __init__(self, epochs: int, bar: bool = False) -> None:
        super().__init__()
        self.epochs = epochs
        self.bar = bar
        self._progbar: keras.utils.Progbar | None = None
        self._watch = Stopwatch()

    def on_epoch_begin(self, epoch, logs=None):
        print(f"Epoch {epoch + 1}/{self.epochs}", flush=True)
        self._watch = Stopwatch()
        self._progbar = keras.utils.Progbar(None, verbose=1) if self.bar else None

    def on_train_batch_end(self, batch, logs=None):
        if self._progbar is not None:
            shown = [(k, float(v)) for k, v in (logs or {}).items() if k == "loss"]
            self._progbar.update(batch + 1, values=shown)

    def on_epoch_end(self, epoch, logs=None):
        if self._progbar is not None:
            print(flush=True)
        parts = [f"{self._watch():.0f}s"] + [
            f"{k}: {float(v):.4f}" for k, v in (logs or {}).items() if k != "learning_rate"
        ]
        print(" - ".join(parts), flush=True)


class FaultPoint(keras.callbacks.Callback):
    """The ``train_batch`` fault point (``rol_hashing.faults``) at each batch's start,
    with the run's 1-based epoch and batch numbers."""

    def __init__(self) -> None:
        super().__init__()
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1

    def on_train_batch_begin(self, batch, logs=None):
        fault_point("train_batch", epoch=self._epoch, batch=batch + 1)


def progress_callbacks(verbose: int | str, epochs: int) -> list[keras.callbacks.Callback]:
    """``verbose``: 0 silent; 1 or "auto" a step bar on a terminal and one line per epoch
    when output is redirected; 2 one line per epoch."""
    if verbose in (0, "0"):
        return []
    bar = verbose in (1, "1", "auto") and sys.stdout.isatty()
    return [EpochLog(epochs, bar=bar)]


def fault_callbacks() -> list[keras.callbacks.Callback]:
    """``[FaultPoint()]`` when ``ROL_HASHING_FAULT`` names ``train_batch``, else ``[]``."""
    return [FaultPoint()] if armed("train_batch") else []


def _all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every layer of ``model``, nested models' layers included, each once.

    Depth first, a model's layers in its own order, each nested model right before its
    own layers (the order the generators are reseeded in, so it must stay fixed).
    """
    seen: set[int] = set()
    out: list[keras.layers.Layer] = []
    stack = list(reversed(model.layers))
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        out.append(layer)
        if isinstance(layer, keras.Model):
            stack.extend(reversed(layer.layers))
    return out


def reseed_random_layers(model: keras.Model, seed: int, epoch: int) -> int:
    """Sets every SeedGenerator (dropout masks) to a state drawn from (seed, epoch).

    Random layers then behave the same in an epoch whether the run was resumed
    or not. Returns the number of generators reseeded.
    """
    generators = []
    for layer in _all_layers(model):
        for value in vars(layer).values():
            if isinstance(value, keras.random.SeedGenerator):
                generators.append(value)
    rng = np.random.default_rng([seed, epoch, 7919])
    for generator in generators:
        state = generator.state
        fresh = np.array([rng.integers(1, 2**31 - 1), 0], dtype=state.dtype)
        state.assign(fresh)
    return len(generators)


def build_training_state(model: keras.Model, batch_spec: object) -> None:
    """Creates a compiled ``model``'s optimizer, loss and metric variables before ``fit``.

    Without a distribution strategy Keras creates them inside the first traced train
    step, and a ``tf.function`` that creates variables is traced twice; on the cpu
    profiles' small models that second trace is most of a short run. Building them
    here, from shapes alone, leaves every number the same (the variables start at the
    same values) and halves the tracing.

    Args:
        batch_spec: one batch's structure, ``(x, y)`` of objects with ``shape`` and
            ``dtype`` (a ``tf.data.Dataset``'s ``element_spec``, ``keras.KerasTensor``s);
            ``None`` leaves the building to Keras.
    """
    build = getattr(model, "_symbolic_build", None)  # Keras 3's own pre-fit build
    if batch_spec is None or build is None or model.optimizer is None:
        return
    if getattr(model, "_distribute_strategy", None) is not None:
        return  # under a strategy Keras builds them itself before tracing
    build(data_batch=batch_spec)


def run_epochs(
    model: keras.Model,
    run: Run,
    epochs: int,
    start_epoch: int,
    make_dataset: Callable[[int], object],
    validation_data: object | None = None,
    learning_rate: Callable[[int], float] | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = "auto",
    title: str = "",
    seed: int = 0,
) -> dict[str, float]:
    """Trains epochs ``start_epoch+1 .. epochs`` (1-based), checkpointing after each.

    Args:
        model: a compiled model.
        run: the run folder (log.csv, tensorboard/, checkpoints/).
        epochs: total epochs of the run.
        start_epoch: epochs already done (0 for a new run, k after resuming).
        make_dataset: 0-based epoch -> its training data (a tf.data.Dataset).
        validation_data: evaluated after every epoch.
        learning_rate: 1-based epoch -> learning rate, set before the epoch.
        callbacks: extra callbacks (after the logging ones).
        seed: with the epoch, seeds the dropout masks (see ``reseed_random_layers``).

    Returns:
        The last epoch's logs.

    Raises:
        TrainingDivergedError: the loss became NaN (TerminateOnNaN stopped the run).
    """
    truncate_log(run, start_epoch)
    all_callbacks = [
        _LogLearningRate(),
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.CSVLogger(str(run.log), append=True),
        keras.callbacks.TensorBoard(str(run.tensorboard), write_graph=False),
        *progress_callbacks(verbose, epochs),
        *callbacks,
        *fault_callbacks(),
    ]
    logs: dict[str, float] = {}
    for epoch in range(start_epoch, epochs):
        if learning_rate is not None:
            model.optimizer.learning_rate = learning_rate(epoch + 1)
        reseed_random_layers(model, seed, epoch)
        data = make_dataset(epoch)
        if epoch == start_epoch:
            build_training_state(model, getattr(data, "element_spec", None))
        history = model.fit(
            data,
            validation_data=validation_data,
            initial_epoch=epoch,
            epochs=epoch + 1,
            callbacks=all_callbacks,
            verbose=0,  # EpochLog shows the run's own epoch numbers
            shuffle=False,  # each epoch's order is already seeded in make_dataset
        )
        logs = {k: float(v[-1]) for k, v in history.history.items() if v}
        loss = logs.get("loss", float("nan"))
        if model.stop_training or not math.isfinite(loss):
            raise TrainingDivergedError(diverged_message(run, loss, epoch + 1))
        save_checkpoint(model, run, epoch + 1)
        viz.save(viz.plot_training_curves(read_log(run.log), title or run.path.name), run.curves)
    return logs


def diverged_message(run: Run, loss: float, epoch: int) -> str:
    """What a run that diverged in (1-based) ``epoch`` has on disk, and what to do."""
    kept = list_checkpoints(run)
    if kept:
        path, done = kept[-1]
        return (
            f"loss became {loss} in epoch {epoch}; the newest checkpoint, {path} (epoch "
            f"{done}), is kept. Lower the learning rate and --resume."
        )
    return (
        f"loss became {loss} in epoch {epoch}; no checkpoint was written yet ({run.checkpoints} "
        "is empty), so nothing can be resumed. Lower the learning rate and start again "
        "with --overwrite."
    )
