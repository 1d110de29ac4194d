"""SeparableConv1D/2D: weights, shapes, config and Keras parity."""

from __future__ import annotations

import pytest
import torch

from ktorch import layers
from tests.keras_ref import keras_module


def _shape(data_format, spatial, channels, batch=2):
    if data_format == "channels_last":
        return (batch, *spatial, channels)
    return (batch, channels, *spatial)


# channels_last runs the whole grid; channels_first (the same code without the permutes) a
# slice of it.
CASES = [
    ("channels_last", padding, strides, dilation, kernel)
    for padding in ("valid", "same")
    for strides, dilation in ((1, 1), (2, 1), (1, 2))
    for kernel in (2, 3)
] + [("channels_first", padding, 2, 1, 2) for padding in ("valid", "same")]


@pytest.mark.parametrize("data_format,padding,strides,dilation,kernel", CASES)
def test_separable_conv1d_parity(assert_parity, data_format, padding, strides, dilation, kernel):
    kwargs = dict(
        filters=4,
        kernel_size=kernel,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        depth_multiplier=2,
        data_format=data_format,
    )
    assert_parity("SeparableConv1D", kwargs, _shape(data_format, (9,), 3))


@pytest.mark.parametrize("data_format,padding,strides,dilation,kernel", CASES)
def test_separable_conv2d_parity(assert_parity, data_format, padding, strides, dilation, kernel):
    kwargs = dict(
        filters=4,
        kernel_size=kernel,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        data_format=data_format,
        activation="relu",
    )
    assert_parity("SeparableConv2D", kwargs, _shape(data_format, (7, 8), 3))


def test_weights_and_shapes():
    layer = layers.SeparableConv2D(8, 3, depth_multiplier=2, padding="same")
    out = layer(torch.zeros(2, 7, 7, 3))
    assert tuple(out.shape) == (2, 7, 7, 8)
    assert [tuple(w.shape) for w in layer.weights] == [(3, 3, 3, 2), (1, 1, 6, 8), (8,)]
    assert len(layer.trainable_weights) == 3
    one = layers.SeparableConv1D(4, 3, use_bias=False, data_format="channels_first")
    assert tuple(one(torch.zeros(2, 5, 9)).shape) == (2, 4, 7)
    assert [tuple(w.shape) for w in one.weights] == [(3, 5, 1), (1, 5, 4)]
    y = layers.SeparableConv1D(6, 3, strides=2, padding="same")(layers.Input((None, 3)))
    assert tuple(y.shape) == (None, None, 6)


def test_config_round_trip_and_keras_keys():
    keras = keras_module()
    kwargs = dict(
        filters=5,
        kernel_size=(3, 2),
        depth_multiplier=3,
        padding="same",
        pointwise_initializer="zeros",
        pointwise_constraint="unit_norm",
    )
    layer = layers.SeparableConv2D(**kwargs)
    config = layer.get_config()
    ref_config = keras.layers.SeparableConv2D(**kwargs).get_config()
    assert set(config) == set(ref_config)
    for key in ("filters", "kernel_size", "strides", "padding", "depth_multiplier"):
        assert config[key] == ref_config[key], key
    assert layers.SeparableConv2D.from_config(config).get_config() == config
    assert layers.SeparableConv2D.from_config(ref_config).filters == 5


def test_aliases():
    assert layers.SeparableConvolution1D is layers.SeparableConv1D
    assert layers.SeparableConvolution2D is layers.SeparableConv2D


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(filters=0, kernel_size=3), "filters"),
        (dict(filters=2, kernel_size=3, depth_multiplier=-1), "depth_multiplier"),
        (dict(filters=2, kernel_size=3, strides=0), "strides"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.SeparableConv2D(**kwargs)
