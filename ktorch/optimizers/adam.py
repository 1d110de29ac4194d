"""Adam."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ktorch.optimizers.optimizer import (
    Optimizer,
    fused_available,
    keras_bias_correction,
    keras_float,
)


class Adam(Optimizer):
    """Adam: adaptive moment estimation.

    Keras adds `epsilon` to `sqrt(v)` before the bias correction (`w -= alpha * m /
    (sqrt(v) + epsilon)` with `alpha = lr * sqrt(1 - b2^t) / (1 - b1^t)`) while
    `torch.optim.Adam` adds it after. At each step the torch optimizer gets
    `eps = epsilon / sqrt(1 - b2^t)` and a learning rate that makes its step size Keras's
    `alpha` (computed with Keras's float rounding), which makes the two updates equal. Weight
    decay is Keras's decoupled decay, applied before the update.

    Args:
        learning_rate: a float, a `LearningRateSchedule` or a callable. Defaults to 0.001.
        beta_1: exponential decay rate of the first moment estimates.
        beta_2: exponential decay rate of the second moment estimates.
        epsilon: small constant for numerical stability.
        amsgrad: whether to use the AMSGrad variant.
        weight_decay: decoupled weight decay (see `Optimizer`).
        clipnorm: clip each gradient to this norm.
        clipvalue: clip each gradient to `[-clipvalue, clipvalue]`.
        global_clipnorm: clip all gradients to this global norm.
        name: name of the optimizer.
        **kwargs: the other `Optimizer` arguments.

    Example:
        ```python
        optimizer = ktorch.optimizers.Adam(learning_rate=1e-3)
        ```
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
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
        super().__init__(
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.amsgrad = amsgrad

    def _create_torch_optimizer(self, param_groups, learning_rate):
        params = [p for group in param_groups for p in group["params"]]
        # Measured on CPU (MLP 784-128-10, 1 thread): fused 130 us vs foreach 333 us vs
        # single-tensor 333 us per step; fused is also torch's fastest on CUDA.
        implementation = {"fused": True} if fused_available(params) else {"foreach": True}
        return torch.optim.Adam(
            param_groups,
            lr=learning_rate,
            betas=(self.beta_1, self.beta_2),
            eps=self.epsilon,
            amsgrad=self.amsgrad,
            **implementation,
        )

    def _prepare_step(self, learning_rate, params):
        step = self.iterations + 1  # torch's step count during this step
        dtype = params[0].dtype
        alpha = (
            keras_float(dtype)(learning_rate)
            * np.sqrt(keras_bias_correction(self.beta_2, step, dtype))
            / keras_bias_correction(self.beta_1, step, dtype)
        )
        # torch steps by `lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.
        torch_correction1 = 1.0 - self.beta_1**step
        torch_correction2 = (1.0 - self.beta_2**step) ** 0.5
        for group in self.torch_optimizer.param_groups:
            group["eps"] = self.epsilon / torch_correction2
        return float(alpha) * torch_correction1 / torch_correction2

    def _slot_groups(self):
        groups = [["momentum", "velocity"]]
        if self.amsgrad:
            groups.append(["velocity_hat"])
        return groups

    _TORCH_KEYS = {
        "momentum": "exp_avg",
        "velocity": "exp_avg_sq",
        "velocity_hat": "max_exp_avg_sq",
    }

    def _keras_slot(self, name, param, state):
        value = state.get(self._TORCH_KEYS[name])
        return torch.zeros_like(param) if value is None else value

    def _torch_state(self, slots, param):
        state = {
            "step": torch.tensor(float(self.iterations)),
            "exp_avg": slots["momentum"],
            "exp_avg_sq": slots["velocity"],
        }
        if self.amsgrad:
            state["max_exp_avg_sq"] = slots["velocity_hat"]
        return state

    def get_config(self):
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "amsgrad": self.amsgrad,
        }
