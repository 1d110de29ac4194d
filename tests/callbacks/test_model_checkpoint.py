"""ModelCheckpoint: file names, save decisions (Keras 3 parity), batch frequency, real files."""

from __future__ import annotations

import os

import numpy as np
import pytest

import ktorch
from ktorch.callbacks.callback_list import CallbackList
from ktorch.trainers import distributed
from tests.keras_ref import keras_module


class _RecordingModel:
    """Records `save`/`save_weights` calls; what a checkpoint callback needs of a model."""

    def __init__(self):
        self.stop_training = False
        self.metrics = []
        self.saved = []

    def save(self, filepath, overwrite=True):
        self.saved.append(("model", filepath, overwrite))

    def save_weights(self, filepath, overwrite=True):
        self.saved.append(("weights", filepath, overwrite))


def _run_epochs(callback, values, monitor="val_loss"):
    model = _RecordingModel()
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        callback.on_epoch_begin(epoch)
        callback.on_epoch_end(epoch, {"loss": 1.0, monitor: value})
    callback.on_train_end()
    return model.saved, None if callback.best is None else float(callback.best)


def _data(n=64):
    rng = np.random.default_rng(0)
    return rng.random((n, 3), dtype=np.float32), rng.random((n, 1), dtype=np.float32)


def _model():
    model = ktorch.Sequential([ktorch.layers.Dense(4, activation="relu"), ktorch.layers.Dense(1)])
    model.compile(ktorch.optimizers.SGD(learning_rate=0.1), loss="mse")
    return model


_VALUES = [0.5, 0.6, 0.4, 0.4, 0.35, 0.7, 0.1]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"save_best_only": True},
        {"save_best_only": True, "mode": "max"},
        {"save_best_only": True, "initial_value_threshold": 0.38},
        {"save_best_only": True, "save_weights_only": True},
        {"save_best_only": True, "monitor": "val_acc", "mode": "max"},
    ],
)
def test_save_decisions_match_keras(tmp_path, kwargs):
    keras = keras_module()
    suffix = ".weights.h5" if kwargs.get("save_weights_only") else ".keras"
    monitor = kwargs.get("monitor", "val_loss")
    pattern = str(tmp_path / ("m-{epoch:02d}-{" + monitor + ":.2f}" + suffix))
    ours = _run_epochs(ktorch.callbacks.ModelCheckpoint(pattern, **kwargs), _VALUES, monitor)
    reference = _run_epochs(keras.callbacks.ModelCheckpoint(pattern, **kwargs), _VALUES, monitor)
    assert ours == reference
    assert ours[0]


def test_batch_frequency_matches_keras(tmp_path):
    keras = keras_module()
    pattern = str(tmp_path / "m-{epoch}-{batch}.weights.h5")
    results = []
    for module in (ktorch, keras):
        callback = module.callbacks.ModelCheckpoint(
            pattern, save_weights_only=True, save_freq=3, monitor="loss"
        )
        model = _RecordingModel()
        callback.set_model(model)
        callback.on_train_begin()
        for epoch, steps in enumerate([4, 5, 2]):
            callback.on_epoch_begin(epoch)
            for batch in range(steps):
                callback.on_train_batch_begin(batch)
                callback.on_train_batch_end(batch, {"loss": 0.5})
            callback.on_epoch_end(epoch, {"loss": 0.5})
        results.append(model.saved)
    assert results[0] == results[1]
    assert [os.path.basename(p) for _, p, _ in results[0]] == [
        "m-1-3.weights.h5",
        "m-2-2.weights.h5",
        "m-2-5.weights.h5",
    ]


def test_file_names_from_fit_logs(tmp_path, monkeypatch):
    model = _model()
    saved = []
    monkeypatch.setattr(model, "save", lambda path, overwrite: saved.append(path))
    pattern = str(tmp_path / "nested" / "dir" / "model.{epoch:02d}-{val_loss:.2f}.keras")
    checkpoint = ktorch.callbacks.ModelCheckpoint(pattern)
    x, y = _data()
    history = model.fit(x, y, validation_split=0.25, epochs=3, verbose=0, callbacks=[checkpoint])
    expected = [
        str(tmp_path / "nested" / "dir" / f"model.{epoch + 1:02d}-{loss:.2f}.keras")
        for epoch, loss in enumerate(history.history["val_loss"])
    ]
    assert saved == expected
    assert (tmp_path / "nested" / "dir").is_dir()


def test_integer_save_freq_in_fit(tmp_path, monkeypatch):
    model = _model()
    saved = []
    monkeypatch.setattr(model, "save_weights", lambda path, overwrite: saved.append(path))
    checkpoint = ktorch.callbacks.ModelCheckpoint(
        str(tmp_path / "w-{epoch}-{batch}.weights.h5"), save_weights_only=True, save_freq=3
    )
    x, y = _data()
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[checkpoint])
    assert [os.path.basename(p) for p in saved] == ["w-1-3.weights.h5", "w-2-2.weights.h5"]


def test_batch_hooks_only_with_integer_save_freq(tmp_path):
    by_epoch = ktorch.callbacks.ModelCheckpoint(str(tmp_path / "m.keras"))
    by_batch = ktorch.callbacks.ModelCheckpoint(str(tmp_path / "m.keras"), save_freq=2)
    assert not CallbackList([by_epoch]).needs_batch("train_end")
    assert CallbackList([by_batch]).needs_batch("train_end")


@pytest.mark.parametrize(
    ("filepath", "weights_only"),
    [
        ("m.txt", False),
        ("m.keras", True),
        ("m.pt", True),
    ],
)
def test_extension_errors(filepath, weights_only):
    with pytest.raises(ValueError, match="filepath"):
        ktorch.callbacks.ModelCheckpoint(filepath, save_weights_only=weights_only)


@pytest.mark.parametrize(
    ("filepath", "weights_only"),
    [
        ("m.keras", False),
        ("m.h5", False),
        ("m.weights.h5", True),
        ("m.h5", True),
        ("m.safetensors", True),
    ],
)
def test_accepted_extensions(filepath, weights_only):
    callback = ktorch.callbacks.ModelCheckpoint(filepath, save_weights_only=weights_only)
    assert callback.filepath == filepath


@pytest.mark.parametrize("save_freq", ["batch", 0, -2, 1.5, True])
def test_invalid_save_freq(save_freq):
    with pytest.raises(ValueError, match="save_freq"):
        ktorch.callbacks.ModelCheckpoint("m.keras", save_freq=save_freq)


def test_missing_placeholder_key_raises(tmp_path):
    callback = ktorch.callbacks.ModelCheckpoint(str(tmp_path / "{val_acc:.2f}.keras"))
    with pytest.raises(KeyError, match="Failed to format this callback filepath"):
        _run_epochs(callback, [0.5])


def test_existing_directory_filepath_raises(tmp_path):
    (tmp_path / "m.keras").mkdir()
    callback = ktorch.callbacks.ModelCheckpoint(str(tmp_path / "m.keras"))
    with pytest.raises(OSError, match="non-directory filepath"):
        _run_epochs(callback, [0.5])


def test_missing_monitor_warns_and_saves(tmp_path):
    callback = ktorch.callbacks.ModelCheckpoint(str(tmp_path / "m.keras"), save_best_only=True)
    with pytest.warns(UserWarning, match="Can save best model only with val_loss available"):
        saved, _ = _run_epochs(callback, [0.5], monitor="loss_other")
    assert len(saved) == 1


def test_only_the_main_process_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(distributed, "is_main_process", lambda: False)
    callback = ktorch.callbacks.ModelCheckpoint(str(tmp_path / "m.keras"), save_best_only=True)
    saved, best = _run_epochs(callback, [0.5, 0.4])
    assert saved == []
    assert best == 0.4  # the decision is still taken, so every process agrees on `best`


def test_verbose_messages(tmp_path, capsys):
    path = str(tmp_path / "m.keras")
    callback = ktorch.callbacks.ModelCheckpoint(path, save_best_only=True, verbose=1)
    _run_epochs(callback, [0.5, 0.6])
    out = capsys.readouterr().out
    assert f"Epoch 1: val_loss improved from None to 0.50000, saving model to {path}" in out
    assert "Epoch 2: val_loss did not improve from 0.50000" in out


def test_state_round_trip(tmp_path):
    path = str(tmp_path / "m.keras")
    first = ktorch.callbacks.ModelCheckpoint(path, save_best_only=True)
    _run_epochs(first, [0.5, 0.3])
    state = first.get_state()
    assert state["best"] == 0.3
    resumed = ktorch.callbacks.ModelCheckpoint(path, save_best_only=True)
    resumed.set_state(state)
    saved, best = _run_epochs(resumed, [0.4, 0.2])
    assert [p for _, p, _ in saved] == [path] and best == 0.2


def _assert_same_weights(a, b):
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("suffix", [".weights.h5", ".h5", ".safetensors"])
def test_real_weights_files(tmp_path, suffix):
    model = _model()
    path = tmp_path / "ckpt" / f"last{suffix}"
    checkpoint = ktorch.callbacks.ModelCheckpoint(str(path), save_weights_only=True)
    x, y = _data()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[checkpoint])
    restored = _model()
    restored.build((None, 3))
    restored.load_weights(str(path))
    _assert_same_weights(restored.get_weights(), model.get_weights())


def test_real_keras_file(tmp_path):
    model = ktorch.Sequential([ktorch.layers.Dense(4, activation="relu"), ktorch.layers.Dense(1)])
    model.compile(ktorch.optimizers.Adam(learning_rate=0.01), loss="mse")
    path = tmp_path / "model.keras"
    x, y = _data()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[ktorch.callbacks.ModelCheckpoint(str(path))])
    restored = ktorch.saving.load_model(str(path))
    _assert_same_weights(restored.get_weights(), model.get_weights())
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0))
    assert restored.optimizer.iterations == model.optimizer.iterations
