"""`ModelCheckpoint`: saves the model (or its weights) during `fit`."""

from __future__ import annotations

import os
import warnings

import numpy as np
import torch

from ktorch.callbacks.monitor_callback import MonitorCallback
from ktorch.trainers import distributed

_MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
_WEIGHTS_SUFFIXES = (".weights.h5", ".h5", ".hdf5", ".safetensors")


class ModelCheckpoint(MonitorCallback):
    """Saves the model or its weights at some frequency during `fit`.

    `filepath` may hold `str.format` fields filled at save time: `{epoch}` (1-based),
    `{batch}` (1-based, with an integer `save_freq`) and any log name, e.g.
    `"ckpt/model.{epoch:02d}-{val_loss:.2f}.keras"`. Missing directories are created. Only
    the main process (rank 0) writes files under `torchrun`.

    Args:
        filepath: path of the saved file. Whole models: `.keras` (Keras 3 format) or
            `.h5`/`.hdf5` (legacy Keras 2 layout). Weights only: `.weights.h5` (Keras 3),
            `.h5`/`.hdf5` (Keras 2) or `.safetensors`.
        monitor: metric compared by `save_best_only`.
        verbose: 1 prints a line for every save decision.
        save_best_only: save only when `monitor` improved on the best value so far (with a
            filepath without fields, the file always holds the best model).
        save_weights_only: save only the weights (`model.save_weights`), else the whole
            model (`model.save`).
        mode: `"min"`, `"max"` or `"auto"` (direction inferred from the metric).
        save_freq: `"epoch"` saves at the end of every epoch; an integer `n` saves every `n`
            batches (the logs are then the running values of the current epoch).
        initial_value_threshold: initial best value: with `save_best_only`, the first save
            needs a value better than this.

    Example:
        ```python
        checkpoint = ktorch.callbacks.ModelCheckpoint(
            "ckpt/best.keras", monitor="val_accuracy", save_best_only=True
        )
        model.fit(x, y, validation_split=0.2, epochs=10, callbacks=[checkpoint])
        ```
    """

    def __init__(
        self,
        filepath,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq="epoch",
        initial_value_threshold: float | None = None,
    ):
        super().__init__(monitor, mode, initial_value_threshold)
        self.verbose = verbose
        self.filepath = os.fspath(filepath)
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = None
        self._current_epoch = 0
        if save_freq != "epoch" and (
            isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1
        ):
            raise ValueError(
                "Invalid value for argument save_freq. Expected 'epoch' or a positive integer "
                f"(a number of batches). Received: save_freq={save_freq!r}"
            )
        lower = self.filepath.lower()
        if save_weights_only and not lower.endswith(_WEIGHTS_SUFFIXES):
            raise ValueError(
                "When using `save_weights_only=True` in `ModelCheckpoint`, the filepath "
                "provided must end in `.weights.h5` (Keras weights format), `.h5` (legacy "
                f"Keras 2 layout) or `.safetensors`. Received: filepath={self.filepath}"
            )
        if not save_weights_only and not lower.endswith(_MODEL_SUFFIXES):
            raise ValueError(
                "The filepath provided must end in `.keras` (Keras model format) or `.h5` "
                f"(legacy Keras 2 layout). Received: filepath={self.filepath}"
            )
        if save_freq != "epoch":
            # Set on the instance so that batch hooks (and per-batch logs) are only dispatched
            # to checkpoints that save by batch count.
            self.on_batch_end = self._save_on_batch

    def get_state(self) -> dict:
        """Returns the best value and the batch count since the last save."""
        return {
            "best": None if self.best is None else float(self.best),
            "batches_seen_since_last_saving": self._batches_seen_since_last_saving,
            "last_batch_seen": self._last_batch_seen,
        }

    def set_state(self, state: dict) -> None:
        """Restores a state from `get_state`."""
        self.best = None if state["best"] is None else float(state["best"])
        self._batches_seen_since_last_saving = int(state["batches_seen_since_last_saving"])
        last = state["last_batch_seen"]
        self._last_batch_seen = None if last is None else int(last)

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        if self.save_freq == "epoch":
            self._save_model(epoch=epoch, batch=None, logs=logs)

    def _save_on_batch(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            if self.monitor_op is None:
                self._set_monitor_op()
            self._save_model(epoch=self._current_epoch, batch=batch, logs=logs)

    def _should_save_on_batch(self, batch: int) -> bool:
        if self._last_batch_seen is None or batch <= self._last_batch_seen:
            # A new epoch: batch indices restart from 0.
            added = batch + 1
        else:
            # With `steps_per_execution`, hooks see every n-th batch index only.
            added = batch - self._last_batch_seen
        self._batches_seen_since_last_saving += added
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False

    def _should_save_model(self, epoch: int, logs, filepath: str) -> bool:
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {filepath}", flush=True)
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=4)
            return True
        if isinstance(current, (np.ndarray, torch.Tensor)) and current.ndim > 0:
            warnings.warn(
                "Can save best model only when `monitor` is a scalar value. Received: "
                f"{current}. Falling back to `save_best_only=False`.",
                stacklevel=4,
            )
            return True
        best = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print(
                    f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to "
                    f"{current:.5f}, saving model to {filepath}",
                    flush=True,
                )
            self.best = current
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}", flush=True)
        return False

    def _save_model(self, epoch: int, batch: int | None, logs) -> None:
        logs = logs or {}
        filepath = self._get_file_path(epoch, batch, logs)
        # Every process takes the decision (so `best` stays the same everywhere); one writes.
        if not self._should_save_model(epoch, logs, filepath):
            return
        if not distributed.is_main_process():
            return
        if os.path.isdir(filepath):
            raise OSError(
                "Please specify a non-directory filepath for ModelCheckpoint. Filepath used is "
                f"an existing directory: {filepath}"
            )
        dirname = os.path.dirname(filepath)
        if dirname:
            os.makedirs(dirname, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath, overwrite=True)
        else:
            self.model.save(filepath, overwrite=True)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: finished saving model to {filepath}", flush=True)

    def _get_file_path(self, epoch: int, batch: int | None, logs) -> str:
        values = dict(logs)
        values["epoch"] = epoch + 1
        if batch is not None and "batch" not in values:
            values["batch"] = batch + 1
        try:
            return self.filepath.format(**values)
        except KeyError as e:
            raise KeyError(
                f'Failed to format this callback filepath: "{self.filepath}". Reason: {e}'
            ) from e
