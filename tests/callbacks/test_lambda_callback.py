"""LambdaCallback, instance-level hooks, and `model.stop_training` set from a callback."""

from __future__ import annotations

import numpy as np
import pytest

import ktorch
from ktorch.callbacks.callback_list import CallbackList


def _data(n=64):
    rng = np.random.default_rng(0)
    return rng.random((n, 3), dtype=np.float32), rng.random((n, 1), dtype=np.float32)


def _model():
    model = ktorch.Sequential([ktorch.layers.Dense(1)])
    model.compile("sgd", loss="mse")
    return model


def test_hooks_receive_their_arguments():
    calls = []
    callback = ktorch.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: calls.append(("epoch_begin", epoch)),
        on_epoch_end=lambda epoch, logs: calls.append(("epoch_end", epoch, sorted(logs))),
        on_train_begin=lambda logs: calls.append(("train_begin",)),
        on_train_end=lambda logs: calls.append(("train_end", sorted(logs))),
        on_train_batch_begin=lambda batch, logs: calls.append(("batch_begin", batch)),
        on_train_batch_end=lambda batch, logs: calls.append(("batch_end", batch, logs["loss"])),
        on_test_begin=lambda logs: calls.append(("test_begin",)),
    )
    x, y = _data()
    model = _model()
    model.fit(x, y, batch_size=32, validation_split=0.5, epochs=2, verbose=0, callbacks=[callback])
    names = [c[0] for c in calls]
    assert names == ["train_begin"] + [
        "epoch_begin",
        "batch_begin",
        "batch_end",
        "test_begin",
        "epoch_end",
    ] * 2 + ["train_end"]
    assert calls[-1] == ("train_end", ["loss", "val_loss"])
    assert isinstance(calls[3][2], float)


def test_keras2_batch_names_and_other_hooks():
    batches, predicted = [], []
    callback = ktorch.callbacks.LambdaCallback(
        on_batch_end=lambda batch, logs: batches.append(batch),
        on_predict_batch_end=lambda batch, logs: predicted.append(batch),
    )
    x, y = _data()
    model = _model()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[callback])
    model.predict(x, batch_size=32, verbose=0, callbacks=[callback])
    assert batches == [0, 1, 2, 3]
    assert predicted == [0, 1]


def test_batch_hooks_dispatched_only_when_given():
    epoch_only = ktorch.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: None)
    with_batch = ktorch.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: None)
    keras2 = ktorch.callbacks.LambdaCallback(on_batch_begin=lambda batch, logs: None)
    assert not CallbackList([epoch_only]).needs_batch("train_end")
    assert not CallbackList([epoch_only]).needs_batch("train_begin")
    assert CallbackList([with_batch]).needs_batch("train_end")
    assert CallbackList([keras2]).needs_batch("train_begin")


def test_hook_set_on_a_plain_callback_instance_is_called():
    seen = []
    callback = ktorch.callbacks.Callback()
    callback.on_train_batch_end = lambda batch, logs=None: seen.append(batch)
    x, y = _data()
    _model().fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[callback])
    assert seen == [0, 1]


def test_invalid_arguments():
    with pytest.raises(ValueError, match="Unrecognized hook names.*on_epoch_ends"):
        ktorch.callbacks.LambdaCallback(on_epoch_ends=print)
    with pytest.raises(ValueError, match="on_epoch_end"):
        ktorch.callbacks.LambdaCallback(on_epoch_end=3)


def test_stop_training_at_batch_end_finishes_the_epoch_at_that_batch():
    def stop(batch, logs):
        if batch == 1:
            model.stop_training = True

    model = _model()
    x, y = _data()
    history = model.fit(
        x,
        y,
        batch_size=16,
        epochs=5,
        verbose=0,
        callbacks=[ktorch.callbacks.LambdaCallback(on_train_batch_end=stop)],
    )
    assert model.optimizer.iterations == 2
    assert len(history.history["loss"]) == 1


def test_stop_training_at_epoch_end_stops_fit():
    model = _model()
    x, y = _data()

    def stop(epoch, logs):
        if epoch == 2:
            model.stop_training = True

    history = model.fit(
        x,
        y,
        batch_size=16,
        epochs=10,
        verbose=0,
        callbacks=[ktorch.callbacks.LambdaCallback(on_epoch_end=stop)],
    )
    assert len(history.history["loss"]) == 3
    assert model.optimizer.iterations == 12
    # The next fit starts again.
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert model.optimizer.iterations == 20
