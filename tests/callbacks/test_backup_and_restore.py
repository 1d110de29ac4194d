"""BackupAndRestore: exact resumption after an exception or a SIGKILL at any point."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import ktorch as keras

JOB = os.path.join(os.path.dirname(__file__), "resume_job.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((80, 6)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    return x, y


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(12, activation="relu"),
            keras.layers.Dropout(0.25),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class Boom(Exception):
    pass


class RaiseAt(keras.callbacks.Callback):
    def __init__(self, at):
        super().__init__()
        self.at, self.seen = at, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.at:
            raise Boom


class Counter(keras.callbacks.Callback):
    """A callback with state that a resumed run must continue from."""

    def __init__(self):
        super().__init__()
        self.epochs_seen = 0

    def on_train_begin(self, logs=None):
        self.epochs_seen = 0

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_seen += 1

    def get_state(self):
        return {"epochs_seen": self.epochs_seen}

    def set_state(self, state):
        self.epochs_seen = state["epochs_seen"]


def _fit(model, callbacks, epochs=3):
    x, y = _data()
    return model.fit(
        x, y, batch_size=16, epochs=epochs, validation_split=0.25, verbose=0, callbacks=callbacks
    )


@pytest.mark.parametrize("save_freq, fail_at", [("epoch", 5), ("epoch", 8), (2, 5), (2, 7)])
def test_resume_after_exception_is_exact(tmp_path, save_freq, fail_at):
    reference = _model()
    ref_counter = Counter()
    ref_history = _fit(reference, [ref_counter])

    model = _model()
    backup = keras.callbacks.BackupAndRestore(tmp_path, save_freq=save_freq)
    with pytest.raises(Boom):
        _fit(model, [backup, Counter(), RaiseAt(fail_at)])
    assert os.path.exists(tmp_path / "backup.safetensors")
    # A new process would build a new model: start from different weights to prove the restore.
    model = _model()
    counter = Counter()
    history = _fit(model, [backup, counter])
    for a, b in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert history.history == ref_history.history
    assert history.epoch == ref_history.epoch
    assert counter.epochs_seen == ref_counter.epochs_seen == 3
    assert model.optimizer.iterations == reference.optimizer.iterations
    # Deleted once training completed.
    assert not os.path.exists(tmp_path / "backup.safetensors")


def test_keep_backup_and_resume_after_completion(tmp_path):
    model = _model()
    backup = keras.callbacks.BackupAndRestore(tmp_path, delete_checkpoint=False)
    _fit(model, [backup], epochs=2)
    assert os.path.exists(tmp_path / "backup.safetensors")
    weights = model.get_weights()
    # Training is complete up to epoch 2: a rerun trains nothing, a longer run continues.
    model2 = _model()
    history = _fit(model2, [backup], epochs=2)
    for a, b in zip(model2.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert history.epoch == [0, 1]
    longer = _fit(_model(), [backup], epochs=3)
    assert longer.epoch == [0, 1, 2]


def test_experimental_alias_and_argument_errors(tmp_path):
    assert keras.callbacks.experimental.BackupAndRestore is keras.callbacks.BackupAndRestore
    with pytest.raises(ValueError, match="Empty `backup_dir`"):
        keras.callbacks.BackupAndRestore("")
    with pytest.raises(ValueError, match="save_freq"):
        keras.callbacks.BackupAndRestore(tmp_path, save_freq=0)
    with pytest.raises(ValueError, match="save_freq"):
        keras.callbacks.BackupAndRestore(tmp_path, save_freq="batch")


def test_faq_example_as_written(tmp_path, monkeypatch, capsys):
    """The FAQ's BackupAndRestore example, with an unbuilt model, verbatim but for the path."""
    monkeypatch.chdir(tmp_path)
    import numpy as np  # noqa: F401 (as in the FAQ)

    class InterruptingCallback(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, log=None):
            if epoch == 15:
                raise RuntimeError("Interruption")

    model = keras.Sequential([keras.layers.Dense(10)])
    optimizer = keras.optimizers.SGD()
    model.compile(optimizer, loss="mse")

    x = np.random.random((24, 10))
    y = np.random.random((24,))

    backup_callback = keras.callbacks.experimental.BackupAndRestore(backup_dir="backup")
    try:
        model.fit(
            x, y, epochs=20, steps_per_epoch=5, callbacks=[backup_callback, InterruptingCallback()]
        )
    except RuntimeError:
        print("***Handling interruption***")
        # This continues at the epoch where it left off.
        history = model.fit(x, y, epochs=20, steps_per_epoch=5, callbacks=[backup_callback])
    assert "***Handling interruption***" in capsys.readouterr().out
    # The second fit trained epochs 15 to 19 only; the history covers the whole run.
    assert backup_callback._first_epoch == 15
    assert history.epoch == list(range(20))
    assert model.optimizer.iterations == 100


def test_unbuilt_model_resumes_exactly(tmp_path):
    x, y = _data()

    def unbuilt():
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.layers.Dense(12, activation="relu"),
                keras.layers.Dropout(0.3),
                keras.layers.Dense(2, activation="softmax"),
            ]
        )
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return model

    reference = unbuilt()
    reference.fit(x, y, batch_size=16, epochs=3, verbose=0)
    backup = keras.callbacks.BackupAndRestore(tmp_path, save_freq=3)
    with pytest.raises(Boom):
        unbuilt().fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[backup, RaiseAt(8)])
    model = unbuilt()
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[backup])
    for a, b in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_backup_of_another_model_is_refused(tmp_path):
    backup = keras.callbacks.BackupAndRestore(tmp_path, delete_checkpoint=False)
    _fit(_model(), [backup], epochs=1)
    other = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2, activation="softmax")])
    other.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    before = other.get_weights()
    with pytest.raises(ValueError, match="does not match model"):
        _fit(other, [backup])
    for a, b in zip(other.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_corrupt_backup_raises_clearly_or_falls_back(tmp_path):
    backup = keras.callbacks.BackupAndRestore(tmp_path, save_freq=2, double_checkpoint=True)
    with pytest.raises(Boom):
        _fit(_model(), [backup, RaiseAt(7)])
    latest = tmp_path / "backup.safetensors"
    assert (tmp_path / "backup.previous.safetensors").exists()
    latest.write_bytes(latest.read_bytes()[:100])
    with pytest.warns(UserWarning, match="falling back"):
        _fit(_model(), [backup])
    # Without a previous backup to fall back to, the error names the file.
    single = keras.callbacks.BackupAndRestore(tmp_path / "single", save_freq=2)
    with pytest.raises(Boom):
        _fit(_model(), [single, RaiseAt(3)])
    path = tmp_path / "single" / "backup.safetensors"
    path.write_bytes(b"not a backup")
    with pytest.raises(ValueError, match="backup.safetensors"):
        _fit(_model(), [single])


# ----------------------------------------------------------- SIGKILL and restart


def _run_job(backup_dir, out, save_freq, kill):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, JOB, str(backup_dir), str(out), str(save_freq), kill],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


_BASELINES: dict = {}


def _baseline(tmp_path_factory, save_freq):
    if save_freq not in _BASELINES:
        root = tmp_path_factory.mktemp("baseline")
        result = _run_job(root / "backup", root / "out.npz", save_freq, "none")
        assert result.returncode == 0, result.stderr
        _BASELINES[save_freq] = dict(np.load(root / "out.npz"))
    return _BASELINES[save_freq]


@pytest.mark.slow
@pytest.mark.parametrize(
    "save_freq, kill",
    [
        (4, "step:3"),  # before the first backup
        (4, "step:6"),  # at the end of an epoch, before validation
        (4, "step:9"),  # in the middle of an epoch
        (4, "step:23"),  # in the last epoch
        (4, "write:3"),  # while writing a backup
        ("epoch", "step:14"),
        ("epoch", "write:2"),
    ],
)
def test_sigkill_and_restart_ends_with_identical_weights(
    tmp_path, tmp_path_factory, save_freq, kill
):
    expected = _baseline(tmp_path_factory, save_freq)
    backup, out = tmp_path / "backup", tmp_path / "out.npz"
    killed = _run_job(backup, out, save_freq, kill)
    assert killed.returncode == -9, killed.stderr
    assert not out.exists()
    resumed = _run_job(backup, out, save_freq, "none")
    assert resumed.returncode == 0, resumed.stderr
    result = dict(np.load(out))
    weights = sorted(k for k in expected if k.startswith("arr_"))
    assert weights
    for key in weights:
        np.testing.assert_array_equal(result[key], expected[key])
    assert json.loads(str(result["history"])) == json.loads(str(expected["history"]))
    assert not bool(result["backup_left"])
    # The temporary file of the interrupted write was cleaned up on restart.
    assert sorted(os.listdir(backup)) == []
