"""The `Layer` base: weights, names, trainable, config, training plumbing, masks, losses."""

import numpy as np
import pytest
import torch

import ktorch
from ktorch import layers


class Scale(layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")
        self.count = self.add_weight(shape=(), initializer="zeros", trainable=False, name="count")

    def call(self, x, training=None):
        if training:
            return x * self.w * self.factor
        return x * self.w


class Outer(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inner = Scale()
        self.blocks = [layers.Dense(3), layers.Dense(2)]

    def call(self, x):
        return self.blocks[1](self.blocks[0](self.inner(x)))


def test_lazy_build_and_weights():
    layer = Scale()
    assert not layer.built
    out = layer(torch.ones(2, 4))
    assert layer.built and out.shape == (2, 4)
    assert [w.name for w in layer.weights] == ["w", "count"]
    assert [w.name for w in layer.trainable_weights] == ["w"]
    assert [w.name for w in layer.non_trainable_weights] == ["count"]
    assert layer.w.path == f"{layer.name}/w"
    assert layer.count_params() == 5
    assert set(dict(layer.named_parameters())) == {"w", "count"}
    assert layer.w.value is layer.w
    assert not layer.count.requires_grad


def test_unique_names():
    a, b = layers.Dense(1), layers.Dense(1)
    assert a.name != b.name
    assert b.name.startswith("dense")
    assert layers.Dense(1, name="custom").name == "custom"


def test_trainable_recursive_and_requires_grad():
    outer = Outer()
    outer(torch.ones(2, 4))
    assert len(outer.trainable_weights) == 1 + 4
    outer.trainable = False
    assert outer.trainable_weights == []
    assert all(not layer.trainable for layer in outer._flatten_layers())
    assert all(not p.requires_grad for p in outer.parameters())
    assert len(outer.non_trainable_weights) == len(outer.weights) == 6
    outer.trainable = True
    assert len(outer.trainable_weights) == 5
    # The non-trainable weight stays non-trainable.
    assert not outer.inner.count.requires_grad


def test_sublayer_lists_are_tracked():
    outer = Outer()
    outer(torch.ones(2, 4))
    keys = set(outer.state_dict())
    assert "blocks.0.kernel" in keys and "inner.w" in keys


def test_state_dict_keys_follow_attributes_across_instances():
    first, second = Outer(), Outer()
    first(torch.ones(1, 4))
    second(torch.ones(1, 4))
    second.load_state_dict(first.state_dict())
    for a, b in zip(first.weights, second.weights, strict=False):
        assert torch.equal(a, b)


def test_get_set_weights_roundtrip_and_errors():
    layer = layers.Dense(3)
    layer.build((None, 2))
    values = [np.arange(6, dtype="float32").reshape(2, 3), np.ones(3, "float32")]
    layer.set_weights(values)
    np.testing.assert_array_equal(layer.get_weights()[0], values[0])
    with pytest.raises(ValueError, match="weight shape"):
        layer.set_weights([np.zeros((3, 2)), np.zeros(3)])
    with pytest.raises(ValueError, match="expecting 2 weights"):
        layer.set_weights([np.zeros((2, 3))])


def test_variable_api():
    layer = layers.Dense(2)
    layer.build((None, 2))
    layer.kernel.assign(np.eye(2))
    np.testing.assert_array_equal(layer.kernel.numpy(), np.eye(2))
    with pytest.raises(ValueError, match="expected shape"):
        layer.kernel.assign(np.zeros(3))
    layer.kernel.trainable = False
    assert not layer.kernel.requires_grad


def test_training_argument_resolution():
    layer = Scale()
    x = torch.ones(1, 2)
    np.testing.assert_allclose(layer(x).detach().numpy(), 1.0)
    np.testing.assert_allclose(layer(x, training=True).detach().numpy(), 2.0)
    # torch's .train() mode is honoured when no training argument is given.
    layer.train()
    np.testing.assert_allclose(layer(x).detach().numpy(), 2.0)
    layer.eval()

    class Wrapper(layers.Layer):
        def __init__(self):
            super().__init__()
            self.scale = Scale()

        def call(self, x):
            return self.scale(x)

    wrapper = Wrapper()
    np.testing.assert_allclose(wrapper(x, training=True).detach().numpy(), 2.0)
    np.testing.assert_allclose(wrapper(x).detach().numpy(), 1.0)


def test_config_roundtrip_and_auto_config():
    layer = Scale(factor=3.0, name="s")
    config = layer.get_config()
    assert config["factor"] == 3.0 and config["name"] == "s"
    clone = Scale.from_config(config)
    assert clone.factor == 3.0 and clone.name == "s"


def test_unknown_kwargs_rejected():
    with pytest.raises(ValueError, match="Unrecognized keyword arguments passed to Dense"):
        layers.Dense(3, foo=1)


def test_regularization_losses():
    layer = layers.Dense(2, kernel_regularizer="l2", activity_regularizer="l1")
    layer(torch.ones(4, 3))
    losses = layer.losses
    assert len(losses) == 2
    expected_kernel = 0.01 * (layer.kernel.detach() ** 2).sum()
    assert any(torch.allclose(loss.detach(), expected_kernel) for loss in losses)


def test_masks_propagate():
    class MakeMask(layers.Layer):
        def call(self, x):
            return x

        def compute_mask(self, inputs, mask=None):
            return inputs[..., 0] != 0

    class UseMask(layers.Layer):
        def call(self, x, mask=None):
            return x * mask[..., None]

    x = torch.tensor([[[1.0], [0.0], [2.0]]])
    masked = MakeMask()(x)
    assert masked._keras_mask.tolist() == [[True, False, True]]
    out = UseMask()(masked)
    assert out.tolist() == [[[1.0], [0.0], [2.0]]]


def test_numpy_input_is_converted_to_floatx():
    out = layers.Dense(2)(np.ones((3, 4)))
    assert out.dtype == torch.float32


def test_bad_input_shape_error_names_layer():
    layer = layers.Dense(2)
    layer(torch.ones(1, 3))
    with pytest.raises(ValueError, match=layer.name):
        layer(torch.ones(1, 4))


def test_deepcopy_and_pickle_keep_variables():
    import copy
    import pickle

    layer = layers.Dense(2)
    layer(torch.ones(1, 3))
    for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert isinstance(clone.kernel, ktorch.layers.Variable)
        assert clone.kernel.path == layer.kernel.path
        assert torch.equal(clone.kernel, layer.kernel)


def test_mixed_precision_policy_keeps_float32_weights():
    layer = layers.Dense(4, dtype="mixed_bfloat16")
    out = layer(torch.ones(2, 3))
    assert layer.kernel.dtype == torch.float32
    assert out.dtype == torch.bfloat16
    assert layer.dtype_policy == "mixed_bfloat16"


@pytest.mark.slow
def test_compiled_model_keeps_one_call_of_losses_without_recompiling():
    from torch._dynamo.utils import counters

    model = ktorch.Sequential(
        [ktorch.Input((6,)), layers.Dense(4, activity_regularizer="l2"), layers.Dense(2)]
    )
    compiled = torch.compile(model)
    counters.clear()
    for _ in range(3):
        compiled(torch.randn(3, 6))
    graphs = counters["stats"]["unique_graphs"]
    for _ in range(5):
        compiled(torch.randn(3, 6))
    assert len(model.losses) == 1
    # At most one recompile (the per-call loss list goes from empty to filled), then none.
    assert graphs <= 2
    assert counters["stats"]["unique_graphs"] == graphs


def test_get_weights_and_numpy_return_copies():
    """Arrays taken before training keep their values (EarlyStopping relies on it)."""
    layer = ktorch.layers.Dense(3)
    layer(torch.ones(2, 4))
    kernel_array = layer.get_weights()[0]
    numpy_array = layer.kernel.numpy()
    with torch.no_grad():
        layer.kernel.add_(1.0)
    np.testing.assert_allclose(layer.get_weights()[0], kernel_array + 1.0)
    np.testing.assert_allclose(layer.kernel.numpy(), numpy_array + 1.0)
