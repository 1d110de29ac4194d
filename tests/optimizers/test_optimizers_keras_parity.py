"""Every optimizer against Keras 3 (torch backend): same weights, same gradients, ~5 steps."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import ktorch.optimizers as optimizers
from ktorch.optimizers import schedules

SHAPES = [(4, 3), (3,), (2, 2, 2)]
STEPS = 5


def _keras():
    os.environ["KERAS_BACKEND"] = "torch"
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("Keras does not run on the torch backend here.")
    return keras


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=s).astype(np.float32) for s in SHAPES]
    grads = [[rng.normal(size=s).astype(np.float32) for s in SHAPES] for _ in range(STEPS)]
    return weights, grads


def _keras_schedule(keras, schedule):
    if schedule is None:
        return None
    return getattr(keras.optimizers.schedules, type(schedule).__name__)(**schedule.get_config())


def _compare(class_name: str, kwargs: dict, schedule=None, seed: int = 0, use_step=False):
    keras = _keras()
    weights, grads = _data(seed)
    extra = {} if schedule is None else {"learning_rate": schedule}
    keras_extra = {} if schedule is None else {"learning_rate": _keras_schedule(keras, schedule)}
    keras_opt = getattr(keras.optimizers, class_name)(**kwargs, **keras_extra)
    ours = getattr(optimizers, class_name)(**kwargs, **extra)
    keras_vars = [keras.Variable(w) for w in weights]
    params = [torch.nn.Parameter(torch.from_numpy(w.copy())) for w in weights]
    for step_grads in grads:
        keras_opt.apply_gradients(
            zip([torch.from_numpy(g) for g in step_grads], keras_vars, strict=True)
        )
        if use_step:
            if not ours.built:
                ours.build(params)
            for param, grad in zip(params, step_grads, strict=True):
                param.grad = torch.from_numpy(grad.copy())
            ours.step()
        else:
            ours.apply_gradients(
                zip([torch.from_numpy(g.copy()) for g in step_grads], params, strict=True)
            )
        for keras_var, param in zip(keras_vars, params, strict=True):
            np.testing.assert_allclose(
                param.detach().numpy(), keras.ops.convert_to_numpy(keras_var), atol=1e-6, rtol=0
            )
    assert ours.iterations == STEPS
    return keras_opt, ours


CASES = [
    ("SGD", {"learning_rate": 0.1}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.5, "weight_decay": 0.05}),
    ("Adam", {}),
    ("Adam", {"learning_rate": 0.01, "amsgrad": True, "epsilon": 1e-3}),
    ("Adam", {"learning_rate": 0.01, "weight_decay": 0.1}),
    ("AdamW", {"learning_rate": 0.01}),
    ("AdamW", {"learning_rate": 0.01, "weight_decay": 0.2, "amsgrad": True}),
    ("RMSprop", {}),
    ("RMSprop", {"learning_rate": 0.01, "momentum": 0.5, "centered": True}),
    ("RMSprop", {"learning_rate": 0.01, "rho": 0.8, "epsilon": 1e-3, "weight_decay": 0.1}),
    ("Adagrad", {"learning_rate": 0.1}),
    ("Adagrad", {"learning_rate": 0.1, "initial_accumulator_value": 0.0, "epsilon": 1e-2}),
    ("Adadelta", {"learning_rate": 1.0}),
    ("Adadelta", {"learning_rate": 0.5, "rho": 0.8, "weight_decay": 0.1}),
    ("Adamax", {"learning_rate": 0.01}),
    ("Adamax", {"learning_rate": 0.01, "beta_2": 0.9, "weight_decay": 0.1}),
    ("Nadam", {"learning_rate": 0.01}),
    ("Nadam", {"learning_rate": 0.1}),
    ("Adam", {"learning_rate": 0.1, "beta_2": 0.9999}),
    ("Nadam", {"learning_rate": 0.01, "beta_1": 0.8, "weight_decay": 0.1}),
    ("Lion", {"learning_rate": 0.01}),
    ("Lion", {"learning_rate": 0.01, "beta_1": 0.5, "weight_decay": 0.1}),
]


@pytest.mark.parametrize(
    "class_name,kwargs", CASES, ids=[f"{c}-{i}" for i, (c, _) in enumerate(CASES)]
)
def test_optimizer_matches_keras(class_name, kwargs):
    _compare(class_name, kwargs)


@pytest.mark.parametrize("class_name", ["SGD", "Adam", "RMSprop", "Lion"])
def test_step_after_backward_matches_keras(class_name):
    _compare(class_name, {"learning_rate": 0.01}, use_step=True)


CLIPS = [
    {"clipnorm": 1.0},
    {"clipvalue": 0.3},
    {"global_clipnorm": 1.5},
    {"loss_scale_factor": 4.0},
]


@pytest.mark.parametrize("clip", CLIPS, ids=lambda c: next(iter(c)))
@pytest.mark.parametrize(
    "class_name,kwargs",
    [("SGD", {"learning_rate": 0.1, "momentum": 0.9}), ("Adam", {"learning_rate": 0.01})],
    ids=["SGD", "Adam"],
)
def test_gradient_clipping_matches_keras(class_name, kwargs, clip):
    _compare(class_name, {**kwargs, **clip})


SCHEDULES = [
    schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5),
    schedules.PiecewiseConstantDecay([1, 3], [0.1, 0.05, 0.01]),
    schedules.CosineDecay(0.0, decay_steps=4, warmup_target=0.1, warmup_steps=2),
    schedules.PolynomialDecay(0.1, decay_steps=3, end_learning_rate=0.0),
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize(
    "class_name,kwargs",
    [
        ("SGD", {"momentum": 0.9}),
        ("SGD", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
        ("Adam", {}),
        ("RMSprop", {"momentum": 0.5}),
    ],
    ids=["SGD", "SGD-nesterov-wd", "Adam", "RMSprop"],
)
def test_schedules_match_keras(class_name, kwargs, schedule):
    _compare(class_name, kwargs, schedule=schedule)


@pytest.mark.parametrize(
    "class_name,kwargs",
    [
        ("SGD", {"momentum": 0.9}),
        ("Adam", {"amsgrad": True}),
        ("RMSprop", {"momentum": 0.5, "centered": True}),
        ("Adagrad", {}),
        ("Adadelta", {}),
        ("Adamax", {}),
        ("Nadam", {}),
        ("Lion", {}),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_variables_match_keras_layout_and_load(class_name, kwargs):
    keras_opt, ours = _compare(class_name, {"learning_rate": 0.01, **kwargs})
    keras = _keras()
    expected = [keras.ops.convert_to_numpy(v) for v in keras_opt.variables]
    received = [v.detach().numpy() for v in ours.variables]
    assert [np.shape(v) for v in received] == [np.shape(v) for v in expected]
    for got, want in zip(received, expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=1e-5)

    # A fresh optimizer loaded from Keras's state continues exactly like Keras.
    store = {str(i): v for i, v in enumerate(expected)}
    weights, _ = _data(0)
    params = [torch.nn.Parameter(torch.zeros(s)) for s in SHAPES]
    restored = getattr(optimizers, class_name)(learning_rate=0.01, **kwargs)
    restored.build(params)
    restored.load_own_variables(store)
    assert restored.iterations == STEPS
    keras_vars = [keras.Variable(w) for w in weights]
    keras_opt_2 = getattr(keras.optimizers, class_name)(learning_rate=0.01, **kwargs)
    keras_opt_2.build(keras_vars)
    for var, value in zip(keras_opt_2.variables, expected, strict=True):
        var.assign(value)
    for param, w in zip(params, weights, strict=True):
        param.data.copy_(torch.from_numpy(w))
    grads = [np.full(s, 0.3, dtype=np.float32) for s in SHAPES]
    keras_opt_2.apply_gradients(zip([torch.from_numpy(g) for g in grads], keras_vars, strict=True))
    restored.apply_gradients(zip([torch.from_numpy(g) for g in grads], params, strict=True))
    for param, var in zip(params, keras_vars, strict=True):
        np.testing.assert_allclose(
            param.detach().numpy(), keras.ops.convert_to_numpy(var), atol=1e-6, rtol=0
        )
