"""Adadelta."""

from __future__ import annotations

from typing import Any

import torch

from ktorch.optimizers.optimizer import Optimizer


class Adadelta(Optimizer):
    """Adadelta: per-dimension learning rates from moving windows of gradient updates.

    Runs on `torch.optim.Adadelta`, whose update is Keras's.

    Args:
        learning_rate: a float, a `LearningRateSchedule` or a callable. Defaults to 0.001.
        rho: decay rate of the moving averages.
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
        rho: float = 0.95,
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
        self.rho = rho
        self.epsilon = epsilon

    def _create_torch_optimizer(self, param_groups, learning_rate):
        # torch has no fused Adadelta; measured on CPU (MLP 784-128-10, 1 thread): foreach
        # 416 us vs single-tensor 433 us per step.
        return torch.optim.Adadelta(
            param_groups, lr=learning_rate, rho=self.rho, eps=self.epsilon, foreach=True
        )

    def _slot_groups(self):
        return [["accumulated_grad", "accumulated_delta_var"]]

    _TORCH_KEYS = {"accumulated_grad": "square_avg", "accumulated_delta_var": "acc_delta"}

    def _keras_slot(self, name, param, state):
        value = state.get(self._TORCH_KEYS[name])
        return torch.zeros_like(param) if value is None else value

    def _torch_state(self, slots, param):
        return {
            "step": torch.tensor(float(self.iterations)),
            "square_avg": slots["accumulated_grad"],
            "acc_delta": slots["accumulated_delta_var"],
        }

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}
