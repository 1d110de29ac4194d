import numpy as np
import pytest
import torch

from ktorch.layers import Input, MultiHeadAttention
from tests.keras_ref import keras_module, to_numpy


@pytest.fixture(scope="module")
def keras():
    return keras_module()


def _pair(keras, kwargs, shapes):
    """A Keras layer built on `shapes` and ours with its weights."""
    rng = np.random.default_rng(0)
    ref = keras.layers.MultiHeadAttention(**kwargs)
    arrays = [rng.normal(size=s).astype("float32") for s in shapes]
    ref(*arrays)
    ours = MultiHeadAttention(**kwargs)
    ours(*[torch.tensor(a) for a in arrays])
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in ref.weights]
    ours.set_weights([rng.normal(size=w.shape).astype("float32") * 0.5 for w in ref.weights])
    ref.set_weights(ours.get_weights())
    return ref, ours


def _with_mask(keras, x, mask):
    k, t = keras.ops.convert_to_tensor(x), torch.tensor(x)
    if mask is not None:
        k._keras_mask = keras.ops.convert_to_tensor(mask)
        t._keras_mask = torch.tensor(mask)
    return k, t


def _compare(expected, out):
    if isinstance(expected, tuple):
        for e, o in zip(expected, out, strict=True):
            np.testing.assert_allclose(o.detach().numpy(), to_numpy(e), atol=1e-5)
    else:
        np.testing.assert_allclose(out.detach().numpy(), to_numpy(expected), atol=1e-5)


def test_weight_layout_matches_keras(keras):
    ref, ours = _pair(keras, {"num_heads": 3, "key_dim": 4, "value_dim": 5}, [(2, 5, 8), (2, 6, 7)])
    assert [w.path for w in ours.weights] == [
        "query/kernel",
        "query/bias",
        "key/kernel",
        "key/bias",
        "value/kernel",
        "value/bias",
        "attention_output/kernel",
        "attention_output/bias",
    ]
    assert [tuple(w.shape) for w in ours.weights] == [
        (8, 3, 4),
        (3, 4),
        (7, 3, 4),
        (3, 4),
        (7, 3, 5),
        (3, 5),
        (3, 5, 8),
        (8,),
    ]
    assert all(w.trainable for w in ours.weights)
    assert ours.count_params() == ref.count_params()


@pytest.mark.parametrize("scores", [False, True])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("masks", ["none", "query", "value", "both"])
def test_parity_with_masks_and_causal_mask(keras, scores, causal, masks):
    ref, ours = _pair(keras, {"num_heads": 2, "key_dim": 3}, [(2, 5, 6), (2, 4, 7)])
    rng = np.random.default_rng(1)
    q = rng.normal(size=(2, 5, 6)).astype("float32")
    v = rng.normal(size=(2, 4, 7)).astype("float32")
    q_mask = rng.random((2, 5)) > 0.3 if masks in ("query", "both") else None
    v_mask = rng.random((2, 4)) > 0.3 if masks in ("value", "both") else None
    kq, tq = _with_mask(keras, q, q_mask)
    kv, tv = _with_mask(keras, v, v_mask)
    kwargs = {"return_attention_scores": scores, "use_causal_mask": causal}
    expected = ref(kq, kv, **kwargs)
    out = ours(tq, tv, **kwargs)
    _compare(expected, out)
    output = out[0] if scores else out
    if q_mask is not None:
        np.testing.assert_array_equal(output._keras_mask.numpy(), q_mask)


def test_explicit_key_and_attention_mask(keras):
    ref, ours = _pair(
        keras, {"num_heads": 2, "key_dim": 4, "value_dim": 3}, [(2, 3, 5), (2, 6, 5), (2, 6, 4)]
    )
    rng = np.random.default_rng(2)
    q, v, k = (rng.normal(size=s).astype("float32") for s in [(2, 3, 5), (2, 6, 5), (2, 6, 4)])
    attention_mask = rng.random((2, 3, 6)) > 0.4
    for scores in (False, True):
        kwargs = {"attention_mask": attention_mask, "return_attention_scores": scores}
        expected = ref(q, v, k, **kwargs)
        out = ours(
            torch.tensor(q),
            torch.tensor(v),
            torch.tensor(k),
            attention_mask=torch.tensor(attention_mask),
            return_attention_scores=scores,
        )
        _compare(expected, out)


def test_output_shape_and_attention_axes(keras):
    ref, ours = _pair(
        keras, {"num_heads": 2, "key_dim": 2, "output_shape": (3, 2)}, [(2, 4, 5), (2, 4, 5)]
    )
    x = np.random.default_rng(3).normal(size=(2, 4, 5)).astype("float32")
    _compare(ref(x, x), ours(torch.tensor(x), torch.tensor(x)))
    ref, ours = _pair(
        keras,
        {"num_heads": 2, "key_dim": 2, "attention_axes": (1, 2)},
        [(2, 3, 4, 5), (2, 3, 4, 5)],
    )
    x = np.random.default_rng(4).normal(size=(2, 3, 4, 5)).astype("float32")
    _compare(
        ref(x, x, return_attention_scores=True),
        ours(torch.tensor(x), torch.tensor(x), return_attention_scores=True),
    )


def test_symbolic_shapes():
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    q, v = Input((5, 8)), Input((7, 6))
    assert layer(q, v).shape == (None, 5, 8)
    out, scores = MultiHeadAttention(2, 4)(q, v, return_attention_scores=True)
    assert out.shape == (None, 5, 8) and scores.shape == (None, 2, 5, 7)
    assert MultiHeadAttention(2, 4, output_shape=3)(q, v).shape == (None, 5, 3)


def test_dropout_applies_only_in_training():
    torch.manual_seed(0)
    layer = MultiHeadAttention(num_heads=2, key_dim=4, dropout=0.5)
    x = torch.randn(2, 6, 8)
    inference = layer(x, x)
    torch.testing.assert_close(layer(x, x), inference)
    assert not torch.allclose(layer(x, x, training=True), inference)
    no_dropout = MultiHeadAttention(num_heads=2, key_dim=4)
    no_dropout(x, x)
    no_dropout.set_weights(layer.get_weights())
    torch.testing.assert_close(no_dropout(x, x), inference, atol=1e-5, rtol=0)


def test_gradients_reach_all_weights():
    layer = MultiHeadAttention(num_heads=2, key_dim=3)
    x = torch.randn(2, 4, 5)
    layer(x, x, use_causal_mask=True).sum().backward()
    assert all(w.grad is not None for w in layer.weights)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="`num_heads`, expected a positive integer"):
        MultiHeadAttention(num_heads=0, key_dim=2)
    with pytest.raises(ValueError, match="`value_dim`"):
        MultiHeadAttention(2, 2, value_dim=-1)
    with pytest.raises(ValueError, match="except the last one, must be equal"):
        MultiHeadAttention(2, 2)(torch.zeros(1, 3, 4), torch.zeros(1, 5, 4), torch.zeros(1, 6, 4))


def test_config_and_build_config_round_trip(keras):
    layer = MultiHeadAttention(num_heads=2, key_dim=4, value_dim=3, dropout=0.1, seed=7)
    layer(torch.zeros(1, 3, 5), torch.zeros(1, 4, 6))
    config = layer.get_config()
    ref = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    ref(np.zeros((1, 3, 5)), np.zeros((1, 4, 6)))
    assert set(config) == set(ref.get_config())
    assert config["attention_axes"] == ref.get_config()["attention_axes"]
    assert layer.get_build_config() == ref.get_build_config()
    restored = MultiHeadAttention.from_config(config)
    restored.build_from_config(layer.get_build_config())
    assert [tuple(w.shape) for w in restored.weights] == [tuple(w.shape) for w in layer.weights]
    assert (restored.num_heads, restored.key_dim, restored.value_dim) == (2, 4, 3)


def test_fully_masked_query_rows_average_the_values():
    layer = MultiHeadAttention(num_heads=2, key_dim=3, use_bias=False)
    q, v = torch.randn(1, 3, 4) * 10, torch.randn(1, 5, 4) * 10
    q._keras_mask = torch.tensor([[True, False, True]])
    out = layer(q, v)
    values = layer.value_dense(v).mean(dim=1, keepdim=True)
    torch.testing.assert_close(out[:, 1:2], layer.output_dense(values), atol=1e-5, rtol=1e-5)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("scores", [False, True])
def test_cuda_matches_cpu_with_masks(scores):
    cpu = MultiHeadAttention(num_heads=4, key_dim=8)
    q, v = torch.randn(3, 6, 16) * 3, torch.randn(3, 7, 12) * 3
    cpu(q, v)
    gpu = MultiHeadAttention(num_heads=4, key_dim=8)
    gpu(q, v)
    gpu.set_weights(cpu.get_weights())
    gpu.to("cuda")
    q_mask, v_mask = torch.rand(3, 6) > 0.3, torch.rand(3, 7) > 0.3
    q_cuda, v_cuda = q.cuda(), v.cuda()
    q._keras_mask, v._keras_mask = q_mask, v_mask
    q_cuda._keras_mask, v_cuda._keras_mask = q_mask.cuda(), v_mask.cuda()
    expected = cpu(q, v, return_attention_scores=scores, use_causal_mask=True)
    out = gpu(q_cuda, v_cuda, return_attention_scores=scores, use_causal_mask=True)
    for e, o in zip(tree_flatten(expected), tree_flatten(out), strict=True):
        torch.testing.assert_close(o.cpu(), e, atol=1e-4, rtol=1e-4)


def tree_flatten(x):
    return list(x) if isinstance(x, tuple) else [x]
