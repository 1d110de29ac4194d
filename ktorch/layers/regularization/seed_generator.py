"""`SeedGenerator`: the random stream of a seeded noise layer."""

from __future__ import annotations

import torch


class SeedGenerator:
    """Per-layer random stream: reproducible when seeded, torch's global RNG otherwise.

    With an integer `seed`, each device gets its own `torch.Generator` seeded with it, so a
    seeded layer draws the same sequence of masks in every run. With `seed=None` the layer
    draws from torch's global RNG (`torch.manual_seed` makes it reproducible).

    Args:
        seed: integer seed, or None.
    """

    def __init__(self, seed: int | None = None):
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ValueError(f"Argument `seed` must be an integer or None. Received: seed={seed!r}")
        self.seed = seed
        self._generators: dict[torch.device, torch.Generator] = {}

    def generator(self, device: torch.device) -> torch.Generator | None:
        """The generator to draw from on `device`, or None for the global RNG."""
        if self.seed is None:
            return None
        generator = self._generators.get(device)
        if generator is None:
            generator = torch.Generator(device=device)
            generator.manual_seed(self.seed)
            self._generators[device] = generator
        return generator


def check_rate(rate) -> None:
    """Raises Keras's error for a dropout rate outside [0, 1]."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        raise ValueError(
            "Invalid value received for argument `rate`. Expected a float value between 0 "
            f"and 1. Received: rate={rate}"
        )
