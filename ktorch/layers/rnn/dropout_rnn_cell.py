"""`DropoutRNNCell`: the dropout masks of a recurrent cell, drawn once per sequence."""

from __future__ import annotations

import torch

from ktorch.layers.regularization.seed_generator import SeedGenerator


class DropoutRNNCell:
    """Mixin giving a cell Keras's per-sequence dropout masks.

    A cell using it sets `dropout`, `recurrent_dropout`, `seed_generator` and optionally
    `dropout_mask_count` (one mask per gate). The masks are drawn on the first step of a
    sequence, reused at every step, and cleared by the `RNN` layer after the sequence.
    """

    dropout_mask_count = None
    _dropout_mask = None
    _recurrent_dropout_mask = None
    seed_generator: SeedGenerator

    def _create_dropout_mask(self, step_input: torch.Tensor, rate: float) -> torch.Tensor:
        shape = tuple(step_input.shape)
        if self.dropout_mask_count is not None:
            shape = (self.dropout_mask_count,) + shape
        if rate >= 1.0:
            return step_input.new_zeros(shape)
        keep = step_input.new_empty(shape)
        keep.bernoulli_(1.0 - rate, generator=self.seed_generator.generator(step_input.device))
        return keep.div_(1.0 - rate)

    def get_dropout_mask(self, step_input: torch.Tensor) -> torch.Tensor | None:
        """The input mask of the current sequence (`(gates, batch, features)` per gate)."""
        if self._dropout_mask is None and self.dropout > 0:
            self._dropout_mask = self._create_dropout_mask(step_input, self.dropout)
        return self._dropout_mask

    def get_recurrent_dropout_mask(self, step_input: torch.Tensor) -> torch.Tensor | None:
        """The recurrent-state mask of the current sequence."""
        if self._recurrent_dropout_mask is None and self.recurrent_dropout > 0:
            self._recurrent_dropout_mask = self._create_dropout_mask(
                step_input, self.recurrent_dropout
            )
        return self._recurrent_dropout_mask

    def reset_dropout_mask(self) -> None:
        """Forgets the input mask, so the next sequence draws a new one."""
        self._dropout_mask = None

    def reset_recurrent_dropout_mask(self) -> None:
        """Forgets the recurrent mask, so the next sequence draws a new one."""
        self._recurrent_dropout_mask = None


def project(x: torch.Tensor, weight: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """`x @ weight` with an optional dropout mask: one mask, or one per gate `(g, batch, n)`."""
    if mask is None:
        return torch.matmul(x, weight)
    if mask.dim() == x.dim():
        return torch.matmul(x * mask, weight)
    gates = mask.shape[0]
    per_gate = weight.reshape(weight.shape[0], gates, -1)
    out = torch.einsum("gbi,igu->bgu", x.unsqueeze(0) * mask, per_gate)
    return out.reshape(x.shape[0], -1)
