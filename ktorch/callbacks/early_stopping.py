"""`EarlyStopping`: stops `fit` when a monitored metric has stopped improving."""

from __future__ import annotations

import warnings

import numpy as np

from ktorch.callbacks.monitor_callback import MonitorCallback


class EarlyStopping(MonitorCallback):
    """Stops training when a monitored metric has stopped improving.

    At the end of every epoch the monitored value is compared with the best one so far; after
    `patience` epochs without improvement, `model.stop_training` is set and `fit` ends after
    the current epoch.

    Args:
        monitor: quantity to watch, e.g. `"val_loss"` (needs validation data) or `"loss"`.
        min_delta: minimum change counted as an improvement; smaller changes count as none.
        patience: number of epochs without improvement after which training stops.
        verbose: 1 prints a line when the callback stops training or restores weights.
        mode: `"min"`, `"max"` or `"auto"` (direction inferred from the metric: losses are
            minimized, accuracy-like metrics maximized).
        baseline: a value the metric must beat: while no epoch improves on it, the patience
            count keeps running even when the metric improves on its own best.
        restore_best_weights: at the end of training, restore the weights of the best epoch
            (whether or not training was stopped early). If no epoch beat `baseline`, the best
            of the epochs run is restored.
        start_from_epoch: number of warm-up epochs during which nothing is monitored.

    Attributes:
        wait: epochs counted since the last improvement.
        best: best monitored value so far.
        best_epoch: index (0-based) of the best epoch.
        best_weights: the weights of the best epoch (with `restore_best_weights=True`).
        stopped_epoch: index of the epoch at whose end training was stopped (0 if it was not).

    Example:
        ```python
        early_stopping = ktorch.callbacks.EarlyStopping(monitor="val_loss", patience=2)
        model.fit(x, y, validation_split=0.2, callbacks=[early_stopping])
        ```
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ):
        super().__init__(monitor, mode, min_delta=min_delta)
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = 0

    def get_state(self) -> dict:
        """Returns the progress of the callback (Python values and NumPy arrays).

        `set_state` on a new instance with the same arguments makes a resumed `fit` go on with
        the same patience count and best value.
        """
        return {
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
            "best": None if self.best is None else float(self.best),
            "best_epoch": self.best_epoch,
            "best_weights": None
            if self.best_weights is None
            else [np.array(w, copy=True) for w in self.best_weights],
        }

    def set_state(self, state: dict) -> None:
        """Restores a state from `get_state`; the next `on_train_begin` keeps it."""
        self.wait = int(state["wait"])
        self.stopped_epoch = int(state["stopped_epoch"])
        self.best = None if state["best"] is None else float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        weights = state["best_weights"]
        self.best_weights = None if weights is None else [np.asarray(w) for w in weights]
        self._restored = True

    def on_train_begin(self, logs=None):
        # Fresh state for every `fit`, unless `set_state` has just restored one.
        if self._take_restored():
            return
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._restored = False

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # The first monitored epoch is the best one seen so far.
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # The count restarts only when the value also beats the baseline.
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping", flush=True)
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(
                    "Restoring model weights from the end of the best epoch: "
                    f"{self.best_epoch + 1}.",
                    flush=True,
                )
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs):
        """Returns `logs[monitor]`, warning (and returning None) when it is missing."""
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(
                f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                f"Available metrics are: {','.join(logs.keys())}",
                stacklevel=3,
            )
        return value
