"""Adagrad."""

from __future__ import annotations

from typing import Any

import torch

from ktorch.optimizers.optimizer import Optimizer


class TorchAdagrad(torch.optim.Optimizer):
    """`torch.optim` optimizer with Keras's Adagrad update (multi-tensor kernels).

    `accumulator += g ** 2; w -= lr * g / sqrt(accumulator + eps)`, unlike
    `torch.optim.Adagrad` which divides by `sqrt(accumulator) + eps`.

    Args:
        params: parameters or parameter groups.
        lr: learning rate.
        initial_accumulator_value: starting value of the accumulators.
        eps: small constant added to the accumulator before the square root.
    """

    def __init__(self, params, lr=0.001, initial_accumulator_value=0.1, eps=1e-7):
        defaults = {"lr": lr, "initial_accumulator_value": initial_accumulator_value, "eps": eps}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["accumulator"] = torch.full_like(
                    p, group["initial_accumulator_value"], memory_format=torch.preserve_format
                )

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            accumulators = [self.state[p]["accumulator"] for p in params]
            torch._foreach_addcmul_(accumulators, grads, grads)
            denominators = torch._foreach_add(accumulators, group["eps"])
            torch._foreach_sqrt_(denominators)
            torch._foreach_sub_(
                params, torch._foreach_div(torch._foreach_mul(grads, group["lr"]), denominators)
            )
        return loss


class Adagrad(Optimizer):
    """Adagrad: per-parameter learning rates scaled by the accumulated squared gradients.

    Keras's update (`sqrt(accumulator + epsilon)`, accumulators starting at
    `initial_accumulator_value`) runs on `TorchAdagrad`, a multi-tensor `torch.optim`
    optimizer, because `torch.optim.Adagrad` adds epsilon after the square root.

    Args:
        learning_rate: a float, a `LearningRateSchedule` or a callable. Defaults to 0.001.
        initial_accumulator_value: starting value of the accumulators (non-negative).
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
        initial_accumulator_value: float = 0.1,
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
        self.initial_accumulator_value = initial_accumulator_value
        self.epsilon = epsilon

    def _create_torch_optimizer(self, param_groups, learning_rate):
        return TorchAdagrad(
            param_groups,
            lr=learning_rate,
            initial_accumulator_value=self.initial_accumulator_value,
            eps=self.epsilon,
        )

    def _slot_groups(self):
        return [["accumulator"]]

    def get_config(self):
        return {
            **super().get_config(),
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon,
        }
