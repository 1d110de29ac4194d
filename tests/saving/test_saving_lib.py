"""The `.keras` and `.weights.h5` formats: whole models, compile state, options and safety."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
import warnings
import zipfile

import h5py
import numpy as np
import pytest
import torch

import ktorch
from ktorch import layers
from ktorch.saving import keras_layout, saving_lib
from tests.keras_ref import keras_module, to_numpy

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def keras():
    return keras_module()


def _weights(model) -> list[np.ndarray]:
    return [np.array(to_numpy(w)) for w in model.get_weights()]


def _assert_same_weights(a, b, atol=0.0):
    first, second = _weights(a), _weights(b)
    assert len(first) == len(second)
    for x, y in zip(first, second, strict=True):
        np.testing.assert_allclose(x, y, atol=atol, rtol=0)


def _predict(model, x):
    out = model.predict(x, verbose=0)
    if isinstance(out, (list, tuple)):
        return [to_numpy(o) for o in out]
    return to_numpy(out)


def _assert_same_predictions(a, b, x, atol=1e-5):
    pa, pb = _predict(a, x), _predict(b, x)
    pa, pb = (pa if isinstance(pa, list) else [pa]), (pb if isinstance(pb, list) else [pb])
    for u, v in zip(pa, pb, strict=True):
        np.testing.assert_allclose(u, v, atol=atol)


# ------------------------------------------------------------------------ models


def _sequential(lib):
    L = lib.layers
    return lib.Sequential(
        [
            lib.Input((6,)),
            L.Dense(8, activation="relu"),
            L.BatchNormalization(),
            L.Dense(3, activation="softmax"),
        ]
    )


def _functional(lib):
    """Two inputs, two outputs, a shared layer, a nested Sequential and a nested functional
    model, and branches of different lengths (Keras orders the layers by depth)."""
    L = lib.layers
    a = lib.Input((6,), name="a")
    b = lib.Input((6,), name="b")
    shared = L.Dense(5, activation="relu", name="shared")
    ha, hb = shared(a), shared(b)
    inner = lib.Sequential(
        [lib.Input((5,)), L.Dense(4, activation="tanh"), L.Dense(4)], name="inner"
    )
    nested_in = lib.Input((5,))
    nested = lib.Model(nested_in, L.Dense(3, name="nested_dense")(nested_in), name="nested")
    x = L.Concatenate(name="concat")([inner(ha), hb])
    out1 = L.Dense(2, name="out1")(x)
    long = L.Dense(3, name="long2")(L.Dense(3, name="long1")(x))
    out2 = L.Add(name="out2")([long, nested(hb)])
    return lib.Model([a, b], [out1, out2])


def _seq_data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6)).astype("float32"), rng.integers(0, 3, size=(n,))


def _func_data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    x = [rng.normal(size=(n, 6)).astype("float32") for _ in range(2)]
    y = [rng.normal(size=(n, 2)).astype("float32"), rng.normal(size=(n, 3)).astype("float32")]
    return x, y


def _compile_functional(model):
    model.compile(
        optimizer="adam",
        loss=["mse", "mae"],
        loss_weights=[1.0, 0.5],
        metrics={"out1": ["mae"], "out2": ["mse"]},
    )


@ktorch.saving.register_keras_serializable(package="saving_test", name="Tower")
class Tower(ktorch.Model):
    """A subclassed model whose `head` Keras reaches through `layers` (`layers/dense_1`)."""

    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.encoder = layers.Dense(units, activation="tanh")
        self.head = layers.Dense(2)
        self.blocks = [layers.Dense(5), layers.LayerNormalization()]

    def call(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(self.encoder(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def _keras_tower(keras):
    """Keras's twin of `Tower`, registered under the same name."""

    @keras.saving.register_keras_serializable(package="saving_test", name="Tower")
    class KerasTower(keras.Model):
        def __init__(self, units=4, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.encoder = keras.layers.Dense(units, activation="tanh")
            self.head = keras.layers.Dense(2)
            self.blocks = [keras.layers.Dense(5), keras.layers.LayerNormalization()]

        def call(self, x):
            for block in self.blocks:
                x = block(x)
            return self.head(self.encoder(x))

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    return KerasTower


def _trained_sequential():
    model = _sequential(ktorch)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = _seq_data()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    return model


# ------------------------------------------------------------- ktorch round trips


def test_keras_zip_members_and_metadata(tmp_path):
    model = _trained_sequential()
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        assert archive.namelist() == ["metadata.json", "config.json", "model.weights.h5"]
        metadata = json.loads(archive.read("metadata.json"))
        config = json.loads(archive.read("config.json"))
    assert set(metadata) == {"keras_version", "date_saved"}
    assert config["class_name"] == "Sequential" and config["module"] == "keras"
    assert config["compile_config"]["optimizer"]["class_name"] == "Adam"
    assert config["compile_config"]["loss"] == "sparse_categorical_crossentropy"
    assert config["compile_config"]["metrics"] == ["accuracy"]


@pytest.mark.parametrize("kind", ["sequential", "functional", "subclassed"])
def test_roundtrip_restores_predictions_compile_and_exact_next_step(kind, tmp_path):
    if kind == "sequential":
        model = _trained_sequential()
        x, y = _seq_data(seed=1)
    else:
        model = _functional(ktorch) if kind == "functional" else Tower()
        if kind == "functional":
            _compile_functional(model)
            x, y = _func_data()
        else:
            model.compile(optimizer="rmsprop", loss="mse", metrics=["mae"])
            x = np.random.default_rng(0).normal(size=(16, 6)).astype("float32")
            y = np.random.default_rng(1).normal(size=(16, 2)).astype("float32")
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / "m.keras")

    loaded = ktorch.saving.load_model(tmp_path / "m.keras")
    assert type(loaded) is type(model)
    assert loaded.compiled
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations
    assert loaded.loss == model.loss
    _assert_same_weights(loaded, model)
    _assert_same_predictions(loaded, model, x)

    # One more step on both: the restored optimizer state gives exactly the same weights.
    model.fit(
        x,
        y,
        epochs=1,
        batch_size=len(y[0]) if kind == "functional" else len(y),
        shuffle=False,
        verbose=0,
    )
    loaded.fit(
        x,
        y,
        epochs=1,
        batch_size=len(y[0]) if kind == "functional" else len(y),
        shuffle=False,
        verbose=0,
    )
    _assert_same_weights(loaded, model)


def test_compile_config_roundtrip(tmp_path):
    model = _functional(ktorch)
    model.compile(
        optimizer=ktorch.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
        loss={"out1": ktorch.losses.Huber(delta=0.5), "out2": "mse"},
        loss_weights={"out1": 2.0, "out2": 0.25},
        metrics={"out1": [ktorch.metrics.MeanAbsoluteError()], "out2": ["mse"]},
        weighted_metrics={"out1": ["mae"]},
        steps_per_execution=2,
    )
    model.save(tmp_path / "m.keras")
    with warnings.catch_warnings():
        # The optimizer never stepped: its (empty) state loads without a warning.
        warnings.simplefilter("error", UserWarning)
        loaded = ktorch.saving.load_model(tmp_path / "m.keras")
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert isinstance(loaded.loss["out1"], ktorch.losses.Huber)
    assert loaded.loss["out1"].get_config() == model.loss["out1"].get_config()
    assert loaded.loss["out2"] == "mse"
    assert loaded.compiled_loss.loss_weights == {"out1": 2.0, "out2": 0.25}
    assert loaded.steps_per_execution == 2
    x, y = _func_data()
    logs = loaded.evaluate(x, {"out1": y[0], "out2": y[1]}, verbose=0, return_dict=True)
    expected = model.evaluate(x, {"out1": y[0], "out2": y[1]}, verbose=0, return_dict=True)
    assert logs.keys() == expected.keys()
    for key in logs:
        np.testing.assert_allclose(logs[key], expected[key], rtol=1e-6)


def test_load_model_without_compile(tmp_path):
    model = _trained_sequential()
    model.save(tmp_path / "m.keras")
    loaded = ktorch.saving.load_model(tmp_path / "m.keras", compile=False)
    assert not loaded.compiled
    _assert_same_weights(loaded, model)


def test_include_optimizer_false_saves_no_compile_state(tmp_path):
    model = _trained_sequential()
    model.save(tmp_path / "m.keras", include_optimizer=False)
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        assert "compile_config" not in json.loads(archive.read("config.json"))
        with archive.open("model.weights.h5") as member, h5py.File(member, "r") as h5:
            assert "optimizer" not in h5
    assert not ktorch.saving.load_model(tmp_path / "m.keras").compiled


def test_torch_optimizer_model_saves_uncompiled(tmp_path):
    model = _sequential(ktorch)
    model.compile(optimizer=torch.optim.SGD(model.parameters(), lr=0.1), loss="mse")
    with pytest.warns(UserWarning, match="torch optimizer"):
        model.save(tmp_path / "m.keras")
    loaded = ktorch.saving.load_model(tmp_path / "m.keras")
    assert not loaded.compiled
    _assert_same_weights(loaded, model)


def test_weights_h5_roundtrip_includes_optimizer(tmp_path):
    model = _trained_sequential()
    model.save_weights(tmp_path / "m.weights.h5")
    with h5py.File(tmp_path / "m.weights.h5", "r") as h5:
        assert h5["optimizer/vars"].attrs["name"] == model.optimizer.name
        assert len(h5["optimizer/vars"]) == len(model.optimizer.variables)
    other = _sequential(ktorch)
    other.load_weights(tmp_path / "m.weights.h5")
    _assert_same_weights(other, model)


def test_load_weights_from_keras_zip_and_keras3_h5(tmp_path):
    model = _trained_sequential()
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "m.weights.h5")
    os.replace(tmp_path / "m.weights.h5", tmp_path / "plain.h5")
    for name in ("m.keras", "plain.h5"):
        other = _sequential(ktorch)
        other.load_weights(tmp_path / name)
        _assert_same_weights(other, model)


def test_saving_weights_of_unbuilt_model_raises(tmp_path):
    model = ktorch.Sequential([layers.Dense(2)])
    with pytest.raises(ValueError, match="not been built"):
        model.save_weights(tmp_path / "m.weights.h5")
    built = _sequential(ktorch)
    built.save_weights(tmp_path / "m.weights.h5")
    with pytest.raises(ValueError, match="not been built"):
        model.load_weights(tmp_path / "m.weights.h5")


# --------------------------------------------------------------- Keras interop


def _keras_compiled_functional(keras):
    model = _functional(keras)
    _compile_functional(model)
    return model


@pytest.mark.parametrize("kind", ["sequential", "functional", "subclassed"])
def test_ktorch_model_loads_in_keras_and_continues_training(kind, keras, tmp_path):
    if kind == "sequential":
        model = _trained_sequential()
        x, y = _seq_data(seed=2)
    elif kind == "functional":
        model = _functional(ktorch)
        _compile_functional(model)
        x, y = _func_data()
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    else:
        _keras_tower(keras)
        model = Tower()
        model.compile(optimizer="adam", loss="mse")
        x = np.random.default_rng(0).normal(size=(16, 6)).astype("float32")
        y = np.random.default_rng(1).normal(size=(16, 2)).astype("float32")
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    _assert_same_predictions(loaded, model, x)
    assert int(to_numpy(loaded.optimizer.iterations)) == model.optimizer.iterations
    # The optimizer slots landed on the right variables: one more step agrees closely.
    batch = len(y[0]) if kind == "functional" else len(y)
    model.fit(x, y, epochs=1, batch_size=batch, shuffle=False, verbose=0)
    loaded.fit(x, y, epochs=1, batch_size=batch, shuffle=False, verbose=0)
    # (ktorch's functional `weights` order may differ from Keras's: compare in Keras's order.)
    for ours, theirs in zip(keras_layout.keras_weights(model), loaded.weights, strict=True):
        np.testing.assert_allclose(to_numpy(ours), to_numpy(theirs), atol=1e-5)


@pytest.mark.parametrize("kind", ["sequential", "functional", "subclassed"])
def test_keras_model_loads_in_ktorch_and_continues_training(kind, keras, tmp_path):
    if kind == "sequential":
        model = _sequential(keras)
        model.compile(
            optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
        x, y = _seq_data(seed=3)
    elif kind == "functional":
        model = _keras_compiled_functional(keras)
        x, y = _func_data()
    else:
        model = _keras_tower(keras)()
        model.compile(optimizer="adam", loss="mse")
        x = np.random.default_rng(0).normal(size=(16, 6)).astype("float32")
        y = np.random.default_rng(1).normal(size=(16, 2)).astype("float32")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = ktorch.saving.load_model(tmp_path / "m.keras")
    assert loaded.compiled
    _assert_same_predictions(loaded, model, x)
    assert loaded.optimizer.iterations == int(to_numpy(model.optimizer.iterations))
    batch = len(y[0]) if kind == "functional" else len(y)
    model.fit(x, y, epochs=1, batch_size=batch, shuffle=False, verbose=0)
    loaded.fit(x, y, epochs=1, batch_size=batch, shuffle=False, verbose=0)
    for ours, theirs in zip(keras_layout.keras_weights(loaded), model.weights, strict=True):
        np.testing.assert_allclose(to_numpy(ours), to_numpy(theirs), atol=1e-5)


def test_weights_h5_moves_both_ways_for_functional_models(keras, tmp_path):
    ours = _functional(ktorch)
    ours.save_weights(tmp_path / "ours.weights.h5")
    theirs = _functional(keras)
    theirs.load_weights(tmp_path / "ours.weights.h5")
    x, _ = _func_data()
    _assert_same_predictions(theirs, ours, x)
    theirs = _functional(keras)
    theirs.save_weights(tmp_path / "theirs.weights.h5")
    ours.load_weights(tmp_path / "theirs.weights.h5")
    _assert_same_predictions(ours, theirs, x)


def test_keras_lambda_needs_safe_mode_off(keras, tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda t: t * 2.0 + 1.0)])
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(ValueError, match="safe_mode=False"):
        ktorch.saving.load_model(tmp_path / "lambda.keras")
    loaded = ktorch.saving.load_model(tmp_path / "lambda.keras", safe_mode=False)
    x = np.arange(6, dtype="float32").reshape(2, 3)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), x * 2.0 + 1.0)


# ------------------------------------------------------------------ by_name / skip


def test_by_name_loads_matching_layers_and_leaves_the_rest(tmp_path):
    source = ktorch.Sequential(
        [ktorch.Input((4,)), layers.Dense(3, name="a"), layers.Dense(2, name="b")]
    )
    source.save_weights(tmp_path / "s.weights.h5")
    target = ktorch.Sequential(
        [
            ktorch.Input((4,)),
            layers.Dense(3, name="a"),
            layers.Dense(5, name="other"),
            layers.Dense(2, name="c"),
        ]
    )
    before = _weights(target)
    target.load_weights(tmp_path / "s.weights.h5", by_name=True)
    after = _weights(target)
    np.testing.assert_array_equal(after[0], _weights(source)[0])
    np.testing.assert_array_equal(after[1], _weights(source)[1])
    for kept, old in zip(after[2:], before[2:], strict=True):
        np.testing.assert_array_equal(kept, old)


def test_by_name_reorders_and_nests(tmp_path):
    source = _functional(ktorch)
    source.save_weights(tmp_path / "s.weights.h5")
    target = _functional(ktorch)
    target.load_weights(tmp_path / "s.weights.h5", by_name=True)
    _assert_same_weights(target, source)


def test_by_name_mismatch_names_layer_and_shapes_or_skips(tmp_path):
    source = ktorch.Sequential([ktorch.Input((4,)), layers.Dense(3, name="a")])
    source.save_weights(tmp_path / "s.weights.h5")
    target = ktorch.Sequential([ktorch.Input((4,)), layers.Dense(6, name="a")])
    before = _weights(target)
    with pytest.raises(ValueError, match=r"'a'.*\(4, 6\).*\(4, 3\)"):
        target.load_weights(tmp_path / "s.weights.h5", by_name=True)
    with pytest.warns(UserWarning, match="'a'"):
        target.load_weights(tmp_path / "s.weights.h5", by_name=True, skip_mismatch=True)
    for kept, old in zip(_weights(target), before, strict=True):
        np.testing.assert_array_equal(kept, old)


def test_mismatch_raises_naming_layer_and_shapes_and_leaves_model_unchanged(tmp_path):
    source = ktorch.Sequential([ktorch.Input((4,)), layers.Dense(3), layers.Dense(2)])
    source.save_weights(tmp_path / "s.weights.h5")
    target = ktorch.Sequential([ktorch.Input((4,)), layers.Dense(3), layers.Dense(7, name="wide")])
    before = _weights(target)
    with pytest.raises(ValueError, match=r"'wide'.*\(3, 7\).*\(3, 2\)"):
        target.load_weights(tmp_path / "s.weights.h5")
    for kept, old in zip(_weights(target), before, strict=True):
        np.testing.assert_array_equal(kept, old)


def test_skip_mismatch_loads_the_rest_with_a_warning(tmp_path):
    source = ktorch.Sequential([ktorch.Input((4,)), layers.Dense(3), layers.Dense(2)])
    source.save_weights(tmp_path / "s.weights.h5")
    target = ktorch.Sequential([ktorch.Input((4,)), layers.Dense(3), layers.Dense(7, name="wide")])
    before = _weights(target)
    with pytest.warns(UserWarning, match="'wide'"):
        target.load_weights(tmp_path / "s.weights.h5", skip_mismatch=True)
    after = _weights(target)
    np.testing.assert_array_equal(after[0], _weights(source)[0])
    np.testing.assert_array_equal(after[2], before[2])


# ---------------------------------------------------------------------- safety


def _saved_file(tmp_path):
    model = _trained_sequential()
    model.save(tmp_path / "good.keras")
    return model, tmp_path / "good.keras"


def _rewrite_zip(source, target, drop=(), add=(), replace=None):
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            if info.filename in drop:
                continue
            data = old.read(info.filename)
            if replace and info.filename in replace:
                data = replace[info.filename]
            new.writestr(info.filename, data)
        for name, data in add:
            new.writestr(name, data)


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/ktorch-evil.txt", "assets/../../evil.txt"])
def test_hostile_member_names_are_refused_and_write_nothing(member, tmp_path):
    _, good = _saved_file(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    hostile = work / "hostile.keras"
    _rewrite_zip(good, hostile, add=[(member, b"pwned")])
    before = set(os.listdir(tmp_path)) | set(os.listdir(work))
    with pytest.raises(ValueError, match="not a safe relative path"):
        ktorch.saving.load_model(hostile)
    assert set(os.listdir(tmp_path)) | set(os.listdir(work)) == before
    assert not os.path.exists("/tmp/ktorch-evil.txt")


def test_corrupt_and_truncated_archives_raise_value_error(tmp_path):
    _, good = _saved_file(tmp_path)
    (tmp_path / "noise.keras").write_bytes(os.urandom(2048))
    data = good.read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    for name in ("noise.keras", "cut.keras"):
        with pytest.raises(ValueError, match="zip archive"):
            ktorch.saving.load_model(tmp_path / name)


def test_missing_config_or_weights_member_raises(tmp_path):
    _, good = _saved_file(tmp_path)
    _rewrite_zip(good, tmp_path / "noconfig.keras", drop={"config.json"})
    with pytest.raises(ValueError, match="config.json"):
        ktorch.saving.load_model(tmp_path / "noconfig.keras")
    _rewrite_zip(good, tmp_path / "noweights.keras", drop={"model.weights.h5"})
    with pytest.raises(ValueError, match="model.weights.h5"):
        ktorch.saving.load_model(tmp_path / "noweights.keras")
    _rewrite_zip(good, tmp_path / "badjson.keras", replace={"config.json": b"{not json"})
    with pytest.raises(ValueError, match="not valid JSON"):
        ktorch.saving.load_model(tmp_path / "badjson.keras")


def _edited_weights(tmp_path, edit):
    model = _sequential(ktorch)
    model.save_weights(tmp_path / "w.weights.h5")
    with h5py.File(tmp_path / "w.weights.h5", "a") as h5:
        edit(h5)
    target = _sequential(ktorch)
    return target, _weights(target), tmp_path / "w.weights.h5"


def _replace(h5, path, data, **kwargs):
    del h5[path]
    h5.create_dataset(path, data=data, **kwargs)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda h5: h5.__delitem__("layers/dense_1/vars"), r"'dense_\d+'.*no variables"),
        (lambda h5: h5.__delitem__("layers/dense_1/vars/1"), r"expects 2 variables"),
        (
            lambda h5: h5.create_group("layers/ghost/vars").create_dataset("0", data=[1.0]),
            "match no layer",
        ),
        (
            lambda h5: _replace(h5, "layers/dense_1/vars/0", np.zeros((8, 4), "float32")),
            r"shape \(8, 3\).*shape \(8, 4\)",
        ),
        (
            lambda h5: _replace(h5, "layers/dense_1/vars/0", np.full((8, 3), "x", dtype="S1")),
            "dtype",
        ),
        (
            lambda h5: _replace(
                h5, "layers/dense_1/vars/1", np.zeros((3,), "float32").astype(complex)
            ),
            "dtype",
        ),
        (
            lambda h5: _replace(
                h5, "layers/dense_1/vars/0", None, shape=(10**9, 10**6), dtype="f4", chunks=(1, 8)
            ),
            r"shape \(1000000000, 1000000\)",
        ),
        (lambda h5: h5.create_dataset("stray", data=[1.0]), "outside any 'vars'"),
    ],
    ids=[
        "missing-group",
        "missing-var",
        "extra-group",
        "shape",
        "string",
        "complex",
        "bomb",
        "stray",
    ],
)
def test_bad_weights_raise_and_leave_model_unchanged(edit, message, tmp_path):
    target, before, path = _edited_weights(tmp_path, edit)
    with pytest.raises(ValueError, match=message):
        target.load_weights(path)
    for kept, old in zip(_weights(target), before, strict=True):
        np.testing.assert_array_equal(kept, old)


def test_links_in_weights_file_are_refused(tmp_path):
    def link(h5):
        h5["layers/dense_1/vars/extra"] = h5py.SoftLink("/layers/dense_1/vars/0")

    target, _, path = _edited_weights(tmp_path, link)
    with pytest.raises(ValueError, match="SoftLink"):
        target.load_weights(path)

    def external(h5):
        h5["layers/dense_1/other"] = h5py.ExternalLink("/etc/passwd", "/")

    target, _, path = _edited_weights(tmp_path, external)
    with pytest.raises(ValueError, match="ExternalLink"):
        target.load_weights(path)


def test_not_hdf5_raises_value_error(tmp_path):
    (tmp_path / "junk.weights.h5").write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="not a valid HDF5"):
        _sequential(ktorch).load_weights(tmp_path / "junk.weights.h5")


def test_loading_never_unpickles(tmp_path, monkeypatch):
    model, good = _saved_file(tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("unpickling attempted")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    loaded = ktorch.saving.load_model(good)
    _assert_same_weights(loaded, model)


class Vocabulary(layers.Layer):
    """A layer with assets: its vocabulary is a file next to the weights."""

    def __init__(self, words=(), **kwargs):
        super().__init__(**kwargs)
        self.words = list(words)

    def call(self, x):
        return x * len(self.words)

    def get_config(self):
        return {**super().get_config(), "words": []}

    def save_assets(self, dirpath):
        with open(os.path.join(dirpath, "vocab.txt"), "w") as f:
            f.write("\n".join(self.words))

    def load_assets(self, dirpath):
        with open(os.path.join(dirpath, "vocab.txt")) as f:
            self.words = f.read().split("\n")


def test_assets_roundtrip(tmp_path):
    model = ktorch.Sequential([ktorch.Input((2,)), Vocabulary(["a", "b", "c"], name="vocab")])
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        assert "assets/layers/vocabulary/vocab.txt" in archive.namelist()
    loaded = ktorch.saving.load_model(
        tmp_path / "m.keras", custom_objects={"Vocabulary": Vocabulary}
    )
    assert loaded.layers[0].words == ["a", "b", "c"]


# ---------------------------------------------------------------------- atomicity


_SLOW_SAVE = """
import sys, time
import numpy as np
sys.path.insert(0, {repo!r})
import ktorch
from ktorch.saving import keras_layout, saving_lib

original = saving_lib._write_member


def slow(archive, name, data):
    original(archive, name, data)
    if name == "config.json":
        open({marker!r}, "w").close()
        time.sleep(120)


saving_lib._write_member = slow
model = ktorch.Sequential([ktorch.Input((6,)), ktorch.layers.Dense(9)])
model.save({path!r})
"""


def test_killed_save_keeps_the_previous_file(tmp_path):
    model, _ = _saved_file(tmp_path)
    path = tmp_path / "model.keras"
    model.save(path)
    marker = tmp_path / "writing"
    script = _SLOW_SAVE.format(repo=REPO, marker=str(marker), path=str(path))
    process = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert process.poll() is None, "the saving process ended before the kill"
            assert time.monotonic() < deadline, "the saving process never started writing"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    loaded = ktorch.saving.load_model(path)
    _assert_same_weights(loaded, model)


def test_keras_compile_objects_load_and_save_back(keras, tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=0.01, weight_decay=0.1),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
        metrics=[keras.metrics.CategoricalAccuracy(), "mae", keras.metrics.AUC()],
        weighted_metrics=["accuracy"],
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, size=8)]
    model.fit(x, y, verbose=0)
    model.save(tmp_path / "keras.keras")
    expected = model.evaluate(x, y, verbose=0, return_dict=True)

    ours = ktorch.saving.load_model(tmp_path / "keras.keras")
    assert isinstance(ours.optimizer, ktorch.optimizers.AdamW)
    assert ours.loss.get_config()["label_smoothing"] == pytest.approx(0.1)
    logs = ours.evaluate(x, y, verbose=0, return_dict=True)
    assert logs.keys() == expected.keys()
    for key in logs:
        np.testing.assert_allclose(logs[key], expected[key], rtol=1e-5)

    ours.save(tmp_path / "ours.keras")
    back = keras.saving.load_model(tmp_path / "ours.keras")
    logs = back.evaluate(x, y, verbose=0, return_dict=True)
    for key in logs:
        np.testing.assert_allclose(logs[key], expected[key], rtol=1e-5)


def _double(x):
    return x * 2.0 + 1.0


ktorch.saving.register_keras_serializable(package="saving_test", name="double")(_double)


def test_lambda_with_registered_function_moves_both_ways(keras, tmp_path):
    keras.saving.register_keras_serializable(package="saving_test", name="double")(_double)
    x = np.arange(6, dtype="float32").reshape(2, 3)
    theirs = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(_double)])
    theirs.save(tmp_path / "keras.keras")
    ours = ktorch.saving.load_model(tmp_path / "keras.keras")
    np.testing.assert_allclose(ours.predict(x, verbose=0), x * 2.0 + 1.0)
    ours.save(tmp_path / "ours.keras")
    back = keras.saving.load_model(tmp_path / "ours.keras")
    np.testing.assert_allclose(to_numpy(back.predict(x, verbose=0)), x * 2.0 + 1.0)


def test_decompression_bomb_member_is_refused(tmp_path, monkeypatch):
    _, good = _saved_file(tmp_path)
    with zipfile.ZipFile(good) as old, zipfile.ZipFile(tmp_path / "bomb.keras", "w") as new:
        for info in old.infolist():
            new.writestr(info.filename, old.read(info.filename))
        new.writestr("padding.bin", b"\0" * (1 << 20), compress_type=zipfile.ZIP_DEFLATED)
    # The real floor is 4 GiB: lowered here so that a 1 MiB member of zeros counts as a bomb.
    monkeypatch.setattr(saving_lib, "_BOMB_FLOOR_BYTES", 1 << 16)
    with pytest.raises(ValueError, match="decompression bomb"):
        ktorch.saving.load_model(tmp_path / "bomb.keras")


def test_unbuilt_model_in_file_with_weights_raises(tmp_path):
    model = Tower()
    model(np.zeros((2, 6), "float32"))
    model.save(tmp_path / "m.keras")
    config = json.loads(zipfile.ZipFile(tmp_path / "m.keras").read("config.json"))
    assert config["build_config"] == {"input_shape": [2, 6]}
    del config["build_config"]
    _rewrite_zip(
        tmp_path / "m.keras",
        tmp_path / "unbuilt.keras",
        replace={"config.json": json.dumps(config).encode()},
    )
    with pytest.raises(ValueError, match="not built"):
        ktorch.saving.load_model(tmp_path / "unbuilt.keras")


@pytest.mark.parametrize(
    "config",
    [
        {"class_name": "Sequential", "config": {"name": "s"}},
        {"class_name": "Functional", "config": {"name": "f", "layers": []}},
        {"class_name": "NoSuchModel", "config": {}},
    ],
    ids=["sequential-no-layers", "functional-no-inputs", "unknown-class"],
)
def test_config_with_missing_keys_raises_value_error(config, tmp_path):
    _, good = _saved_file(tmp_path)
    _rewrite_zip(good, tmp_path / "bad.keras", replace={"config.json": json.dumps(config).encode()})
    with pytest.raises(ValueError):
        ktorch.saving.load_model(tmp_path / "bad.keras")


def test_bfloat16_weights_move_both_ways(keras, tmp_path):
    def model(lib):
        return lib.Sequential([lib.Input((4,)), lib.layers.Dense(3, dtype="bfloat16")])

    ours = model(ktorch)
    ours.save_weights(tmp_path / "ours.weights.h5")
    with h5py.File(tmp_path / "ours.weights.h5", "r") as h5:
        assert h5["layers/dense/vars/0"].attrs["dtype"] == "bfloat16"
    theirs = model(keras)
    theirs.load_weights(tmp_path / "ours.weights.h5")
    for a, b in zip(ours.weights, theirs.weights, strict=True):
        np.testing.assert_array_equal(a.detach().float().numpy(), to_numpy(b).astype("float32"))
    theirs = model(keras)
    theirs.save_weights(tmp_path / "theirs.weights.h5")
    ours.load_weights(tmp_path / "theirs.weights.h5")
    for a, b in zip(ours.weights, theirs.weights, strict=True):
        np.testing.assert_array_equal(a.detach().float().numpy(), to_numpy(b).astype("float32"))


def test_load_weights_restores_a_built_optimizer_or_warns_when_it_differs(tmp_path):
    source = _trained_sequential()
    source.save_weights(tmp_path / "m.weights.h5")
    x, y = _seq_data(n=8)

    same = _sequential(ktorch)
    same.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    same.fit(x, y, epochs=1, verbose=0)
    same.load_weights(tmp_path / "m.weights.h5")
    assert same.optimizer.iterations == source.optimizer.iterations
    for ours, theirs in zip(same.optimizer.variables, source.optimizer.variables, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())

    other = _sequential(ktorch)
    other.compile(optimizer=ktorch.optimizers.SGD(momentum=0.9), loss="mse")
    other.fit(x, np.eye(3, dtype="float32")[y], epochs=1, verbose=0)
    with pytest.warns(UserWarning, match="Skipping variable loading for optimizer"):
        other.load_weights(tmp_path / "m.weights.h5")
    _assert_same_weights(other, source)


class TorchBlock(layers.Layer):
    """A layer holding plain torch modules (their state is saved by `state_dict` key)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.linear = torch.nn.Linear(4, 3)
        self.norm = torch.nn.BatchNorm1d(3)

    def call(self, x):
        return self.norm(self.linear(x))


def test_plain_torch_modules_inside_layers_roundtrip(tmp_path):
    model = ktorch.Sequential([ktorch.Input((4,)), TorchBlock(name="block")])
    with torch.no_grad():
        model.layers[0].norm.running_mean.uniform_()
        model.layers[0].norm.running_var.uniform_(0.5, 1.5)
    model.save_weights(tmp_path / "m.weights.h5")
    with h5py.File(tmp_path / "m.weights.h5", "r") as h5:
        assert sorted(h5["layers/torch_block/linear/vars"]) == ["bias", "weight"]
        assert "running_mean" in h5["layers/torch_block/norm/vars"]
    other = ktorch.Sequential([ktorch.Input((4,)), TorchBlock(name="block")])
    other.load_weights(tmp_path / "m.weights.h5")
    ours, theirs = model.layers[0].state_dict(), other.layers[0].state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        torch.testing.assert_close(theirs[key], ours[key], rtol=0, atol=0)
