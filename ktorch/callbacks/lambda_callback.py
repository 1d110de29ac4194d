"""`LambdaCallback`: a callback made of plain functions."""

from __future__ import annotations

from ktorch.callbacks.callback import Callback

_HOOKS = tuple(
    name for name in vars(Callback) if name.startswith("on_") and callable(vars(Callback)[name])
)


class LambdaCallback(Callback):
    """Builds a callback from functions, one per hook.

    The functions take the hook's arguments positionally: `on_epoch_begin(epoch, logs)`,
    `on_epoch_end(epoch, logs)`, `on_train_begin(logs)`, `on_train_end(logs)`,
    `on_train_batch_begin(batch, logs)`, `on_train_batch_end(batch, logs)`. Every other hook
    of `Callback` (`on_test_batch_end`, `on_predict_begin`, the Keras 2 `on_batch_end`, ...)
    can be given by keyword too. Per-batch hooks run only when given, so a `LambdaCallback`
    without them adds no per-step cost.

    Args:
        on_epoch_begin: called at the beginning of every epoch.
        on_epoch_end: called at the end of every epoch.
        on_train_begin: called at the beginning of training.
        on_train_end: called at the end of training.
        on_train_batch_begin: called at the beginning of every training batch.
        on_train_batch_end: called at the end of every training batch.
        **kwargs: any other hook of `Callback`, by name.

    Example:
        ```python
        losses = []
        record = ktorch.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: losses.append(logs["loss"])
        )
        model.fit(x, y, epochs=3, callbacks=[record])
        ```
    """

    def __init__(
        self,
        on_epoch_begin=None,
        on_epoch_end=None,
        on_train_begin=None,
        on_train_end=None,
        on_train_batch_begin=None,
        on_train_batch_end=None,
        **kwargs,
    ):
        super().__init__()
        unknown = sorted(set(kwargs) - set(_HOOKS))
        if unknown:
            raise ValueError(
                f"Unrecognized hook names for LambdaCallback: {unknown}. Expected names among "
                f"{sorted(_HOOKS)}."
            )
        hooks = {
            "on_epoch_begin": on_epoch_begin,
            "on_epoch_end": on_epoch_end,
            "on_train_begin": on_train_begin,
            "on_train_end": on_train_end,
            "on_train_batch_begin": on_train_batch_begin,
            "on_train_batch_end": on_train_batch_end,
            **kwargs,
        }
        for name, function in hooks.items():
            if function is None:
                continue
            if not callable(function):
                raise ValueError(
                    f"Invalid value for argument {name}. Expected a callable. Received: "
                    f"{name}={function!r}"
                )
            # Set on the instance: `CallbackList` dispatches batch hooks to it only if given.
            setattr(self, name, function)
