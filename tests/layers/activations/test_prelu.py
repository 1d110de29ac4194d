import numpy as np
import pytest
import torch

from ktorch.layers import Input, PReLU
from tests.keras_ref import keras_module, to_numpy


@pytest.fixture(scope="module")
def keras():
    return keras_module()


@pytest.mark.parametrize(
    "shared_axes, alpha_shape", [(None, (4, 5, 3)), ([1, 2], (1, 1, 3)), (1, (1, 5, 3))]
)
def test_weights_and_parity(keras, shared_axes, alpha_shape):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 5, 3)).astype("float32")
    ref = keras.layers.PReLU(shared_axes=shared_axes)
    ref.build(x.shape)
    ref.set_weights([rng.random(alpha_shape).astype("float32")])
    layer = PReLU(shared_axes=shared_axes)
    layer.build(x.shape)
    assert [tuple(w.shape) for w in layer.weights] == [alpha_shape]
    assert layer.alpha.trainable
    layer.set_weights(ref.get_weights())
    np.testing.assert_allclose(layer(torch.tensor(x)).detach().numpy(), to_numpy(ref(x)), atol=1e-6)


def test_default_alpha_is_relu_and_symbolic_shape():
    layer = PReLU()
    assert layer(Input((3,))).shape == (None, 3)
    assert layer(torch.tensor([[-1.0, 0.5, 2.0]])).tolist() == [[0.0, 0.5, 2.0]]


def test_input_spec_checks_unshared_axes():
    layer = PReLU(shared_axes=[1])
    layer(torch.zeros(2, 4, 3))
    with pytest.raises(ValueError, match="p_re_lu"):
        layer(Input((4, 5)))


def test_config_round_trip(keras):
    layer = PReLU(alpha_initializer="ones", shared_axes=[1, 2])
    config = layer.get_config()
    assert set(config) == set(keras.layers.PReLU().get_config())
    restored = PReLU.from_config(config)
    assert restored.shared_axes == [1, 2]
    restored.build((None, 2, 2, 3))
    np.testing.assert_array_equal(restored.alpha.detach().numpy(), np.ones((1, 1, 3)))
