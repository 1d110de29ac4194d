"""Every layer class ktorch exports: same weights-file layout as Keras 3, files move both ways."""

from __future__ import annotations

import inspect

import h5py
import numpy as np
import pytest

import ktorch
from ktorch.saving import keras_layout
from tests.keras_ref import keras_module, to_numpy
from tests.saving.layer_cases import (
    CASES,
    CLASS_OF,
    COVERED_ELSEWHERE,
    build_model,
    random_weights,
    sample_inputs,
)

_IDS = [case.name for case in CASES]


@pytest.fixture(scope="module")
def keras():
    return keras_module()


def _datasets(path) -> dict[str, tuple]:
    """Every dataset of an HDF5 file: path -> (shape, dtype kind)."""
    found = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            found[name] = (obj.shape, obj.dtype.kind)

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return found


def _randomized(model, seed: int = 1):
    model.set_weights(random_weights(model.weights, seed))
    return model


def _predict(model, case):
    inputs = sample_inputs(case)
    return to_numpy(model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0))


def test_every_exported_layer_has_a_case():
    exported = {
        obj.__name__
        for obj in vars(ktorch.layers).values()
        if inspect.isclass(obj) and issubclass(obj, ktorch.layers.Layer)
    }
    covered = {CLASS_OF.get(case.name, case.name.split("-")[0]) for case in CASES}
    assert exported - covered - COVERED_ELSEWHERE == set()


@pytest.mark.parametrize("case", CASES, ids=_IDS)
def test_weights_file_has_keras_paths_shapes_and_dtypes(case, keras, tmp_path):
    build_model(keras, case).save_weights(tmp_path / "keras.weights.h5")
    build_model(ktorch, case).save_weights(tmp_path / "ktorch.weights.h5")
    assert _datasets(tmp_path / "ktorch.weights.h5") == _datasets(tmp_path / "keras.weights.h5")


@pytest.mark.parametrize("case", CASES, ids=_IDS)
def test_keras_files_load_in_ktorch(case, keras, tmp_path):
    reference = _randomized(build_model(keras, case))
    expected = _predict(reference, case)
    reference.save(tmp_path / "model.keras")
    reference.save_weights(tmp_path / "model.weights.h5")

    loaded = ktorch.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(_predict(loaded, case), expected, atol=1e-5)

    rebuilt = build_model(ktorch, case)
    rebuilt.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_allclose(_predict(rebuilt, case), expected, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=_IDS)
def test_ktorch_files_load_in_keras(case, keras, tmp_path):
    model = _randomized(build_model(ktorch, case))
    expected = _predict(model, case)
    model.save(tmp_path / "model.keras")
    model.save_weights(tmp_path / "model.weights.h5")

    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(_predict(loaded, case), expected, atol=1e-5)

    rebuilt = build_model(keras, case)
    rebuilt.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_allclose(_predict(rebuilt, case), expected, atol=1e-5)


def test_functional_layer_order_is_keras_order(keras):
    def graph(lib):
        x = lib.Input((4,), name="x")
        a = lib.layers.Dense(2, name="a")(x)
        b = lib.layers.Dense(3, name="b")(x)
        c = lib.layers.Dense(2, name="c")(b)
        d = lib.layers.Dense(2, name="d")(c)
        return lib.Model(x, [lib.layers.Add(name="e")([a, d]), c])

    expected = [layer.name for layer in graph(keras).layers]
    assert [layer.name for layer in keras_layout.keras_layers(graph(ktorch))] == expected


def test_saveables_walk_subclassed_models_as_keras(keras):
    """Keras reaches `out` through the `layers` list before its attribute: `layers/dense_1`."""

    class Net(ktorch.Model):
        def __init__(self):
            super().__init__()
            self.alpha = ktorch.layers.Dense(3)
            self.out = ktorch.layers.Dense(2)
            self.blocks = [ktorch.layers.Dense(4), ktorch.layers.Dense(4)]

        def call(self, x):
            for block in self.blocks:
                x = block(x)
            return self.out(self.alpha(x))

    model = Net()
    model(np.zeros((2, 5), "float32"))
    paths = [s.path for s in keras_layout.saveables(model)]
    assert paths == ["", "alpha", "blocks/dense", "blocks/dense_1", "layers/dense_1"]


def _paths(path) -> set[str]:
    return set(_datasets(path))


def test_user_layer_properties_name_sub_layers_as_keras_does(keras, tmp_path):
    """A sub-layer kept privately and exposed by a property is saved under the property."""

    def make(lib):
        class Block(lib.layers.Layer):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                self._inner = lib.layers.Dense(3)
                self.gate = lib.layers.Dense(3)

            @property
            def projection(self):
                return self._inner

            def call(self, x):
                return self._inner(x) * self.gate(x)

        inputs = lib.Input((4,))
        return lib.Model(inputs, Block()(inputs))

    make(keras).save_weights(tmp_path / "keras.weights.h5")
    make(ktorch).save_weights(tmp_path / "ktorch.weights.h5")
    paths = _paths(tmp_path / "ktorch.weights.h5")
    assert "layers/block/projection/vars/0" in paths
    assert paths == _paths(tmp_path / "keras.weights.h5")
