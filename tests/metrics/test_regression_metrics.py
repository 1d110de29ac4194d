"""The metric `cosine_similarity`: the negative of the loss of that name."""

from __future__ import annotations

import numpy as np
import torch

import ktorch.losses as losses
from ktorch.metrics.regression_metrics import cosine_similarity


def test_cosine_similarity_is_the_negated_loss():
    rng = np.random.default_rng(0)
    y_true = rng.normal(size=(5, 4)).astype(np.float32)
    y_pred = rng.normal(size=(5, 4)).astype(np.float32)
    y_pred[0] = 2.0 * y_true[0]
    received = cosine_similarity(torch.from_numpy(y_true), torch.from_numpy(y_pred))
    unit_true = y_true / np.linalg.norm(y_true, axis=-1, keepdims=True)
    unit_pred = y_pred / np.linalg.norm(y_pred, axis=-1, keepdims=True)
    np.testing.assert_allclose(received.numpy(), np.sum(unit_true * unit_pred, -1), rtol=1e-5)
    np.testing.assert_allclose(received[0].item(), 1.0, rtol=1e-6)
    loss = losses.cosine_similarity(torch.from_numpy(y_true), torch.from_numpy(y_pred))
    assert torch.equal(received, -loss)


def test_cosine_similarity_along_another_axis():
    rng = np.random.default_rng(1)
    y_true = rng.normal(size=(3, 4)).astype(np.float32)
    y_pred = rng.normal(size=(3, 4)).astype(np.float32)
    received = cosine_similarity(torch.from_numpy(y_true), torch.from_numpy(y_pred), axis=0)
    unit_true = y_true / np.linalg.norm(y_true, axis=0, keepdims=True)
    unit_pred = y_pred / np.linalg.norm(y_pred, axis=0, keepdims=True)
    np.testing.assert_allclose(received.numpy(), np.sum(unit_true * unit_pred, 0), rtol=1e-5)
