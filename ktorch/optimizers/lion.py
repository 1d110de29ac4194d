"""Lion: evolved sign momentum."""

from __future__ import annotations

from typing import Any

import torch

from ktorch.optimizers.optimizer import Optimizer


class TorchLion(torch.optim.Optimizer):
    """`torch.optim` optimizer with the Lion update (multi-tensor kernels).

    `w -= lr * sign(b1 * m + (1 - b1) * g); m = b2 * m + (1 - b2) * g`.

    Args:
        params: parameters or parameter groups.
        lr: learning rate.
        betas: `(beta_1, beta_2)`.
    """

    def __init__(self, params, lr=0.001, betas=(0.9, 0.99)):
        super().__init__(params, {"lr": lr, "betas": betas})
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["momentum"] = torch.zeros_like(p, memory_format=torch.preserve_format)

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
            beta_1, beta_2 = group["betas"]
            grads = [p.grad for p in params]
            momentums = [self.state[p]["momentum"] for p in params]
            directions = torch._foreach_mul(momentums, beta_1)
            torch._foreach_add_(directions, grads, alpha=1 - beta_1)
            torch._foreach_sign_(directions)
            torch._foreach_add_(params, directions, alpha=-group["lr"])
            torch._foreach_mul_(momentums, beta_2)
            torch._foreach_add_(momentums, grads, alpha=1 - beta_2)
        return loss


class Lion(Optimizer):
    """Lion: updates by the sign of an interpolation of the momentum and the gradient.

    torch has no Lion; it runs on `TorchLion`, a multi-tensor `torch.optim` optimizer.

    Args:
        learning_rate: a float, a `LearningRateSchedule` or a callable. Defaults to 0.001.
        beta_1: rate combining the momentum and the gradient for the update direction.
        beta_2: exponential decay rate of the momentum.
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
        beta_2: float = 0.99,
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
        if beta_1 <= 0 or beta_1 > 1:
            raise ValueError(
                "Argument `beta_1` must be in the [0, 1] range. Otherwise, the optimizer "
                f"degenerates to SignSGD. Received: beta_1={beta_1}."
            )
        self.beta_1 = beta_1
        self.beta_2 = beta_2

    def _create_torch_optimizer(self, param_groups, learning_rate):
        return TorchLion(param_groups, lr=learning_rate, betas=(self.beta_1, self.beta_2))

    def _slot_groups(self):
        return [["momentum"]]

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}
