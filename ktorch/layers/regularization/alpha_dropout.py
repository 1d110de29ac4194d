"""`AlphaDropout`: dropout that keeps the mean and variance of SELU activations."""

from __future__ import annotations

import torch

from ktorch.layers.layer import Layer
from ktorch.layers.regularization.dropout import _validate_noise_shape, concrete_noise_shape
from ktorch.layers.regularization.seed_generator import SeedGenerator, check_rate

_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


class AlphaDropout(Layer):
    """Alpha dropout: drops units to SELU's negative saturation value and rescales affinely
    so that the mean and variance of self-normalizing (SELU) activations are preserved.

    Identity at inference.

    Args:
        rate: fraction of the units to drop, in [0, 1].
        noise_shape: shape of the binary mask, broadcast against the input (None entries
            take the input's size).
        seed: integer seed for reproducible masks, or None for torch's global RNG.

    Example:
        ```python
        y = AlphaDropout(0.1)(torch.randn(4, 8), training=True)
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
        if not (training and self.rate > 0):
            return inputs
        shape = (
            inputs.shape
            if self.noise_shape is None
            else concrete_noise_shape(inputs, self.noise_shape)
        )
        keep = torch.empty(shape, dtype=inputs.dtype, device=inputs.device)
        keep.bernoulli_(1.0 - self.rate, generator=self.seed_generator.generator(inputs.device))
        alpha_p = -_SELU_ALPHA * _SELU_SCALE
        a = ((1 - self.rate) * (1 + self.rate * alpha_p**2)) ** -0.5
        b = -a * alpha_p * self.rate
        # a * (x * keep + alpha_p * (1 - keep)) + b, with the noise-shaped terms formed first.
        return inputs * (keep * a) + ((1 - keep) * (a * alpha_p) + b)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed, "noise_shape": self.noise_shape})
        return config
