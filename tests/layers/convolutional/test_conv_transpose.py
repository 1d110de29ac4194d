"""Conv1D/2D/3DTranspose: Keras output-size rules, output_padding, weights, config, parity."""

from __future__ import annotations

import pytest
import torch

from ktorch import layers
from tests.keras_ref import keras_module


def _shape(data_format, spatial, channels, batch=2):
    if data_format == "channels_last":
        return (batch, *spatial, channels)
    return (batch, channels, *spatial)


def _output_paddings(strides):
    return (None, *range(strides))


# channels_last runs the whole grid; channels_first (the same code without the permutes) a
# slice of it.
CASES_1D = [
    ("channels_last", padding, strides, dilation, kernel, output_padding)
    for padding in ("valid", "same")
    for strides, dilation in ((1, 1), (2, 1), (3, 1), (1, 2))
    for kernel in (1, 2, 3)
    for output_padding in _output_paddings(strides)
] + [
    ("channels_first", padding, 2, 1, kernel, output_padding)
    for padding in ("valid", "same")
    for kernel in (2, 3)
    for output_padding in (None, 1)
]


@pytest.mark.parametrize("data_format,padding,strides,dilation,kernel,output_padding", CASES_1D)
def test_conv1d_transpose_parity(
    assert_parity, data_format, padding, strides, dilation, kernel, output_padding
):
    kwargs = dict(
        filters=3,
        kernel_size=kernel,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        output_padding=output_padding,
        data_format=data_format,
    )
    assert_parity("Conv1DTranspose", kwargs, _shape(data_format, (5,), 2))


CASES_2D = [
    (padding, strides, kernel, output_padding)
    for padding in ("valid", "same")
    for strides, output_padding in ((1, None), (2, None), ((2, 3), None), ((2, 3), (1, 2)))
    for kernel in (3, (2, 3))
]


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("padding,strides,kernel,output_padding", CASES_2D)
def test_conv2d_transpose_parity(
    assert_parity, data_format, padding, strides, kernel, output_padding
):
    kwargs = dict(
        filters=3,
        kernel_size=kernel,
        strides=strides,
        padding=padding,
        output_padding=output_padding,
        data_format=data_format,
        activation="tanh",
    )
    assert_parity("Conv2DTranspose", kwargs, _shape(data_format, (4, 5), 2))


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_conv3d_transpose_parity(assert_parity, data_format, padding):
    kwargs = dict(
        filters=2, kernel_size=3, strides=(2, 1, 2), padding=padding, data_format=data_format
    )
    assert_parity("Conv3DTranspose", kwargs, _shape(data_format, (3, 4, 3), 2, batch=1))


def test_dilated_parity(assert_parity):
    kwargs = dict(filters=3, kernel_size=3, dilation_rate=(2, 1), padding="same")
    assert_parity("Conv2DTranspose", kwargs, (2, 5, 4, 2))


def test_weights_and_output_shapes():
    layer = layers.Conv2DTranspose(8, (3, 2), strides=2, padding="same")
    out = layer(torch.zeros(2, 5, 6, 4))
    assert tuple(out.shape) == (2, 10, 12, 8)
    assert [tuple(w.shape) for w in layer.weights] == [(3, 2, 8, 4), (8,)]
    assert len(layer.trainable_weights) == 2
    valid = layers.Conv1DTranspose(2, 3, strides=2)
    assert tuple(valid(torch.zeros(1, 5, 3)).shape) == (1, 11, 2)
    extra = layers.Conv1DTranspose(2, 3, strides=2, output_padding=1)
    assert tuple(extra(torch.zeros(1, 5, 3)).shape) == (1, 12, 2)
    first = layers.Conv3DTranspose(2, 2, strides=2, data_format="channels_first", use_bias=False)
    assert tuple(first(torch.zeros(1, 3, 2, 3, 4)).shape) == (1, 2, 4, 6, 8)
    assert len(first.weights) == 1


def test_symbolic_output_shape():
    x = layers.Input((None, 7, 4))
    y = layers.Conv2DTranspose(3, 3, strides=2, padding="same")(x)
    assert tuple(y.shape) == (None, None, 14, 3)
    z = layers.Conv1DTranspose(5, 4, strides=3, output_padding=2)(layers.Input((6, 2)))
    assert tuple(z.shape) == (None, (6 - 1) * 3 + 4 + 2, 5)


def test_config_round_trip_and_keras_keys():
    keras = keras_module()
    kwargs = dict(
        filters=4,
        kernel_size=3,
        strides=2,
        padding="same",
        output_padding=1,
        data_format="channels_first",
        activation="relu",
    )
    layer = layers.Conv2DTranspose(**kwargs)
    config = layer.get_config()
    ref_config = keras.layers.Conv2DTranspose(**kwargs).get_config()
    assert set(config) == set(ref_config)
    for key in ("kernel_size", "strides", "padding", "output_padding", "data_format"):
        assert config[key] == ref_config[key], key
    assert layers.Conv2DTranspose.from_config(config).get_config() == config
    assert layers.Conv2DTranspose.from_config(ref_config).output_padding == (1, 1)


def test_aliases():
    assert layers.Convolution1DTranspose is layers.Conv1DTranspose
    assert layers.Convolution2DTranspose is layers.Conv2DTranspose
    assert layers.Convolution3DTranspose is layers.Conv3DTranspose


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(filters=4, kernel_size=3, strides=2, output_padding=2), "output_padding"),
        (dict(filters=4, kernel_size=3, padding="causal"), "padding"),
        (dict(filters=-1, kernel_size=3), "filters"),
        (dict(filters=4, kernel_size=3, strides=2, dilation_rate=2), "dilation_rate"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.Conv2DTranspose(**kwargs)
