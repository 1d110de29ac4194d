"""ReduceLROnPlateau: Keras 3 parity on value sequences, fit integration, state."""

from __future__ import annotations

import numpy as np
import pytest

import ktorch
from tests.keras_ref import keras_module


class _Model:
    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.metrics = []
        self.stop_training = False


def _run(module, values, monitor="val_loss", **kwargs):
    callback = module.callbacks.ReduceLROnPlateau(monitor=monitor, **kwargs)
    model = _Model(module.optimizers.SGD(learning_rate=1.0))
    callback.set_model(model)
    callback.on_train_begin()
    rates, logged = [], []
    for epoch, value in enumerate(values):
        logs = {monitor: value}
        callback.on_epoch_begin(epoch)
        callback.on_epoch_end(epoch, logs)
        logged.append(logs["learning_rate"])
        rates.append(float(np.asarray(model.optimizer.learning_rate)))
    return rates, logged, callback.wait, callback.cooldown_counter, float(callback.best)


_PLATEAU = [1.0, 0.9, 0.9, 0.9, 0.95, 0.89, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
_RISING = [0.1, 0.2, 0.2, 0.19, 0.2, 0.3, 0.3, 0.3, 0.3]


@pytest.mark.parametrize(
    ("values", "kwargs"),
    [
        (_PLATEAU, {"patience": 2}),
        (_PLATEAU, {"patience": 1, "factor": 0.5}),
        (_PLATEAU, {"patience": 1, "factor": 0.5, "cooldown": 2}),
        (_PLATEAU, {"patience": 2, "min_delta": 0.05}),
        (_PLATEAU, {"patience": 1, "factor": 0.1, "min_lr": 0.001}),
        (_PLATEAU, {"patience": 1, "factor": 0.5, "min_lr": 0.2, "cooldown": 1}),
        (_RISING, {"patience": 1, "mode": "max", "factor": 0.5}),
        (_RISING, {"patience": 1, "monitor": "val_accuracy", "mode": "max"}),
    ],
)
def test_matches_keras(values, kwargs):
    keras = keras_module()
    monitor = kwargs.pop("monitor", "val_loss")
    ours = _run(ktorch, values, monitor, **kwargs)
    reference = _run(keras, values, monitor, **kwargs)
    np.testing.assert_allclose(ours[0], reference[0], rtol=1e-6)
    np.testing.assert_allclose(ours[1], reference[1], rtol=1e-6)
    assert ours[2:4] == reference[2:4]
    assert ours[4] == pytest.approx(reference[4])
    assert min(ours[0]) < 1.0


def test_reduces_the_rate_used_by_fit():
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 3), dtype=np.float32), rng.random((32, 1), dtype=np.float32)
    model = ktorch.Sequential([ktorch.layers.Dense(1)])
    model.compile(ktorch.optimizers.SGD(learning_rate=0.1), loss="mse")
    flat = ktorch.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: logs.update(val_loss=1.0)
    )
    reduce_lr = ktorch.callbacks.ReduceLROnPlateau(patience=1, factor=0.5)
    history = model.fit(x, y, epochs=4, verbose=0, callbacks=[flat, reduce_lr])
    # Logged before the decision, as Keras does: the rate the epoch ran with.
    np.testing.assert_allclose(history.history["learning_rate"], [0.1, 0.1, 0.05, 0.025])
    assert model.optimizer.learning_rate == pytest.approx(0.0125)
    assert model.optimizer.torch_optimizer.param_groups[0]["lr"] == pytest.approx(0.025)


def test_missing_metric_warns():
    callback = ktorch.callbacks.ReduceLROnPlateau()
    callback.set_model(_Model(ktorch.optimizers.SGD()))
    callback.on_train_begin()
    with pytest.warns(UserWarning, match="`val_loss` which is not available"):
        callback.on_epoch_end(0, {"loss": 1.0})


def test_arguments():
    with pytest.raises(ValueError, match="factor >= 1.0"):
        ktorch.callbacks.ReduceLROnPlateau(factor=1.0)
    with pytest.warns(DeprecationWarning, match="epsilon"):
        callback = ktorch.callbacks.ReduceLROnPlateau(epsilon=0.5)
    assert callback.min_delta == 0.5
    with pytest.raises(TypeError, match="Unrecognized keyword arguments"):
        ktorch.callbacks.ReduceLROnPlateau(pateince=3)


def test_verbose_message(capsys):
    _run(ktorch, [1.0, 1.0], patience=1, factor=0.5, verbose=1)
    assert "Epoch 2: ReduceLROnPlateau reducing learning rate to 0.5." in capsys.readouterr().out


def test_state_round_trip_resumes_like_an_uninterrupted_run():
    kwargs = {"patience": 2, "factor": 0.5, "cooldown": 1}
    expected = _run(ktorch, _PLATEAU, **kwargs)

    optimizer = ktorch.optimizers.SGD(learning_rate=1.0)
    first = ktorch.callbacks.ReduceLROnPlateau(**kwargs)
    first.set_model(_Model(optimizer))
    first.on_train_begin()
    for epoch in range(5):
        first.on_epoch_end(epoch, {"val_loss": _PLATEAU[epoch]})
    state = first.get_state()
    assert set(state) == {"best", "wait", "cooldown_counter"}

    resumed = ktorch.callbacks.ReduceLROnPlateau(**kwargs)
    resumed.set_state(state)
    model = _Model(optimizer)
    resumed.set_model(model)
    resumed.on_train_begin()
    for epoch in range(5, len(_PLATEAU)):
        resumed.on_epoch_begin(epoch)
        resumed.on_epoch_end(epoch, {"val_loss": _PLATEAU[epoch]})
    assert optimizer.learning_rate == pytest.approx(expected[0][-1])
    assert (resumed.wait, resumed.cooldown_counter) == expected[2:4]
