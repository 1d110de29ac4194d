"""The metric `binary_crossentropy`: the loss function, with label ranks aligned first."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ktorch.losses as losses
import ktorch.metrics as metrics


def _numpy_bce(y_true: np.ndarray, y_pred: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    p = np.clip(y_pred, eps, 1 - eps)
    return -np.mean(y_true * np.log(p) + (1 - y_true) * np.log(1 - p), axis=-1)


def test_binary_crossentropy_aligns_label_rank():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 6).astype(np.float32)
    probs = rng.uniform(0.05, 0.95, (6, 1)).astype(np.float32)
    received = metrics.binary_crossentropy(torch.from_numpy(labels), torch.from_numpy(probs))
    assert received.shape == (6,)
    np.testing.assert_allclose(received.numpy(), _numpy_bce(labels[:, None], probs), rtol=1e-5)
    with pytest.raises(ValueError, match="same shape"):
        losses.binary_crossentropy(torch.from_numpy(labels), torch.from_numpy(probs))


def test_binary_crossentropy_metric_accepts_flat_labels():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 8).astype(np.float32)
    logits = rng.normal(size=(8, 1)).astype(np.float32)
    metric = metrics.BinaryCrossentropy(from_logits=True, label_smoothing=0.2)
    metric.update_state(torch.from_numpy(labels), torch.from_numpy(logits))
    smoothed = labels[:, None] * 0.8 + 0.1
    expected = _numpy_bce(smoothed, 1 / (1 + np.exp(-logits.astype(np.float64))), eps=0)
    np.testing.assert_allclose(metric.result().item(), expected.mean(), rtol=1e-5)
