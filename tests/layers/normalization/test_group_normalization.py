import numpy as np
import pytest
import torch

from ktorch.layers import GroupNormalization, Input
from tests.keras_ref import keras_module, to_numpy


@pytest.fixture(scope="module")
def keras():
    return keras_module()


@pytest.mark.parametrize(
    "kwargs, shape",
    [
        ({"groups": 2}, (2, 3, 4, 6)),
        ({"groups": 3, "axis": 1}, (2, 6, 4, 3)),
        ({"groups": -1}, (2, 5, 4)),
        ({"groups": 1, "center": False}, (3, 6)),
    ],
)
def test_parity_with_keras(keras, kwargs, shape):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=shape) * 2 + 1).astype("float32")
    ref = keras.layers.GroupNormalization(**kwargs)
    ref.build(shape)
    ref.set_weights([rng.normal(size=w.shape).astype("float32") for w in ref.get_weights()])
    layer = GroupNormalization(**kwargs)
    layer.build(shape)
    assert [tuple(w.shape) for w in layer.weights] == [tuple(w.shape) for w in ref.weights]
    layer.set_weights(ref.get_weights())
    np.testing.assert_allclose(layer(torch.tensor(x)).detach().numpy(), to_numpy(ref(x)), atol=1e-5)
    assert layer.get_config()["groups"] == ref.get_config()["groups"]


def test_group_errors():
    with pytest.raises(ValueError, match="invalid value for argument `groups`"):
        GroupNormalization(groups=0)
    with pytest.raises(ValueError, match="cannot be more than the number of channels"):
        GroupNormalization(groups=8)(Input((4,)))
    with pytest.raises(ValueError, match="must be a multiple of the number of channels"):
        GroupNormalization(groups=3)(Input((4,)))


def test_symbolic_shape_and_config(keras):
    layer = GroupNormalization(groups=2)
    assert layer(Input((5, 4))).shape == (None, 5, 4)
    config = layer.get_config()
    assert set(config) == set(keras.layers.GroupNormalization().get_config())
    assert GroupNormalization.from_config(config).groups == 2
