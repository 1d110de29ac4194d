"""EarlyStopping: Keras 3 parity on value sequences, mode inference, fit integration, state."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import ktorch
from tests.keras_ref import keras_module


class _DummyModel:
    """Just what EarlyStopping touches: stop flag, weights (the epoch index), metrics."""

    def __init__(self):
        self.stop_training = False
        self.metrics = []
        self.epoch = 0
        self.restored = None

    def get_weights(self):
        return [np.array([self.epoch], dtype="float32")]

    def set_weights(self, weights):
        self.restored = int(weights[0][0])


def _run(callback, values, monitor="val_loss"):
    """Feeds per-epoch values as `fit` would; returns what the callback decided."""
    model = _DummyModel()
    callback.set_model(model)
    callback.on_train_begin()
    epochs = 0
    for epoch, value in enumerate(values):
        model.epoch = epoch
        callback.on_epoch_begin(epoch)
        callback.on_epoch_end(epoch, {monitor: value})
        epochs += 1
        if model.stop_training:
            break
    callback.on_train_end()
    best = None if callback.best is None else float(callback.best)
    return epochs, callback.stopped_epoch, best, callback.best_epoch, callback.wait, model.restored


_DESCENDING_THEN_FLAT = [1.0, 0.8, 0.7, 0.7, 0.71, 0.69, 0.7, 0.72, 0.73, 0.74]
_NOISY = [0.5, 0.6, 0.4, 0.45, 0.41, 0.39, 0.5, 0.52, 0.38, 0.6, 0.61, 0.62]
_RISING = [0.1, 0.2, 0.25, 0.24, 0.3, 0.29, 0.28, 0.27, 0.26]

_CASES = [
    (_DESCENDING_THEN_FLAT, {}),
    (_DESCENDING_THEN_FLAT, {"patience": 2}),
    (_DESCENDING_THEN_FLAT, {"patience": 2, "min_delta": 0.05}),
    (_DESCENDING_THEN_FLAT, {"patience": 3, "min_delta": -0.05}),
    (_NOISY, {"patience": 2}),
    (_NOISY, {"patience": 3, "restore_best_weights": True}),
    (_NOISY, {"patience": 20, "restore_best_weights": True}),
    (_NOISY, {"patience": 2, "baseline": 0.3}),
    (_NOISY, {"patience": 4, "baseline": 0.42, "restore_best_weights": True}),
    (_NOISY, {"patience": 1, "start_from_epoch": 3}),
    (_NOISY, {"patience": 1, "start_from_epoch": 3, "restore_best_weights": True}),
    (_RISING, {"patience": 2, "mode": "max"}),
    (_RISING, {"patience": 2, "mode": "max", "min_delta": 0.02, "restore_best_weights": True}),
    (_RISING, {"patience": 1, "mode": "max", "baseline": 0.27}),
    (_RISING, {"patience": 1, "mode": "min"}),
]


@pytest.mark.parametrize(("values", "kwargs"), _CASES)
def test_matches_keras_on_value_sequences(values, kwargs):
    keras = keras_module()
    ours = _run(ktorch.callbacks.EarlyStopping(**kwargs), values)
    reference = _run(keras.callbacks.EarlyStopping(**kwargs), values)
    assert ours == reference


@pytest.mark.parametrize("monitor", ["loss", "val_loss"])
def test_auto_mode_minimizes_losses_like_keras(monitor):
    keras = keras_module()
    values = [0.5, 0.4, 0.45, 0.46, 0.3]
    ours = _run(ktorch.callbacks.EarlyStopping(monitor=monitor, patience=1), values, monitor)
    reference = _run(keras.callbacks.EarlyStopping(monitor=monitor, patience=1), values, monitor)
    assert ours == reference
    assert ours[0] == 3  # stopped at the first epoch without a lower value


def _fit_data(n=64):
    rng = np.random.default_rng(0)
    x = rng.random((n, 4), dtype=np.float32)
    y = (x.sum(axis=1, keepdims=True) > 2).astype("float32")
    return x, y


def _classifier(metric):
    model = ktorch.Sequential([ktorch.layers.Dense(4, activation="relu"), ktorch.layers.Dense(1)])
    model.compile("sgd", "binary_crossentropy", metrics=[metric])
    return model


def _keras_classifier(keras, metric):
    model = keras.Sequential([keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
    model.compile("sgd", "binary_crossentropy", metrics=[metric])
    return model


@pytest.mark.parametrize(
    ("metric", "monitor", "improves_when_larger"),
    [
        ("accuracy", "val_accuracy", True),
        ("acc", "acc", True),
        ("mae", "val_mae", False),
        ("auc", "val_auc", True),
    ],
)
def test_auto_mode_follows_metric_direction_like_keras(metric, monitor, improves_when_larger):
    keras = keras_module()
    x, y = _fit_data()
    ours = ktorch.callbacks.EarlyStopping(monitor=monitor)
    model = _classifier(metric)
    model.fit(x, y, validation_split=0.25, epochs=1, verbose=0, callbacks=[ours])
    reference = keras.callbacks.EarlyStopping(monitor=monitor)
    keras_model = _keras_classifier(keras, metric)
    keras_model.fit(x, y, validation_split=0.25, epochs=1, verbose=0, callbacks=[reference])
    for callback in (ours, reference):
        assert bool(callback._is_improvement(0.9, 0.5)) is improves_when_larger
        assert bool(callback._is_improvement(0.1, 0.5)) is not improves_when_larger


def test_auto_mode_unknown_metric_raises_like_keras():
    keras = keras_module()
    with pytest.raises(ValueError, match="automatically determine"):
        _run(ktorch.callbacks.EarlyStopping(monitor="val_something"), [0.5])
    with pytest.raises(ValueError, match="automatically determine"):
        _run(keras.callbacks.EarlyStopping(monitor="val_something"), [0.5])


def test_unknown_mode_warns_and_falls_back_to_auto():
    with pytest.warns(UserWarning, match="mode 'sideways' is unknown"):
        callback = ktorch.callbacks.EarlyStopping(mode="sideways")
    assert callback.mode == "auto"


def test_missing_metric_warns_and_does_not_stop():
    callback = ktorch.callbacks.EarlyStopping(monitor="val_loss", patience=0)
    model = _DummyModel()
    callback.set_model(model)
    callback.on_train_begin()
    with pytest.warns(UserWarning, match="`val_loss` which is not available.*loss"):
        callback.on_epoch_end(0, {"loss": 0.5})
    assert not model.stop_training
    assert callback.best is None


def test_faq_example_stops_when_val_loss_stops_decreasing():
    # As the FAQ writes it, after `import ktorch as keras`; a zero learning rate keeps the
    # validation loss flat, so `patience=2` ends training after the third epoch.
    import ktorch as keras
    from ktorch.callbacks import EarlyStopping

    x, y = _fit_data()
    model = keras.Sequential([keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(learning_rate=0.0), loss="mse")

    early_stopping = EarlyStopping(monitor="val_loss", patience=2)
    history = model.fit(x, y, validation_split=0.2, callbacks=[early_stopping], verbose=0)
    assert len(history.history["val_loss"]) == 1

    history = model.fit(
        x, y, validation_split=0.2, epochs=20, callbacks=[early_stopping], verbose=0
    )
    assert len(history.history["val_loss"]) == 3
    assert early_stopping.stopped_epoch == 2
    assert early_stopping.best == history.history["val_loss"][0]


def test_fit_stops_at_the_epoch_keras_stops_for_the_same_losses():
    keras = keras_module()
    x, y = _fit_data()
    model = ktorch.Sequential([ktorch.layers.Dense(8, activation="relu"), ktorch.layers.Dense(1)])
    model.compile(ktorch.optimizers.SGD(learning_rate=0.5), loss="mse")
    ours = ktorch.callbacks.EarlyStopping(monitor="val_loss", patience=1, min_delta=1e-3)
    history = model.fit(x, y, validation_split=0.25, epochs=30, verbose=0, callbacks=[ours])
    losses = history.history["val_loss"]
    reference = keras.callbacks.EarlyStopping(monitor="val_loss", patience=1, min_delta=1e-3)
    epochs, stopped_epoch, best, best_epoch, wait, _ = _run(reference, losses)
    assert len(losses) == epochs
    assert ours.stopped_epoch == stopped_epoch
    assert ours.best == best
    assert ours.best_epoch == best_epoch
    assert ours.wait == wait


class _InjectValLoss(ktorch.callbacks.Callback):
    """Replaces `val_loss` by a chosen sequence and records the weights of every epoch."""

    def __init__(self, values):
        super().__init__()
        self.values = values
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.values[epoch]
        self.weights.append(self.model.get_weights())


@pytest.mark.parametrize(
    ("values", "patience", "best_epoch", "epochs"),
    [
        ([0.9, 0.5, 0.7, 0.8, 0.6, 0.9], 2, 1, 4),  # stopped early
        ([0.9, 0.5, 0.7, 0.8, 0.6, 0.9], 10, 1, 6),  # patience never exhausted
    ],
)
def test_restore_best_weights_in_fit(values, patience, best_epoch, epochs):
    x, y = _fit_data()
    model = ktorch.Sequential([ktorch.layers.Dense(4), ktorch.layers.Dense(1)])
    model.compile(ktorch.optimizers.SGD(learning_rate=0.1), loss="mse")
    inject = _InjectValLoss(values)
    early_stopping = ktorch.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)
    history = model.fit(
        x,
        y,
        validation_split=0.25,
        epochs=len(values),
        verbose=0,
        callbacks=[inject, early_stopping],
    )
    assert len(history.history["loss"]) == epochs
    assert early_stopping.best_epoch == best_epoch
    final = model.get_weights()
    for restored, expected in zip(final, inject.weights[best_epoch], strict=True):
        np.testing.assert_array_equal(restored, expected)
    assert not all(np.array_equal(a, b) for a, b in zip(final, inject.weights[-1], strict=True))


def test_verbose_messages(capsys):
    callback = ktorch.callbacks.EarlyStopping(patience=1, verbose=1, restore_best_weights=True)
    _run(callback, [0.5, 0.6, 0.7])
    out = capsys.readouterr().out
    assert "Epoch 2: early stopping" in out
    assert "Restoring model weights from the end of the best epoch: 1." in out


def test_state_round_trip_resumes_like_an_uninterrupted_run():
    values = _NOISY
    kwargs = {"patience": 3, "restore_best_weights": True}
    expected = _run(ktorch.callbacks.EarlyStopping(**kwargs), values)

    first = ktorch.callbacks.EarlyStopping(**kwargs)
    model = _DummyModel()
    first.set_model(model)
    first.on_train_begin()
    for epoch in range(4):
        model.epoch = epoch
        first.on_epoch_end(epoch, {"val_loss": values[epoch]})
    state = first.get_state()
    assert set(state) == {"wait", "stopped_epoch", "best", "best_epoch", "best_weights"}
    assert isinstance(state["wait"], int) and isinstance(state["best"], float)
    assert all(isinstance(w, np.ndarray) for w in state["best_weights"])

    resumed = ktorch.callbacks.EarlyStopping(**kwargs)
    resumed.set_state(state)
    model = _DummyModel()
    resumed.set_model(model)
    resumed.on_train_begin()  # a resumed `fit` starts again: the restored state is kept
    epochs = 4
    for epoch in range(4, len(values)):
        model.epoch = epoch
        resumed.on_epoch_begin(epoch)
        resumed.on_epoch_end(epoch, {"val_loss": values[epoch]})
        epochs += 1
        if model.stop_training:
            break
    resumed.on_train_end()
    got = (
        epochs,
        resumed.stopped_epoch,
        resumed.best,
        resumed.best_epoch,
        resumed.wait,
        model.restored,
    )
    assert got == expected

    # The next fit after that starts fresh again.
    resumed.on_train_begin()
    assert resumed.wait == 0 and resumed.best is None


def test_reused_across_fits_resets_state():
    callback = ktorch.callbacks.EarlyStopping(patience=1)
    first = _run(callback, [0.5, 0.6, 0.7])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = _run(callback, [0.5, 0.4, 0.3])
    assert first[0] == 2 and second[0] == 3
    assert second[1] == 0 and second[2] == 0.3
