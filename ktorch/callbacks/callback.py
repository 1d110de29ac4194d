"""`Callback`: hooks called by `fit`, `evaluate` and `predict`."""

from __future__ import annotations


class Callback:
    """Base class of callbacks: override the hooks you need.

    Attributes:
        model: the model being trained (set by `fit`/`evaluate`/`predict`).
        params: dict with `verbose`, `epochs` and `steps`.

    Hooks receive `logs`, a mapping of metric names to Python floats (read it only when you
    need it: per-batch values are computed on demand).
    """

    def __init__(self):
        self.params: dict = {}
        self._model = None

    def set_params(self, params: dict) -> None:
        self.params = params

    def set_model(self, model) -> None:
        self._model = model

    @property
    def model(self):
        return self._model

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)

    def on_test_begin(self, logs=None): ...
    def on_test_end(self, logs=None): ...
    def on_test_batch_begin(self, batch, logs=None): ...
    def on_test_batch_end(self, batch, logs=None): ...
    def on_predict_begin(self, logs=None): ...
    def on_predict_end(self, logs=None): ...
    def on_predict_batch_begin(self, batch, logs=None): ...
    def on_predict_batch_end(self, batch, logs=None): ...

    # Keras 2 names, called by the default on_train_batch_* hooks.
    def on_batch_begin(self, batch, logs=None): ...
    def on_batch_end(self, batch, logs=None): ...
