"""`Dropout`: randomly zeroes inputs in training and rescales the rest."""

from __future__ import annotations

import torch

from ktorch.layers.layer import Layer
from ktorch.layers.regularization.seed_generator import SeedGenerator, check_rate
from ktorch.ops import fused_dropout

_FUSED_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def _validate_noise_shape(noise_shape):
    if noise_shape is None:
        return None
    if isinstance(noise_shape, str):
        raise ValueError(
            "Invalid value received for argument `noise_shape`. Expected a tuple or list of "
            f"integers. Received: noise_shape={noise_shape}"
        )
    try:
        noise_shape = tuple(noise_shape)
    except TypeError:
        raise ValueError(
            "Invalid value received for argument `noise_shape`. Expected an iterable of "
            f"integers (e.g., a tuple or list). Received: noise_shape={noise_shape}"
        ) from None
    for i, dim in enumerate(noise_shape):
        if dim is None:
            continue
        if not isinstance(dim, int) or isinstance(dim, bool):
            raise ValueError(
                "Invalid value received for argument `noise_shape`. Expected all elements to "
                f"be integers or None. Received element at index {i}: {dim} "
                f"(type: {type(dim).__name__})"
            )
        if dim <= 0:
            raise ValueError(
                "Invalid value received for argument `noise_shape`. Expected all dimensions "
                f"to be positive integers or None. Received negative or zero value at index "
                f"{i}: {dim}"
            )
    return noise_shape


def concrete_noise_shape(inputs: torch.Tensor, noise_shape) -> tuple[int, ...]:
    """`noise_shape` with its None entries replaced by the input's sizes."""
    return tuple(inputs.shape[i] if d is None else d for i, d in enumerate(noise_shape))


def dropout(
    inputs: torch.Tensor,
    rate: float,
    noise_shape=None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Dropout in training mode: zeroes entries with probability `rate`, scales the rest.

    With one draw per entry (no `noise_shape`, or one equal to the input's shape) and a
    floating dtype, this is `ktorch.ops.fused_dropout`: one pass that draws, scales and keeps
    a 1-bit mask, and a backward that reuses the mask. A broadcast `noise_shape` draws the small
    noise-shaped mask with `bernoulli_` and multiplies by it: one pass over the input forward
    and backward, the same traffic as the fused op without its per-entry draws.

    Args:
        inputs: tensor of any shape.
        rate: drop probability in [0, 1]; kept entries are multiplied by `1 / (1 - rate)`.
        noise_shape: shape of the mask (None entries take the input's size); one draw is
            broadcast along its size-1 axes. None: one draw per entry.
        generator: generator to draw from; None for the default generator of the input's
            device.

    Returns:
        A tensor of the shape and dtype of `inputs`.
    """
    if rate >= 1.0:
        return torch.zeros_like(inputs)
    shape = None if noise_shape is None else concrete_noise_shape(inputs, noise_shape)
    if (shape is None or shape == tuple(inputs.shape)) and inputs.dtype in _FUSED_DTYPES:
        return fused_dropout(inputs, rate, generator=generator)
    keep = torch.empty(shape or inputs.shape, dtype=inputs.dtype, device=inputs.device)
    keep.bernoulli_(1.0 - rate, generator=generator)
    # The (small) noise-shaped mask is scaled once and broadcast in the product.
    return inputs * keep.div_(1.0 - rate)


class Dropout(Layer):
    """Randomly sets input units to 0 with frequency `rate` in training.

    The units that are kept are scaled by `1 / (1 - rate)` so the expected sum is unchanged.
    At inference (`training=False`, the default outside `fit`) the layer is the identity.

    Args:
        rate: fraction of the units to drop, in [0, 1].
        noise_shape: shape of the binary mask, broadcast against the input (None entries
            take the input's size), e.g. `(batch, 1, features)` to drop the same features at
            every timestep.
        seed: integer seed for a reproducible sequence of masks; None uses torch's global
            RNG (`ktorch.utils.set_random_seed` or `torch.manual_seed` make it reproducible).

    In training, without a broadcast `noise_shape`, the layer runs the fused kernel
    `ktorch.ops.fused_dropout` (one pass, a 1-bit mask kept for the backward).

    Call arguments:
        inputs: tensor of any shape.
        training: whether to apply dropout.

    Example:
        ```python
        layer = Dropout(0.5)
        y = layer(torch.ones(2, 4), training=True)  # entries are 0. or 2.
        ```
    """

    def __init__(self, rate: float, noise_shape=None, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        check_rate(rate)
        self.rate = rate
        self.seed = seed
        self.noise_shape = _validate_noise_shape(noise_shape)
        self.seed_generator = SeedGenerator(seed)
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=False):
        if training and self.rate > 0:
            return dropout(
                inputs,
                self.rate,
                noise_shape=self.noise_shape,
                generator=self.seed_generator.generator(inputs.device),
            )
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed, "noise_shape": self.noise_shape})
        return config
