"""The optimizer contract the trainer relies on: building, stepping, clipping, configs, errors."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import ktorch.optimizers as optimizers
from ktorch.optimizers import schedules

ALL_CLASSES = [
    optimizers.SGD,
    optimizers.Adam,
    optimizers.AdamW,
    optimizers.RMSprop,
    optimizers.Adagrad,
    optimizers.Adadelta,
    optimizers.Adamax,
    optimizers.Nadam,
    optimizers.Lion,
]


def _params(seed: int = 0) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [
        torch.nn.Parameter(torch.randn(784, 128, generator=g) * 0.01),
        torch.nn.Parameter(torch.zeros(128)),
        torch.nn.Parameter(torch.randn(128, 10, generator=g) * 0.01),
        torch.nn.Parameter(torch.zeros(10)),
    ]


def _set_grads(params, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    for p in params:
        p.grad = torch.randn(p.shape, generator=g)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_build_step_zero_grad(cls):
    params = _params()
    before = [p.detach().clone() for p in params]
    optimizer = cls()
    assert not optimizer.built and optimizer.torch_optimizer is None
    optimizer.build(params)
    assert isinstance(optimizer.torch_optimizer, torch.optim.Optimizer)
    _set_grads(params)
    optimizer.step()
    optimizer.step()
    assert optimizer.iterations == 2
    assert all(not torch.equal(p, b) for p, b in zip(params, before, strict=True))
    optimizer.zero_grad()
    assert all(p.grad is None for p in params)


def test_fused_kernels_chosen_for_floating_point_parameters():
    for cls in (optimizers.SGD, optimizers.Adam, optimizers.AdamW):
        optimizer = cls()
        optimizer.build(_params())
        assert optimizer.torch_optimizer.defaults["fused"] is True


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_config_round_trip(cls):
    optimizer = cls(learning_rate=0.05, clipnorm=1.5, name="custom_name")
    config = optimizer.get_config()
    assert config["learning_rate"] == 0.05 and config["name"] == "custom_name"
    rebuilt = cls.from_config(config)
    assert rebuilt.get_config() == config
    serialized = optimizers.serialize(optimizer)
    assert serialized["module"] == "keras.optimizers"
    assert optimizers.deserialize(serialized).get_config() == config


def test_schedule_config_round_trip():
    schedule = schedules.ExponentialDecay(0.1, decay_steps=3, decay_rate=0.5)
    optimizer = optimizers.SGD(learning_rate=schedule, momentum=0.9)
    config = optimizers.serialize(optimizer)
    assert config["config"]["learning_rate"]["class_name"] == "ExponentialDecay"
    rebuilt = optimizers.deserialize(config)
    assert isinstance(rebuilt._learning_rate, schedules.ExponentialDecay)
    assert rebuilt.learning_rate == pytest.approx(0.1)


def _keras():
    os.environ["KERAS_BACKEND"] = "torch"
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("Keras does not run on the torch backend here.")
    return keras


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_configs_move_between_keras_and_ktorch(cls):
    keras = _keras()
    keras_config = keras.optimizers.serialize(getattr(keras.optimizers, cls.__name__)(0.02))
    ours = optimizers.deserialize(keras_config)
    assert type(ours) is cls and ours.learning_rate == pytest.approx(0.02)
    back = keras.optimizers.deserialize(optimizers.serialize(ours))
    assert type(back).__name__ == cls.__name__
    assert float(back.learning_rate) == pytest.approx(0.02)


@pytest.mark.parametrize(
    "identifier,expected",
    [
        ("adam", optimizers.Adam),
        ("Adam", optimizers.Adam),
        ("sgd", optimizers.SGD),
        ("rmsprop", optimizers.RMSprop),
        ("adamw", optimizers.AdamW),
        ("adagrad", optimizers.Adagrad),
        ("adadelta", optimizers.Adadelta),
        ("adamax", optimizers.Adamax),
        ("nadam", optimizers.Nadam),
        ("lion", optimizers.Lion),
        ({"class_name": "SGD", "config": {"learning_rate": 0.3}}, optimizers.SGD),
    ],
)
def test_get_resolves_names_and_configs(identifier, expected):
    assert type(optimizers.get(identifier)) is expected


def test_get_returns_objects_and_wraps_torch_optimizers():
    optimizer = optimizers.Adam()
    assert optimizers.get(optimizer) is optimizer
    assert optimizers.get(None) is None
    wrapped = optimizers.get(torch.optim.SGD(_params(), lr=0.1))
    assert isinstance(wrapped, optimizers.TorchOptimizer)


def test_unknown_optimizer_name_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown optimizer: 'adamm'"):
        optimizers.get("adamm")
    with pytest.raises(ValueError, match="Could not interpret optimizer identifier"):
        optimizers.get(3.0)


def test_torch_optimizer_adapter():
    params = _params()
    reference = [p.detach().clone().requires_grad_() for p in params]
    optimizer = optimizers.TorchOptimizer(torch.optim.SGD(params, lr=0.1, momentum=0.9))
    ref_opt = torch.optim.SGD(reference, lr=0.1, momentum=0.9)
    optimizer.build(params)
    assert optimizer.learning_rate == pytest.approx(0.1)
    for step in range(3):
        _set_grads(params, seed=step)
        _set_grads(reference, seed=step)
        optimizer.step()
        ref_opt.step()
    assert optimizer.iterations == 3
    assert all(torch.equal(p, r) for p, r in zip(params, reference, strict=True))
    optimizer.learning_rate = 0.05
    assert optimizer.torch_optimizer.param_groups[0]["lr"] == 0.05
    optimizer.zero_grad()
    assert all(p.grad is None for p in params)
    optimizer.apply_gradients([(torch.ones_like(p), p) for p in params])
    assert optimizer.iterations == 4
    with pytest.raises(ValueError, match="does not update 1 of the model's trainable"):
        optimizer.build([*params, torch.nn.Parameter(torch.zeros(3))])


def test_torch_optimizer_adapter_with_schedule():
    params = _params()
    optimizer = optimizers.TorchOptimizer(torch.optim.SGD(params, lr=1.0))
    optimizer.learning_rate = schedules.PiecewiseConstantDecay([1], [0.5, 0.25])
    for expected in (0.5, 0.5, 0.25):
        _set_grads(params)
        optimizer.step()
        assert optimizer.torch_optimizer.param_groups[0]["lr"] == expected


def test_apply_builds_on_first_use_and_checks_variables():
    params = _params()
    optimizer = optimizers.SGD(learning_rate=0.5)
    grads = [torch.ones_like(p) for p in params]
    with pytest.raises(ValueError, match="must already be built"):
        optimizer.apply(grads)
    before = params[0].detach().clone()
    optimizer.apply(grads, params)
    assert optimizer.built and torch.allclose(params[0], before - 0.5)
    optimizer.apply([g * 2 for g in grads])
    assert torch.allclose(params[0], before - 1.5)
    with pytest.raises(ValueError, match="Unknown variable"):
        optimizer.apply([torch.ones(2)], [torch.nn.Parameter(torch.zeros(2))])
    with pytest.raises(ValueError, match="No gradients provided"):
        optimizer.apply([None] * 4, params)
    with pytest.warns(UserWarning, match="Gradients do not exist"):
        optimizer.apply([grads[0], None, None, None], params)
    assert params[1].grad is None


def test_step_requires_build_and_gradients():
    optimizer = optimizers.Adam()
    with pytest.raises(ValueError, match="not built"):
        optimizer.step()
    optimizer.build(_params())
    with pytest.raises(ValueError, match="No gradients provided"):
        optimizer.step()


def test_unsupported_and_unknown_arguments_are_rejected():
    with pytest.raises(ValueError, match="use_ema"):
        optimizers.Adam(use_ema=True)
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        optimizers.SGD(gradient_accumulation_steps=4)
    with pytest.raises(ValueError, match="not recognized"):
        optimizers.RMSprop(beta_1=0.9)
    with pytest.raises(ValueError, match="Only one of"):
        optimizers.SGD(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.SGD(learning_rate="fast")
    with pytest.raises(ValueError, match="momentum"):
        optimizers.SGD(momentum=1.5)
    with pytest.raises(ValueError, match="weight_decay"):
        optimizers.AdamW(weight_decay=None)
    with pytest.raises(ValueError, match="beta_1"):
        optimizers.Lion(beta_1=0.0)


def test_learning_rate_property():
    params = _params()
    optimizer = optimizers.SGD(learning_rate=0.1)
    optimizer.build(params)
    optimizer.learning_rate = 0.5
    before = params[1].detach().clone()
    _set_grads(params)
    grad = params[1].grad.clone()
    optimizer.step()
    assert torch.allclose(params[1], before - 0.5 * grad)
    optimizer.learning_rate = schedules.ExponentialDecay(1.0, decay_steps=1, decay_rate=0.5)
    assert optimizer.learning_rate == pytest.approx(0.5)
    with pytest.raises(TypeError, match="not settable"):
        optimizer.learning_rate = 0.1
    assert optimizers.Adam(learning_rate=lambda: 0.25).learning_rate == 0.25


def test_gradient_clipping_values():
    params = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))]
    grads = [torch.tensor([3.0, 4.0]), torch.tensor([0.0, 0.5])]
    optimizers.SGD(learning_rate=1.0, clipnorm=1.0).apply([g.clone() for g in grads], params)
    assert torch.allclose(params[0], torch.tensor([-0.6, -0.8]))
    assert torch.allclose(params[1], torch.tensor([0.0, -0.5]))
    params = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))]
    optimizers.SGD(learning_rate=1.0, global_clipnorm=1.0).apply([g.clone() for g in grads], params)
    norm = float(np.sqrt(25.25))
    assert torch.allclose(params[0], -grads[0] / norm)
    assert torch.allclose(params[1], -grads[1] / norm)
    params = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))]
    optimizers.SGD(learning_rate=1.0, clipvalue=0.4).apply([g.clone() for g in grads], params)
    assert torch.allclose(params[0], torch.tensor([-0.4, -0.4]))


def test_exclude_from_weight_decay():
    kernel = torch.nn.Parameter(torch.ones(3))
    bias = torch.nn.Parameter(torch.ones(3))
    bias.path = "dense/bias"
    other = torch.nn.Parameter(torch.ones(3))
    optimizer = optimizers.SGD(learning_rate=0.1, weight_decay=0.5)
    optimizer.exclude_from_weight_decay(var_list=[other], var_names=["bias"])
    optimizer.apply([torch.zeros(3)] * 3, [kernel, bias, other])
    assert torch.allclose(kernel, torch.full((3,), 0.95))
    assert torch.equal(bias, torch.ones(3)) and torch.equal(other, torch.ones(3))
    with pytest.raises(ValueError, match="before the optimizer is built"):
        optimizer.exclude_from_weight_decay(var_names=["x"])


def test_constraints_applied_by_apply_only():
    param = torch.nn.Parameter(torch.zeros(3))
    param.constraint = lambda w: torch.clamp(w, min=0.0)
    optimizer = optimizers.SGD(learning_rate=1.0)
    optimizer.apply([torch.tensor([1.0, -1.0, 0.0])], [param])
    assert torch.equal(param, torch.tensor([0.0, 1.0, 0.0]))
    param.grad = torch.tensor([0.0, 2.0, 0.0])
    optimizer.step()
    assert torch.equal(param, torch.tensor([0.0, -1.0, 0.0]))


def test_variables_before_build_and_state_dict_resume():
    optimizer = optimizers.Adam(learning_rate=0.01)
    assert [v.item() for v in optimizer.variables] == [0, pytest.approx(0.01)]
    params = _params()
    optimizer.build(params)
    for step in range(2):
        _set_grads(params, seed=step)
        optimizer.step()
    state = optimizer.state_dict()
    copies = [p.detach().clone().requires_grad_() for p in params]
    resumed = optimizers.Adam(learning_rate=0.01)
    resumed.build(copies)
    resumed.load_state_dict(state)
    assert resumed.iterations == 2
    _set_grads(params, seed=5)
    _set_grads(copies, seed=5)
    optimizer.step()
    resumed.step()
    assert all(torch.equal(p, c) for p, c in zip(params, copies, strict=True))


def test_load_own_variables_checks_count():
    optimizer = optimizers.SGD(momentum=0.9)
    optimizer.build(_params())
    with pytest.raises(ValueError, match="expected 6 variables. Received: 2"):
        optimizer.load_own_variables({"0": np.array(0), "1": np.array(0.1)})
