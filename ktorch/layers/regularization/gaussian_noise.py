"""`GaussianNoise`: additive zero-centered Gaussian noise in training."""

from __future__ import annotations

import torch

from ktorch.layers.layer import Layer
from ktorch.layers.regularization.seed_generator import SeedGenerator


class GaussianNoise(Layer):
    """Adds zero-centered Gaussian noise of standard deviation `stddev` in training.

    A regularizer against overfitting (a form of random data augmentation); identity at
    inference.

    Args:
        stddev: standard deviation of the noise, in [0, 1].
        seed: integer seed for reproducible noise, or None for torch's global RNG.

    Example:
        ```python
        y = GaussianNoise(0.1)(torch.zeros(2, 3), training=True)  # samples of N(0, 0.1**2)
        ```
    """

    def __init__(self, stddev: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if (
            isinstance(stddev, bool)
            or not isinstance(stddev, (int, float))
            or not (0 <= stddev <= 1)
        ):
            raise ValueError(
                "Invalid value received for argument `stddev`. Expected a float value between "
                f"0 and 1. Received: stddev={stddev}"
            )
        self.stddev = stddev
        self.seed = seed
        self.seed_generator = SeedGenerator(seed)
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=False):
        if training and self.stddev > 0:
            noise = torch.empty_like(inputs).normal_(
                0.0, self.stddev, generator=self.seed_generator.generator(inputs.device)
            )
            return inputs + noise
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"stddev": self.stddev, "seed": self.seed})
        return config
