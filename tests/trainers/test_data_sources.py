"""Every data source of fit/evaluate/predict: h5py, HDF5Matrix, PyDataset, torch datasets,
generators; with and without validation; errors from the source."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading

import h5py
import numpy as np
import pytest
import torch

import ktorch as keras
from ktorch.utils import HDF5Matrix, PyDataset, Sequence

N, D = 96, 6


def _arrays(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, D)).astype("float32")
    y = (x[:, 0] - x[:, 1] > 0).astype("int64")
    return x, y


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((D,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _same_weights(a, b):
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


def _fit_reference(shuffle, **kwargs):
    x, y = _arrays()
    model = _model()
    keras.utils.set_random_seed(1)
    history = model.fit(x, y, batch_size=16, epochs=2, shuffle=shuffle, verbose=0, **kwargs)
    return model, history


@pytest.fixture()
def h5(tmp_path):
    x, y = _arrays()
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as f:
        f["x"], f["y"] = x, y
    file = h5py.File(path, "r")
    yield path, file
    file.close()


# ------------------------------------------------------------------------ HDF5


@pytest.mark.parametrize("shuffle", ["batch", True, False])
def test_h5py_dataset_trains_like_the_arrays(h5, shuffle):
    _, file = h5
    reference, ref_history = _fit_reference(shuffle, validation_split=0.25)
    model = _model()
    keras.utils.set_random_seed(1)
    history = model.fit(
        file["x"],
        file["y"],
        batch_size=16,
        epochs=2,
        shuffle=shuffle,
        verbose=0,
        validation_split=0.25,
    )
    _same_weights(model, reference)
    assert history.history == ref_history.history
    x, y = _arrays()
    np.testing.assert_array_equal(
        model.predict(file["x"], batch_size=32, verbose=0),
        model.predict(x, batch_size=32, verbose=0),
    )
    assert model.evaluate(file["x"], file["y"], verbose=0) == model.evaluate(x, y, verbose=0)


def test_h5py_reads_batches_not_the_dataset(h5, monkeypatch):
    _, file = h5
    reads = []
    original = HDF5Matrix.__getitem__

    def spy(self, key):
        rows = original(self, key)
        reads.append(len(rows))
        return rows

    monkeypatch.setattr(HDF5Matrix, "__getitem__", spy)
    _model().fit(file["x"], file["y"], batch_size=16, epochs=1, shuffle="batch", verbose=0)
    assert reads and max(reads) == 16


def test_hdf5_matrix_indexing_matches_numpy(h5):
    path, _ = h5
    x, _ = _arrays()
    m = HDF5Matrix(path, "x", start=10, end=70, normalizer=lambda a: a * 2)
    ref = x[10:70] * 2
    assert len(m) == 60 and m.shape == (60, D) and m.ndim == 2 and m.size == 60 * D
    assert m.dtype == np.float32
    np.testing.assert_array_equal(m[5], ref[5])
    np.testing.assert_array_equal(m[-1], ref[-1])
    np.testing.assert_array_equal(m[3:9], ref[3:9])
    np.testing.assert_array_equal(m[::7], ref[::7])
    np.testing.assert_array_equal(m[[8, 2, 2, 40]], ref[[8, 2, 2, 40]])
    np.testing.assert_array_equal(m.view(5, 15)[2:4], ref[7:9])
    np.testing.assert_array_equal(np.asarray(m), ref)
    with pytest.raises(IndexError):
        m[60]
    with pytest.raises(ValueError, match="row range"):
        HDF5Matrix(path, "x", start=50, end=20)
    with pytest.raises(ValueError, match="No dataset named"):
        HDF5Matrix(path, "nope")


def test_hdf5_matrix_fit_with_class_weight_and_validation_data(h5):
    path, _ = h5
    x, y = _arrays()
    cw = {0: 1.0, 1: 3.0}
    reference = _model()
    keras.utils.set_random_seed(1)
    reference.fit(
        x[:64],
        y[:64],
        batch_size=16,
        epochs=2,
        class_weight=cw,
        verbose=0,
        validation_data=(x[64:], y[64:]),
    )
    model = _model()
    keras.utils.set_random_seed(1)
    history = model.fit(
        HDF5Matrix(path, "x", end=64),
        HDF5Matrix(path, "y", end=64),
        batch_size=16,
        epochs=2,
        class_weight=cw,
        verbose=0,
        validation_data=(HDF5Matrix(path, "x", start=64), HDF5Matrix(path, "y", start=64)),
    )
    _same_weights(model, reference)
    assert "val_loss" in history.history


# ------------------------------------------------------------------- PyDataset


class Batches(PyDataset):
    def __init__(self, x, y, batch_size=16, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size = x, y, batch_size
        self.epochs_ended = 0
        self.threads = set()

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index):
        self.threads.add(threading.get_ident())
        s = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[s], self.y[s]

    def on_epoch_end(self):
        self.epochs_ended += 1


@pytest.mark.parametrize(
    "workers, use_multiprocessing",
    [(1, False), (3, False), pytest.param(2, True, marks=pytest.mark.slow)],
)
def test_py_dataset_trains_like_the_arrays(workers, use_multiprocessing):
    x, y = _arrays()
    reference, ref_history = _fit_reference(False, validation_data=(x[:32], y[:32]))
    data = Batches(x, y, workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=4)
    model = _model()
    keras.utils.set_random_seed(1)
    history = model.fit(
        data,
        epochs=2,
        shuffle=False,
        verbose=0,
        validation_data=Batches(x[:32], y[:32]),
    )
    if use_multiprocessing:
        # The worker processes' DataLoader draws a seed from the global RNG each epoch, so
        # dropout differs from the in-process run: compare with the same run repeated.
        reference = _model()
        keras.utils.set_random_seed(1)
        ref_history = reference.fit(
            Batches(x, y, workers=workers, use_multiprocessing=True),
            epochs=2,
            shuffle=False,
            verbose=0,
            validation_data=Batches(x[:32], y[:32]),
        )
    else:
        assert data.epochs_ended == 2
        # Worker threads prepare the batches (how many of the pool's threads run is up to it).
        main = threading.main_thread().ident
        assert (main not in data.threads) if workers > 1 else (data.threads == {main})
    _same_weights(model, reference)
    assert history.history == ref_history.history
    np.testing.assert_allclose(
        model.predict(Batches(x, y), verbose=0), model.predict(x, verbose=0), atol=1e-6
    )


def test_py_dataset_shuffles_batch_order_and_keras2_sequence():
    class Keras2Style(Sequence):  # no super().__init__(), as Keras 2 code often does
        def __init__(self):
            self.seen = []

        def __len__(self):
            return 6

        def __getitem__(self, index):
            self.seen.append(index)
            x, y = _arrays()
            return x[index * 16 : (index + 1) * 16], y[index * 16 : (index + 1) * 16]

    data = Keras2Style()
    keras.utils.set_random_seed(0)
    _model().fit(data, epochs=2, shuffle=True, verbose=0)
    first, second = data.seen[:6], data.seen[6:]
    assert sorted(first) == sorted(second) == list(range(6))
    assert first != list(range(6)) or second != list(range(6))


def test_py_dataset_error_is_clear_and_model_usable():
    class Broken(Batches):
        def __getitem__(self, index):
            if index == 3:
                raise KeyError("missing shard")
            return super().__getitem__(index)

    x, y = _arrays()
    model = _model()
    with pytest.raises(RuntimeError, match="Broken raised KeyError"):
        model.fit(Broken(x, y), epochs=1, shuffle=False, verbose=0)
    _assert_usable(model)


# ---------------------------------------------------------------- torch datasets


class Samples(torch.utils.data.IterableDataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __iter__(self):
        for i in range(len(self.x)):
            yield self.x[i], self.y[i]


def test_iterable_dataset_shuffle_buffer():
    x, y = _arrays()
    ids = np.arange(N).astype("float32")
    seen = []

    class Tagged(torch.utils.data.IterableDataset):
        def __iter__(self):
            for i in range(N):
                seen.append(i)
                yield x[i], y[i]

    keras.utils.set_random_seed(0)
    adapter_order = []
    from ktorch.trainers.data_adapters import ShuffleBuffer

    keras.utils.set_random_seed(3)
    first = [int(s) for s in ShuffleBuffer(list(ids), 16)]
    keras.utils.set_random_seed(3)
    again = [int(s) for s in ShuffleBuffer(list(ids), 16)]
    assert first == again and sorted(first) == list(range(N)) and first != list(range(N))
    # Bounded: a sample never leaves before its position minus the buffer size.
    assert all(pos >= value - 16 for pos, value in enumerate(first))
    history = _model().fit(Tagged(), epochs=2, batch_size=16, verbose=0, shuffle=True)
    assert len(history.history["loss"]) == 2 and seen == list(range(N)) * 2
    del adapter_order


def test_iterable_dataset_unshuffled_matches_map_dataset():
    x, y = _arrays()
    # Both go through a DataLoader, which draws a worker seed from the global RNG per epoch.
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    reference = _model()
    keras.utils.set_random_seed(1)
    reference.fit(dataset, batch_size=16, epochs=2, shuffle=False, verbose=0)
    model = _model()
    keras.utils.set_random_seed(1)
    model.fit(Samples(x, y), batch_size=16, epochs=2, shuffle=False, verbose=0)
    _same_weights(model, reference)


def test_map_dataset_and_dataloader_with_validation():
    x, y = _arrays()
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    val = torch.utils.data.TensorDataset(torch.from_numpy(x[:32]), torch.from_numpy(y[:32]))
    # A DataLoader is used as given; a map-style Dataset is batched by one (both draw a worker
    # seed from the global RNG per epoch, so the two runs see the same dropout masks).
    reference = _model()
    keras.utils.set_random_seed(1)
    reference.fit(
        torch.utils.data.DataLoader(dataset, batch_size=16),
        epochs=2,
        verbose=0,
        validation_data=torch.utils.data.DataLoader(val, batch_size=32),
    )
    model = _model()
    keras.utils.set_random_seed(1)
    history = model.fit(
        dataset, batch_size=16, epochs=2, shuffle=False, verbose=0, validation_data=val
    )
    _same_weights(model, reference)
    expected = model.evaluate(x[:32], y[:32], verbose=0, return_dict=True)["loss"]
    assert history.history["val_loss"][-1] == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(dataset, validation_split=0.2, verbose=0)


# -------------------------------------------------------------------- generators


def _batches(x, y, fail_at=None):
    while True:
        for i in range(0, N, 16):
            if fail_at is not None and i // 16 == fail_at:
                raise OSError("disk went away")
            yield x[i : i + 16], y[i : i + 16]


def _assert_usable(model):
    x, y = _arrays()
    assert not model.training
    assert all(p.requires_grad for p in model.trainable_weights)
    before = model.predict(x, verbose=0)
    assert np.isfinite(before).all()
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_generator_error_mid_epoch_is_clear_and_model_usable():
    x, y = _arrays()
    model = _model()
    with pytest.raises(
        RuntimeError, match="raised OSError while producing batch 3: disk went away"
    ):
        model.fit(_batches(x, y, fail_at=3), steps_per_epoch=6, epochs=2, verbose=0)
    _assert_usable(model)


def test_keras2_fit_generator_positional_and_class_weight():
    x, y = _arrays()
    reference = _model()
    keras.utils.set_random_seed(1)
    reference.fit(
        x, y, batch_size=16, epochs=2, shuffle=False, verbose=0, class_weight={0: 2.0, 1: 1.0}
    )
    model = _model()
    keras.utils.set_random_seed(1)
    with pytest.warns(DeprecationWarning):
        model.fit_generator(
            _batches(x, y), 6, 2, verbose=0, class_weight={0: 2.0, 1: 1.0}, workers=2
        )
    _same_weights(model, reference)
    with pytest.warns(DeprecationWarning):
        scores = model.evaluate_generator(_batches(x, y), steps=6)
    assert scores == pytest.approx(model.evaluate(x, y, batch_size=16, verbose=0), rel=1e-6)
    with pytest.warns(DeprecationWarning):
        predictions = model.predict_generator(_batches(x, y), steps=6)
    np.testing.assert_allclose(predictions, model.predict(x, verbose=0), atol=1e-6)


# --------------------------------------------------------------- larger than memory

STREAM_SCRIPT = r"""
import os, resource, sys
import h5py, numpy as np
import ktorch as keras

path, rows, cols = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def vm_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
dataset_bytes = rows * cols * 4
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((cols,)), keras.layers.Dense(1)])
model.compile(optimizer="sgd", loss="mse")
model.fit(np.zeros((8, cols), "float32"), np.zeros((8, 1), "float32"), verbose=0)  # warm up
limit = vm_bytes() + dataset_bytes // 2
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    np.ones(dataset_bytes // 4, dtype="float32")
except MemoryError:
    print("the dataset does not fit")
else:
    sys.exit("the memory limit did not hold")
with h5py.File(path, "r") as f:
    history = model.fit(f["x"], f["y"], batch_size=4096, epochs=1, shuffle="batch", verbose=0)
print("loss", history.history["loss"][0])
"""


@pytest.mark.slow
def test_hdf5_larger_than_the_memory_limit_streams(tmp_path):
    rows, cols = 160_000, 512  # 328 MB of float32 features
    path = tmp_path / "big.h5"
    with h5py.File(path, "w") as f:
        data = f.create_dataset("x", (rows, cols), dtype="float32", chunks=(4096, cols))
        block = np.random.default_rng(0).standard_normal((16_000, cols)).astype("float32")
        for start in range(0, rows, len(block)):
            data[start : start + len(block)] = block
        f["y"] = np.ones((rows, 1), dtype="float32")
    env = dict(os.environ, PYTHONPATH=os.getcwd(), OMP_NUM_THREADS="1", MALLOC_ARENA_MAX="2")
    result = subprocess.run(
        [sys.executable, "-c", STREAM_SCRIPT, str(path), str(rows), str(cols)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the dataset does not fit" in result.stdout
    assert "loss" in result.stdout
