"""Architecture as JSON/YAML (ktorch and Keras 3 both ways), custom objects, `clone_model`."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import yaml

import ktorch
from ktorch import layers
from ktorch.models import clone_model, model_from_json, model_from_yaml
from ktorch.saving import architecture
from ktorch.utils import CustomObjectScope, custom_object_scope
from tests.keras_ref import keras_module, to_numpy


def _mlp(K):
    inputs = K.Input((8,), name="x")
    h = K.layers.Dense(4, activation="relu", name="d1")(inputs)
    h = K.layers.Dropout(0.2, name="drop")(h)
    return K.Model(inputs, K.layers.Dense(2, name="d2")(h), name="mlp")


def _stack(K):
    return K.Sequential(
        [
            K.Input((8,), name="stack_input"),
            K.layers.Dense(4, name="a"),
            K.layers.BatchNormalization(name="bn"),
            K.layers.Dense(3, activation="softmax", name="b"),
        ],
        name="stack",
    )


def _two_heads(K):
    inputs = K.Input((6, 8), name="seq")
    a = K.layers.LSTM(4, return_sequences=True, name="lstm")(inputs)
    b = K.layers.Conv1D(4, 3, padding="same", name="conv")(inputs)
    c = K.layers.Concatenate(name="cat")([a, b])
    c = K.layers.MultiHeadAttention(2, 4, name="mha")(c, c)
    c = K.layers.LayerNormalization(name="ln")(c)
    c = K.layers.GlobalAveragePooling1D(name="gap")(c)
    first = K.layers.Dense(3, activation="softmax", name="first")(c)
    second = K.layers.Dense(1, name="second")(c)
    return K.Model(inputs, [first, second], name="two_heads")


_ARCHITECTURES = {"mlp": (_mlp, (8,)), "stack": (_stack, (8,)), "two_heads": (_two_heads, (6, 8))}


def _sample(shape, n: int = 4) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, *shape)).astype("float32")


def _outputs(model, x) -> list[np.ndarray]:
    out = model.predict(x, verbose=0)
    return [to_numpy(o) for o in out] if isinstance(out, list) else [to_numpy(out)]


def _assert_same_outputs(a, b, x, atol=0.0) -> None:
    for ours, theirs in zip(_outputs(a, x), _outputs(b, x), strict=True):
        np.testing.assert_allclose(ours, theirs, atol=atol, rtol=0)


# ------------------------------------------------------------------------ FAQ: JSON / YAML


@pytest.mark.parametrize("name", list(_ARCHITECTURES))
def test_faq_json_round_trip(name):
    build, shape = _ARCHITECTURES[name]
    model = build(ktorch)
    json_string = model.to_json()
    restored = model_from_json(json_string)
    assert type(restored) is type(model)
    assert [layer.name for layer in restored.layers] == [layer.name for layer in model.layers]
    assert json.loads(restored.to_json()) == json.loads(json_string)
    # Fresh weights, same architecture: the original's weights make it compute the same.
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(restored.get_weights(), model.get_weights(), strict=True)
    )
    restored.set_weights(model.get_weights())
    _assert_same_outputs(restored, model, _sample(shape))


@pytest.mark.parametrize("name", list(_ARCHITECTURES))
def test_faq_yaml_round_trip(name):
    build, shape = _ARCHITECTURES[name]
    model = build(ktorch)
    yaml_string = model.to_yaml()
    assert yaml.safe_load(yaml_string) == json.loads(model.to_json())
    restored = model_from_yaml(yaml_string)
    assert json.loads(restored.to_json()) == json.loads(model.to_json())
    restored.set_weights(model.get_weights())
    _assert_same_outputs(restored, model, _sample(shape))


def test_to_json_passes_arguments_to_json_dumps():
    text = _mlp(ktorch).to_json(indent=2, sort_keys=True)
    assert text.startswith('{\n  "class_name"')
    assert model_from_json(text).name == "mlp"


def test_yaml_with_python_tags_is_refused(tmp_path):
    marker = tmp_path / "ran"
    hostile = (
        "!!python/object/apply:pathlib.Path.touch "
        f"[!!python/object/apply:pathlib.Path ['{marker}']]"
    )
    with pytest.raises(ValueError, match="Refusing"):
        model_from_yaml(hostile)
    assert not marker.exists()
    # A tag hidden inside an otherwise valid model document.
    tagged = _mlp(ktorch).to_yaml().replace("name: mlp", "name: !!python/name:os.system", 1)
    assert "!!python/name:os.system" in tagged
    with pytest.raises(ValueError, match="Refusing"):
        model_from_yaml(tagged)


@pytest.mark.parametrize(
    ("loader", "text", "error"),
    [
        (model_from_json, "{not json", ValueError),
        (model_from_json, "[1, 2]", ValueError),
        (model_from_json, '{"config": {}}', ValueError),
        (model_from_yaml, "a: [1, 2", ValueError),
        (model_from_yaml, "- just a list", ValueError),
        (model_from_json, 42, TypeError),
    ],
)
def test_invalid_text_raises(loader, text, error):
    with pytest.raises(error):
        loader(text)


# -------------------------------------------------------------------- custom objects (FAQ)


class AttentionLayer(layers.Layer):
    """A custom layer as in the FAQ: softmax attention pooling over time."""

    def __init__(self, units: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.score = layers.Dense(self.units, name="score")
        self.score.build(input_shape)

    def call(self, x):
        weights = torch.softmax(self.score(x), dim=1)
        return (weights.unsqueeze(-1) * x.unsqueeze(-2)).sum(dim=1).flatten(1)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def _attention_model():
    inputs = ktorch.Input((5, 3))
    outputs = layers.Dense(2)(AttentionLayer(units=2, name="attention")(inputs))
    return ktorch.Model(inputs, outputs)


def test_custom_layer_needs_custom_objects():
    json_string = _attention_model().to_json()
    with pytest.raises(ValueError, match="AttentionLayer"):
        model_from_json(json_string)


def test_faq_custom_objects_argument():
    model = _attention_model()
    json_string = model.to_json()
    restored = model_from_json(json_string, custom_objects={"AttentionLayer": AttentionLayer})
    attention = restored.get_layer("attention")
    assert isinstance(attention, AttentionLayer) and attention.units == 2
    restored.set_weights(model.get_weights())
    _assert_same_outputs(restored, model, _sample((5, 3)))
    restored = model_from_yaml(model.to_yaml(), custom_objects={"AttentionLayer": AttentionLayer})
    assert isinstance(restored.get_layer("attention"), AttentionLayer)


@pytest.mark.parametrize("scope", [CustomObjectScope, custom_object_scope])
def test_faq_custom_object_scope(scope):
    json_string = _attention_model().to_json()
    with scope({"AttentionLayer": AttentionLayer}):
        restored = model_from_json(json_string)
    assert isinstance(restored.get_layer("attention"), AttentionLayer)
    with pytest.raises(ValueError, match="AttentionLayer"):
        model_from_json(json_string)


def test_custom_objects_reach_nested_models():
    inner = ktorch.Sequential([ktorch.Input((5, 3)), AttentionLayer(units=2)], name="inner")
    inputs = ktorch.Input((5, 3))
    model = ktorch.Model(inputs, layers.Dense(1)(inner(inputs)))
    restored = model_from_json(model.to_json(), custom_objects={"AttentionLayer": AttentionLayer})
    assert isinstance(restored.get_layer("inner").layers[0], AttentionLayer)


# --------------------------------------------------------------------------- Keras 3 files


def _comparable_keras_json(config):
    """Keras 3's JSON less what ktorch leaves out on purpose (each explained below)."""
    config = copy.deepcopy(config)
    # The model's own build and compile configs: ktorch rebuilds a model from its layers,
    # and a model from JSON is uncompiled in both libraries.
    config.pop("build_config", None)
    config.pop("compile_config", None)
    # Keras 3 names the (unexported) Functional class; ktorch leaves the built-in's null.
    if config["class_name"] == "Functional":
        config["registered_name"] = None
    for layer in config["config"]["layers"]:
        # ktorch has no ragged tensors: the flag is accepted and not written.
        layer["config"].pop("ragged", None)
        # Keras records the call defaults (training=False, mask=None) of each node.
        for node in layer.get("inbound_nodes", []):
            kwargs = node["kwargs"]
            for key, default in (("training", False), ("mask", None)):
                if key in kwargs and kwargs[key] is default:
                    del kwargs[key]
    return config


def _comparable_ktorch_json(config, keras_config):
    config = copy.deepcopy(config)
    keras_layers = {layer["config"]["name"]: layer for layer in keras_config["config"]["layers"]}
    for layer in config["config"]["layers"]:
        # A build config for layers Keras builds without one (pooling): harmless on load.
        if "build_config" not in keras_layers[layer["config"]["name"]]:
            layer.pop("build_config", None)
    return config


@pytest.mark.parametrize("name", list(_ARCHITECTURES))
def test_json_matches_keras(name):
    keras = keras_module()
    build, _ = _ARCHITECTURES[name]
    theirs = _comparable_keras_json(json.loads(build(keras).to_json()))
    ours = _comparable_ktorch_json(json.loads(build(ktorch).to_json()), theirs)
    assert ours == theirs


@pytest.mark.parametrize("name", list(_ARCHITECTURES))
def test_keras_reads_our_json(name):
    keras = keras_module()
    build, shape = _ARCHITECTURES[name]
    model = build(ktorch)
    theirs = keras.models.model_from_json(model.to_json())
    assert [layer.name for layer in theirs.layers] == [layer.name for layer in model.layers]
    theirs.set_weights(model.get_weights())
    _assert_same_outputs(theirs, model, _sample(shape), atol=1e-5)


@pytest.mark.parametrize("name", list(_ARCHITECTURES))
def test_we_read_keras_json(name):
    keras = keras_module()
    build, shape = _ARCHITECTURES[name]
    reference = build(keras)
    model = model_from_json(reference.to_json())
    assert [layer.name for layer in model.layers] == [layer.name for layer in reference.layers]
    model.set_weights([to_numpy(w) for w in reference.get_weights()])
    _assert_same_outputs(model, reference, _sample(shape), atol=1e-5)


def test_keras_json_with_python_lambda_bytecode_is_refused():
    keras = keras_module()
    inputs = keras.Input((3,), name="x")
    outputs = keras.layers.Lambda(lambda t: t * 2, name="double")(inputs)
    json_string = keras.Model(inputs, outputs).to_json()
    assert "__lambda__" in json_string
    with pytest.raises(ValueError, match="__lambda__"):
        model_from_json(json_string)


def test_keras_json_dropout_still_trains():
    keras = keras_module()
    model = model_from_json(_mlp(keras).to_json())
    x = torch.ones(8, 8)
    model.get_layer("d1").set_weights([np.ones((8, 4)), np.ones(4)])
    hidden = ktorch.Model(model.inputs, model.get_layer("drop").output)
    assert (hidden(x, training=True) == 0).any()


# ------------------------------------------------------------------------------ clone_model


def _kernels_differ(a, b) -> bool:
    pairs = [(x, y) for x, y in zip(a.weights, b.weights, strict=True) if "kernel" in x.path]
    return bool(pairs) and all(not np.array_equal(x.numpy(), y.numpy()) for x, y in pairs)


@pytest.mark.parametrize("name", list(_ARCHITECTURES))
def test_clone_has_same_architecture_and_fresh_weights(name):
    build, shape = _ARCHITECTURES[name]
    model = build(ktorch)
    original = [w.copy() for w in model.get_weights()]
    clone = clone_model(model)
    assert type(clone) is type(model)
    assert clone.name == model.name
    assert json.loads(clone.to_json()) == json.loads(model.to_json())
    assert {id(layer) for layer in clone.layers}.isdisjoint(id(layer) for layer in model.layers)
    assert _kernels_differ(clone, model)
    for kept, now in zip(original, model.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, now)
    clone.set_weights(model.get_weights())
    _assert_same_outputs(clone, model, _sample(shape))


def test_clone_keeps_shared_layers_shared():
    shared = layers.Dense(3, name="shared")
    a, b = ktorch.Input((3,), name="a"), ktorch.Input((3,), name="b")
    model = ktorch.Model({"a": a, "b": b}, layers.Add()([shared(a), shared(shared(b))]))
    clone = clone_model(model)
    assert len(clone.weights) == len(model.weights) == 2
    assert clone.input_names == ["a", "b"]
    clone.set_weights(model.get_weights())
    x = {"a": _sample((3,)), "b": _sample((3,), n=4) * 2}
    np.testing.assert_array_equal(clone.predict(x, verbose=0), model.predict(x, verbose=0))


def test_clone_function_is_applied_to_each_layer_but_inputs():
    model = _mlp(ktorch)
    seen = []

    def clone_function(layer):
        seen.append(layer.name)
        config = layer.get_config()
        if isinstance(layer, layers.Dense):
            config["use_bias"] = False
        return layer.__class__.from_config(config)

    clone = clone_model(model, clone_function=clone_function)
    assert seen == ["d1", "drop", "d2"]
    assert [w.path for w in clone.weights] == ["d1/kernel", "d2/kernel"]


def test_clone_function_returning_the_layer_shares_weights():
    model = _stack(ktorch)
    clone = clone_model(model, clone_function=lambda layer: layer)
    assert [id(w) for w in clone.weights] == [id(w) for w in model.weights]


def test_clone_on_given_input_tensors():
    model = _mlp(ktorch)
    inputs = ktorch.Input((8,), name="new_input")
    clone = clone_model(model, input_tensors=inputs)
    assert clone.inputs[0] is inputs
    stack = _stack(ktorch)
    inputs = ktorch.Input((8,), name="stack_input")
    clone = clone_model(stack, input_tensors=[inputs])
    assert clone.input is inputs
    with pytest.raises(ValueError, match="ktorch.Input"):
        clone_model(model, input_tensors=layers.Dense(8)(ktorch.Input((8,))))
    with pytest.raises(ValueError, match="single tensor"):
        clone_model(stack, input_tensors=[ktorch.Input((8,)), ktorch.Input((8,))])


def test_clone_call_function_inserts_layers():
    model = _mlp(ktorch)

    def call_function(layer, *args, **kwargs):
        out = layer(*args, **kwargs)
        if isinstance(layer, layers.Dense):
            out = layers.Activation("tanh")(out)
        return out

    clone = architecture.clone_model(model, call_function=call_function)
    assert sum(isinstance(layer, layers.Activation) for layer in clone.layers) == 2
    out = clone.predict(_sample((8,)) * 100, verbose=0)
    assert np.abs(out).max() <= 1.0
    with pytest.raises(ValueError, match="call_function"):
        architecture.clone_model(_stack(ktorch), call_function=call_function)


def test_clone_recursive_reaches_nested_models():
    inner = _stack(ktorch)
    inputs = ktorch.Input((8,))
    model = ktorch.Model(inputs, inner(inputs))
    seen = []

    def clone_function(layer):
        seen.append(layer.name)
        return layer.__class__.from_config(layer.get_config())

    clone_model(model, clone_function=clone_function)
    assert seen == ["stack"]
    seen.clear()
    clone = architecture.clone_model(model, clone_function=clone_function, recursive=True)
    assert seen == ["a", "bn", "b"]
    assert isinstance(clone.layers[1], ktorch.Sequential)


class _Configurable(ktorch.Model):
    def __init__(self, units: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = layers.Dense(units)

    def call(self, x):
        return self.dense(x)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class _Unconfigurable(ktorch.Model):
    def __init__(self, units: int):
        super().__init__()
        self.dense = layers.Dense(units)

    def call(self, x):
        return self.dense(x)


def test_clone_subclassed_model_through_its_config():
    model = _Configurable(units=5, name="configurable")
    model(torch.zeros(2, 4))
    clone = clone_model(model)
    assert type(clone) is _Configurable
    assert clone.units == 5 and clone.name == "configurable"
    assert clone(torch.zeros(2, 4)).shape == (2, 5)
    with pytest.raises(ValueError, match="clone_function"):
        clone_model(model, clone_function=lambda layer: layer)


def test_clone_subclassed_model_without_config_raises():
    model = _Unconfigurable(4)
    with pytest.raises(ValueError, match="_Unconfigurable.*get_config"):
        clone_model(model)


def test_clone_rejects_non_models():
    with pytest.raises(ValueError, match="Model"):
        clone_model(layers.Dense(2))
