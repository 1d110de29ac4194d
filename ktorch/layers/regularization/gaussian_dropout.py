"""`GaussianDropout`: multiplicative 1-centered Gaussian noise in training."""

from __future__ import annotations

import math

import torch

from ktorch.layers.layer import Layer
from ktorch.layers.regularization.seed_generator import SeedGenerator, check_rate


class GaussianDropout(Layer):
    """Multiplies inputs by 1-centered Gaussian noise of stddev `sqrt(rate / (1 - rate))`.

    Identity at inference.

    Args:
        rate: drop probability of the equivalent `Dropout`, in [0, 1].
        seed: integer seed for reproducible noise, or None for torch's global RNG.

    Example:
        ```python
        y = GaussianDropout(0.2)(torch.ones(2, 3), training=True)  # samples of N(1, 0.25)
        ```
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        check_rate(rate)
        self.rate = rate
        self.seed = seed
        self.seed_generator = SeedGenerator(seed)
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=False):
        if training and self.rate > 0:
            stddev = math.sqrt(self.rate / (1.0 - self.rate))
            noise = torch.empty_like(inputs).normal_(
                1.0, stddev, generator=self.seed_generator.generator(inputs.device)
            )
            return inputs * noise
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config
