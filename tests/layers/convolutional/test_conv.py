"""Conv1D/2D/3D: weights, shapes, channels_last without copies, config, errors, Keras parity."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ktorch import layers
from tests.keras_ref import keras_module


def _spatial_shape(data_format, spatial, channels, batch=2):
    if data_format == "channels_last":
        return (batch, *spatial, channels)
    return (batch, channels, *spatial)


# channels_last runs the whole grid; channels_first (the same code without the permutes) a
# slice of it that still has asymmetric "same" padding.
CONV1D_CASES = [
    ("channels_last", padding, strides, dilation, kernel, length)
    for padding in ("valid", "same", "causal")
    for strides, dilation in ((1, 1), (2, 1), (3, 1), (1, 2))
    for kernel in (2, 3)
    for length in (7, 8)
] + [
    ("channels_first", padding, strides, dilation, 2, 7)
    for padding in ("valid", "same", "causal")
    for strides, dilation in ((1, 1), (2, 1), (1, 2))
]


@pytest.mark.parametrize("data_format,padding,strides,dilation,kernel,length", CONV1D_CASES)
def test_conv1d_parity(assert_parity, data_format, padding, strides, dilation, kernel, length):
    kwargs = dict(
        filters=4,
        kernel_size=kernel,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        data_format=data_format,
    )
    assert_parity("Conv1D", kwargs, _spatial_shape(data_format, (length,), 3))


CONV2D_CASES = [
    ("channels_last", padding, strides, dilation, kernel, size)
    for padding in ("valid", "same")
    for strides, dilation in ((1, 1), (2, 1), ((2, 3), 1), (1, 2), (1, (2, 1)))
    for kernel in (2, (3, 2))
    for size in ((7, 8), (8, 9))
] + [
    ("channels_first", padding, strides, 1, (3, 2), (7, 8))
    for padding in ("valid", "same")
    for strides in (1, 2, (2, 3))
]


@pytest.mark.parametrize("data_format,padding,strides,dilation,kernel,size", CONV2D_CASES)
def test_conv2d_parity(assert_parity, data_format, padding, strides, dilation, kernel, size):
    kwargs = dict(
        filters=4,
        kernel_size=kernel,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        data_format=data_format,
        activation="relu",
    )
    assert_parity("Conv2D", kwargs, _spatial_shape(data_format, size, 3))


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides", [1, 2])
def test_conv3d_parity(assert_parity, data_format, padding, strides):
    kwargs = dict(
        filters=3, kernel_size=(3, 2, 3), strides=strides, padding=padding, data_format=data_format
    )
    assert_parity("Conv3D", kwargs, _spatial_shape(data_format, (5, 6, 7), 2, batch=1))


@pytest.mark.parametrize("cls_name,spatial", [("Conv1D", (9,)), ("Conv2D", (7, 6))])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_groups_parity(assert_parity, cls_name, spatial, data_format):
    kwargs = dict(filters=6, kernel_size=3, groups=3, padding="same", data_format=data_format)
    layer = assert_parity(cls_name, kwargs, _spatial_shape(data_format, spatial, 6))
    assert tuple(layer.kernel.shape) == (*(3,) * len(spatial), 2, 6)


def test_weights_and_bias():
    layer = layers.Conv2D(8, (3, 2))
    layer(torch.zeros(2, 9, 9, 5))
    assert [tuple(w.shape) for w in layer.weights] == [(3, 2, 5, 8), (8,)]
    assert len(layer.trainable_weights) == 2 and not layer.non_trainable_weights
    assert layer.count_params() == 3 * 2 * 5 * 8 + 8
    no_bias = layers.Conv1D(4, 3, use_bias=False)
    no_bias(torch.zeros(2, 9, 5))
    assert [tuple(w.shape) for w in no_bias.weights] == [(3, 5, 4)]
    assert no_bias.bias is None


def test_gradients_reach_weights():
    layer = layers.Conv2D(4, 3, padding="same", strides=2)
    layer(torch.randn(2, 7, 7, 3)).sum().backward()
    assert layer.kernel.grad is not None and layer.kernel.grad.abs().sum() > 0
    assert layer.bias.grad is not None


class _RecordOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize(
    "layer,shape",
    [
        (lambda: layers.Conv1D(4, 3, padding="same"), (2, 9, 3)),
        (lambda: layers.Conv1D(4, 3, strides=2), (2, 9, 3)),
        (lambda: layers.Conv2D(4, 3, padding="same"), (2, 9, 9, 3)),
        (lambda: layers.Conv1DTranspose(4, 3, strides=2), (2, 9, 3)),
        (lambda: layers.Conv2DTranspose(4, 3, strides=2), (2, 5, 5, 3)),
        (lambda: layers.DepthwiseConv1D(3, depth_multiplier=2), (2, 9, 3)),
        (lambda: layers.DepthwiseConv2D(3), (2, 9, 9, 3)),
        (lambda: layers.SeparableConv1D(4, 3), (2, 9, 3)),
        (lambda: layers.SeparableConv2D(4, 3), (2, 9, 9, 3)),
    ],
)
def test_channels_last_copies_no_activation(layer, shape):
    # 1D and 2D only: torch's CPU 3D convolution returns channels_first memory whatever the input.
    layer = layer()
    x = torch.randn(shape)
    layer(x)
    with _RecordOps() as record:
        out = layer(x)
    copies = [op for op in record.ops if "clone" in op or "copy" in op or "contiguous" in op]
    assert not copies, copies
    assert out.is_contiguous()


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_symbolic_output_shape(data_format):
    shape = (None, 9, 3) if data_format == "channels_last" else (None, 3, 9)
    x = layers.Input(shape[1:])
    y = layers.Conv1D(5, 3, strides=2, padding="same", data_format=data_format)(x)
    expected = (None, 5, 5) if data_format == "channels_last" else (None, 5, 5)
    assert tuple(y.shape) == expected
    x2 = layers.Input((None, 8, 3))
    y2 = layers.Conv2D(4, 3, strides=2)(x2)
    assert tuple(y2.shape) == (None, None, 3, 4)
    x3 = layers.Input((6, 6, 6, 2))
    assert tuple(layers.Conv3D(3, 3, padding="same")(x3).shape) == (None, 6, 6, 6, 3)


def test_causal_output_sees_only_the_past():
    layer = layers.Conv1D(2, 3, padding="causal", dilation_rate=2)
    x = torch.randn(1, 10, 3)
    base = layer(x)
    x2 = x.clone()
    x2[:, 6:] += 1.0
    changed = (layer(x2) - base).abs().sum(dim=-1)[0]
    assert torch.all(changed[:6] == 0) and torch.all(changed[6:] > 0)


def test_config_round_trip_and_keras_keys():
    keras = keras_module()
    kwargs = dict(
        filters=4,
        kernel_size=(3, 2),
        strides=(2, 1),
        padding="same",
        data_format="channels_first",
        groups=2,
        activation="relu",
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer="l2",
        bias_constraint="non_neg",
        name="conv_a",
    )
    layer = layers.Conv2D(**kwargs)
    config = layer.get_config()
    ref_config = keras.layers.Conv2D(**kwargs).get_config()
    assert set(config) == set(ref_config)
    for key in ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate"):
        assert config[key] == ref_config[key], key
    for key in ("groups", "activation", "use_bias", "name", "trainable"):
        assert config[key] == ref_config[key], key
    clone = layers.Conv2D.from_config(config)
    assert clone.get_config() == config
    from_keras = layers.Conv2D.from_config(ref_config)
    assert from_keras.get_config()["kernel_size"] == (3, 2)
    assert from_keras.padding == "same" and from_keras.groups == 2


def test_aliases():
    assert layers.Convolution1D is layers.Conv1D
    assert layers.Convolution2D is layers.Conv2D
    assert layers.Convolution3D is layers.Conv3D


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(filters=0, kernel_size=3), "filters"),
        (dict(filters=4, kernel_size=0), "kernel_size"),
        (dict(filters=4, kernel_size=3, strides=(1,)), "strides"),
        (dict(filters=4, kernel_size=3, padding="causal"), "padding"),
        (dict(filters=4, kernel_size=3, padding="full"), "padding"),
        (dict(filters=4, kernel_size=3, groups=3), "groups"),
        (dict(filters=4, kernel_size=3, strides=2, dilation_rate=2), "dilation_rate"),
        (dict(filters=4, kernel_size=3, data_format="nhwc"), "data_format"),
        (dict(filters=4, kernel_size=3, lora_rank=2), "lora_rank"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.Conv2D(**kwargs)


def test_input_errors():
    layer = layers.Conv2D(4, 3, groups=2)
    with pytest.raises(ValueError, match="groups"):
        layer(torch.zeros(1, 5, 5, 3))
    small = layers.Conv2D(4, 5)
    with pytest.raises(ValueError, match="negative"):
        small(torch.zeros(1, 3, 3, 2))
    built = layers.Conv2D(4, 3)
    built(torch.zeros(1, 5, 5, 2))
    with pytest.raises(ValueError, match="axis -1"):
        built(torch.zeros(1, 5, 5, 3))


@pytest.mark.parametrize(
    "layer",
    [
        lambda: layers.Conv2D(3, 3, dtype="mixed_bfloat16"),
        lambda: layers.Conv2DTranspose(3, 3, dtype="mixed_bfloat16"),
        lambda: layers.DepthwiseConv2D(3, dtype="mixed_bfloat16"),
        lambda: layers.SeparableConv2D(3, 3, dtype="mixed_bfloat16"),
    ],
)
def test_mixed_precision_keeps_float32_weights(layer):
    layer = layer()
    x = torch.randn(2, 6, 6, 2)
    out = layer(x)
    assert out.dtype == torch.bfloat16
    assert all(w.dtype == torch.float32 for w in layer.weights)
    reference = layer.call(x.to(torch.bfloat16).float())
    torch.testing.assert_close(out.float(), reference.float(), atol=0.1, rtol=0.05)
