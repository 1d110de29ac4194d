"""Adamax: Adam with the infinity norm."""

from __future__ import annotations

from typing import Any

import torch

from ktorch.optimizers.optimizer import Optimizer


class TorchAdamax(torch.optim.Optimizer):
    """`torch.optim` optimizer with Keras's Adamax update (multi-tensor kernels).

    `m = b1 * m + (1 - b1) * g; u = max(b2 * u, |g|);
    w -= lr * m / ((1 - b1 ** t) * (u + eps))`; `torch.optim.Adamax` adds eps inside the max.

    Args:
        params: parameters or parameter groups.
        lr: learning rate.
        betas: `(beta_1, beta_2)`.
        eps: small constant added to the norm.
    """

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-7):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "step": 0})
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["momentum"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["norm"] = torch.zeros_like(p, memory_format=torch.preserve_format)

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
            group["step"] += 1
            beta_1, beta_2 = group["betas"]
            grads = [p.grad for p in params]
            momentums = [self.state[p]["momentum"] for p in params]
            norms = [self.state[p]["norm"] for p in params]
            torch._foreach_mul_(momentums, beta_1)
            torch._foreach_add_(momentums, grads, alpha=1 - beta_1)
            torch._foreach_mul_(norms, beta_2)
            torch._foreach_maximum_(norms, torch._foreach_abs(grads))
            denominators = torch._foreach_add(norms, group["eps"])
            torch._foreach_mul_(denominators, 1 - beta_1 ** group["step"])
            torch._foreach_sub_(
                params,
                torch._foreach_div(torch._foreach_mul(momentums, group["lr"]), denominators),
            )
        return loss


class Adamax(Optimizer):
    """Adamax: a variant of Adam based on the infinity norm.

    Keras's update runs on `TorchAdamax`, a multi-tensor `torch.optim` optimizer, because
    `torch.optim.Adamax` adds epsilon inside the running maximum.

    Args:
        learning_rate: a float, a `LearningRateSchedule` or a callable. Defaults to 0.001.
        beta_1: exponential decay rate of the first moment estimates.
        beta_2: exponential decay rate of the weighted infinity norm.
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
        return TorchAdamax(
            param_groups, lr=learning_rate, betas=(self.beta_1, self.beta_2), eps=self.epsilon
        )

    def _prepare_step(self, learning_rate, params):
        for group in self.torch_optimizer.param_groups:
            group["step"] = self.iterations
        return learning_rate

    def _slot_groups(self):
        return [["momentum", "norm"]]

    def get_config(self):
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        }
