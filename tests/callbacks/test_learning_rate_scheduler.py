"""LearningRateScheduler: the optimizer's rate follows the schedule, as in Keras 3."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ktorch
from tests.keras_ref import keras_module


def _data(n=32):
    rng = np.random.default_rng(0)
    return rng.random((n, 3), dtype=np.float32), rng.random((n, 1), dtype=np.float32)


def _two_arguments(epoch, lr):
    return lr if epoch < 2 else lr * 0.5


def _one_argument(epoch):
    return 0.1 / (epoch + 1)


@pytest.mark.parametrize("schedule", [_two_arguments, _one_argument])
def test_learning_rates_match_keras(schedule):
    keras = keras_module()
    x, y = _data()
    model = ktorch.Sequential([ktorch.layers.Dense(1)])
    model.compile(ktorch.optimizers.SGD(learning_rate=0.2), loss="mse")
    history = model.fit(
        x,
        y,
        epochs=4,
        verbose=0,
        callbacks=[ktorch.callbacks.LearningRateScheduler(schedule)],
    )
    keras_model = keras.Sequential([keras.layers.Dense(1)])
    keras_model.compile(keras.optimizers.SGD(learning_rate=0.2), loss="mse")
    reference = keras_model.fit(
        x,
        y,
        epochs=4,
        verbose=0,
        callbacks=[keras.callbacks.LearningRateScheduler(schedule)],
    )
    np.testing.assert_allclose(
        history.history["learning_rate"], reference.history["learning_rate"], rtol=1e-6
    )


def test_the_update_uses_the_scheduled_rate():
    x, y = _data()
    model = ktorch.Sequential([ktorch.Input((3,)), ktorch.layers.Dense(1)])
    model.compile(ktorch.optimizers.SGD(learning_rate=1.0), loss="mse")
    before = [w.copy() for w in model.get_weights()]
    seen = []
    schedule = ktorch.callbacks.LearningRateScheduler(lambda epoch, lr: 0.0)
    record = ktorch.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(logs["learning_rate"])
    )
    model.fit(x, y, epochs=2, verbose=0, callbacks=[schedule, record])
    assert seen == [0.0, 0.0]
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_with_a_torch_optimizer():
    x, y = _data()
    model = ktorch.Sequential([ktorch.Input((3,)), ktorch.layers.Dense(1)])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.compile(optimizer, loss="mse")
    history = model.fit(
        x,
        y,
        epochs=3,
        verbose=0,
        callbacks=[ktorch.callbacks.LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1))],
    )
    np.testing.assert_allclose(history.history["learning_rate"], [0.01, 0.02, 0.03])
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.03)


@pytest.mark.parametrize("value", [1, "0.1", None])
def test_schedule_must_return_a_float(value):
    x, y = _data()
    model = ktorch.Sequential([ktorch.layers.Dense(1)])
    model.compile("sgd", loss="mse")
    callback = ktorch.callbacks.LearningRateScheduler(lambda epoch: value)
    with pytest.raises(ValueError, match="should be a float"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])


def test_type_error_inside_a_two_argument_schedule_propagates():
    def schedule(epoch, lr):
        raise TypeError("bug in the schedule")

    x, y = _data()
    model = ktorch.Sequential([ktorch.layers.Dense(1)])
    model.compile("sgd", loss="mse")
    callback = ktorch.callbacks.LearningRateScheduler(schedule)
    with pytest.raises(TypeError, match="bug in the schedule"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])


def test_optimizer_with_a_schedule_object_refuses():
    x, y = _data()
    model = ktorch.Sequential([ktorch.layers.Dense(1)])
    decay = ktorch.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.9)
    model.compile(ktorch.optimizers.SGD(learning_rate=decay), loss="mse")
    callback = ktorch.callbacks.LearningRateScheduler(lambda epoch, lr: 0.1)
    with pytest.raises(TypeError, match="not settable"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])


def test_verbose_message(capsys):
    x, y = _data()
    model = ktorch.Sequential([ktorch.layers.Dense(1)])
    model.compile("sgd", loss="mse")
    callback = ktorch.callbacks.LearningRateScheduler(lambda epoch: 0.5, verbose=1)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    assert "Epoch 1: LearningRateScheduler setting learning rate to 0.5." in capsys.readouterr().out
