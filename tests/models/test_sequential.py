"""Sequential models: add/pop, deferred build, input_shape, graph attributes, config."""

import numpy as np
import pytest
import torch

import ktorch
from ktorch import layers


def test_input_shape_on_first_layer():
    model = ktorch.Sequential([layers.Dense(4, input_shape=(3,)), layers.Dense(2)])
    assert model.built
    assert model.output.shape == (None, 2)
    assert len(model.layers) == 2
    assert model(torch.ones(5, 3)).shape == (5, 2)


def test_deferred_build():
    model = ktorch.Sequential()
    model.add(layers.Dense(4))
    model.add(layers.Dense(2))
    assert not model.built
    with pytest.raises(AttributeError):
        _ = model.inputs
    out = model(np.ones((3, 7), dtype="float32"))
    assert out.shape == (3, 2) and model.built
    assert model.inputs[0].shape == (None, 7)


def test_pop_rebuilds_outputs():
    model = ktorch.Sequential([ktorch.Input((3,)), layers.Dense(4), layers.Dense(2)])
    assert model.output.shape == (None, 2)
    popped = model.pop()
    assert isinstance(popped, layers.Dense)
    assert len(model.layers) == 1
    assert model.output.shape == (None, 4)
    assert model(torch.ones(1, 3)).shape == (1, 4)
    model.pop()
    with pytest.raises(ValueError, match="no layers"):
        model.pop()


def test_feature_extraction_faq():
    model = ktorch.Sequential(
        [ktorch.Input((5,)), layers.Dense(4), layers.Dense(3), layers.Dense(2)]
    )
    extractor = ktorch.Model(
        inputs=model.inputs, outputs=[layer_.output for layer_ in model.layers]
    )
    features = extractor(torch.ones(2, 5))
    assert [tuple(f.shape) for f in features] == [(2, 4), (2, 3), (2, 2)]
    torch.testing.assert_close(features[-1], model(torch.ones(2, 5)))


def test_add_rejects_non_layers_and_duplicate_names():
    model = ktorch.Sequential()
    with pytest.raises(ValueError, match="Only instances of"):
        model.add(torch.nn.Linear(2, 2))
    model.add(layers.Dense(2, name="d"))
    with pytest.raises(ValueError, match="unique names"):
        model.add(layers.Dense(2, name="d"))


def test_wrong_input_shape():
    model = ktorch.Sequential([ktorch.Input((4,)), layers.Dense(2)])
    with pytest.raises(ValueError, match="incompatible"):
        model(torch.ones(2, 5))


def test_config_roundtrip():
    model = ktorch.Sequential(
        [ktorch.Input((4,)), layers.Dense(3, activation="relu"), layers.Dense(1)], name="seq"
    )
    clone = ktorch.Sequential.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    data = torch.randn(3, 4)
    torch.testing.assert_close(clone(data), model(data))
    assert clone.name == "seq"


def test_state_dict_keys_are_positional():
    model = ktorch.Sequential([ktorch.Input((4,)), layers.Dense(3), layers.Dense(1)])
    assert list(model.state_dict()) == ["0.kernel", "0.bias", "1.kernel", "1.bias"]


def test_summary_prints_table(capsys):
    model = ktorch.Sequential([ktorch.Input((4,)), layers.Dense(3), layers.Dense(1)])
    model.summary()
    text = capsys.readouterr().out
    assert "Total params: 19" in text
    assert "(None, 3)" in text and "Dense" in text
