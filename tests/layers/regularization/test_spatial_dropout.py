import pytest
import torch

from ktorch import config as ktorch_config
from ktorch.layers import Input, SpatialDropout1D, SpatialDropout2D, SpatialDropout3D
from tests.keras_ref import keras_module


def test_1d_drops_whole_channels():
    y = SpatialDropout1D(0.5)(torch.ones(40, 6, 30), training=True)
    assert torch.equal(y[:, 0], y[:, 5])
    kept = y[:, 0] != 0
    assert abs(kept.float().mean().item() - 0.5) < 0.05
    assert torch.all(y[:, 0][kept] == 2.0)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_2d_and_3d_follow_data_format(data_format):
    last = data_format == "channels_last"
    y = SpatialDropout2D(0.5, data_format=data_format)(
        torch.ones((20, 3, 3, 10) if last else (20, 10, 3, 3)), training=True
    )
    if last:
        assert torch.equal(y[:, 0, 0, :], y[:, 2, 1, :])
    else:
        assert torch.equal(y[:, :, 0, 0], y[:, :, 2, 1])
    y = SpatialDropout3D(0.5, data_format=data_format)(
        torch.ones((20, 2, 2, 2, 10) if last else (20, 10, 2, 2, 2)), training=True
    )
    if last:
        assert torch.equal(y[:, 0, 0, 0, :], y[:, 1, 1, 1, :])
    else:
        assert torch.equal(y[:, :, 0, 0, 0], y[:, :, 1, 1, 1])


def test_default_data_format_comes_from_config():
    assert SpatialDropout2D(0.1).data_format == ktorch_config.image_data_format()


def test_inference_identity_rank_checks_and_shapes():
    x = torch.ones(2, 3, 4)
    assert SpatialDropout1D(0.5)(x) is x
    assert SpatialDropout1D(0.5)(Input((3, 2))).shape == (None, 3, 2)
    with pytest.raises(ValueError, match="expected ndim=4"):
        SpatialDropout2D(0.5)(Input((3, 2)))
    with pytest.raises(ValueError, match="Invalid value received for argument `rate`"):
        SpatialDropout3D(2.0)
    with pytest.raises(ValueError, match="data_format"):
        SpatialDropout2D(0.5, data_format="nchw")


@pytest.mark.parametrize("cls", [SpatialDropout1D, SpatialDropout2D, SpatialDropout3D])
def test_config_round_trip(cls):
    keras = keras_module()
    layer = cls(0.25, seed=2, name="sd")
    config = layer.get_config()
    assert set(config) == set(getattr(keras.layers, cls.__name__)(0.25).get_config())
    restored = cls.from_config(config)
    assert (restored.rate, restored.seed, restored.name) == (0.25, 2, "sd")


def test_seeded_masks_repeat_and_backward_uses_the_forward_mask():
    # No zeros in x: a channel is kept exactly where the output is non-zero.
    x = (torch.rand(4, 5, 6) + 0.5).requires_grad_()
    y = SpatialDropout1D(0.5, seed=7)(x, training=True)
    assert torch.equal(y, SpatialDropout1D(0.5, seed=7)(x, training=True))
    grad = torch.randn_like(y)
    y.backward(grad)
    torch.testing.assert_close(x.grad, torch.where(y != 0, grad * 2.0, 0.0))
