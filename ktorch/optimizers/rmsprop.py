"""RMSprop."""

from __future__ import annotations

from typing import Any

import torch

from ktorch.optimizers.optimizer import Optimizer


class TorchRMSprop(torch.optim.Optimizer):
    """`torch.optim` optimizer with Keras's RMSprop update (multi-tensor kernels).

    Unlike `torch.optim.RMSprop` (`sqrt(v) + eps`), the denominator is `sqrt(v + eps)`, and
    with momentum the buffer accumulates `lr * g / sqrt(v + eps)`.

    Args:
        params: parameters or parameter groups.
        lr: learning rate.
        rho: decay rate of the squared-gradient average.
        momentum: momentum factor.
        eps: small constant added to the average before the square root.
        centered: whether to subtract the squared mean gradient.
    """

    def __init__(self, params, lr=0.001, rho=0.9, momentum=0.0, eps=1e-7, centered=False):
        defaults = {"lr": lr, "rho": rho, "momentum": momentum, "eps": eps, "centered": centered}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["velocity"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if group["momentum"] > 0:
                    state["momentum"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if group["centered"]:
                    state["average_gradient"] = torch.zeros_like(
                        p, memory_format=torch.preserve_format
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
            rho, lr = group["rho"], group["lr"]
            velocities = [self.state[p]["velocity"] for p in params]
            torch._foreach_mul_(velocities, rho)
            torch._foreach_addcmul_(velocities, grads, grads, value=1 - rho)
            denominators = torch._foreach_add(velocities, group["eps"])
            if group["centered"]:
                averages = [self.state[p]["average_gradient"] for p in params]
                torch._foreach_mul_(averages, rho)
                torch._foreach_add_(averages, grads, alpha=1 - rho)
                torch._foreach_addcmul_(denominators, averages, averages, value=-1)
            torch._foreach_sqrt_(denominators)
            increments = torch._foreach_div(torch._foreach_mul(grads, lr), denominators)
            if group["momentum"] > 0:
                momentums = [self.state[p]["momentum"] for p in params]
                torch._foreach_mul_(momentums, group["momentum"])
                torch._foreach_add_(momentums, increments)
                torch._foreach_sub_(params, momentums)
            else:
                torch._foreach_sub_(params, increments)
        return loss


class RMSprop(Optimizer):
    """RMSprop: divides the gradient by a moving root mean square of past gradients.

    Keras's update (`sqrt(velocity + epsilon)` in the denominator) runs on `TorchRMSprop`,
    a multi-tensor `torch.optim` optimizer, because `torch.optim.RMSprop` adds epsilon after
    the square root.

    Args:
        learning_rate: a float, a `LearningRateSchedule` or a callable. Defaults to 0.001.
        rho: discounting factor of the old gradients.
        momentum: momentum factor (0 for none).
        epsilon: small constant for numerical stability.
        centered: whether to normalize by the estimated variance of the gradient.
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
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
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
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered

    def _create_torch_optimizer(self, param_groups, learning_rate):
        return TorchRMSprop(
            param_groups,
            lr=learning_rate,
            rho=self.rho,
            momentum=self.momentum,
            eps=self.epsilon,
            centered=self.centered,
        )

    def _slot_groups(self):
        groups = [["velocity"]]
        if self.momentum > 0:
            groups.append(["momentum"])
        if self.centered:
            groups.append(["average_gradient"])
        return groups

    def get_config(self):
        return {
            **super().get_config(),
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        }
