"""The `Optimizer` base class: Keras 3's optimizer API over a lazily created `torch.optim`
optimizer."""

from __future__ import annotations

import collections
import copy
import re
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from ktorch.optimizers.schedules.learning_rate_schedule import LearningRateSchedule
from ktorch.saving import serialization_lib
from ktorch.utils.naming import auto_name


def as_parameter(variable: Any) -> torch.Tensor:
    """Returns the tensor behind a variable (a tensor, or an object with a tensor `.value`)."""
    if isinstance(variable, torch.Tensor):
        return variable
    value = getattr(variable, "value", None)
    if isinstance(value, torch.Tensor):
        return value
    raise TypeError(
        "Expected a torch.nn.Parameter (or a variable whose `.value` is a tensor). "
        f"Received: {variable!r} of type {type(variable).__name__}"
    )


def keras_float(dtype: torch.dtype) -> type:
    """The NumPy scalar type Keras's scalar optimizer math runs in for variables of `dtype`."""
    return np.float64 if dtype == torch.float64 else np.float32


def keras_bias_correction(beta: float, step: int, dtype: torch.dtype) -> np.floating:
    """`1 - beta ** step` rounded as Keras computes it, in the variables' float type.

    In float32, `1 - 0.999 ** t` loses about five digits to cancellation; reproducing Keras's
    rounding keeps the updates equal to Keras's. NumPy scalars give the same values as Keras's
    0-d tensors, on the host, without touching the device.
    """
    scalar = keras_float(dtype)
    return scalar(1) - np.power(scalar(beta), scalar(step))


def fused_available(params: list[torch.Tensor]) -> bool:
    """Whether torch's fused kernels apply: floating tensors, all CUDA or all CPU."""
    if not params or not all(p.is_floating_point() for p in params):
        return False
    device_types = {p.device.type for p in params}
    return device_types in ({"cuda"}, {"cpu"})


class Optimizer:
    """Base class of ktorch optimizers: Keras 3's API over a `torch.optim` optimizer.

    The torch optimizer (`self.torch_optimizer`) is created by `build(variables)`, or on the
    first `apply()`. Each `step()` clips the gradients in place (with torch's multi-tensor
    kernels, no device-to-host read), sets the learning rate (schedules are evaluated on the
    Python-side step counter `iterations`), applies weight decay as Keras does
    (`variable -= variable * weight_decay * learning_rate` before the update) and runs the
    torch step. `apply()` / `apply_gradients()` (Keras's API) also apply the variables'
    `constraint`s after the update; `step()` (the torch-style call) leaves that to the caller.

    Args:
        learning_rate: a float, a `LearningRateSchedule`, or a callable taking no argument.
        weight_decay: if set, decoupled weight decay applied to every variable not excluded
            with `exclude_from_weight_decay()`.
        clipnorm: if set, each gradient is clipped to this L2 norm.
        clipvalue: if set, each gradient is clipped to `[-clipvalue, clipvalue]`.
        global_clipnorm: if set, all gradients are scaled so their global norm is at most this.
        use_ema: not supported; must be False.
        ema_momentum: unused (only meaningful with `use_ema`).
        ema_overwrite_frequency: unused (only meaningful with `use_ema`).
        loss_scale_factor: if set, gradients are divided by it before clipping (use with a
            loss multiplied by `scale_loss()`).
        gradient_accumulation_steps: not supported; must be None.
        name: name of the optimizer; defaults to the snake-case class name.
    """

    _keras_module = "keras.optimizers"

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule | Callable[[], float],
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = None,
        **kwargs,
    ):
        if kwargs.pop("decay", None) is not None:
            warnings.warn(
                "Argument `decay` is no longer supported and will be ignored.", stacklevel=2
            )
        if "lr" in kwargs:
            warnings.warn(
                "Argument `lr` is deprecated: use `learning_rate`.",
                DeprecationWarning,
                stacklevel=2,
            )
            learning_rate = kwargs.pop("lr")
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {kwargs}")
        if use_ema:
            raise ValueError(
                "Invalid value for argument use_ema. ktorch optimizers do not support an "
                "exponential moving average of the weights. Expected False. Received: "
                "use_ema=True"
            )
        if gradient_accumulation_steps:
            raise ValueError(
                "Invalid value for argument gradient_accumulation_steps. ktorch optimizers do "
                "not accumulate gradients; accumulate them in the training loop instead. "
                "Expected None. Received: "
                f"gradient_accumulation_steps={gradient_accumulation_steps}"
            )
        clip_args = sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm))
        if clip_args > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                f"Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                f"global_clipnorm={global_clipnorm}"
            )
        self.name = name or auto_name(type(self).__name__)
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self.use_ema = use_ema
        self.ema_momentum = ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self._learning_rate = self._check_learning_rate(learning_rate)
        self.iterations = 0
        self.built = False
        self.torch_optimizer: torch.optim.Optimizer | None = None
        self._trainable_variables: list[torch.Tensor] = []
        self._index: dict[int, int] = {}
        self._decayed: list[torch.Tensor] = []
        self._constrained: list[torch.Tensor] = []
        self._exclude_ids: set[int] = set()
        self._exclude_pattern: re.Pattern | None = None
        self._torch_lr: float | None = None

    @staticmethod
    def _check_learning_rate(learning_rate: Any) -> Any:
        if callable(learning_rate):
            return learning_rate
        if isinstance(learning_rate, (bool, str)) or not hasattr(learning_rate, "__float__"):
            raise ValueError(
                "Argument `learning_rate` should be float, or an instance of "
                "LearningRateSchedule, or a callable (that takes in the current iteration "
                "value and returns the corresponding learning rate value). Received instead: "
                f"learning_rate={learning_rate!r}"
            )
        return float(learning_rate)

    # ----------------------------------------------------------------- learning rate

    def _current_learning_rate(self) -> float:
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            return float(lr(self.iterations))
        if callable(lr):
            return float(lr())
        return lr

    @property
    def learning_rate(self) -> float:
        """The learning rate of the next step (a float; schedules are evaluated)."""
        return self._current_learning_rate()

    @learning_rate.setter
    def learning_rate(self, learning_rate: float | LearningRateSchedule) -> None:
        if isinstance(self._learning_rate, LearningRateSchedule) and not (
            isinstance(learning_rate, LearningRateSchedule) or callable(learning_rate)
        ):
            raise TypeError(
                "This optimizer was created with a `LearningRateSchedule` object as its "
                "`learning_rate` constructor argument, hence its learning rate is not "
                "settable. If you need the learning rate to be settable, you should "
                "instantiate the optimizer with a float `learning_rate` argument."
            )
        self._learning_rate = self._check_learning_rate(learning_rate)

    # ----------------------------------------------------------------- weight decay

    def exclude_from_weight_decay(
        self, var_list: Iterable[Any] | None = None, var_names: Iterable[str] | None = None
    ) -> None:
        """Excludes variables from weight decay; call before the optimizer is built.

        Args:
            var_list: variables to exclude.
            var_names: substrings (regular expressions); a variable whose `name` (or `path`)
                contains one of them is excluded, e.g. `["bias"]`.
        """
        if self.built:
            raise ValueError(
                "`exclude_from_weight_decay()` can only be configured before the optimizer is "
                "built."
            )
        self._exclude_ids = {id(as_parameter(v)) for v in var_list or ()}
        names = list(var_names or ())
        self._exclude_pattern = re.compile("|".join(set(names))) if names else None

    def _use_weight_decay(self, variable: torch.Tensor) -> bool:
        if id(variable) in self._exclude_ids:
            return False
        if self._exclude_pattern is not None:
            name = getattr(variable, "path", None) or getattr(variable, "name", None) or ""
            if re.search(self._exclude_pattern, str(name)) is not None:
                return False
        return True

    # ----------------------------------------------------------------- building

    def build(self, variables: Iterable[Any]) -> None:
        """Creates `self.torch_optimizer` over `variables` (a list of `nn.Parameter`s).

        Args:
            variables: the trainable variables this optimizer updates.
        """
        if self.built:
            return
        params: list[torch.Tensor] = []
        seen: set[int] = set()
        for variable in variables:
            param = as_parameter(variable)
            if not param.is_floating_point():
                raise ValueError(
                    "Optimizers can only update floating-point variables. Received a "
                    f"variable of dtype {param.dtype} and shape {tuple(param.shape)}"
                )
            if id(param) not in seen:
                seen.add(id(param))
                params.append(param)
        if not params:
            raise ValueError("Optimizer.build() expects a non-empty list of variables.")
        self._trainable_variables = params
        self._index = {id(p): i for i, p in enumerate(params)}
        decay = self.weight_decay is not None and self.weight_decay != 0
        self._decayed = [p for p in params if decay and self._use_weight_decay(p)]
        self._constrained = [p for p in params if getattr(p, "constraint", None) is not None]
        groups = [{"params": params}]
        self._torch_lr = self._current_learning_rate()
        self.torch_optimizer = self._create_torch_optimizer(groups, self._torch_lr)
        self.built = True

    def _create_torch_optimizer(
        self, param_groups: list[dict], learning_rate: float
    ) -> torch.optim.Optimizer:
        raise NotImplementedError

    # ----------------------------------------------------------------- stepping

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Resets the gradients of the built variables (to None by default)."""
        for param in self._trainable_variables:
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                param.grad.detach_().zero_()

    def scale_loss(self, loss: Any) -> Any:
        """Multiplies `loss` by `loss_scale_factor` when one is set."""
        return loss if self.loss_scale_factor is None else loss * self.loss_scale_factor

    def step(self) -> None:
        """Applies one update to the built variables from their `.grad`."""
        if not self.built:
            raise ValueError(
                f"Optimizer '{self.name}' is not built: call `build(variables)` (or `apply()`) "
                "before `step()`."
            )
        params = [p for p in self._trainable_variables if p.grad is not None]
        if not params:
            raise ValueError("No gradients provided for any variable.")
        self._step(params)

    def _step(self, params: list[torch.Tensor]) -> None:
        # No no_grad() context here (a few us per step): gradients do not require grad, the
        # torch step manages its own, and only the weight decay below writes parameters.
        grads = [p.grad for p in params]
        self._transform_gradients(grads)
        lr = self._current_learning_rate()
        torch_lr = self._prepare_step(lr, params)
        if torch_lr != self._torch_lr:
            for group in self.torch_optimizer.param_groups:
                group["lr"] = torch_lr
            self._torch_lr = torch_lr
        if self._decayed and lr != 0:
            decayed = [p for p in self._decayed if p.grad is not None]
            if decayed:
                with torch.no_grad():
                    torch._foreach_mul_(decayed, 1 - self.weight_decay * lr)
        self.torch_optimizer.step()
        self.iterations += 1

    def _prepare_step(self, learning_rate: float, params: list[torch.Tensor]) -> float:
        """Hook: adjusts the torch optimizer before its step; returns the torch learning rate.

        Runs with the Keras learning rate of this step, before the torch optimizer's `lr`
        (still the previous step's, `self._torch_lr`) is updated.
        """
        return learning_rate

    def _transform_gradients(self, grads: list[torch.Tensor]) -> None:
        if self.loss_scale_factor is not None:
            torch._foreach_mul_(grads, 1.0 / self.loss_scale_factor)
        if self.clipnorm and self.clipnorm > 0:
            norms = torch._foreach_norm(grads)
            torch._foreach_clamp_min_(norms, self.clipnorm)
            torch._foreach_reciprocal_(norms)
            torch._foreach_mul_(norms, self.clipnorm)
            torch._foreach_mul_(grads, norms)
        elif self.global_clipnorm and self.global_clipnorm > 0:
            clip_by_global_norm_(grads, self.global_clipnorm)
        elif self.clipvalue and self.clipvalue > 0:
            torch._foreach_clamp_min_(grads, -self.clipvalue)
            torch._foreach_clamp_max_(grads, self.clipvalue)

    def apply(self, grads: Iterable[Any], trainable_variables: Iterable[Any] | None = None):
        """Assigns `grads` to the variables' `.grad` and applies one update.

        The optimizer is built on `trainable_variables` on first use. Variables whose gradient
        is None are skipped (with a warning); the gradients are clipped in place.

        Args:
            grads: gradients, one per variable (None for no gradient).
            trainable_variables: the variables; defaults to those the optimizer was built on.
        """
        grads = list(grads)
        if not grads:
            return
        if trainable_variables is None:
            if not self.built:
                raise ValueError(
                    "When passing `grads` without `variables`, the optimizer must already be "
                    "built on a list of variables. Call `optimizer.build(trainable_variables)` "
                    "first."
                )
            variables = self._trainable_variables
        else:
            variables = [as_parameter(v) for v in trainable_variables]
            if not self.built:
                self.build(variables)
        if len(grads) != len(variables):
            raise ValueError(
                "Expected one gradient per variable. Received "
                f"{len(grads)} gradients for {len(variables)} variables."
            )
        for variable in variables:
            if id(variable) not in self._index:
                raise ValueError(
                    f"Unknown variable of shape {tuple(variable.shape)}. This optimizer can only "
                    "be called for the variables it was originally built with. When working "
                    "with a new set of variables, you should recreate a new optimizer instance."
                )
        given: dict[int, Any] = {}
        missing = []
        for grad, variable in zip(grads, variables, strict=True):
            if grad is None:
                missing.append(getattr(variable, "path", None) or tuple(variable.shape))
            else:
                given[id(variable)] = grad
        if not given:
            raise ValueError("No gradients provided for any variable.")
        if missing:
            warnings.warn(
                f"Gradients do not exist for variables {missing} when minimizing the loss. If "
                "using `model.compile()`, did you forget to provide a `loss` argument?",
                stacklevel=2,
            )
        params = []
        for param in self._trainable_variables:
            grad = given.get(id(param))
            if grad is None:
                param.grad = None
                continue
            if param.grad is not grad:
                param.grad = grad
            params.append(param)
        self._step(params)
        with torch.no_grad():
            for param in self._constrained:
                if param.grad is not None:
                    param.copy_(param.constraint(param))

    def apply_gradients(self, grads_and_vars: Iterable[tuple[Any, Any]]) -> int:
        """Applies `(gradient, variable)` pairs; returns `iterations`."""
        pairs = list(grads_and_vars)
        if pairs:
            grads, variables = zip(*pairs, strict=True)
            self.apply(grads, variables)
        return self.iterations

    # ----------------------------------------------------------------- state

    def _slot_groups(self) -> list[list[str]]:
        """Keras's per-variable slot names, grouped as Keras creates them."""
        return []

    def _keras_slot(self, name: str, param: torch.Tensor, state: dict) -> torch.Tensor:
        """The Keras value of slot `name` of `param` from the torch state."""
        value = state.get(name)
        return torch.zeros_like(param) if value is None else value

    def _torch_state(self, slots: dict[str, torch.Tensor], param: torch.Tensor) -> dict:
        """The torch state of `param` from its Keras slot values."""
        return dict(slots)

    def _extra_keras_variables(self) -> list[torch.Tensor]:
        return []

    def _load_extra_keras_variables(self, values: list[torch.Tensor]) -> None:
        """Hook: restores the values of `_extra_keras_variables`."""

    @property
    def variables(self) -> list[torch.Tensor]:
        """The optimizer state in Keras 3's order and units.

        `[iterations, learning_rate (when not a schedule), slots...]`, slots ordered as Keras
        creates them (e.g. Adam: momentum and velocity of each variable in turn). Tensors that
        differ from the torch state only in units are converted copies; restore a state with
        `load_own_variables()`.
        """
        values = [torch.tensor(self.iterations, dtype=torch.int64)]
        if isinstance(self._learning_rate, float):
            values.append(torch.tensor(self._learning_rate, dtype=torch.float32))
        if not self.built:
            return values
        for group in self._slot_groups():
            for param in self._trainable_variables:
                state = self.torch_optimizer.state.get(param, {})
                values.extend(self._keras_slot(name, param, state) for name in group)
        values.extend(self._extra_keras_variables())
        return values

    def save_own_variables(self, store: dict) -> None:
        """Writes `variables` as NumPy arrays into `store` under `"0"`, `"1"`, ..."""
        for i, value in enumerate(self.variables):
            store[str(i)] = value.detach().cpu().numpy()

    def load_own_variables(self, store: dict) -> None:
        """Restores the state written by `save_own_variables` (or by Keras 3).

        Args:
            store: mapping from `"0"`, `"1"`, ... to arrays, in the order of `variables`.
        """
        if not self.built:
            raise ValueError(
                f"Optimizer '{self.name}' must be built before loading its variables: call "
                "`build(variables)` first."
            )
        expected = len(self.variables)
        if len(store) != expected:
            raise ValueError(
                f"Cannot load the state of optimizer '{self.name}': expected {expected} "
                f"variables. Received: {len(store)}"
            )
        values = [torch.as_tensor(store[str(i)]).clone() for i in range(expected)]
        self.iterations = int(values[0])
        position = 1
        if isinstance(self._learning_rate, float):
            self._learning_rate = float(values[1])
            position = 2
        slots: list[dict[str, torch.Tensor]] = [{} for _ in self._trainable_variables]
        for group in self._slot_groups():
            for i, param in enumerate(self._trainable_variables):
                for name in group:
                    slots[i][name] = values[position].to(param.device, param.dtype)
                    position += 1
        state = {
            i: self._torch_state(slot, param)
            for i, (slot, param) in enumerate(zip(slots, self._trainable_variables, strict=True))
        }
        torch_state = self.torch_optimizer.state_dict()
        for group in torch_state["param_groups"]:
            group["lr"] = self._current_learning_rate()
        torch_state["state"] = state
        self.torch_optimizer.load_state_dict(torch_state)
        self._torch_lr = self._current_learning_rate()
        self._load_extra_keras_variables(values[position:])

    def state_dict(self) -> dict[str, Any]:
        """The exact state for resuming: `iterations` and the torch optimizer's state dict."""
        return {
            "iterations": self.iterations,
            "torch_optimizer": None
            if self.torch_optimizer is None
            else self.torch_optimizer.state_dict(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restores a `state_dict()`; the optimizer must be built on the same variables."""
        self.iterations = int(state_dict["iterations"])
        if state_dict.get("torch_optimizer") is not None:
            if not self.built:
                raise ValueError(
                    f"Optimizer '{self.name}' must be built before loading a state dict: call "
                    "`build(variables)` first."
                )
            # torch keeps the given tensors when dtype and device already match: copy them so
            # that two optimizers never share (and both update) one state tensor.
            self.torch_optimizer.load_state_dict(copy.deepcopy(state_dict["torch_optimizer"]))
            self._torch_lr = self.torch_optimizer.param_groups[0]["lr"]

    # ----------------------------------------------------------------- config

    def get_config(self) -> dict[str, Any]:
        """Returns the serializable config of the optimizer."""
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            learning_rate = serialization_lib.serialize_keras_object(lr)
        elif callable(lr):
            learning_rate = serialization_lib.serialize_keras_object(lr)
        else:
            learning_rate = lr
        return {
            "name": self.name,
            "learning_rate": learning_rate,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
            "use_ema": self.use_ema,
            "ema_momentum": self.ema_momentum,
            "ema_overwrite_frequency": self.ema_overwrite_frequency,
            "loss_scale_factor": self.loss_scale_factor,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict | None = None) -> Optimizer:
        """Creates an optimizer from its config."""
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            from ktorch.optimizers import schedules

            config["learning_rate"] = schedules.deserialize(
                config["learning_rate"], custom_objects=custom_objects
            )
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"


def clip_by_global_norm_(grads: list[torch.Tensor], clip_norm: float) -> None:
    """Scales `grads` in place so that their global L2 norm is at most `clip_norm`.

    As Keras: `scale = clip_norm * min(1 / norm, 1 / clip_norm)`, NaN when the norm is not
    finite. Computed on the device, without reading the norm back to the host.
    """
    by_device: dict[torch.device, list[torch.Tensor]] = collections.defaultdict(list)
    for grad in grads:
        by_device[grad.device].append(grad)
    device = grads[0].device
    squared = [
        torch.stack(torch._foreach_norm(group)).square().sum().to(device)
        for group in by_device.values()
    ]
    norm = torch.stack(squared).sum().sqrt()
    scale = clip_norm * torch.clamp(1.0 / norm, max=1.0 / clip_norm) + (norm - norm)
    for group_device, group in by_device.items():
        torch._foreach_mul_(group, scale.to(group_device))
