"""`LearningRateScheduler`: sets the learning rate at the start of every epoch."""

from __future__ import annotations

import inspect

import numpy as np

from ktorch.callbacks.callback import Callback


def _takes_learning_rate(schedule) -> bool | None:
    """Whether `schedule` accepts `(epoch, lr)`; `None` when its signature is unknown."""
    try:
        signature = inspect.signature(schedule)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(0, 0.0)
    except TypeError:
        return False
    return True


class LearningRateScheduler(Callback):
    """Sets the optimizer's learning rate from `schedule` at the start of every epoch.

    The learning rate of each epoch is also added to the epoch logs as `learning_rate` (so
    `History` records it).

    Args:
        schedule: a function `schedule(epoch, lr)` (epoch 0-based, `lr` the current learning
            rate) or `schedule(epoch)`, returning the new learning rate as a float.
        verbose: 1 prints the learning rate set at every epoch.

    Example:
        ```python
        def scheduler(epoch, lr):
            return lr if epoch < 10 else lr * 0.9

        callback = ktorch.callbacks.LearningRateScheduler(scheduler)
        model.fit(x, y, epochs=15, callbacks=[callback])
        ```
    """

    def __init__(self, schedule, verbose: int = 0):
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def _next_learning_rate(self, epoch: int, current: float):
        takes_lr = _takes_learning_rate(self.schedule)
        if takes_lr is None:
            try:
                return self.schedule(epoch, current)
            except TypeError:
                return self.schedule(epoch)
        return self.schedule(epoch, current) if takes_lr else self.schedule(epoch)

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = getattr(self.model, "optimizer", None)
        if not hasattr(optimizer, "learning_rate"):
            raise ValueError('Optimizer must have a "learning_rate" attribute.')
        learning_rate = self._next_learning_rate(epoch, float(optimizer.learning_rate))
        if not isinstance(learning_rate, (float, np.float32, np.float64)):
            raise ValueError(
                f"The output of the `schedule` function should be a float. Got: {learning_rate}"
            )
        optimizer.learning_rate = float(learning_rate)
        if self.verbose > 0:
            print(
                f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                f"{learning_rate}.",
                flush=True,
            )

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)
