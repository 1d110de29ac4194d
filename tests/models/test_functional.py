"""Functional models: graph construction, multi-IO, shared layers, nesting, config."""

import numpy as np
import pytest
import torch

import ktorch
from ktorch import layers


def test_build_and_call():
    inputs = ktorch.Input((8,))
    hidden = layers.Dense(4, activation="relu")(inputs)
    outputs = layers.Dense(2)(hidden)
    model = ktorch.Model(inputs, outputs)
    assert isinstance(model, ktorch.models.Functional)
    assert hidden.shape == (None, 4) and outputs.shape == (None, 2)
    assert [type(layer_).__name__ for layer_ in model.layers] == ["InputLayer", "Dense", "Dense"]
    x = torch.randn(5, 8)
    expected = model.layers[2](model.layers[1](x))
    torch.testing.assert_close(model(x), expected)


def test_multi_input_multi_output_dict():
    a = ktorch.Input((3,), name="a")
    b = ktorch.Input((5,), name="b")
    merged = layers.Dense(4)(a)
    other = layers.Dense(4)(b)
    out1 = layers.Dense(1, name="out1")(merged)
    out2 = layers.Dense(2, name="out2")(other)
    model = ktorch.Model({"a": a, "b": b}, {"out1": out1, "out2": out2})
    result = model({"a": torch.ones(2, 3), "b": torch.ones(2, 5)})
    assert set(result) == {"out1", "out2"}
    assert result["out1"].shape == (2, 1) and result["out2"].shape == (2, 2)
    with pytest.raises(ValueError, match="Missing"):
        model({"a": torch.ones(2, 3)})


def test_shared_layer_and_input_output_attributes():
    shared = layers.Dense(3)
    x1, x2 = ktorch.Input((4,)), ktorch.Input((4,))
    y1, y2 = shared(x1), shared(x2)
    model = ktorch.Model([x1, x2], [y1, y2])
    assert len(shared._inbound_nodes) == 2
    assert shared.output is y1  # first call, as in Keras 3
    out = model([torch.ones(1, 4), torch.zeros(1, 4)])
    torch.testing.assert_close(out[1], shared.bias.detach()[None])
    assert sum(1 for _ in model.parameters()) == 2


def test_nested_model_and_feature_extraction():
    inner_in = ktorch.Input((4,))
    inner = ktorch.Model(inner_in, layers.Dense(3, name="inner_dense")(inner_in), name="inner")
    x = ktorch.Input((4,))
    y = layers.Dense(2)(inner(x))
    outer = ktorch.Model(x, y)
    assert outer(torch.ones(2, 4)).shape == (2, 2)
    assert outer.get_layer("inner") is inner
    # `inner.output` is the nested model's own output; its call in the outer graph is node 0.
    extractor = ktorch.Model(
        inputs=outer.inputs, outputs=[inner.get_output_at(0), outer.layers[-1].output]
    )
    features = extractor(torch.ones(2, 4))
    assert [tuple(f.shape) for f in features] == [(2, 3), (2, 2)]


def test_intermediate_layer_model():
    x = ktorch.Input((6,))
    h = layers.Dense(5, name="my_layer")(x)
    model = ktorch.Model(x, layers.Dense(1)(h))
    intermediate = ktorch.Model(inputs=model.input, outputs=model.get_layer("my_layer").output)
    data = torch.randn(3, 6)
    torch.testing.assert_close(intermediate(data), model.get_layer("my_layer")(data))


def test_wrong_input_shape_error():
    x = ktorch.Input((784,))
    model = ktorch.Model(x, layers.Dense(10)(x))
    with pytest.raises(ValueError, match=r"expected shape=\(None, 784\), found shape=\(32, 100\)"):
        model(torch.ones(32, 100))


def test_disconnected_graph_and_bad_inputs():
    x = ktorch.Input((3,))
    other = ktorch.Input((3,))
    y = layers.Dense(1)(other)
    with pytest.raises(ValueError, match="Graph disconnected"):
        ktorch.Model(x, y)
    with pytest.raises(ValueError, match="symbolic"):
        ktorch.Model(x, torch.ones(1))


def test_duplicate_layer_names_rejected():
    x = ktorch.Input((3,))
    y = layers.Dense(2, name="same")(x)
    z = layers.Dense(2, name="same")(y)
    with pytest.raises(ValueError, match="unique"):
        ktorch.Model(x, z)


def test_config_roundtrip_predicts_same():
    x = ktorch.Input((4,), name="features")
    h = layers.Dense(8, activation="relu")(x)
    y = layers.Dense(2, activation="softmax")(h)
    model = ktorch.Model(x, y, name="clf")
    clone = ktorch.models.Functional.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    data = np.random.rand(5, 4).astype("float32")
    np.testing.assert_allclose(clone(data).detach().numpy(), model(data).detach().numpy())
    assert clone.name == "clf" and [layer_.name for layer_ in clone.layers] == [
        layer_.name for layer_ in model.layers
    ]


def test_state_dict_portable_between_identical_models():
    def make():
        x = ktorch.Input((4,))
        return ktorch.Model(x, layers.Dense(2)(layers.Dense(3)(x)))

    first, second = make(), make()
    second.load_state_dict(first.state_dict())
    data = torch.randn(2, 4)
    torch.testing.assert_close(first(data), second(data))


def test_layer_and_weight_order_match_keras_for_branches():
    """Branches of different lengths: Keras orders layers by depth, then traversal order."""
    from tests.keras_ref import keras_module

    keras = keras_module()

    def build(lib):
        inputs = lib.Input((4,), name="x")
        long = lib.layers.Dense(3, name="l1")(inputs)
        long = lib.layers.Dense(3, name="l2")(long)
        long = lib.layers.Dense(3, name="l3")(long)
        short = lib.layers.Dense(3, name="s1")(inputs)
        merged = lib.layers.Add(name="add")([short, long])
        return lib.Model(inputs, lib.layers.Dense(1, name="out")(merged))

    ours, theirs = build(ktorch), build(keras)
    assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers]
    ours.set_weights(theirs.get_weights())
    x = np.random.default_rng(0).random((5, 4)).astype("float32")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), atol=1e-5)
