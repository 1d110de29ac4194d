"""Both FAQs' saving sections, run as written after `import ktorch as keras` (in a temporary
working directory; `AttentionLayer` stands in for the FAQ's custom layer)."""

from __future__ import annotations

import numpy as np
import pytest

import ktorch as keras
from ktorch.layers import Dense
from ktorch.models import Sequential


class AttentionLayer(keras.layers.Layer):
    """A small custom layer for the FAQ's custom-objects examples."""

    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), name="w")

    def call(self, x):
        return x @ self.w

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def _trained_model():
    keras.utils.set_random_seed(0)
    model = Sequential([keras.Input((3,)), Dense(4, activation="relu"), AttentionLayer(2)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    x = np.random.default_rng(0).random((32, 3)).astype("float32")
    model.fit(x, x[:, :2], epochs=2, verbose=0)
    return model, x


@pytest.fixture(autouse=True)
def _cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_current_faq_whole_model_keras_file():
    from ktorch.saving import load_model

    model, x = _trained_model()
    expected = model.predict(x, verbose=0)
    with keras.utils.CustomObjectScope({"AttentionLayer": AttentionLayer}):
        model.save("my_model.keras")
        del model  # deletes the existing model
        # returns a compiled model identical to the previous one
        model = load_model("my_model.keras")
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-6)
    assert model.compiled and model.optimizer.iterations == 2


def test_keras2_faq_whole_model_h5_file():
    from ktorch.models import load_model

    model, x = _trained_model()
    expected = model.predict(x, verbose=0)
    model.save("my_model.h5")  # creates a HDF5 file 'my_model.h5'
    del model  # deletes the existing model
    model = load_model("my_model.h5", custom_objects={"AttentionLayer": AttentionLayer})
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-6)
    from ktorch.utils import CustomObjectScope

    with CustomObjectScope({"AttentionLayer": AttentionLayer}):
        model = load_model("my_model.h5")
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-6)


@pytest.mark.parametrize("fname", ["my_model.weights.h5", "my_model_weights.h5"])
def test_weights_only_and_by_name(fname):
    model, x = _trained_model()
    model.save_weights(fname)
    copy, _ = _trained_model()
    for w in copy.weights:
        w.assign(np.zeros(w.shape, "float32"))
    copy.load_weights(fname)
    np.testing.assert_allclose(copy.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)

    # The FAQ's by_name example: the original model...
    model = Sequential()
    model.add(Dense(2, input_dim=3, name="dense_1"))
    model.add(Dense(3, name="dense_2"))
    model.save_weights(fname)
    original_dense_1 = model.get_layer("dense_1").get_weights()
    # ...and the new model
    model = Sequential()
    model.add(Dense(2, input_dim=3, name="dense_1"))  # will be loaded
    model.add(Dense(10, name="new_dense"))  # will not be loaded
    new_dense_before = model.get_layer("new_dense").get_weights()
    # load weights from the first model; only affects the first layer, dense_1.
    model.load_weights(fname, by_name=True)
    for a, b in zip(model.get_layer("dense_1").get_weights(), original_dense_1, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(model.get_layer("new_dense").get_weights(), new_dense_before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_architecture_only_json_and_yaml():
    model, x = _trained_model()
    # save as JSON
    json_string = model.to_json()
    # save as YAML
    yaml_string = model.to_yaml()
    from ktorch.models import model_from_json, model_from_yaml

    model = model_from_json(json_string, custom_objects={"AttentionLayer": AttentionLayer})
    assert model.predict(x, verbose=0).shape == (32, 2)
    with keras.utils.CustomObjectScope({"AttentionLayer": AttentionLayer}):
        model = model_from_json(json_string)
        model = model_from_yaml(yaml_string)
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "AttentionLayer"]
