"""`MonitorCallback`: the improvement test shared by callbacks that watch one metric."""

from __future__ import annotations

import operator
import warnings

from ktorch.callbacks.callback import Callback


class MonitorCallback(Callback):
    """Base class of callbacks that watch a metric and decide whether it improved.

    `EarlyStopping`, `ModelCheckpoint` and `ReduceLROnPlateau` build on it. The direction of
    improvement is fixed on the first epoch end (the model's metrics exist by then).

    Args:
        monitor: name of the watched quantity in the logs, e.g. `"val_loss"`.
        mode: `"min"`, `"max"` or `"auto"`. `"auto"` minimizes losses (`loss`, `val_loss` and
            the per-output `<output>_loss`) and follows the direction of a compiled metric of
            that name (accuracy-like metrics are maximized, error-like ones minimized); any
            other name raises a `ValueError` asking for an explicit mode.
        baseline: initial best value; `None` takes the first observed value.
        min_delta: smallest change counted as an improvement (its sign is ignored).
    """

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(
                f"{type(self).__name__} mode '{mode}' is unknown, fallback to auto mode.",
                stacklevel=3,
            )
            mode = "auto"
        self.monitor = monitor
        self.mode = mode
        self.best = baseline
        self.min_delta = abs(min_delta)
        self.monitor_op = None
        self._restored = False

    def _set_monitor_op(self) -> None:
        if self.mode == "min":
            self.monitor_op = operator.lt
        elif self.mode == "max":
            self.monitor_op = operator.gt
        else:
            self.monitor_op = self._infer_monitor_op()
        if self.monitor_op is operator.lt:
            # Stored negated (as Keras does): `current - min_delta` must beat the reference.
            self.min_delta *= -1

    def _infer_monitor_op(self):
        name = self.monitor.removeprefix("val_")
        if name == "loss":
            return operator.lt
        found = None
        for metric in getattr(self.model, "metrics", None) or []:
            inner = getattr(metric, "metrics", None)
            if inner is None:
                # Loss trackers (`loss`, `<output>_loss`) are minimized.
                if metric.name == name:
                    found = operator.lt
                continue
            for sub in inner:
                direction = getattr(sub, "_direction", None)
                if sub.name == name and direction is not None:
                    found = operator.gt if direction == "up" else operator.lt
        if found is None:
            raise ValueError(
                f"{type(self).__name__} callback received monitor={self.monitor}, but ktorch "
                "isn't able to automatically determine whether that metric should be maximized "
                "or minimized. Pass `mode='max'` in order to monitor based on the highest metric "
                "value, or pass `mode='min'` in order to use the lowest value."
            )
        return found

    def _is_improvement(self, monitor_value, reference_value) -> bool:
        if reference_value is None:
            return True
        return bool(self.monitor_op(monitor_value - self.min_delta, reference_value))

    def _take_restored(self) -> bool:
        """Whether `set_state` ran since the last `on_train_begin` (then keep the state)."""
        restored, self._restored = self._restored, False
        return restored
