"""Shared helper of the convolution tests: output and input-gradient parity with Keras 3."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ktorch import layers
from tests.keras_ref import keras_module, to_numpy


def _check_parity(cls_name: str, kwargs: dict, shape, atol: float = 1e-5):
    keras = keras_module()
    x = np.random.default_rng(len(shape) + sum(shape)).standard_normal(shape).astype("float32")
    ref_layer = getattr(keras.layers, cls_name)(**kwargs)
    x_ref = torch.tensor(x, requires_grad=True)
    ref_out = ref_layer(x_ref)
    ref_out.square().sum().backward()
    ours = getattr(layers, cls_name)(**kwargs)
    ours.build(shape)
    ours.set_weights(ref_layer.get_weights())
    x_ours = torch.tensor(x, requires_grad=True)
    out = ours(x_ours)
    out.square().sum().backward()
    assert tuple(out.shape) == tuple(ref_out.shape)
    assert tuple(ours.compute_output_shape(shape)) == tuple(ref_out.shape)
    np.testing.assert_allclose(to_numpy(out), to_numpy(ref_out), atol=atol, rtol=1e-5)
    np.testing.assert_allclose(
        to_numpy(x_ours.grad), to_numpy(x_ref.grad), atol=atol * 10, rtol=1e-4
    )
    for ours_w, ref_w in zip(ours.weights, ref_layer.weights, strict=True):
        np.testing.assert_allclose(
            to_numpy(ours_w.grad), to_numpy(ref_w.value.grad), atol=atol * 100, rtol=1e-4
        )
    return ours


@pytest.fixture
def assert_parity():
    """`assert_parity(cls_name, kwargs, shape)`: builds the layer in Keras and in ktorch with
    the same weights and compares outputs, output shapes and input/weight gradients."""
    return _check_parity
