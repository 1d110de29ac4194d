"""`Attention`: dot-product (Luong-style) attention."""

from __future__ import annotations

import torch

from ktorch.layers.layer import Layer
from ktorch.layers.node import KerasTensor
from ktorch.layers.regularization.dropout import dropout
from ktorch.layers.regularization.seed_generator import SeedGenerator


class Attention(Layer):
    """Dot-product attention layer, a.k.a. Luong-style attention.

    Scores are `query @ key^T` (`score_mode="dot"`) or
    `concat_score_weight * sum(tanh(query + key))` (`"concat"`), optionally scaled by a
    learned scalar; the softmax of the scores weights `value`.

    Args:
        use_scale: whether to learn a scalar `scale` multiplying the scores.
        score_mode: `"dot"` or `"concat"`.
        dropout: dropout rate on the attention weights.
        seed: integer seed of the dropout, or None.

    Call arguments:
        inputs: list `[query, value]` or `[query, value, key]`: `query` of shape
            `(batch, Tq, dim)`, `value` and `key` of shape `(batch, Tv, dim)`; `key` defaults
            to `value`.
        mask: optional list `[query_mask, value_mask]` of boolean `(batch, Tq)` and
            `(batch, Tv)` tensors; masked query positions output zeros and masked value
            positions get no weight.
        training: whether dropout is active.
        return_attention_scores: also return the attention weights `(batch, Tq, Tv)`.
        use_causal_mask: prevent position `i` from attending to positions after `i`.

    Example:
        ```python
        q, v = torch.randn(2, 4, 8), torch.randn(2, 6, 8)
        out = Attention()([q, v])  # (2, 4, 8)
        ```
    """

    def __init__(
        self,
        use_scale: bool = False,
        score_mode: str = "dot",
        dropout: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError(
                "Invalid value for argument score_mode. Expected one of {'dot', 'concat'}. "
                f"Received: score_mode={score_mode}"
            )
        self.use_scale = use_scale
        self.score_mode = score_mode
        self.dropout = dropout
        self.seed = seed
        self.seed_generator = SeedGenerator(seed)
        self.supports_masking = True

    def build(self, input_shape) -> None:
        self._validate_inputs(input_shape)
        self.scale = (
            self.add_weight(shape=(), initializer="ones", name="scale") if self.use_scale else None
        )
        self.concat_score_weight = (
            self.add_weight(shape=(), initializer="ones", name="concat_score_weight")
            if self.score_mode == "concat"
            else None
        )
        self.built = True

    def _calculate_scores(self, query, key):
        if self.score_mode == "dot":
            scores = torch.matmul(query, key.transpose(-2, -1))
            if self.scale is not None:
                scores = scores * self.scale
            return scores
        summed = query.unsqueeze(-2) + key.unsqueeze(-3)
        if self.scale is not None:
            summed = self.scale * summed
        return self.concat_score_weight * torch.sum(torch.tanh(summed), dim=-1)

    def call(
        self,
        inputs,
        mask=None,
        training=False,
        return_attention_scores: bool = False,
        use_causal_mask: bool = False,
    ):
        self._validate_inputs(inputs, mask)
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) > 2 else value
        q_mask = mask[0] if mask else None
        v_mask = mask[1] if mask else None
        scores = self._calculate_scores(query, key)
        scores_mask = None
        if v_mask is not None:
            scores_mask = torch.as_tensor(v_mask, device=scores.device).bool().unsqueeze(-2)
        if use_causal_mask:
            causal = torch.tril(
                torch.ones(scores.shape[-2:], dtype=torch.bool, device=scores.device)
            )
            scores_mask = causal if scores_mask is None else scores_mask & causal
        if scores_mask is not None:
            max_value = 65504.0 if scores.dtype == torch.float16 else 1e9
            scores = torch.where(scores_mask, scores, scores - max_value)
        weights = torch.softmax(scores, dim=-1)
        dropped = weights
        if training and self.dropout > 0:
            dropped = dropout(
                weights, self.dropout, generator=self.seed_generator.generator(weights.device)
            )
        outputs = torch.matmul(dropped, value)
        if q_mask is not None:
            keep = torch.as_tensor(q_mask, device=outputs.device).bool().unsqueeze(-1)
            outputs = outputs.masked_fill(~keep, 0.0)
        if return_attention_scores:
            return outputs, weights
        return outputs

    def compute_mask(self, inputs, mask=None):
        self._validate_inputs(inputs, mask)
        if mask is None or mask[0] is None:
            return None
        return torch.as_tensor(mask[0])

    def compute_output_shape(self, input_shape):
        return (*input_shape[0][:-1], input_shape[1][-1])

    def compute_output_spec(
        self,
        inputs,
        mask=None,
        training=None,
        return_attention_scores=False,
        use_causal_mask=False,
    ):
        self._validate_inputs(inputs, mask)
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) > 2 else value
        output = KerasTensor(
            self.compute_output_shape([query.shape, value.shape]), self.compute_dtype
        )
        output._mask_shape = query._mask_shape
        if return_attention_scores:
            scores = KerasTensor((*query.shape[:-1], key.shape[-2]), self.compute_dtype)
            return output, scores
        return output

    def _validate_inputs(self, inputs, mask=None) -> None:
        name = type(self).__name__
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(
                f"{name} layer must be called on a list of inputs, namely [query, value] or "
                f"[query, value, key]. Received: inputs={inputs}."
            )
        if len(inputs) < 2 or len(inputs) > 3:
            raise ValueError(
                f"{name} layer accepts inputs list of length 2 or 3, namely [query, value] or "
                f"[query, value, key]. Received length: {len(inputs)}."
            )
        if mask is not None:
            if not isinstance(mask, (list, tuple)):
                raise ValueError(
                    f"{name} layer mask must be a list, namely [query_mask, value_mask]. "
                    f"Received: mask={mask}."
                )
            if len(mask) < 2 or len(mask) > 3:
                raise ValueError(
                    f"{name} layer accepts mask list of length 2 or 3. Received: "
                    f"inputs={inputs}, mask={mask}."
                )

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "use_scale": self.use_scale,
                "score_mode": self.score_mode,
                "dropout": self.dropout,
                "seed": self.seed,
            }
        )
        return config
