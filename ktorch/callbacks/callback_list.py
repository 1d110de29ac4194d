"""`CallbackList`: dispatches hooks to callbacks, skipping per-batch hooks nobody overrides."""

from __future__ import annotations

from ktorch.callbacks.callback import Callback
from ktorch.callbacks.history import History
from ktorch.callbacks.progbar_logger import ProgbarLogger

_BATCH_HOOKS = {
    "train_begin": ("on_train_batch_begin", "on_batch_begin"),
    "train_end": ("on_train_batch_end", "on_batch_end"),
    "test_begin": ("on_test_batch_begin",),
    "test_end": ("on_test_batch_end",),
    "predict_begin": ("on_predict_batch_begin",),
    "predict_end": ("on_predict_batch_end",),
}


def _overrides(callback, names) -> bool:
    # A hook set on the instance (`callback.on_batch_end = fn`) counts as an override too.
    own = getattr(callback, "__dict__", {})
    return any(
        name in own or getattr(type(callback), name, None) is not getattr(Callback, name)
        for name in names
    )


class CallbackList(Callback):
    """A list of callbacks behaving as one.

    Args:
        callbacks: list of callbacks.
        add_history: append a `History` callback (exposed as `model.history`).
        add_progbar: append a `ProgbarLogger` unless one is given.
        model: the model, passed to every callback.
        **params: `verbose`, `epochs`, `steps`, passed to every callback.
    """

    def __init__(self, callbacks=None, add_history=False, add_progbar=False, model=None, **params):
        super().__init__()
        self.callbacks = list(callbacks or [])
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(
                    "Callbacks must be instances of `ktorch.callbacks.Callback`. Received: "
                    f"{callback!r}"
                )
        if add_progbar and not any(isinstance(c, ProgbarLogger) for c in self.callbacks):
            self.callbacks.append(ProgbarLogger())
        if add_history and not any(isinstance(c, History) for c in self.callbacks):
            self.callbacks.append(History())
        self.set_params(params)
        if model is not None:
            self.set_model(model)
        for callback in self.callbacks:
            # Callbacks that act on the others (BackupAndRestore saves their state) see them.
            attach = getattr(callback, "_attach", None)
            if attach is not None:
                attach(self)
        self._refresh_batch_hooks()

    def _refresh_batch_hooks(self) -> None:
        # Per-batch hooks cost a Python call per step; only dispatch to callbacks using them.
        self._batch_users = {
            key: [c for c in self.callbacks if _overrides(c, names)]
            for key, names in _BATCH_HOOKS.items()
        }

    def append(self, callback) -> None:
        self.callbacks.append(callback)
        self._refresh_batch_hooks()

    def needs_batch(self, key: str) -> bool:
        return bool(self._batch_users[key])

    def set_params(self, params):
        super().set_params(params)
        for callback in self.callbacks:
            callback.set_params(params)

    def set_model(self, model):
        super().set_model(model)
        for callback in self.callbacks:
            callback.set_model(model)

    def _call(self, hook, *args):
        for callback in self.callbacks:
            getattr(callback, hook)(*args)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs)

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", logs)

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", logs)

    def on_train_batch_begin(self, batch, logs=None):
        for callback in self._batch_users["train_begin"]:
            callback.on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        for callback in self._batch_users["train_end"]:
            callback.on_train_batch_end(batch, logs)

    def on_test_batch_begin(self, batch, logs=None):
        for callback in self._batch_users["test_begin"]:
            callback.on_test_batch_begin(batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        for callback in self._batch_users["test_end"]:
            callback.on_test_batch_end(batch, logs)

    def on_predict_batch_begin(self, batch, logs=None):
        for callback in self._batch_users["predict_begin"]:
            callback.on_predict_batch_begin(batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        for callback in self._batch_users["predict_end"]:
            callback.on_predict_batch_end(batch, logs)
