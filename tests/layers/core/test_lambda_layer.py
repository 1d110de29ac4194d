import numpy as np
import pytest
import torch

from ktorch.layers import Input, Lambda
from ktorch.saving import register_keras_serializable
from tests.keras_ref import keras_module


@register_keras_serializable(package="LambdaTest")
def double(x):
    return 2 * x


def scale(x, factor=1.0):
    return x * factor


def with_mask_and_training(x, mask=None, training=None):
    return x + (100.0 if training else 0.0) + (0.0 if mask is None else 10.0)


def test_call_with_arguments():
    layer = Lambda(scale, arguments={"factor": 3.0})
    np.testing.assert_array_equal(layer(torch.ones(2)).numpy(), [3.0, 3.0])
    assert layer.weights == []


def test_mask_and_training_are_passed_when_expected():
    layer = Lambda(with_mask_and_training)
    x = torch.zeros(1, 2)
    assert layer(x).tolist() == [[0.0, 0.0]]
    assert layer(x, training=True).tolist() == [[100.0, 100.0]]
    x._keras_mask = torch.tensor([True])
    assert layer(x).tolist() == [[10.0, 10.0]]


def test_output_mask():
    x = torch.ones(2, 3)
    assert Lambda(double)(x).__dict__.get("_keras_mask") is None
    fixed = torch.tensor([True, False])
    assert Lambda(double, mask=fixed)(x)._keras_mask is fixed
    y = Lambda(double, mask=lambda inputs, mask: inputs[:, 0] > 0)(x)
    assert y._keras_mask.tolist() == [True, True]


def test_output_shapes():
    inferred = Lambda(lambda t: t[:, :2])(Input((5,)))
    assert inferred.shape == (None, 2)
    given = Lambda(lambda t: t.reshape(-1, 2, 3), output_shape=(2, 3))
    assert given(Input((6,))).shape == (None, 2, 3)
    assert given.compute_output_shape((4, 6)) == (4, 2, 3)
    from_fn = Lambda(lambda t: t, output_shape=lambda s: (s[0], 7))
    assert from_fn.compute_output_shape((None, 7)) == (None, 7)


def test_config_round_trip_of_registered_function():
    keras = keras_module()
    layer = Lambda(double, output_shape=(3,), name="lam")
    config = layer.get_config()
    assert config["function"]["config"] == "LambdaTest>double"
    assert set(config) == set(keras.layers.Lambda(double, output_shape=(3,)).get_config())
    restored = Lambda.from_config(config)
    assert restored.function is double and restored.name == "lam"
    assert restored.compute_output_shape((2, 3)) == (2, 3)


def test_plain_function_round_trips_through_custom_objects():
    config = Lambda(scale, arguments={"factor": 2.0}).get_config()
    assert config["function"]["config"] == "scale"
    restored = Lambda.from_config(config, custom_objects={"scale": scale})
    assert restored(torch.ones(1)).tolist() == [2.0]
    with pytest.raises(ValueError, match="scale"):
        Lambda.from_config(config)


def test_lambda_and_closure_cannot_be_serialized():
    with pytest.raises(ValueError, match="lambda or a nested function"):
        Lambda(lambda t: t).get_config()
    factor = 3.0

    def closure(t):
        return t * factor

    with pytest.raises(ValueError, match="lambda or a nested function"):
        Lambda(closure).get_config()
    with pytest.raises(ValueError, match="output_shape"):
        Lambda(double, output_shape=lambda s: s).get_config()
