import numpy as np
import torch

from ktorch.layers import ActivityRegularization, Input
from tests.keras_ref import keras_module, to_numpy


def test_penalty_matches_keras():
    keras = keras_module()
    x = np.array([[1.0, -2.0, 3.0]], dtype="float32")
    ref = keras.layers.ActivityRegularization(l1=0.2, l2=0.3)
    ref(x)
    layer = ActivityRegularization(l1=0.2, l2=0.3)
    y = layer(torch.tensor(x))
    np.testing.assert_array_equal(y.numpy(), x)
    assert len(layer.losses) == 1
    np.testing.assert_allclose(layer.losses[0].item(), to_numpy(ref.losses[0]), rtol=1e-6)


def test_shapes_and_config():
    keras = keras_module()
    assert ActivityRegularization()(Input((3,))).shape == (None, 3)
    config = ActivityRegularization(l1=0.1).get_config()
    assert set(config) == set(keras.layers.ActivityRegularization().get_config())
    restored = ActivityRegularization.from_config(config)
    assert (restored.l1, restored.l2) == (0.1, 0.0)
