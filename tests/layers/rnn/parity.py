"""Runs a ktorch recurrent layer and its Keras 3 twin on the same data and weights."""

from __future__ import annotations

import numpy as np
import torch

from tests.keras_ref import keras_module, to_numpy


def flat(outputs) -> list[np.ndarray]:
    if isinstance(outputs, (list, tuple)):
        return [a for o in outputs for a in flat(o)]
    return [to_numpy(outputs)]


def assert_parity(ours, make_keras, x, mask=None, initial_state=None, atol=1e-5):
    """Builds both layers on `x`, copies Keras's weights into ours, compares all outputs."""
    keras = keras_module()
    theirs = make_keras(keras)
    kwargs_k, kwargs_t = {}, {}
    if mask is not None:
        kwargs_k["mask"] = keras.ops.convert_to_tensor(mask)
        kwargs_t["mask"] = torch.as_tensor(mask)
    if initial_state is not None:
        kwargs_k["initial_state"] = [keras.ops.convert_to_tensor(s) for s in initial_state]
        kwargs_t["initial_state"] = [torch.as_tensor(s) for s in initial_state]
    expected = theirs(keras.ops.convert_to_tensor(x), **kwargs_k)
    ours(torch.as_tensor(x), **kwargs_t)
    ours.set_weights(theirs.get_weights())
    got = ours(torch.as_tensor(x), **kwargs_t)
    expected, got = flat(expected), flat(got)
    assert len(expected) == len(got)
    for e, g in zip(expected, got, strict=True):
        assert e.shape == g.shape
        np.testing.assert_allclose(g, e, atol=atol, rtol=1e-5)
    return got


def normalized(config):
    """A config without `registered_name` entries (ktorch fills them, Keras leaves None)."""
    if isinstance(config, dict):
        return {k: normalized(v) for k, v in config.items() if k != "registered_name"}
    if isinstance(config, (list, tuple)):
        return [normalized(v) for v in config]
    return config
