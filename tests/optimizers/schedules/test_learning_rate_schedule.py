"""Learning rate schedules against Keras 3's values, configs and argument checks."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ktorch.optimizers import schedules

STEPS = [0, 1, 2, 3, 5, 7, 10, 16, 33, 100, 250]

CASES = [
    schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.9),
    schedules.ExponentialDecay(0.1, decay_steps=7, decay_rate=0.5, staircase=True),
    schedules.PiecewiseConstantDecay([5, 10, 50], [1.0, 0.5, 0.1, 0.01]),
    schedules.PolynomialDecay(0.1, decay_steps=20),
    schedules.PolynomialDecay(0.1, decay_steps=20, end_learning_rate=0.01, power=0.5, cycle=True),
    schedules.InverseTimeDecay(0.1, decay_steps=5, decay_rate=0.5),
    schedules.InverseTimeDecay(0.1, decay_steps=5, decay_rate=0.5, staircase=True),
    schedules.CosineDecay(0.1, decay_steps=50),
    schedules.CosineDecay(0.1, decay_steps=50, alpha=0.1),
    schedules.CosineDecay(0.0, decay_steps=40, warmup_target=0.2, warmup_steps=10),
    schedules.CosineDecay(0.01, decay_steps=40, alpha=0.05, warmup_target=0.2, warmup_steps=10),
    schedules.CosineDecayRestarts(0.1, first_decay_steps=10),
    schedules.CosineDecayRestarts(0.1, first_decay_steps=8, t_mul=1.0, m_mul=0.8, alpha=0.1),
    schedules.CosineDecayRestarts(0.1, first_decay_steps=6, t_mul=1.5, m_mul=0.5),
]


def _keras():
    os.environ["KERAS_BACKEND"] = "torch"
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("Keras does not run on the torch backend here.")
    return keras


@pytest.mark.parametrize(
    "schedule", CASES, ids=[f"{type(s).__name__}-{i}" for i, s in enumerate(CASES)]
)
def test_schedule_matches_keras(schedule):
    keras = _keras()
    reference = getattr(keras.optimizers.schedules, type(schedule).__name__)(
        **schedule.get_config()
    )
    for step in STEPS:
        value = schedule(step)
        assert isinstance(value, float)
        expected = float(keras.ops.convert_to_numpy(reference(step)))
        np.testing.assert_allclose(value, expected, rtol=2e-6, atol=1e-9, err_msg=f"step={step}")


@pytest.mark.parametrize(
    "schedule", CASES, ids=[f"{type(s).__name__}-{i}" for i, s in enumerate(CASES)]
)
def test_config_round_trip(schedule):
    serialized = schedules.serialize(schedule)
    assert serialized["module"] == "keras.optimizers.schedules"
    rebuilt = schedules.deserialize(serialized)
    assert type(rebuilt) is type(schedule)
    assert rebuilt.get_config() == schedule.get_config()
    assert [rebuilt(s) for s in STEPS] == [schedule(s) for s in STEPS]


def test_keras_serialized_schedule_loads():
    keras = _keras()
    reference = keras.optimizers.schedules.CosineDecay(0.1, 30, warmup_target=0.3, warmup_steps=5)
    rebuilt = schedules.deserialize(keras.optimizers.schedules.serialize(reference))
    assert isinstance(rebuilt, schedules.CosineDecay)
    assert rebuilt(12) == pytest.approx(float(keras.ops.convert_to_numpy(reference(12))), rel=1e-6)


def test_invalid_arguments_are_reported():
    with pytest.raises(ValueError, match="decay_steps"):
        schedules.ExponentialDecay(0.1, decay_steps=0, decay_rate=0.9)
    with pytest.raises(ValueError, match="first_decay_steps"):
        schedules.CosineDecayRestarts(0.1, first_decay_steps=-1)
    with pytest.raises(ValueError, match="1 less than the length of values"):
        schedules.PiecewiseConstantDecay([1, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="Unknown decay"):
        schedules.deserialize({"class_name": "NoSuchDecay", "config": {}})


def test_custom_schedule_base():
    class Halving(schedules.LearningRateSchedule):
        def __call__(self, step):
            return 1.0 / 2**step

    assert Halving()(3) == 0.125
    with pytest.raises(NotImplementedError, match="get_config"):
        Halving().get_config()
