"""Activations: numeric parity with Keras 3, name resolution and serialization."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from ktorch import activations
from ktorch.saving import register_keras_serializable

CASES = [
    ("relu", {}),
    ("relu", {"negative_slope": 0.1}),
    ("relu", {"max_value": 6.0}),
    ("relu", {"max_value": 2.5}),
    ("relu", {"threshold": 0.5}),
    ("relu", {"negative_slope": 0.2, "max_value": 3.0}),
    ("relu", {"negative_slope": 0.3, "threshold": -0.5}),
    ("relu", {"negative_slope": 0.3, "max_value": 4.0, "threshold": 1.0}),
    ("relu6", {}),
    ("leaky_relu", {}),
    ("leaky_relu", {"negative_slope": 0.05}),
    ("elu", {}),
    ("elu", {"alpha": 0.5}),
    ("selu", {}),
    ("celu", {"alpha": 2.0}),
    ("gelu", {}),
    ("gelu", {"approximate": True}),
    ("glu", {}),
    ("glu", {"axis": 0}),
    ("sigmoid", {}),
    ("hard_sigmoid", {}),
    ("sparse_sigmoid", {}),
    ("log_sigmoid", {}),
    ("silu", {}),
    ("swish", {}),
    ("hard_silu", {}),
    ("hard_swish", {}),
    ("mish", {}),
    ("softmax", {}),
    ("softmax", {"axis": 0}),
    ("softmax", {"axis": None}),
    ("softmax", {"axis": (0, 1)}),
    ("log_softmax", {}),
    ("log_softmax", {"axis": 0}),
    ("sparsemax", {}),
    ("softplus", {}),
    ("softsign", {}),
    ("sparse_plus", {}),
    ("squareplus", {}),
    ("squareplus", {"b": 2.0}),
    ("tanh", {}),
    ("tanh_shrink", {}),
    ("hard_tanh", {}),
    ("hard_shrink", {}),
    ("soft_shrink", {"threshold": 0.3}),
    ("threshold", {"threshold": 0.2, "default_value": -1.0}),
    ("exponential", {}),
    ("linear", {}),
]


@pytest.fixture(scope="module")
def keras():
    os.environ["KERAS_BACKEND"] = "torch"
    return pytest.importorskip("keras")


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _inputs() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.standard_normal((6, 8)) * 4).astype("float32")


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_matches_keras(keras, name, kwargs):
    x = _inputs()
    expected = _numpy(getattr(keras.activations, name)(x, **kwargs))
    result = getattr(activations, name)(torch.from_numpy(x), **kwargs)
    assert result.dtype == torch.float32
    assert tuple(result.shape) == expected.shape
    np.testing.assert_allclose(result.numpy(), expected, atol=1e-5, rtol=1e-5)


def test_gradients_flow():
    x = torch.randn(4, 5, requires_grad=True)
    for fn in (activations.relu, activations.gelu, activations.softmax, activations.mish):
        x.grad = None
        fn(x).sum().backward()
        assert x.grad is not None and x.grad.shape == x.shape


def test_names_match_keras(keras):
    from keras.src import activations as keras_activations

    assert set(activations.ALL_OBJECTS_DICT) == set(keras_activations.ALL_OBJECTS_DICT)


def test_get():
    assert activations.get(None) is activations.linear
    assert activations.get("relu") is activations.relu
    assert activations.get("swish") is activations.silu
    assert activations.get("hard_swish") is activations.hard_silu

    def custom(x):
        return x * 2

    assert activations.get(custom) is custom
    assert activations.get({"class_name": "function", "config": "tanh"}) is activations.tanh


def test_get_unknown_name_raises():
    with pytest.raises(ValueError, match="activation.*not_an_activation"):
        activations.get("not_an_activation")
    with pytest.raises(ValueError, match="activation"):
        activations.get(42)


@pytest.mark.parametrize("name", sorted({name for name, _ in CASES}))
def test_serialize_round_trip(name):
    fn = getattr(activations, name)
    serialized = activations.serialize(fn)
    assert isinstance(serialized, str)
    assert activations.deserialize(serialized) is fn
    assert activations.get(serialized) is fn


def test_serialize_matches_keras(keras):
    for name in ("relu", "softmax", "silu", "gelu", "linear"):
        ours = activations.serialize(getattr(activations, name))
        assert ours == keras.activations.serialize(getattr(keras.activations, name))


def test_deserialize_keras_function_config(keras):
    config = keras.saving.serialize_keras_object(keras.activations.elu)
    assert activations.deserialize(config) is activations.elu


def test_registered_custom_activation_round_trip():
    @register_keras_serializable(package="ActivationTests")
    def doubled(x):
        return 2 * x

    config = activations.serialize(doubled)
    assert isinstance(config, dict)
    assert activations.deserialize(config) is doubled
    assert activations.get(config) is doubled
