"""Nadam: Adam with Nesterov momentum."""

from __future__ import annotations

from typing import Any

import torch

from ktorch.optimizers.optimizer import Optimizer, keras_bias_correction


class Nadam(Optimizer):
    """Nadam: Adam with Nesterov momentum and Keras's momentum schedule.

    Runs on `torch.optim.NAdam` with `momentum_decay=1.0`, which gives Keras's momentum
    schedule `beta_1 * (1 - 0.5 * 0.96 ** t)` and its update; the learning rate and epsilon
    given to torch at each step absorb the difference between torch's and Keras's rounding of
    `1 - beta_2 ** t` (Keras computes it in the variables' dtype).

    Args:
        learning_rate: a float, a `LearningRateSchedule` or a callable. Defaults to 0.001.
        beta_1: exponential decay rate of the first moment estimates.
        beta_2: exponential decay rate of the second moment estimates.
        epsilon: small constant for numerical stability.
        weight_decay: decoupled weight decay (see `Optimizer`).
        clipnorm: clip each gradient to this norm.
        clipvalue: clip each gradient to `[-clipvalue, clipvalue]`.
        global_clipnorm: clip all gradients to this global norm.
        name: name of the optimizer.
        **kwargs: the other `Optimizer` arguments.
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        name: str | None = None,
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            name=name,
            **kwargs,
        )
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def _create_torch_optimizer(self, param_groups, learning_rate):
        # torch has no fused NAdam; measured on CPU (MLP 784-128-10, 1 thread): foreach
        # 392 us vs single-tensor 402 us per step.
        return torch.optim.NAdam(
            param_groups,
            lr=learning_rate,
            betas=(self.beta_1, self.beta_2),
            eps=self.epsilon,
            momentum_decay=1.0,
            foreach=True,
        )

    def _prepare_step(self, learning_rate, params):
        step = self.iterations + 1
        keras_correction = float(keras_bias_correction(self.beta_2, step, params[0].dtype))
        ratio = (keras_correction / (1.0 - self.beta_2**step)) ** 0.5
        for group in self.torch_optimizer.param_groups:
            group["eps"] = self.epsilon * ratio
        return learning_rate * ratio

    def _slot_groups(self):
        return [["momentum", "velocity"]]

    _TORCH_KEYS = {"momentum": "exp_avg", "velocity": "exp_avg_sq"}

    def _keras_slot(self, name, param, state):
        value = state.get(self._TORCH_KEYS[name])
        return torch.zeros_like(param) if value is None else value

    def _extra_keras_variables(self):
        state = self.torch_optimizer.state.get(self._trainable_variables[0], {})
        product = state.get("mu_product")
        return [torch.ones(()) if product is None else product.detach().clone()]

    def _load_extra_keras_variables(self, values):
        for state in self.torch_optimizer.state.values():
            state["mu_product"] = values[0].to(torch.float32).clone()

    def _torch_state(self, slots, param):
        return {
            "step": torch.tensor(float(self.iterations)),
            "mu_product": torch.tensor(1.0),
            "exp_avg": slots["momentum"],
            "exp_avg_sq": slots["velocity"],
        }

    def get_config(self):
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        }
