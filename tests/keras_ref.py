"""Keras 3 (torch backend) as a test-time reference; tests that need it skip when it is absent."""

from __future__ import annotations

import os

import numpy as np
import pytest


def keras_module():
    """Returns the `keras` module running on the torch backend, or skips the calling test."""
    os.environ["KERAS_BACKEND"] = "torch"
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip(f"Keras runs on the {keras.backend.backend()} backend, not torch.")
    return keras


def to_numpy(x) -> np.ndarray:
    """Converts a Keras or torch tensor (any device) to a NumPy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
    return np.asarray(x)
