"""Learning rate schedules: a Python float for each optimizer step, Keras 3's formulas."""

from __future__ import annotations

import math
from typing import Any

from ktorch.saving import serialization_lib


def _step_value(step: Any) -> float:
    # Optimizers pass their Python-side step counter, so no device value is read here.
    return float(step)


class LearningRateSchedule:
    """Base class of learning rate schedules: `schedule(step)` returns the learning rate.

    Subclasses implement `__call__(step)` (and `get_config()` to be serializable).

    Example:
        ```python
        class MyLRSchedule(LearningRateSchedule):
            def __init__(self, initial_learning_rate):
                self.initial_learning_rate = initial_learning_rate

            def __call__(self, step):
                return self.initial_learning_rate / (step + 1)

        optimizer = ktorch.optimizers.SGD(learning_rate=MyLRSchedule(0.1))
        ```
    """

    _keras_module = "keras.optimizers.schedules"

    def __call__(self, step: int) -> float:
        raise NotImplementedError(
            f"Learning rate schedule '{type(self).__name__}' must override `__call__(self, step)`."
        )

    def get_config(self) -> dict[str, Any]:
        """Returns the serializable config of the schedule."""
        raise NotImplementedError(
            f"Learning rate schedule '{type(self).__name__}' must override `get_config()` in "
            "order to be serializable."
        )

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LearningRateSchedule:
        """Creates a schedule from its config."""
        return cls(**config)


def _check_positive(name: str, value: Any) -> None:
    if value <= 0:
        raise ValueError(f"Argument `{name}` must be > 0. Received: {name}={value}")


class ExponentialDecay(LearningRateSchedule):
    """`initial_learning_rate * decay_rate ** (step / decay_steps)`.

    Args:
        initial_learning_rate: the initial learning rate.
        decay_steps: a positive number of steps.
        decay_rate: the decay rate.
        staircase: if True, `step / decay_steps` is an integer division.
        name: name of the schedule.

    Example:
        ```python
        schedule = ExponentialDecay(0.1, decay_steps=100000, decay_rate=0.96, staircase=True)
        ```
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
        name: str = "ExponentialDecay",
    ):
        _check_positive("decay_steps", decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = name

    def __call__(self, step: int) -> float:
        p = _step_value(step) / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate**p

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }


class PiecewiseConstantDecay(LearningRateSchedule):
    """`values[0]` while `step <= boundaries[0]`, then `values[i]` up to `boundaries[i]`, and
    `values[-1]` after the last boundary.

    Args:
        boundaries: strictly increasing step boundaries.
        values: one more value than boundaries.
        name: name of the schedule.
    """

    def __init__(self, boundaries: list[int], values: list[float], name: str = "PiecewiseConstant"):
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                "The length of boundaries should be 1 less than the length of values. "
                f"Received: boundaries={boundaries} of length {len(boundaries)}, and "
                f"values={values} of length {len(values)}."
            )
        self.boundaries = boundaries
        self.values = values
        self.name = name

    def __call__(self, step: int) -> float:
        step = _step_value(step)
        for boundary, value in zip(self.boundaries, self.values, strict=False):
            if step <= boundary:
                return value
        return self.values[-1]

    def get_config(self) -> dict[str, Any]:
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """Polynomial decay from `initial_learning_rate` to `end_learning_rate` in `decay_steps`.

    `(initial - end) * (1 - min(step, decay_steps) / decay_steps) ** power + end`; with
    `cycle=True`, `decay_steps` grows to the first multiple of itself above `step`.

    Args:
        initial_learning_rate: the initial learning rate.
        decay_steps: a positive number of steps.
        end_learning_rate: the final learning rate.
        power: the power of the polynomial.
        cycle: whether to cycle beyond `decay_steps`.
        name: name of the schedule.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        end_learning_rate: float = 0.0001,
        power: float = 1.0,
        cycle: bool = False,
        name: str = "PolynomialDecay",
    ):
        _check_positive("decay_steps", decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.end_learning_rate = end_learning_rate
        self.power = power
        self.cycle = cycle
        self.name = name

    def __call__(self, step: int) -> float:
        step = _step_value(step)
        decay_steps = float(self.decay_steps)
        if self.cycle:
            multiplier = 1.0 if step == 0 else math.ceil(step / self.decay_steps)
            decay_steps *= multiplier
        else:
            step = min(step, decay_steps)
        p = step / decay_steps
        return (self.initial_learning_rate - self.end_learning_rate) * (
            1 - p
        ) ** self.power + self.end_learning_rate

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
            "power": self.power,
            "cycle": self.cycle,
            "name": self.name,
        }


class InverseTimeDecay(LearningRateSchedule):
    """`initial_learning_rate / (1 + decay_rate * step / decay_steps)`.

    Args:
        initial_learning_rate: the initial learning rate.
        decay_steps: how often to apply decay.
        decay_rate: the decay rate.
        staircase: if True, `step / decay_steps` is floored.
        name: name of the schedule.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
        name: str = "InverseTimeDecay",
    ):
        _check_positive("decay_steps", decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = name

    def __call__(self, step: int) -> float:
        p = _step_value(step) / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate / (1.0 + self.decay_rate * p)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }


class CosineDecay(LearningRateSchedule):
    """Cosine decay, with an optional linear warmup first.

    Without `warmup_target`, decays from `initial_learning_rate` to
    `initial_learning_rate * alpha` over `decay_steps`. With it, first rises linearly from
    `initial_learning_rate` to `warmup_target` over `warmup_steps`, then decays from
    `warmup_target` to `warmup_target * alpha`.

    Args:
        initial_learning_rate: the initial learning rate.
        decay_steps: number of steps to decay over.
        alpha: minimum learning rate as a fraction of the decay's starting rate.
        name: name of the schedule.
        warmup_target: the learning rate reached at the end of the warmup, or None.
        warmup_steps: number of warmup steps.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        alpha: float = 0.0,
        name: str = "CosineDecay",
        warmup_target: float | None = None,
        warmup_steps: int = 0,
    ):
        _check_positive("decay_steps", decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.alpha = alpha
        self.name = name
        self.warmup_steps = warmup_steps
        self.warmup_target = warmup_target

    def _decay(self, step: float, decay_from: float) -> float:
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
        return decay_from * ((1 - self.alpha) * cosine + self.alpha)

    def __call__(self, step: int) -> float:
        step = _step_value(step)
        if self.warmup_target is None:
            return self._decay(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            fraction = step / self.warmup_steps
            delta = self.warmup_target - self.initial_learning_rate
            return delta * fraction + self.initial_learning_rate
        return self._decay(step - self.warmup_steps, self.warmup_target)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "name": self.name,
            "warmup_target": self.warmup_target,
            "warmup_steps": self.warmup_steps,
        }


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR).

    The multiplier decays from 1 to `alpha` over `first_decay_steps`; then a restart begins,
    each period `t_mul` times longer and starting `m_mul` times lower than the previous one.

    Args:
        initial_learning_rate: the initial learning rate.
        first_decay_steps: number of steps of the first period.
        t_mul: factor of the length of each period.
        m_mul: factor of the starting learning rate of each period.
        alpha: minimum learning rate as a fraction of `initial_learning_rate`.
        name: name of the schedule.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        first_decay_steps: int,
        t_mul: float = 2.0,
        m_mul: float = 1.0,
        alpha: float = 0.0,
        name: str = "SGDRDecay",
    ):
        _check_positive("first_decay_steps", first_decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.first_decay_steps = first_decay_steps
        self._t_mul = t_mul
        self._m_mul = m_mul
        self.alpha = alpha
        self.name = name

    def __call__(self, step: int) -> float:
        fraction = _step_value(step) / self.first_decay_steps
        t_mul = self._t_mul
        if t_mul == 1.0:
            i_restart = math.floor(fraction)
            fraction -= i_restart
        else:
            i_restart = math.floor(math.log(1.0 - fraction * (1.0 - t_mul)) / math.log(t_mul))
            sum_r = (1.0 - t_mul**i_restart) / (1.0 - t_mul)
            fraction = (fraction - sum_r) / t_mul**i_restart
        m_fac = self._m_mul**i_restart
        cosine = 0.5 * m_fac * (1.0 + math.cos(math.pi * fraction))
        return self.initial_learning_rate * ((1 - self.alpha) * cosine + self.alpha)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "first_decay_steps": self.first_decay_steps,
            "t_mul": self._t_mul,
            "m_mul": self._m_mul,
            "alpha": self.alpha,
            "name": self.name,
        }


ALL_OBJECTS_DICT = {
    cls.__name__: cls
    for cls in (
        LearningRateSchedule,
        ExponentialDecay,
        PiecewiseConstantDecay,
        PolynomialDecay,
        InverseTimeDecay,
        CosineDecay,
        CosineDecayRestarts,
    )
}


def serialize(learning_rate_schedule: LearningRateSchedule) -> dict[str, Any]:
    """Returns the config dict of a schedule."""
    return serialization_lib.serialize_keras_object(learning_rate_schedule)


def deserialize(config: Any, custom_objects: dict | None = None) -> LearningRateSchedule:
    """Rebuilds a schedule from `serialize` output."""
    return serialization_lib.deserialize_keras_object(
        config,
        module_objects=ALL_OBJECTS_DICT,
        custom_objects=custom_objects,
        printable_module_name="decay",
    )
