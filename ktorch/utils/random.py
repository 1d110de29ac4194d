"""`set_random_seed`: one seed for Python, NumPy and torch (all devices)."""

from __future__ import annotations

import random

import numpy as np
import torch


def set_random_seed(seed: int) -> None:
    """Seeds Python's `random`, NumPy and torch (CPU and every CUDA device).

    Args:
        seed: a non-negative integer.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"Argument `seed` must be a non-negative integer. Received: seed={seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
