"""TerminateOnNaN: training stops after the first batch whose loss is not finite."""

from __future__ import annotations

import numpy as np
import pytest

import ktorch
from ktorch.callbacks.callback_list import CallbackList
from tests.keras_ref import keras_module


def _nan_at_batch(batch, n=64, batch_size=16):
    rng = np.random.default_rng(0)
    x, y = rng.random((n, 3), dtype=np.float32), rng.random((n, 1), dtype=np.float32)
    y[batch * batch_size] = np.nan
    return x, y


def _model():
    model = ktorch.Sequential([ktorch.layers.Dense(1)])
    model.compile("sgd", loss="mse")
    return model


def test_stops_after_the_nan_batch(capsys):
    x, y = _nan_at_batch(2)
    model = _model()
    history = model.fit(
        x,
        y,
        batch_size=16,
        epochs=5,
        shuffle=False,
        verbose=0,
        callbacks=[ktorch.callbacks.TerminateOnNaN()],
    )
    assert model.optimizer.iterations == 3
    assert len(history.history["loss"]) == 1
    assert np.isnan(history.history["loss"][0])
    assert "Batch 2: Invalid loss, terminating training" in capsys.readouterr().out


def test_raise_error():
    x, y = _nan_at_batch(1)
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 1"):
        _model().fit(
            x,
            y,
            batch_size=16,
            shuffle=False,
            verbose=0,
            callbacks=[ktorch.callbacks.TerminateOnNaN(raise_error=True)],
        )


@pytest.mark.parametrize("loss", [0.5, float("nan"), float("inf"), -float("inf")])
def test_same_decision_as_keras(loss):
    keras = keras_module()

    class Model:
        stop_training = False

    decisions = []
    for module in (ktorch, keras):
        model = Model()
        callback = module.callbacks.TerminateOnNaN()
        callback.set_model(model)
        callback.on_train_batch_end(0, {"loss": loss})
        decisions.append(model.stop_training)
    assert decisions[0] == decisions[1]


def test_needs_batch_logs():
    assert CallbackList([ktorch.callbacks.TerminateOnNaN()]).needs_batch("train_end")
