"""`History`: records per-epoch logs; `fit` returns it."""

from __future__ import annotations

from ktorch.callbacks.callback import Callback


class History(Callback):
    """Records the epoch-end logs of `fit`.

    Attributes:
        history: dict mapping each metric name (`loss`, `accuracy`, `val_loss`, ...) to the list
            of its per-epoch values.
        epoch: list of the epoch indices recorded.
    """

    def __init__(self):
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def set_model(self, model):
        super().set_model(model)
        model.history = self
