"""DepthwiseConv1D/2D: channel order, weights, shapes, config and Keras parity."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ktorch import layers
from tests.keras_ref import keras_module


def _shape(data_format, spatial, channels, batch=2):
    if data_format == "channels_last":
        return (batch, *spatial, channels)
    return (batch, channels, *spatial)


# channels_last runs the whole grid; channels_first (the same code without the permutes) a
# slice of it.
CASES = [
    ("channels_last", padding, strides, dilation, kernel, multiplier)
    for padding in ("valid", "same")
    for strides, dilation in ((1, 1), (2, 1), (1, 2))
    for kernel in (2, 3)
    for multiplier in (1, 2)
] + [
    ("channels_first", padding, strides, 1, 2, 2)
    for padding in ("valid", "same")
    for strides in (1, 2)
]


@pytest.mark.parametrize("data_format,padding,strides,dilation,kernel,multiplier", CASES)
def test_depthwise_conv1d_parity(
    assert_parity, data_format, padding, strides, dilation, kernel, multiplier
):
    kwargs = dict(
        kernel_size=kernel,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        depth_multiplier=multiplier,
        data_format=data_format,
    )
    assert_parity("DepthwiseConv1D", kwargs, _shape(data_format, (8,), 3))


@pytest.mark.parametrize("data_format,padding,strides,dilation,kernel,multiplier", CASES)
def test_depthwise_conv2d_parity(
    assert_parity, data_format, padding, strides, dilation, kernel, multiplier
):
    kwargs = dict(
        kernel_size=kernel,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        depth_multiplier=multiplier,
        data_format=data_format,
        activation="relu",
    )
    assert_parity("DepthwiseConv2D", kwargs, _shape(data_format, (7, 6), 3))


def test_channel_order_matches_grouped_convolution():
    layer = layers.DepthwiseConv2D(
        3, depth_multiplier=2, use_bias=False, data_format="channels_first"
    )
    x = torch.randn(1, 3, 6, 6)
    out = layer(x)
    kernel = layer.kernel.detach()
    for c in range(3):
        for m in range(2):
            ref = F.conv2d(x[:, c : c + 1], kernel[:, :, c, m][None, None])
            torch.testing.assert_close(out[:, c * 2 + m : c * 2 + m + 1], ref)


def test_weights_and_shapes():
    layer = layers.DepthwiseConv2D((3, 2), depth_multiplier=3)
    out = layer(torch.zeros(2, 8, 8, 4))
    assert tuple(out.shape) == (2, 6, 7, 12)
    assert [tuple(w.shape) for w in layer.weights] == [(3, 2, 4, 3), (12,)]
    assert len(layer.trainable_weights) == 2
    one = layers.DepthwiseConv1D(3, use_bias=False, padding="same")
    assert tuple(one(torch.zeros(2, 9, 5)).shape) == (2, 9, 5)
    assert [tuple(w.shape) for w in one.weights] == [(3, 5, 1)]
    y = layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2)(layers.Input((None, 9, 3)))
    assert tuple(y.shape) == (None, None, 4, 6)


def test_config_round_trip_and_keras_keys():
    keras = keras_module()
    kwargs = dict(
        kernel_size=3,
        depth_multiplier=2,
        padding="same",
        strides=2,
        depthwise_initializer="ones",
        depthwise_regularizer="l1",
    )
    layer = layers.DepthwiseConv2D(**kwargs)
    config = layer.get_config()
    ref_config = keras.layers.DepthwiseConv2D(**kwargs).get_config()
    assert set(config) == set(ref_config)
    for key in ("kernel_size", "strides", "padding", "depth_multiplier", "dilation_rate"):
        assert config[key] == ref_config[key], key
    assert layers.DepthwiseConv2D.from_config(config).get_config() == config
    assert layers.DepthwiseConv2D.from_config(ref_config).depth_multiplier == 2


def test_regularizer_losses():
    layer = layers.DepthwiseConv1D(3, depthwise_regularizer="l2", bias_regularizer="l1")
    layer(torch.zeros(1, 6, 2))
    assert len(layer.losses) == 2


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(kernel_size=3, depth_multiplier=0), "depth_multiplier"),
        (dict(kernel_size=(3, 3, 3)), "kernel_size"),
        (dict(kernel_size=3, padding="causal"), "padding"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.DepthwiseConv2D(**kwargs)
