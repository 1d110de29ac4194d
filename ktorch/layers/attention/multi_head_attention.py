"""`MultiHeadAttention`: the attention layer of "Attention Is All You Need"."""

from __future__ import annotations

import math
import string

import torch
import torch.nn.functional as F

from ktorch import constraints, initializers, regularizers
from ktorch.layers.layer import Layer
from ktorch.layers.node import KerasTensor
from ktorch.layers.regularization.dropout import dropout
from ktorch.layers.regularization.seed_generator import SeedGenerator


def _large_negative(dtype: torch.dtype) -> float:
    """Additive bias of masked scores for the fused attention kernel.

    Large enough that any score added to it rounds to the same value (a fully masked row
    averages the values uniformly, as Keras does on CPU), yet far from the float32 limit:
    Keras's `-0.7 * float32.max` overflows to -inf inside the CUDA kernels, which then return
    zeros for fully masked rows instead.
    """
    return -0.7 * 65500.0 if dtype == torch.float16 else -1e30


def _softmax_mask_value(dtype: torch.dtype) -> float:
    return -3e4 if dtype == torch.float16 else -1e9


def _clone_initializer(initializer):
    if hasattr(initializer, "get_config") and hasattr(type(initializer), "from_config"):
        return type(initializer).from_config(initializer.get_config())
    return initializer


class _ProjectionDense(Layer):
    """Dense projection of the last `bound_dims` input axes onto `output_shape`.

    The weights have Keras's `EinsumDense` layout, `kernel (*input_dims, *output_shape)` and
    `bias output_shape`, and are used as a `(in, out)` matrix view.
    """

    def __init__(
        self,
        bound_dims: int,
        output_shape,
        use_bias: bool,
        kernel_initializer,
        bias_initializer,
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.bound_dims = bound_dims
        self.projected_shape = tuple(output_shape)
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = kernel_regularizer
        self.bias_regularizer = bias_regularizer
        self.kernel_constraint = kernel_constraint
        self.bias_constraint = bias_constraint

    def build(self, input_shape) -> None:
        bound = tuple(input_shape[-self.bound_dims :])
        self.kernel = self.add_weight(
            shape=bound + self.projected_shape,
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
        )
        self.bias = (
            self.add_weight(
                shape=self.projected_shape,
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name="bias",
            )
            if self.use_bias
            else None
        )
        self.built = True

    def call(self, inputs):
        out_size = math.prod(self.projected_shape)
        kernel = self.kernel.reshape(-1, out_size)
        bias = self.bias.reshape(out_size) if self.bias is not None else None
        x = inputs.flatten(-self.bound_dims) if self.bound_dims > 1 else inputs
        # kernel.T is a view of the Keras-layout weight: F.linear runs one GEMM on it.
        outputs = F.linear(x, kernel.T, bias)
        if len(self.projected_shape) > 1:
            outputs = outputs.unflatten(-1, self.projected_shape)
        return outputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[: -self.bound_dims]) + self.projected_shape


def _attention_equations(rank: int, attn_axes: tuple[int, ...]) -> tuple[str, str, int]:
    """Einsum equations of the attention scores and of the weighted sum of the values.

    Args:
        rank: rank of the projected tensors `(batch, ..., heads, channels)`.
        attn_axes: the axes attention runs over.

    Returns:
        `(scores equation, combine equation, rank of the scores)`.
    """
    letters = string.ascii_lowercase
    target = letters[:rank]
    batch_dims = [i for i in range(rank) if i not in attn_axes and i != rank - 1]
    source = list(target)
    for offset, axis in enumerate(attn_axes):
        source[axis] = letters[rank + offset]
    source = "".join(source)
    product = "".join(
        [target[i] for i in batch_dims]
        + [target[i] for i in attn_axes]
        + [source[i] for i in attn_axes]
    )
    return f"{source},{target}->{product}", f"{product},{source}->{target}", len(product)


class MultiHeadAttention(Layer):
    """Multi-head attention: each head attends from `query` to `key`, weighting `value`.

    The query, key and value are projected to `num_heads` heads, scaled dot-product
    attention runs per head, and the heads are projected back to the query's last dimension
    (or `output_shape`). Weights follow Keras 3's layout: sub-layers `query`, `key`, `value`
    with kernels `(dim, num_heads, key_dim)` (`value_dim` for value) and biases
    `(num_heads, key_dim)`, and `attention_output` with kernel `(num_heads, value_dim, dim)`
    and bias `(dim,)`, so `get_weights()` matches a Keras layer's.

    Args:
        num_heads: number of attention heads.
        key_dim: size of each head for query and key.
        value_dim: size of each head for value (`key_dim` by default).
        dropout: dropout rate on the attention probabilities.
        use_bias: whether the projections have biases.
        output_shape: last dimension(s) of the output; the query's last dimension by default.
        attention_axes: axes of the inputs over which attention runs (all axes but batch,
            heads and features by default).
        kernel_initializer, bias_initializer: initializers of the projections.
        kernel_regularizer, bias_regularizer, activity_regularizer: regularizers of the
            projections.
        kernel_constraint, bias_constraint: constraints of the projections.
        seed: integer seed of the attention dropout, or None.

    Call arguments:
        query: `(batch, target_len, query_dim)`.
        value: `(batch, source_len, value_dim)`.
        key: optional `(batch, source_len, key_dim)`; `value` is used when omitted.
        query_mask, value_mask, key_mask: optional boolean masks `(batch, len)`; taken from
            the inputs' Keras masks when not given.
        attention_mask: optional boolean `(batch, target_len, source_len)`; True attends.
        return_attention_scores: also return the attention probabilities
            `(batch, num_heads, target_len, source_len)`.
        training: whether dropout on the probabilities is active.
        use_causal_mask: prevent each position from attending to later positions.

    Example:
        ```python
        layer = MultiHeadAttention(num_heads=2, key_dim=16)
        out = layer(torch.randn(4, 8, 32), torch.randn(4, 10, 32))  # (4, 8, 32)
        ```
    """

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        value_dim: int | None = None,
        dropout: float = 0.0,
        use_bias: bool = True,
        output_shape=None,
        attention_axes=None,
        sliding_window=None,
        flash_attention=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        use_gate: bool = False,
        seed: int | None = None,
        **kwargs,
    ):
        for name, value in (("num_heads", num_heads), ("key_dim", key_dim)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(
                    f"Received an invalid value for argument `{name}`, expected a positive "
                    f"integer. Received: {name}={value}"
                )
        if value_dim is not None and (not isinstance(value_dim, int) or value_dim <= 0):
            raise ValueError(
                "Received an invalid value for argument `value_dim`, expected a positive "
                f"integer or `None`. Received: value_dim={value_dim}"
            )
        for name, value in (
            ("sliding_window", sliding_window),
            ("flash_attention", flash_attention),
        ):
            if value is not None:
                raise ValueError(f"Argument `{name}` is not supported. Received: {name}={value}")
        if use_gate:
            raise ValueError(f"Argument `use_gate` is not supported. Received: use_gate={use_gate}")
        super().__init__(**kwargs)
        self.supports_masking = True
        self._num_heads = num_heads
        self._key_dim = key_dim
        self._value_dim = value_dim if value_dim else key_dim
        self._dropout = dropout
        self._use_bias = use_bias
        if output_shape:
            if isinstance(output_shape, int):
                output_shape = (output_shape,)
            try:
                output_shape = tuple(output_shape)
            except TypeError:
                raise ValueError(
                    f"Invalid `output_shape`: {output_shape}. When specified, the "
                    "`output_shape` should be of type tuple, list, or int."
                ) from None
        self._output_shape = output_shape or None
        self._kernel_initializer = initializers.get(kernel_initializer)
        self._bias_initializer = initializers.get(bias_initializer)
        self._kernel_regularizer = regularizers.get(kernel_regularizer)
        self._bias_regularizer = regularizers.get(bias_regularizer)
        self._activity_regularizer = regularizers.get(activity_regularizer)
        self._kernel_constraint = constraints.get(kernel_constraint)
        self._bias_constraint = constraints.get(bias_constraint)
        if isinstance(attention_axes, int):
            attention_axes = (attention_axes,)
        elif attention_axes and not isinstance(attention_axes, (list, tuple)):
            raise ValueError(
                "`attention_axes` must be an int, list, or tuple. "
                f"Received: attention_axes={attention_axes}"
            )
        self._attention_axes = tuple(attention_axes) if attention_axes else None
        self.seed = seed
        self.seed_generator = SeedGenerator(seed)
        self._inverse_sqrt_key_dim = 1.0 / math.sqrt(float(key_dim))

    @property
    def num_heads(self) -> int:
        return self._num_heads

    @property
    def key_dim(self) -> int:
        return self._key_dim

    @property
    def value_dim(self) -> int:
        return self._value_dim

    @property
    def dropout(self) -> float:
        return self._dropout

    @property
    def use_bias(self) -> bool:
        return self._use_bias

    @property
    def attention_axes(self):
        return self._attention_axes

    @property
    def query_dense(self) -> Layer:
        return self._query_dense

    @property
    def key_dense(self) -> Layer:
        return self._key_dense

    @property
    def value_dense(self) -> Layer:
        return self._value_dense

    @property
    def output_dense(self) -> Layer:
        return self._output_dense

    def _projection(self, bound_dims: int, output_shape, name: str) -> _ProjectionDense:
        return _ProjectionDense(
            bound_dims,
            output_shape,
            self._use_bias,
            _clone_initializer(self._kernel_initializer),
            _clone_initializer(self._bias_initializer),
            kernel_regularizer=self._kernel_regularizer,
            bias_regularizer=self._bias_regularizer,
            kernel_constraint=self._kernel_constraint,
            bias_constraint=self._bias_constraint,
            activity_regularizer=self._activity_regularizer,
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, query_shape, value_shape, key_shape=None) -> None:
        key_shape = value_shape if key_shape is None else key_shape
        if tuple(value_shape[1:-1]) != tuple(key_shape[1:-1]):
            raise ValueError(
                "All dimensions of `value` and `key`, except the last one, must be equal. "
                f"Received: value_shape={value_shape} and key_shape={key_shape}"
            )
        self._build_shapes = {"query_shape": tuple(query_shape), "value_shape": tuple(value_shape)}
        if key_shape is not value_shape:
            self._build_shapes["key_shape"] = tuple(key_shape)
        heads = self._num_heads
        self._query_dense = self._projection(1, (heads, self._key_dim), "query")
        self._query_dense.build(query_shape)
        self._key_dense = self._projection(1, (heads, self._key_dim), "key")
        self._key_dense.build(key_shape)
        self._value_dense = self._projection(1, (heads, self._value_dim), "value")
        self._value_dense.build(value_shape)
        rank = len(value_shape) + 1
        if self._attention_axes is None:
            self._attention_axes = tuple(range(1, rank - 2))
        else:
            self._attention_axes = tuple(
                axis if axis >= 0 else rank - 1 + axis for axis in self._attention_axes
            )
        self._dot_product_equation, self._combine_equation, scores_rank = _attention_equations(
            rank, self._attention_axes
        )
        self._softmax_axes = tuple(range(scores_rank - len(self._attention_axes), scores_rank))
        output_shape = self._output_shape or (query_shape[-1],)
        self._output_dense = self._projection(2, output_shape, "attention_output")
        self._output_dense.build(tuple(query_shape[:-1]) + (heads, self._value_dim))
        self.built = True

    def get_build_config(self) -> dict | None:
        shapes = getattr(self, "_build_shapes", None)
        return {"shapes_dict": dict(shapes)} if shapes else None

    def _compute_causal_mask(self, query, value) -> torch.Tensor:
        q_len, v_len = query.shape[1], value.shape[1]
        ones = torch.ones((1, q_len, v_len), dtype=torch.bool, device=query.device)
        return torch.tril(ones)

    def _compute_attention_mask(
        self, query, value, query_mask, value_mask, key_mask, attention_mask, use_causal_mask
    ):
        device = query.device
        auto_mask = None
        if query_mask is not None:
            auto_mask = torch.as_tensor(query_mask, device=device).bool().unsqueeze(-1)
        for mask in (value_mask, key_mask):
            if mask is not None:
                mask = torch.as_tensor(mask, device=device).bool().unsqueeze(-2)
                auto_mask = mask if auto_mask is None else auto_mask & mask
        if use_causal_mask:
            mask = self._compute_causal_mask(query, value)
            auto_mask = mask if auto_mask is None else auto_mask & mask
        if attention_mask is not None:
            attention_mask = torch.as_tensor(attention_mask, device=device).bool()
        if auto_mask is not None:
            attention_mask = auto_mask if attention_mask is None else attention_mask & auto_mask
        return attention_mask

    def _masked_softmax(self, scores, attention_mask):
        if attention_mask is not None:
            axis = -len(self._attention_axes) * 2 - 1
            while attention_mask.ndim < scores.ndim:
                attention_mask = attention_mask.unsqueeze(axis)
            scores = scores.masked_fill(~attention_mask, _softmax_mask_value(scores.dtype))
        if len(self._softmax_axes) == 1:
            probs = torch.softmax(scores, dim=self._softmax_axes[0])
        else:
            probs = torch.exp(
                scores - torch.logsumexp(scores, dim=self._softmax_axes, keepdim=True)
            )
        if attention_mask is not None:
            probs = probs.masked_fill(~attention_mask, 0.0)
        return probs

    def _compute_attention(
        self,
        query,
        key,
        value,
        attention_mask,
        training,
        return_attention_scores,
        use_causal_mask,
    ):
        if not (self._dropout > 0.0 or return_attention_scores or query.ndim != 4):
            # Fused scaled_dot_product_attention on (batch, heads, length, dim) views.
            q, k, v = query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2)
            bias = None
            if attention_mask is not None:
                while attention_mask.ndim < 4:
                    attention_mask = attention_mask.unsqueeze(-3)
                bias = torch.zeros(attention_mask.shape, dtype=q.dtype, device=q.device)
                bias.masked_fill_(~attention_mask, _large_negative(q.dtype))
            outputs = F.scaled_dot_product_attention(
                q,
                k,
                v,
                attn_mask=bias,
                is_causal=use_causal_mask and bias is None,
                scale=self._inverse_sqrt_key_dim,
            )
            return outputs.transpose(1, 2), None
        if use_causal_mask:
            causal = self._compute_causal_mask(query, value)
            attention_mask = causal if attention_mask is None else attention_mask & causal
        query = query * self._inverse_sqrt_key_dim
        scores = torch.einsum(self._dot_product_equation, key, query)
        scores = self._masked_softmax(scores, attention_mask)
        probs = scores
        if training and self._dropout > 0.0:
            probs = dropout(
                scores, self._dropout, generator=self.seed_generator.generator(scores.device)
            )
        outputs = torch.einsum(self._combine_equation, probs, value)
        return outputs, scores

    def call(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        return_attention_scores: bool = False,
        training=None,
        use_causal_mask: bool = False,
    ):
        if query_mask is None:
            query_mask = getattr(query, "_keras_mask", None)
        if value_mask is None:
            value_mask = getattr(value, "_keras_mask", None)
        if key is None:
            key = value
        elif key_mask is None:
            key_mask = getattr(key, "_keras_mask", None)
        causal_only = use_causal_mask and all(
            m is None for m in (query_mask, value_mask, key_mask, attention_mask)
        )
        if not causal_only:
            attention_mask = self._compute_attention_mask(
                query, value, query_mask, value_mask, key_mask, attention_mask, use_causal_mask
            )
        q = self._query_dense(query)
        k = self._key_dense(key)
        v = self._value_dense(value)
        outputs, scores = self._compute_attention(
            q, k, v, attention_mask, training, return_attention_scores, causal_only
        )
        outputs = self._output_dense(outputs)
        if query_mask is not None:
            outputs._keras_mask = torch.as_tensor(query_mask, device=outputs.device)
        if return_attention_scores:
            return outputs, scores
        return outputs

    def compute_output_shape(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        if tuple(value_shape[1:-1]) != tuple(key_shape[1:-1]):
            raise ValueError(
                "All dimensions of `value` and `key`, except the last one, must be equal. "
                f"Received: value_shape={value_shape} and key_shape={key_shape}"
            )
        if self._output_shape:
            return tuple(query_shape[:-1]) + tuple(self._output_shape)
        return tuple(query_shape)

    def compute_output_spec(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
        use_causal_mask=False,
    ):
        key_shape = key.shape if key is not None else None
        output = KerasTensor(
            self.compute_output_shape(query.shape, value.shape, key_shape), self.compute_dtype
        )
        output._mask_shape = getattr(query, "_mask_shape", None)
        if not return_attention_scores:
            return output
        rank = len(query.shape) + 1
        axes = self._attention_axes or tuple(range(1, rank - 2))
        batch_dims = [i for i in range(len(query.shape) - 1) if i not in axes]
        scores_shape = (
            tuple(query.shape[i] for i in batch_dims)
            + (self._num_heads,)
            + tuple(query.shape[i] for i in axes)
            + tuple(value.shape[i] for i in axes)
        )
        return output, KerasTensor(scores_shape, self.compute_dtype)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "num_heads": self._num_heads,
                "key_dim": self._key_dim,
                "value_dim": self._value_dim,
                "dropout": self._dropout,
                "use_bias": self._use_bias,
                "use_gate": False,
                "output_shape": self._output_shape,
                "attention_axes": self._attention_axes,
                "sliding_window": None,
                "kernel_initializer": initializers.serialize(self._kernel_initializer),
                "bias_initializer": initializers.serialize(self._bias_initializer),
                "kernel_regularizer": regularizers.serialize(self._kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self._bias_regularizer),
                "activity_regularizer": regularizers.serialize(self._activity_regularizer),
                "kernel_constraint": constraints.serialize(self._kernel_constraint),
                "bias_constraint": constraints.serialize(self._bias_constraint),
                "seed": self.seed,
            }
        )
        return config
