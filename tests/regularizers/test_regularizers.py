"""Regularizers: numeric parity with Keras 3, validation, configs and name resolution."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from ktorch import regularizers

CASES = [
    ("L1", {}),
    ("L1", {"l1": 0.3}),
    ("L2", {}),
    ("L2", {"l2": 0.25}),
    ("L1L2", {}),
    ("L1L2", {"l1": 0.1}),
    ("L1L2", {"l2": 0.2}),
    ("L1L2", {"l1": 0.05, "l2": 0.5}),
    ("OrthogonalRegularizer", {}),
    ("OrthogonalRegularizer", {"factor": 0.5, "mode": "columns"}),
]


@pytest.fixture(scope="module")
def keras():
    os.environ["KERAS_BACKEND"] = "torch"
    return pytest.importorskip("keras")


def _weights(shape=(7, 5), dtype="float32") -> np.ndarray:
    return np.random.default_rng(0).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize(("name", "kwargs"), CASES)
@pytest.mark.parametrize("shape", [(7, 5), (4, 9)])
def test_matches_keras(keras, name, kwargs, shape):
    w = _weights(shape)
    expected = getattr(keras.regularizers, name)(**kwargs)(torch.from_numpy(w)).cpu().numpy()
    result = getattr(regularizers, name)(**kwargs)(torch.from_numpy(w))
    assert isinstance(result, torch.Tensor)
    assert result.shape == ()
    assert result.dtype == torch.float32
    np.testing.assert_allclose(result.numpy(), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("name", "kwargs"), CASES[:8])
def test_conv_kernel_and_float64(name, kwargs):
    w = torch.from_numpy(_weights((3, 3, 4, 8), "float64"))
    reg = getattr(regularizers, name)(**kwargs)
    l1 = getattr(reg, "l1", 0.0)
    l2 = getattr(reg, "l2", 0.0)
    expected = l1 * w.abs().sum() + l2 * w.square().sum()
    result = reg(w)
    assert result.dtype == torch.float64
    torch.testing.assert_close(result, expected)


def test_gradient_flows():
    w = torch.randn(6, 4, requires_grad=True)
    regularizers.L1L2(l1=0.1, l2=0.1)(w).backward()
    torch.testing.assert_close(w.grad, 0.1 * torch.sign(w.detach()) + 0.2 * w.detach())


def test_orthogonal_weights_have_no_penalty():
    q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64))
    penalty = regularizers.OrthogonalRegularizer(factor=1.0)(q)
    assert penalty.item() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="rank 2"):
        regularizers.OrthogonalRegularizer()(torch.ones(2, 2, 2))


def test_base_regularizer_is_zero():
    penalty = regularizers.Regularizer()(torch.ones(3, dtype=torch.float64))
    assert penalty.shape == () and penalty.dtype == torch.float64 and penalty.item() == 0.0
    with pytest.raises(NotImplementedError):
        regularizers.Regularizer().get_config()


@pytest.mark.parametrize(
    ("cls", "kwargs", "argument"),
    [
        ("L1", {"l1": -0.1}, "l1"),
        ("L2", {"l2": float("nan")}, "l2"),
        ("L1L2", {"l1": float("inf")}, "l1"),
        ("L1L2", {"l2": "big"}, "l2"),
        ("OrthogonalRegularizer", {"factor": -1.0}, "factor"),
        ("OrthogonalRegularizer", {"mode": "diagonal"}, "mode"),
    ],
)
def test_invalid_arguments(cls, kwargs, argument):
    with pytest.raises(ValueError, match=f"argument {argument}"):
        getattr(regularizers, cls)(**kwargs)


def test_none_arguments_use_defaults():
    assert regularizers.L1(None).get_config() == regularizers.L1().get_config()
    assert regularizers.L2(None).l2 == 0.01
    assert regularizers.L1L2(None, None).get_config() == {"l1": 0.0, "l2": 0.0}


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_config_matches_keras(keras, name, kwargs):
    ours = getattr(regularizers, name)(**kwargs)
    theirs = getattr(keras.regularizers, name)(**kwargs)
    assert ours.get_config() == theirs.get_config()
    serialized = regularizers.serialize(ours)
    keras_serialized = keras.regularizers.serialize(theirs)
    assert serialized["module"] == keras_serialized["module"] == "keras.regularizers"
    assert serialized["class_name"] == keras_serialized["class_name"]
    assert serialized["config"] == keras_serialized["config"]
    assert regularizers.deserialize(keras_serialized).get_config() == ours.get_config()
    assert keras.regularizers.deserialize(serialized).get_config() == theirs.get_config()


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_config_round_trip(name, kwargs):
    reg = getattr(regularizers, name)(**kwargs)
    rebuilt = regularizers.deserialize(regularizers.serialize(reg))
    assert type(rebuilt) is type(reg)
    assert rebuilt.get_config() == reg.get_config()
    w = torch.randn(5, 5)
    torch.testing.assert_close(rebuilt(w), reg(w))


def test_names_match_keras(keras):
    from keras.src import regularizers as keras_regularizers

    assert set(keras_regularizers.ALL_OBJECTS_DICT) <= set(regularizers.ALL_OBJECTS_DICT)
    for key, cls in keras_regularizers.ALL_OBJECTS_DICT.items():
        assert regularizers.ALL_OBJECTS_DICT[key].__name__ == cls.__name__


def test_get():
    assert regularizers.get(None) is None
    assert isinstance(regularizers.get("l2"), regularizers.L2)
    assert isinstance(regularizers.get("l1_l2"), regularizers.L1L2)
    assert isinstance(regularizers.get("OrthogonalRegularizer"), regularizers.OrthogonalRegularizer)
    assert isinstance(regularizers.get(regularizers.L1), regularizers.L1)
    reg = regularizers.L2(0.5)
    assert regularizers.get(reg) is reg
    assert regularizers.get({"class_name": "L2", "config": {"l2": 0.5}}).l2 == 0.5

    def fn(w):
        return w.sum()

    assert regularizers.get(fn) is fn


def test_get_unknown_name_raises():
    with pytest.raises(ValueError, match="regularizer.*not_a_regularizer"):
        regularizers.get("not_a_regularizer")
    with pytest.raises(ValueError, match="regularizer"):
        regularizers.get(0.1)
