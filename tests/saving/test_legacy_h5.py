"""Legacy `.h5` files: Keras 2 whole models and weights, both ways with Keras 3, round trips.

The Keras 2 files under `fixtures/keras2/` were written by Keras 2 itself (tf-keras, see
`fixtures/keras2/make_fixtures.py`) with the inputs and Keras 2's outputs beside them.
"""

from __future__ import annotations

import os
import sys
import warnings

import h5py
import numpy as np
import pytest
import torch

import ktorch
from ktorch import layers
from ktorch.saving import legacy_h5
from ktorch.saving.keras_layout import keras_trainable_weights
from tests.keras_ref import keras_module, to_numpy

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "keras2")
WITH_WEIGHTS_FILE = ("mlp", "convnet", "text", "masked_sequence", "multi_input")
# One of most other layers Keras 2 and ktorch both have, on grids and on sequences.
ZOOS = ("zoo_grid", "zoo_sequence")
MODELS = WITH_WEIGHTS_FILE + ZOOS
COMPILED = {"mlp": "Nadam", "convnet": "SGD", "masked_sequence": "RMSprop", "multi_input": "Adam"}
NEXT_STEP = ("convnet", "masked_sequence", "multi_input")


def fixture(name: str) -> tuple[str, str, dict]:
    data = np.load(os.path.join(FIXTURES, f"{name}.npz"))
    arrays = {key: data[key] for key in data.files}
    return (
        os.path.join(FIXTURES, f"{name}.h5"),
        os.path.join(FIXTURES, f"{name}_weights.h5"),
        arrays,
    )


def numbered(arrays: dict, prefix: str) -> list[np.ndarray]:
    keys = [k for k in arrays if k.startswith(prefix) and k[len(prefix) :].isdigit()]
    return [arrays[k] for k in sorted(keys, key=lambda k: int(k[len(prefix) :]))]


def model_input(xs: list[np.ndarray]):
    return xs if len(xs) > 1 else xs[0]


def as_list(outputs) -> list[np.ndarray]:
    return [to_numpy(o) for o in outputs] if isinstance(outputs, list) else [to_numpy(outputs)]


def assert_outputs(model, arrays: dict, atol: float = 1e-5) -> None:
    outputs = as_list(model.predict(model_input(numbered(arrays, "x")), verbose=0))
    expected = numbered(arrays, "y")
    assert len(outputs) == len(expected)
    for got, want in zip(outputs, expected, strict=True):
        np.testing.assert_allclose(got, want, atol=atol, rtol=0)


def scramble(model) -> None:
    """Overwrites every weight with other random values (variances stay positive)."""
    generator = torch.Generator().manual_seed(123)
    with torch.no_grad():
        for weight in model.weights:
            value = torch.randn(weight.shape, generator=generator, dtype=torch.float64)
            if "variance" in weight.path:
                value = value.abs() + 0.5
            weight.copy_(value.to(weight.dtype))


def snapshot(model) -> list[np.ndarray]:
    return [w.detach().cpu().numpy().copy() for w in model.weights]


def assert_unchanged(model, before: list[np.ndarray]) -> None:
    for weight, value in zip(model.weights, before, strict=True):
        np.testing.assert_array_equal(weight.detach().cpu().numpy(), value)


# ----------------------------------------------------------------- Keras 2 files


@pytest.mark.parametrize("name", MODELS)
def test_keras2_model_loads_and_reproduces_outputs(name):
    path, _, arrays = fixture(name)
    model = ktorch.models.load_model(path)
    assert_outputs(model, arrays)
    assert model.compiled == (name in COMPILED)
    if name in COMPILED:
        assert type(model.optimizer).__name__ == COMPILED[name]


@pytest.mark.parametrize("name", WITH_WEIGHTS_FILE)
def test_keras2_weights_file_loads_into_the_same_architecture(name):
    path, weights_path, arrays = fixture(name)
    model = ktorch.models.load_model(path, compile=False)
    scramble(model)
    with pytest.raises(AssertionError):
        assert_outputs(model, arrays)
    model.load_weights(weights_path)
    assert_outputs(model, arrays)


def test_keras2_weights_load_into_a_model_written_in_ktorch():
    # The same layers as the Keras 2 script builds, created here with ktorch's own names.
    _, weights_path, arrays = fixture("mlp")
    model = ktorch.Sequential(
        [
            layers.Dense(16, activation="relu", input_shape=(8,)),
            layers.Dropout(0.3),
            layers.Dense(12, activation="tanh"),
            layers.Dense(4, activation="softmax"),
        ]
    )
    assert legacy_h5.is_legacy_weights_file(weights_path)
    model.load_weights(weights_path)
    assert_outputs(model, arrays)


def test_keras2_whole_model_file_loads_with_load_weights():
    path, _, arrays = fixture("convnet")
    model = ktorch.models.load_model(path, compile=False)
    scramble(model)
    model.load_weights(path)
    assert_outputs(model, arrays)


@pytest.mark.parametrize("name", NEXT_STEP)
def test_keras2_optimizer_state_continues_training_like_keras2(name):
    # Keras 2 trained one more step after saving; ktorch must land on the same weights,
    # which needs the optimizer's slots and iteration count restored from the file.
    path, _, arrays = fixture(name)
    model = ktorch.models.load_model(path)
    assert model.optimizer.iterations == 1
    x = model_input(numbered(arrays, "next_x"))
    y = model_input(numbered(arrays, "next_y"))
    model.train_on_batch(x, y)
    expected = numbered(arrays, "trained")
    trained = keras_trainable_weights(model)
    assert len(trained) == len(expected)
    for weight, want in zip(trained, expected, strict=True):
        np.testing.assert_allclose(to_numpy(weight), want, atol=1e-4, rtol=0)


def test_keras2_nadam_slots_restored_from_the_file():
    path, _, _ = fixture("mlp")
    model = ktorch.models.load_model(path)
    optimizer = model.optimizer
    assert optimizer.built and optimizer.iterations == 1
    assert optimizer.learning_rate == pytest.approx(0.01)
    with h5py.File(path, "r") as f:
        group = f["optimizer_weights"]
        saved = {name: group[name][()] for name in group.attrs["weight_names"]}
    variables = optimizer.variables
    params = keras_trainable_weights(model)
    # Keras 3 layout: iteration, learning rate, then momentum and velocity of each weight.
    for index, param in enumerate(params):
        layer, weight = param.path.split("/")
        momentum = variables[2 + 2 * index]
        velocity = variables[3 + 2 * index]
        np.testing.assert_array_equal(to_numpy(momentum), saved[f"Nadam/m/{layer}/{weight}:0"])
        np.testing.assert_array_equal(to_numpy(velocity), saved[f"Nadam/v/{layer}/{weight}:0"])
    assert model.loss == "categorical_crossentropy"


def test_keras2_training_config_compiles_loss_and_metrics():
    path, _, arrays = fixture("multi_input")
    model = ktorch.models.load_model(path)
    assert model.loss == ["mse", "categorical_crossentropy"]
    x = model_input(numbered(arrays, "next_x"))
    y = model_input(numbered(arrays, "next_y"))
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert {"score_mean_absolute_error", "label_categorical_accuracy"} <= set(logs)
    score, label = model.predict(x, verbose=0)
    np.testing.assert_allclose(
        logs["score_mean_absolute_error"], np.abs(score - y[0]).mean(), rtol=1e-5
    )
    np.testing.assert_allclose(
        logs["label_categorical_accuracy"],
        (label.argmax(-1) == y[1].argmax(-1)).mean(),
        rtol=1e-6,
    )


@pytest.mark.parametrize("name", ZOOS)
def test_keras2_zoo_round_trips_through_ktorch(tmp_path, name):
    path, _, arrays = fixture(name)
    model = ktorch.models.load_model(path)
    ours = str(tmp_path / f"{name}.h5")
    model.save(ours)
    assert_outputs(ktorch.models.load_model(ours), arrays)


def test_keras2_lambda_bytecode_is_refused_in_safe_mode():
    path, _, _ = fixture("lambda_layer")
    with pytest.raises(ValueError, match="bytecode.*safe mode"):
        ktorch.models.load_model(path)


@pytest.mark.skipif(
    sys.version_info[:2] != (3, 11), reason="the fixture's bytecode was written by Python 3.11"
)
def test_keras2_lambda_loads_without_safe_mode():
    path, _, arrays = fixture("lambda_layer")
    model = ktorch.models.load_model(path, safe_mode=False)
    assert_outputs(model, arrays)


# ---------------------------------------------------------------- Keras 3 interop


def keras3_models(keras):
    """Small Keras 3 models covering the layers whose weight order matters."""
    L = keras.layers
    inputs = keras.Input((6, 4), name="seq")
    x = L.Bidirectional(L.LSTM(3, return_sequences=True))(inputs)
    x = L.GRU(3, return_sequences=True)(x)
    x = L.MultiHeadAttention(2, 3, name="mha")(x, x)
    x = L.LayerNormalization()(x)
    x = L.Conv1D(4, 2)(x)
    x = L.BatchNormalization()(x)
    x = L.GlobalAveragePooling1D()(x)
    rnn = keras.Model(inputs, L.Dense(2)(x), name="rnn")

    inner_in = keras.Input((5,))
    inner = keras.Model(inner_in, L.Dense(3, activation="tanh")(inner_in), name="inner")
    outer_in = keras.Input((5,), name="features")
    hidden = inner(outer_in)
    nested = keras.Model(outer_in, [hidden, L.Dense(2, name="head")(hidden)], name="nested")

    sequential = keras.Sequential(
        [keras.Input((5,)), L.Dense(4, activation="relu"), L.Dropout(0.2), L.Dense(3)],
        name="sequential",
    )
    return {"rnn": (rnn, [(3, 6, 4)]), "nested": (nested, [(3, 5)]), "seq": (sequential, [(3, 5)])}


def keras3_randomize(keras, model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        value = rng.normal(0.0, 0.5, tuple(weight.shape))
        if "variance" in weight.path:
            value = np.abs(value) + 0.5
        weight.assign(value.astype("float32"))


@pytest.mark.parametrize("name", ["rnn", "nested", "seq"])
def test_keras3_legacy_h5_loads_in_ktorch(tmp_path, name):
    keras = keras_module()
    model, shapes = keras3_models(keras)[name]
    keras3_randomize(keras, model, 1)
    rng = np.random.default_rng(2)
    xs = [rng.normal(size=s).astype("float32") for s in shapes]
    model.compile(optimizer="adam", loss="mse")
    targets = [rng.normal(size=tuple(o.shape)).astype("float32") for o in as_list(model(*xs))]
    model.train_on_batch(model_input(xs), model_input(targets))
    path = str(tmp_path / "keras3.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(path)
    expected = as_list(model.predict(model_input(xs), verbose=0))

    loaded = ktorch.models.load_model(path)
    for got, want in zip(
        as_list(loaded.predict(model_input(xs), verbose=0)), expected, strict=True
    ):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    # The optimizer state comes back in Keras 3's layout, variable for variable.
    ours = [to_numpy(v) for v in loaded.optimizer.variables]
    theirs = [to_numpy(v.value) for v in model.optimizer.variables]
    assert len(ours) == len(theirs)
    for got, want in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-7, rtol=0)

    # Keras 3's legacy weights writer (the Keras 2 layout) → ktorch load_weights.
    from keras.src.legacy.saving import legacy_h5_format

    weights_path = str(tmp_path / "keras3_weights.h5")
    with h5py.File(weights_path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    scramble(loaded)
    loaded.load_weights(weights_path)
    for got, want in zip(
        as_list(loaded.predict(model_input(xs), verbose=0)), expected, strict=True
    ):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", MODELS)
def test_ktorch_h5_loads_in_keras3(tmp_path, name):
    keras = keras_module()
    path, _, arrays = fixture(name)
    model = ktorch.models.load_model(path)
    ours = str(tmp_path / f"{name}.h5")
    model.save(ours)
    # Keras 3 has no Keras 2 hard sigmoid (the zoos use it): Keras 3 gets it as a custom object.
    custom = {"keras2>hard_sigmoid": lambda x: keras.ops.clip(x * 0.2 + 0.5, 0.0, 1.0)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        restored = keras.models.load_model(ours, custom_objects=custom)
    xs = numbered(arrays, "x")
    outputs = as_list(restored.predict(model_input(xs), verbose=0))
    for got, want in zip(outputs, numbered(arrays, "y"), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    if name in COMPILED:
        assert type(restored.optimizer).__name__ == COMPILED[name]
        assert_keras3_optimizer_layout(restored, ours, model)


def assert_keras3_optimizer_layout(restored, path: str, model) -> None:
    """The file's optimizer weights are Keras 3's optimizer variables, in Keras 3's order.

    Keras 3's own `.h5` loader builds the optimizer on `model._trainable_variables`, which is
    empty for functional and Sequential models, so it never restores a state (not even from
    its own files); build a fresh one on all trainable variables and set the values by hand.
    """
    from keras.src.legacy.saving import legacy_h5_format

    optimizer = type(restored.optimizer).from_config(restored.optimizer.get_config())
    optimizer.build(restored.trainable_variables)
    with h5py.File(path, "r") as f:
        values = [np.asarray(v) for v in legacy_h5_format.load_optimizer_weights_from_hdf5_group(f)]
    optimizer.set_weights(values)
    theirs = [to_numpy(v.value) for v in optimizer.variables]
    assert int(theirs[0]) == model.optimizer.iterations
    ours = legacy_h5._keras3_optimizer_store(model.optimizer, model, theirs)
    for index, value in enumerate(model.optimizer.variables):
        np.testing.assert_allclose(ours[str(index)], to_numpy(value), atol=1e-7, rtol=0)


def test_ktorch_h5_with_ktorch_layers_loads_in_keras3(tmp_path):
    keras = keras_module()
    inputs = ktorch.Input((7,), dtype="int32")
    x = layers.Embedding(20, 6, mask_zero=True)(inputs)
    x = layers.Bidirectional(layers.GRU(4, reset_after=False, return_sequences=True))(x)
    x = layers.LSTM(3)(x)
    outputs = layers.Dense(2, activation="softmax")(x)
    model = ktorch.Model(inputs, outputs)
    model.compile(optimizer=ktorch.optimizers.RMSprop(momentum=0.3), loss="mse", metrics=["mae"])
    tokens = np.array([[1, 2, 3, 0, 0, 0, 0], [4, 5, 6, 7, 8, 9, 1]], dtype="int32")
    model.train_on_batch(tokens, np.ones((2, 2), "float32"))
    path = str(tmp_path / "model.h5")
    model.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        restored = keras.models.load_model(path)
    np.testing.assert_allclose(
        to_numpy(restored.predict(tokens, verbose=0)),
        model.predict(tokens, verbose=0),
        atol=1e-5,
        rtol=0,
    )
    assert restored.optimizer.momentum == pytest.approx(0.3)
    assert_keras3_optimizer_layout(restored, path, model)


# ---------------------------------------------------------------- ktorch round trips


def functional_model():
    inputs = ktorch.Input((6,), name="features")
    inner_in = ktorch.Input((4,))
    inner = ktorch.Model(inner_in, layers.Dense(3, activation="tanh")(inner_in), name="inner")
    x = layers.Dense(4, activation="relu")(inputs)
    x = layers.BatchNormalization()(x)
    hidden = inner(x)
    stack = ktorch.Sequential([layers.Dense(5), layers.Dense(2)], name="stack")
    return ktorch.Model(inputs, [hidden, stack(hidden)], name="outer")


def sequential_model():
    return ktorch.Sequential(
        [
            ktorch.Input((6,)),
            layers.Dense(8, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(3, activation="softmax"),
        ]
    )


@pytest.mark.parametrize("build", [sequential_model, functional_model])
def test_round_trip_whole_model(tmp_path, build):
    model = build()
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    x = np.random.default_rng(0).normal(size=(5, 6)).astype("float32")
    targets = as_list(model.predict(x, verbose=0))
    model.train_on_batch(x, model_input([t + 1.0 for t in targets]))
    path = str(tmp_path / "model.h5")
    model.save(path)
    restored = ktorch.models.load_model(path)
    for got, want in zip(
        as_list(restored.predict(x, verbose=0)), as_list(model.predict(x, verbose=0)), strict=True
    ):
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    assert [layer.name for layer in restored.layers] == [layer.name for layer in model.layers]
    for got, want in zip(restored.optimizer.variables, model.optimizer.variables, strict=True):
        np.testing.assert_allclose(to_numpy(got), to_numpy(want), atol=0, rtol=0)
    # Training goes on identically (same dropout masks from the same seed).
    y = model_input([t * 0.5 for t in targets])
    ktorch.utils.set_random_seed(7)
    model.train_on_batch(x, y)
    ktorch.utils.set_random_seed(7)
    restored.train_on_batch(x, y)
    for got, want in zip(restored.weights, model.weights, strict=True):
        np.testing.assert_allclose(to_numpy(got), to_numpy(want), atol=1e-6, rtol=0)


@pytest.mark.parametrize("build", [sequential_model, functional_model])
def test_round_trip_weights(tmp_path, build):
    model = build()
    x = np.random.default_rng(0).normal(size=(5, 6)).astype("float32")
    expected = as_list(model.predict(x, verbose=0))
    path = str(tmp_path / "weights.h5")
    model.save_weights(path)
    assert legacy_h5.is_legacy_weights_file(path)
    other = build()
    other.load_weights(path)
    for got, want in zip(as_list(other.predict(x, verbose=0)), expected, strict=True):
        np.testing.assert_allclose(got, want, atol=0, rtol=0)


def test_round_trip_without_optimizer(tmp_path):
    model = sequential_model()
    model.compile(optimizer="sgd", loss="mse")
    path = str(tmp_path / "model.h5")
    model.save(path, include_optimizer=False)
    with h5py.File(path, "r") as f:
        assert "training_config" not in f.attrs and "optimizer_weights" not in f
    assert not ktorch.models.load_model(path).compiled


def test_file_layout_is_keras2(tmp_path):
    model = sequential_model()
    path = str(tmp_path / "model.h5")
    model.save(path)
    with h5py.File(path, "r") as f:
        assert {"keras_version", "backend", "model_config"} <= set(f.attrs)
        group = f["model_weights"]
        names = [n.decode() for n in group.attrs["layer_names"]]
        assert names == [layer.name for layer in model.layers]
        dense = model.layers[0]
        weight_names = [n.decode() for n in group[dense.name].attrs["weight_names"]]
        assert weight_names == [f"{dense.name}/kernel", f"{dense.name}/bias"]
        np.testing.assert_array_equal(
            group[dense.name][weight_names[0]][()], to_numpy(dense.kernel)
        )


# ------------------------------------------------------------------ by_name, mismatch


def test_faq_load_weights_by_name(tmp_path):
    fname = str(tmp_path / "my_model_weights.h5")
    from ktorch.layers import Dense
    from ktorch.models import Sequential

    # The original model, as the Keras 2 FAQ writes it.
    model = Sequential()
    model.add(Dense(2, input_dim=3, name="dense_1"))
    model.add(Dense(3, name="dense_2"))
    model.save_weights(fname)
    original = model.get_layer("dense_1").get_weights()

    # The new model.
    model = Sequential()
    model.add(Dense(2, input_dim=3, name="dense_1"))  # will be loaded
    model.add(Dense(10, name="new_dense"))  # will not be loaded
    new_dense = model.get_layer("new_dense").get_weights()
    model.load_weights(fname, by_name=True)

    for got, want in zip(model.get_layer("dense_1").get_weights(), original, strict=True):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(model.get_layer("new_dense").get_weights(), new_dense, strict=True):
        np.testing.assert_array_equal(got, want)


def test_by_name_from_a_keras2_file():
    _, weights_path, _ = fixture("multi_input")
    with h5py.File(weights_path, "r") as f:
        kernel = f["dense_7"]["dense_7/kernel:0"][()]
    inputs = ktorch.Input((16,))
    model = ktorch.Model(inputs, layers.Dense(8, name="dense_7")(layers.Dense(16)(inputs)))
    untouched = model.layers[1].get_weights()
    model.load_weights(weights_path, by_name=True)
    np.testing.assert_array_equal(model.get_layer("dense_7").get_weights()[0], kernel)
    for got, want in zip(model.layers[1].get_weights(), untouched, strict=True):
        np.testing.assert_array_equal(got, want)


def two_dense(units: int):
    return ktorch.Sequential(
        [ktorch.Input((3,)), layers.Dense(4, name="a"), layers.Dense(units, name="b")]
    )


def test_skip_mismatch_loads_the_rest(tmp_path):
    path = str(tmp_path / "w.h5")
    source = two_dense(2)
    source.save_weights(path)
    target = two_dense(5)
    before_b = target.get_layer("b").get_weights()
    with pytest.warns(UserWarning, match="Skipping the weights of .*'b'"):
        target.load_weights(path, skip_mismatch=True)
    for got, want in zip(
        target.get_layer("a").get_weights(), source.get_layer("a").get_weights(), strict=True
    ):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(target.get_layer("b").get_weights(), before_b, strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.warns(UserWarning, match="Skipping"):
        target.load_weights(path, by_name=True, skip_mismatch=True)
    np.testing.assert_array_equal(
        target.get_layer("a").get_weights()[0], source.get_layer("a").get_weights()[0]
    )


def test_mismatch_names_the_layer_and_shapes_and_changes_nothing(tmp_path):
    path = str(tmp_path / "w.h5")
    two_dense(2).save_weights(path)
    target = two_dense(5)
    before = snapshot(target)
    with pytest.raises(ValueError, match=r"'b'.*expects shape \(4, 5\).*shape \(4, 2\)"):
        target.load_weights(path)
    assert_unchanged(target, before)
    with pytest.raises(ValueError, match=r"'b'.*\(4, 5\).*\(4, 2\)"):
        target.load_weights(path, by_name=True)
    assert_unchanged(target, before)


def test_layer_count_mismatch_raises(tmp_path):
    path = str(tmp_path / "w.h5")
    two_dense(2).save_weights(path)
    target = ktorch.Sequential([ktorch.Input((3,)), layers.Dense(4)])
    before = snapshot(target)
    with pytest.raises(ValueError, match="Layer count mismatch.*1 layer.*2"):
        target.load_weights(path)
    assert_unchanged(target, before)


# ------------------------------------------------------------------- bad files


def test_truncated_file_raises_and_changes_nothing(tmp_path):
    _, weights_path, _ = fixture("mlp")
    data = open(weights_path, "rb").read()
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(data[: len(data) // 2])
    model = ktorch.models.load_model(fixture("mlp")[0], compile=False)
    before = snapshot(model)
    assert not legacy_h5.is_legacy_weights_file(truncated)
    with pytest.raises((OSError, ValueError)):
        legacy_h5.load_weights_from_hdf5(model, truncated)
    assert_unchanged(model, before)
    with pytest.raises(OSError, match="Unable to read"):
        legacy_h5.load_model_from_hdf5(truncated)


def test_corrupt_dataset_raises_and_changes_nothing(tmp_path):
    path = tmp_path / "w.h5"
    model = two_dense(2)
    model.save_weights(str(path))
    with h5py.File(path, "r+") as f:
        del f["b"]["b/bias"]
    target = two_dense(2)
    before = snapshot(target)
    with pytest.raises(ValueError, match="b/bias.*missing"):
        target.load_weights(str(path))
    assert_unchanged(target, before)


def test_not_hdf5_is_not_a_legacy_file(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("not an HDF5 file")
    assert not legacy_h5.is_legacy_weights_file(path)
    with pytest.raises(OSError, match="Unable to read"):
        legacy_h5.load_weights_from_hdf5(two_dense(2), path)


def test_keras3_weights_layout_is_not_a_legacy_file(tmp_path):
    keras = keras_module()
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    path = str(tmp_path / "model.weights.h5")
    model.save_weights(path)
    assert not legacy_h5.is_legacy_weights_file(path)
    assert legacy_h5.is_legacy_weights_file(fixture("mlp")[1])
    assert legacy_h5.is_legacy_weights_file(fixture("mlp")[0])


def test_missing_model_config_raises(tmp_path):
    with pytest.raises(ValueError, match="No model config"):
        ktorch.models.load_model(fixture("mlp")[1])
    path = tmp_path / "broken.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = "{not json"
    with pytest.raises(ValueError, match="model_config.*not valid JSON"):
        ktorch.models.load_model(str(path))


def test_links_to_other_files_are_refused(tmp_path):
    path = tmp_path / "w.h5"
    two_dense(2).save_weights(str(path))
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["kernel"] = np.zeros((3, 4), "float32")
    with h5py.File(path, "r+") as f:
        del f["a"]["a/kernel"]
        f["a"]["a/kernel"] = h5py.ExternalLink(str(other), "kernel")
    target = two_dense(2)
    before = snapshot(target)
    with pytest.raises(ValueError, match="Not allowed"):
        target.load_weights(str(path))
    assert_unchanged(target, before)


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "model.h5"
    model = sequential_model()
    model.save(str(path))
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(legacy_h5, "_write_model_weights", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        model.save(str(path))
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.h5"]


def test_subclassed_model_cannot_be_saved_whole_but_its_weights_can(tmp_path):
    class Tiny(ktorch.Model):
        def __init__(self):
            super().__init__()
            self.hidden = layers.Dense(3)

        def call(self, x):
            return self.hidden(x)

    model = Tiny()
    x = torch.randn(2, 4)
    model(x)
    with pytest.raises(NotImplementedError, match="subclassed.*model.keras"):
        model.save(str(tmp_path / "tiny.h5"))
    assert not (tmp_path / "tiny.h5").exists()
    path = str(tmp_path / "tiny_weights.h5")
    model.save_weights(path)
    other = Tiny()
    other(x)
    other.load_weights(path)
    torch.testing.assert_close(other(x), model(x))


def test_optimizer_state_that_no_longer_fits_warns_and_starts_fresh(tmp_path):
    model = two_dense(2)
    model.compile(optimizer="adam", loss="mse")
    model.train_on_batch(np.ones((2, 3), "float32"), np.ones((2, 2), "float32"))
    model.get_layer("a").trainable = False
    path = str(tmp_path / "model.h5")
    model.save(path)
    with pytest.warns(UserWarning, match="freshly initialized optimizer"):
        restored = ktorch.models.load_model(path)
    assert restored.optimizer.iterations == 0
    np.testing.assert_array_equal(
        restored.get_layer("a").get_weights()[0], model.get_layer("a").get_weights()[0]
    )


def test_keras3_lambda_bytecode_needs_safe_mode_off(tmp_path):
    keras = keras_module()
    model = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda x: x * 3.0 - 1.0)])
    path = str(tmp_path / "lambda.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(path)
    with pytest.raises(ValueError, match="bytecode.*safe mode"):
        ktorch.models.load_model(path)
    restored = ktorch.models.load_model(path, safe_mode=False)
    x = np.arange(6, dtype="float32").reshape(2, 3)
    np.testing.assert_allclose(restored.predict(x, verbose=0), x * 3.0 - 1.0)


def test_torch_optimizer_is_not_stored(tmp_path):
    model = two_dense(2)
    model.compile(optimizer=torch.optim.SGD(model.parameters(), lr=0.1), loss="mse")
    path = str(tmp_path / "model.h5")
    with pytest.warns(UserWarning, match="without its training config"):
        model.save(path)
    with h5py.File(path, "r") as f:
        assert "training_config" not in f.attrs and "optimizer_weights" not in f
    restored = ktorch.models.load_model(path)
    assert not restored.compiled
    x = np.ones((2, 3), "float32")
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))
