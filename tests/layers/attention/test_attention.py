import numpy as np
import pytest
import torch

from ktorch.layers import Attention, Input
from tests.keras_ref import keras_module, to_numpy


@pytest.fixture(scope="module")
def keras():
    return keras_module()


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"use_scale": True},
        {"score_mode": "concat"},
        {"score_mode": "concat", "use_scale": True},
    ],
)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("with_key", [False, True])
def test_parity_with_keras(keras, kwargs, causal, with_key):
    rng = np.random.default_rng(0)
    q = rng.normal(size=(2, 3, 4)).astype("float32")
    v = rng.normal(size=(2, 5, 4)).astype("float32")
    k = rng.normal(size=(2, 5, 4)).astype("float32")
    q_mask = rng.random((2, 3)) > 0.3
    v_mask = rng.random((2, 5)) > 0.3
    inputs = [q, v, k] if with_key else [q, v]
    ref = keras.layers.Attention(**kwargs)
    ref(inputs)
    layer = Attention(**kwargs)
    layer([torch.tensor(x) for x in inputs])
    weights = [np.array(rng.random() + 0.5, dtype="float32") for _ in ref.weights]
    ref.set_weights(weights)
    layer.set_weights(weights)
    expected = ref(
        inputs, mask=[q_mask, v_mask], return_attention_scores=True, use_causal_mask=causal
    )
    out = layer(
        [torch.tensor(x) for x in inputs],
        mask=[torch.tensor(q_mask), torch.tensor(v_mask)],
        return_attention_scores=True,
        use_causal_mask=causal,
    )
    for e, o in zip(expected, out, strict=True):
        np.testing.assert_allclose(o.detach().numpy(), to_numpy(e), atol=1e-5)
    np.testing.assert_array_equal(out[0]._keras_mask.numpy(), q_mask)


def test_weights_and_symbolic_shapes():
    layer = Attention(use_scale=True, score_mode="concat")
    out, scores = layer([Input((3, 4)), Input((5, 4))], return_attention_scores=True)
    assert out.shape == (None, 3, 4) and scores.shape == (None, 3, 5)
    assert [w.name for w in layer.weights] == ["scale", "concat_score_weight"]
    assert Attention().weights == []


def test_masks_are_taken_from_inputs_and_dropout_in_training():
    q, v = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    v._keras_mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    _, scores = Attention()([q, v], return_attention_scores=True)
    assert torch.all(scores[1, :, 2:] < 1e-6)
    layer = Attention(dropout=0.5)
    torch.testing.assert_close(layer([q, v]), layer([q, v]))
    assert not torch.allclose(layer([q, v], training=True), layer([q, v]))


def test_invalid_arguments():
    with pytest.raises(ValueError, match="Invalid value for argument score_mode"):
        Attention(score_mode="add")
    with pytest.raises(ValueError, match="must be called on a list of inputs"):
        Attention()(torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="length 2 or 3"):
        Attention()([torch.zeros(1, 2, 3)])


def test_config_round_trip(keras):
    config = Attention(use_scale=True, score_mode="concat", dropout=0.1, seed=2).get_config()
    assert set(config) == set(keras.layers.Attention().get_config())
    restored = Attention.from_config(config)
    assert (restored.use_scale, restored.score_mode, restored.dropout) == (True, "concat", 0.1)
