"""Weights in `.safetensors`: keys, metadata, loading modes, and refusing bad files."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import ktorch
from ktorch import layers
from ktorch.saving import safetensors_io
from tests.keras_ref import keras_module, to_numpy


def _sequence_model(K, prefix: str = ""):
    """LSTM, Bidirectional GRU, two attention layers, batch norm and a nested Sequential."""
    inputs = K.Input((5, 8), name=f"{prefix}x")
    x = K.layers.LSTM(4, return_sequences=True, name=f"{prefix}lstm")(inputs)
    gru = K.layers.GRU(3, return_sequences=True, name=f"{prefix}gru")
    x = K.layers.Bidirectional(gru, name=f"{prefix}bi")(x)
    x = K.layers.MultiHeadAttention(2, 4, name=f"{prefix}mha1")(x, x)
    x = K.layers.MultiHeadAttention(2, 4, name=f"{prefix}mha2")(x, x)
    x = K.layers.BatchNormalization(name=f"{prefix}bn")(x)
    x = K.layers.Dense(2, name=f"{prefix}head")(K.layers.Flatten(name=f"{prefix}flat")(x))
    inner = K.Sequential(
        [
            K.Input((2,)),
            K.layers.Dense(3, name=f"{prefix}i1"),
            K.layers.Dense(3, name=f"{prefix}i2"),
        ],
        name=f"{prefix}inner",
    )
    return K.Model(inputs, inner(x), name=f"{prefix}outer")


def _mlp(hidden: int = 4, name: str = "mlp"):
    return ktorch.Sequential(
        [
            ktorch.Input((3,)),
            layers.Dense(hidden, name="hidden"),
            layers.BatchNormalization(name="norm"),
            layers.Dense(2, name="out"),
        ],
        name=name,
    )


def _snapshot(model) -> list[np.ndarray]:
    return [w.copy() for w in model.get_weights()]


def _assert_unchanged(model, before) -> None:
    after = model.get_weights()
    assert len(after) == len(before)
    for a, b in zip(after, before, strict=True):
        np.testing.assert_array_equal(a, b)


def _trained(model, x, y):
    """A model whose batch-norm statistics have moved away from their initial values."""
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    return model


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(16, 5, 8)).astype("float32"), rng.normal(size=(16, 3)).astype("float32")


def test_round_trip_reproduces_predictions(tmp_path, data):
    x, y = data
    model = _trained(_sequence_model(ktorch), x, y)
    path = tmp_path / "model.safetensors"
    model.save_weights(path)

    # A second instance of the architecture, freshly initialized.
    fresh = _sequence_model(ktorch)
    assert not np.allclose(fresh.predict(x, verbose=0), model.predict(x, verbose=0))
    fresh.load_weights(path)
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))


def test_keys_are_unique_keras_paths_with_metadata(tmp_path):
    model = _sequence_model(ktorch)
    path = tmp_path / "model.safetensors"
    model.save_weights(path)
    with safe_open(path, framework="pt") as f:
        keys = set(f.keys())
        metadata = f.metadata()
    order = json.loads(metadata["weight_order"])
    assert len(order) == len(model.weights) == len(keys) == len(set(order))
    assert set(order) == keys
    # Two attention layers hold sub-layers of the same names: their paths stay apart.
    assert {"mha1/query/kernel", "mha2/query/kernel", "inner/i1/kernel"} <= keys
    assert {"bn/moving_mean", "bn/moving_variance"} <= keys
    assert metadata["format"] == safetensors_io.FORMAT
    assert metadata["format_version"] == safetensors_io.FORMAT_VERSION
    assert metadata["model_class"] == type(model).__name__
    assert metadata["model_name"] == "outer"
    assert json.loads(metadata["weight_layers"])[order.index("inner/i1/kernel")] == "inner"
    stored = load_file(path)
    for key, weight in zip(order, model.weights, strict=True):
        np.testing.assert_array_equal(stored[key].numpy(), weight.numpy())


def test_keys_match_keras_variable_paths():
    keras = keras_module()
    ours = [e.key for e in safetensors_io._weight_entries(_sequence_model(ktorch))]
    theirs = [v.path for v in _sequence_model(keras).weights]
    assert ours == theirs


def test_weights_named_from_keras_variable_paths_load(tmp_path, data):
    """A file keyed by Keras 3's `Variable.path` (no ktorch metadata) loads by key."""
    keras = keras_module()
    x, _ = data
    reference = _sequence_model(keras)
    path = tmp_path / "from_keras.safetensors"
    save_file({v.path: torch.as_tensor(to_numpy(v.value)) for v in reference.weights}, path)
    model = _sequence_model(ktorch)
    model.load_weights(path)
    np.testing.assert_allclose(
        model.predict(x, verbose=0), to_numpy(reference.predict(x, verbose=0)), atol=1e-5
    )


def test_repeated_weight_names_get_numbered_keys(tmp_path):
    class TwoScales(layers.Layer):
        def build(self, input_shape):
            self.first = self.add_weight(shape=(2,), initializer="ones", name="scale")
            self.second = self.add_weight(shape=(2,), initializer="zeros", name="scale")

        def call(self, x):
            return x * self.first + self.second

    inputs = ktorch.Input((2,))
    model = ktorch.Model(inputs, TwoScales(name="two")(inputs))
    keys = [e.key for e in safetensors_io._weight_entries(model)]
    assert keys == ["two/scale", "two/scale_1"]
    path = tmp_path / "two.safetensors"
    model.save_weights(path)
    stored = load_file(path)
    np.testing.assert_array_equal(stored["two/scale"].numpy(), np.ones(2))
    np.testing.assert_array_equal(stored["two/scale_1"].numpy(), np.zeros(2))


def test_load_by_key_into_same_model(tmp_path):
    model = _mlp()
    path = tmp_path / "w.safetensors"
    model.save_weights(path)
    saved = _snapshot(model)
    for w in model.weights:
        w.assign(torch.full(tuple(w.shape), 7.0))
    model.load_weights(path)
    _assert_unchanged(model, saved)


def test_batch_norm_statistics_are_restored(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, size=(32, 3)).astype("float32")
    model = _trained(_mlp(), x, rng.normal(size=(32, 2)).astype("float32"))
    mean = model.get_layer("norm").moving_mean.numpy().copy()
    assert not np.allclose(mean, 0.0)
    path = tmp_path / "w.safetensors"
    model.save_weights(path)
    fresh = _mlp()
    fresh.load_weights(path)
    np.testing.assert_array_equal(fresh.get_layer("norm").moving_mean.numpy(), mean)
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))


def test_stateful_rnn_state_is_not_stored(tmp_path):
    def make():
        return ktorch.Sequential(
            [
                ktorch.Input((4, 3), batch_size=2),
                layers.LSTM(5, stateful=True, name="rnn"),
                layers.Dense(1, name="out"),
            ]
        )

    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 4, 3)).astype("float32")
    model = make()
    model.predict(x, verbose=0)  # moves the carried state away from zeros
    path = tmp_path / "w.safetensors"
    model.save_weights(path)
    assert len(load_file(path)) == len(model.weights) == 5
    fresh = make()
    fresh.load_weights(path)
    model.reset_states()
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))


def test_shape_mismatch_raises_naming_both_shapes(tmp_path):
    _mlp(hidden=4).save_weights(tmp_path / "w.safetensors")
    model = _mlp(hidden=5)
    before = _snapshot(model)
    with pytest.raises(ValueError, match=r"hidden/kernel.*\(3, 5\).*\(3, 4\)"):
        model.load_weights(tmp_path / "w.safetensors")
    _assert_unchanged(model, before)


def test_skip_mismatch_skips_layers_that_differ(tmp_path):
    source = _mlp(hidden=4)
    source.save_weights(tmp_path / "w.safetensors")
    model = _mlp(hidden=5)
    before = dict(zip([w.path for w in model.weights], _snapshot(model), strict=True))
    with pytest.warns(UserWarning, match="hidden"):
        model.load_weights(tmp_path / "w.safetensors", skip_mismatch=True)
    # `hidden` and `norm` (5 features now) keep theirs; `out` differs too (input 5 vs 4).
    for w in model.weights:
        np.testing.assert_array_equal(w.numpy(), before[w.path])
    target = _mlp(hidden=4)
    target.get_layer("out").set_weights([np.ones((4, 2)), np.ones(2)])
    target.get_layer("hidden").set_weights([np.zeros((3, 4)), np.zeros(4)])
    target.save_weights(tmp_path / "other.safetensors")
    partial = _mlp(hidden=4)
    partial.load_weights(tmp_path / "other.safetensors", skip_mismatch=True)
    np.testing.assert_array_equal(partial.get_layer("out").kernel.numpy(), np.ones((4, 2)))


def test_by_name_loads_only_shared_layers(tmp_path):
    source = _mlp()
    source.save_weights(tmp_path / "w.safetensors")
    inputs = ktorch.Input((3,))
    hidden = layers.Dense(4, name="hidden")(inputs)
    other = layers.Dense(2, name="other")(hidden)
    model = ktorch.Model(inputs, other)
    other_before = model.get_layer("other").get_weights()
    model.load_weights(tmp_path / "w.safetensors", by_name=True)
    for ours, theirs in zip(
        model.get_layer("hidden").get_weights(),
        source.get_layer("hidden").get_weights(),
        strict=True,
    ):
        np.testing.assert_array_equal(ours, theirs)
    for ours, kept in zip(model.get_layer("other").get_weights(), other_before, strict=True):
        np.testing.assert_array_equal(ours, kept)


def test_faq_load_by_name(tmp_path):
    fname = tmp_path / "my_model_weights.safetensors"
    model = ktorch.Sequential()
    model.add(layers.Dense(2, input_dim=3, name="dense_1"))
    model.add(layers.Dense(3, name="dense_2"))
    model.save_weights(fname)

    model_new = ktorch.Sequential()
    model_new.add(layers.Dense(2, input_dim=3, name="dense_1"))  # will be loaded
    model_new.add(layers.Dense(10, name="new_dense"))  # will not be loaded
    kept = model_new.get_layer("new_dense").get_weights()
    model_new.load_weights(fname, by_name=True)
    for ours, theirs in zip(
        model_new.get_layer("dense_1").get_weights(),
        model.get_layer("dense_1").get_weights(),
        strict=True,
    ):
        np.testing.assert_array_equal(ours, theirs)
    for ours, before in zip(model_new.get_layer("new_dense").get_weights(), kept, strict=True):
        np.testing.assert_array_equal(ours, before)


def test_by_name_matches_nested_weights_whatever_their_inner_names(tmp_path):
    source = _sequence_model(ktorch)
    source.save_weights(tmp_path / "w.safetensors")
    # Same layer name `bi`, but its inner layer is `forward_other` instead of `forward_gru`.
    inputs = ktorch.Input((5, 4))
    gru = layers.GRU(3, return_sequences=True, name="other")
    model = ktorch.Model(inputs, layers.Bidirectional(gru, name="bi")(inputs))
    model.load_weights(tmp_path / "w.safetensors", by_name=True)
    for ours, theirs in zip(
        model.get_layer("bi").get_weights(),
        source.get_layer("bi").get_weights(),
        strict=True,
    ):
        np.testing.assert_array_equal(ours, theirs)


def _auto_named():
    return ktorch.Sequential([ktorch.Input((3,)), layers.Dense(4), layers.Dense(2)])


def test_same_architecture_with_other_automatic_names_loads_in_order(tmp_path):
    source = _auto_named()
    source.save_weights(tmp_path / "w.safetensors")
    model = _auto_named()
    assert {w.path for w in model.weights}.isdisjoint(w.path for w in source.weights)
    model.load_weights(tmp_path / "w.safetensors")
    for ours, theirs in zip(model.get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_in_order_load_checks_shapes(tmp_path):
    _auto_named().save_weights(tmp_path / "w.safetensors")
    model = ktorch.Sequential([ktorch.Input((3,)), layers.Dense(5), layers.Dense(2)])
    before = _snapshot(model)
    with pytest.raises(ValueError, match=r"\(3, 5\).*\(3, 4\)"):
        model.load_weights(tmp_path / "w.safetensors")
    _assert_unchanged(model, before)


def test_by_name_mismatch_raises_or_skips(tmp_path):
    _mlp(hidden=4).save_weights(tmp_path / "w.safetensors")
    model = _mlp(hidden=5)
    before = _snapshot(model)
    with pytest.raises(ValueError, match=r"hidden.*\(3, 5\).*\(3, 4\)"):
        model.load_weights(tmp_path / "w.safetensors", by_name=True)
    _assert_unchanged(model, before)
    with pytest.warns(UserWarning, match="hidden"):
        model.load_weights(tmp_path / "w.safetensors", by_name=True, skip_mismatch=True)
    _assert_unchanged(model, before)


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) - 7],
        lambda data: data[:20],
        lambda data: b"",
        lambda data: b"\x00" * 8 + data[8:],
        lambda data: b"not a safetensors file at all",
    ],
    ids=["truncated-data", "truncated-header", "empty", "bad-header-length", "garbage"],
)
def test_corrupt_file_raises_and_leaves_model_unchanged(tmp_path, damage):
    model = _mlp()
    path = tmp_path / "w.safetensors"
    _mlp().save_weights(path)
    path.write_bytes(damage(path.read_bytes()))
    before = _snapshot(model)
    with pytest.raises(ValueError, match="safetensors"):
        model.load_weights(path)
    _assert_unchanged(model, before)


def _rewrite(path, change):
    tensors = load_file(path)
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata()
    tensors, metadata = change(dict(tensors), dict(metadata))
    save_file(tensors, path, metadata=metadata)


def test_wrong_dtype_raises_and_leaves_model_unchanged(tmp_path):
    path = tmp_path / "w.safetensors"
    _mlp().save_weights(path)

    def to_int(tensors, metadata):
        tensors["out/bias"] = tensors["out/bias"].to(torch.int64)
        return tensors, metadata

    _rewrite(path, to_int)
    model = _mlp()
    before = _snapshot(model)
    with pytest.raises(ValueError, match=r"out/bias.*float.*int64"):
        model.load_weights(path)
    _assert_unchanged(model, before)


def test_other_float_dtype_is_cast(tmp_path):
    source = _mlp()
    path = tmp_path / "w.safetensors"
    source.save_weights(path)
    _rewrite(path, lambda t, m: ({k: v.to(torch.float64) for k, v in t.items()}, m))
    model = _mlp()
    model.load_weights(path)
    for ours, theirs in zip(model.get_weights(), source.get_weights(), strict=True):
        assert ours.dtype == np.float32
        np.testing.assert_array_equal(ours, theirs)


def _drop_key(key):
    def change(tensors, metadata):
        order = json.loads(metadata["weight_order"])
        layers_ = json.loads(metadata["weight_layers"])
        index = order.index(key)
        del tensors[key], order[index], layers_[index]
        metadata["weight_order"] = json.dumps(order)
        metadata["weight_layers"] = json.dumps(layers_)
        return tensors, metadata

    return change


def test_missing_key_raises_and_leaves_model_unchanged(tmp_path):
    path = tmp_path / "w.safetensors"
    _mlp().save_weights(path)
    _rewrite(path, _drop_key("out/bias"))
    model = _mlp()
    before = _snapshot(model)
    with pytest.raises(ValueError, match="out/bias.*missing"):
        model.load_weights(path)
    _assert_unchanged(model, before)


def test_missing_key_with_skip_mismatch_skips_that_layer(tmp_path):
    source = _mlp()
    path = tmp_path / "w.safetensors"
    source.save_weights(path)
    _rewrite(path, _drop_key("out/bias"))
    model = _mlp()
    out_before = model.get_layer("out").get_weights()
    with pytest.warns(UserWarning, match="'out'"):
        model.load_weights(path, skip_mismatch=True)
    for ours, kept in zip(model.get_layer("out").get_weights(), out_before, strict=True):
        np.testing.assert_array_equal(ours, kept)
    np.testing.assert_array_equal(
        model.get_layer("hidden").kernel.numpy(), source.get_layer("hidden").kernel.numpy()
    )


def test_extra_weights_in_file_raise_or_warn(tmp_path):
    path = tmp_path / "w.safetensors"
    _mlp().save_weights(path)

    def add(tensors, metadata):
        tensors["ghost/kernel"] = torch.zeros(2)
        metadata["weight_order"] = json.dumps(
            json.loads(metadata["weight_order"]) + ["ghost/kernel"]
        )
        metadata["weight_layers"] = json.dumps(json.loads(metadata["weight_layers"]) + ["ghost"])
        return tensors, metadata

    _rewrite(path, add)
    model = _mlp()
    before = _snapshot(model)
    with pytest.raises(ValueError, match="ghost/kernel"):
        model.load_weights(path)
    _assert_unchanged(model, before)
    with pytest.warns(UserWarning, match="ghost/kernel"):
        model.load_weights(path, skip_mismatch=True)
    assert not np.array_equal(model.get_layer("out").kernel.numpy(), before[-2])


def test_inconsistent_metadata_raises(tmp_path):
    path = tmp_path / "w.safetensors"
    _mlp().save_weights(path)
    _rewrite(path, lambda t, m: (t, {**m, "weight_order": json.dumps(["hidden/kernel"])}))
    with pytest.raises(ValueError, match="metadata"):
        _mlp().load_weights(path)


def test_failed_save_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    _mlp().save_weights(path)
    previous = path.read_bytes()

    def broken(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors_io, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        _mlp().save_weights(path)
    assert path.read_bytes() == previous
    assert os.listdir(tmp_path) == ["w.safetensors"]


def test_unbuilt_model_raises():
    model = ktorch.Sequential([layers.Dense(2)])
    with pytest.raises(ValueError, match="build"):
        safetensors_io.save_weights(model, "never-written.safetensors")
    assert not os.path.exists("never-written.safetensors")


def test_file_holds_only_tensors(tmp_path):
    """The header is JSON and the rest raw tensor bytes: nothing a loader would execute."""
    path = tmp_path / "w.safetensors"
    _mlp().save_weights(path)
    data = path.read_bytes()
    header_size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_size])
    total = sum(
        np.prod(info["shape"], dtype=np.int64) * 4
        for key, info in header.items()
        if key != "__metadata__"
    )
    assert len(data) == 8 + header_size + total


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_load_into_cuda_model(tmp_path, data):
    x, y = data
    model = _trained(_sequence_model(ktorch), x, y)
    model.save_weights(tmp_path / "w.safetensors")
    fresh = _sequence_model(ktorch).to("cuda")
    fresh.load_weights(tmp_path / "w.safetensors")
    assert all(w.device.type == "cuda" for w in fresh.weights)
    np.testing.assert_allclose(
        fresh.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-4, atol=1e-5
    )


def test_no_warning_on_clean_load(tmp_path):
    _mlp().save_weights(tmp_path / "w.safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        _mlp().load_weights(tmp_path / "w.safetensors")
