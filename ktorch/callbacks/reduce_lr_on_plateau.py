"""`ReduceLROnPlateau`: lowers the learning rate when a metric has stopped improving."""

from __future__ import annotations

import warnings

import numpy as np

from ktorch.callbacks.monitor_callback import MonitorCallback


class ReduceLROnPlateau(MonitorCallback):
    """Multiplies the learning rate by `factor` when a metric has stopped improving.

    After `patience` epochs without improvement the learning rate becomes
    `max(lr * factor, min_lr)`; then `cooldown` epochs pass before the count starts again.
    The current learning rate is added to the epoch logs as `learning_rate`.

    Args:
        monitor: quantity to watch, e.g. `"val_loss"`.
        factor: multiplier of the learning rate, below 1.
        patience: number of epochs without improvement after which the rate is reduced.
        verbose: 1 prints a line at every reduction.
        mode: `"min"`, `"max"` or `"auto"` (direction inferred from the metric).
        min_delta: minimum change counted as an improvement.
        cooldown: epochs to wait after a reduction before counting again.
        min_lr: lower bound of the learning rate.

    Example:
        ```python
        reduce_lr = ktorch.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.2, patience=5, min_lr=0.001
        )
        model.fit(x_train, y_train, validation_split=0.2, callbacks=[reduce_lr])
        ```
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        **kwargs,
    ):
        if "epsilon" in kwargs:
            warnings.warn(
                "`epsilon` argument is deprecated and will be removed, use `min_delta` instead.",
                DeprecationWarning,
                stacklevel=2,
            )
            min_delta = kwargs.pop("epsilon")
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments for ReduceLROnPlateau: {kwargs}")
        super().__init__(monitor, mode, min_delta=min_delta)
        if factor >= 1.0:
            raise ValueError(
                f"ReduceLROnPlateau does not support a factor >= 1.0. Received factor={factor}"
            )
        self.factor = factor
        self.min_lr = min_lr
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.cooldown_counter = 0
        self.wait = 0

    def get_state(self) -> dict:
        """Returns the progress of the callback: best value, wait and cooldown counts."""
        return {
            "best": None if self.best is None else float(self.best),
            "wait": self.wait,
            "cooldown_counter": self.cooldown_counter,
        }

    def set_state(self, state: dict) -> None:
        """Restores a state from `get_state`; the next `on_train_begin` keeps it."""
        self.best = None if state["best"] is None else float(state["best"])
        self.wait = int(state["wait"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self._restored = True

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_train_begin(self, logs=None):
        # Fresh state for every `fit`, unless `set_state` has just restored one.
        if self._take_restored():
            return
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._restored = False

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = logs if logs is not None else {}
        optimizer = self.model.optimizer
        logs["learning_rate"] = float(optimizer.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"Learning rate reduction is conditioned on metric `{self.monitor}` which is "
                f"not available. Available metrics are: {','.join(logs.keys())}.",
                stacklevel=2,
            )
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience and self._reduce(optimizer, epoch):
                self.cooldown_counter = self.cooldown
                self.wait = 0

    def _reduce(self, optimizer, epoch: int) -> bool:
        old_lr = float(optimizer.learning_rate)
        # Compared in float32, as Keras's float32 learning-rate variable is: a rate already
        # at `min_lr` counts as not reducible.
        if np.float32(old_lr) <= np.float32(self.min_lr):
            return False
        new_lr = max(old_lr * self.factor, self.min_lr)
        optimizer.learning_rate = new_lr
        if self.verbose > 0:
            print(
                f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.",
                flush=True,
            )
        return True
