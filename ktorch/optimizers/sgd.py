"""Stochastic gradient descent, with optional (Nesterov) momentum."""

from __future__ import annotations

from typing import Any

import torch

from ktorch.optimizers.optimizer import Optimizer, fused_available


class SGD(Optimizer):
    """Gradient descent, with optional momentum and Nesterov momentum.

    Keras's update (`velocity = momentum * velocity - learning_rate * g`, then
    `w += velocity`, or `w += momentum * velocity - learning_rate * g` with Nesterov) runs on
    `torch.optim.SGD`, whose buffer holds `-velocity / learning_rate`; when the learning rate
    changes, the buffers are rescaled so that the update stays exactly Keras's.

    Args:
        learning_rate: a float, a `LearningRateSchedule` or a callable. Defaults to 0.01.
        momentum: float in `[0, 1]` accelerating descent in the relevant direction.
        nesterov: whether to apply Nesterov momentum.
        weight_decay: decoupled weight decay (see `Optimizer`).
        clipnorm: clip each gradient to this norm.
        clipvalue: clip each gradient to `[-clipvalue, clipvalue]`.
        global_clipnorm: clip all gradients to this global norm.
        name: name of the optimizer.
        **kwargs: the other `Optimizer` arguments.

    Example:
        ```python
        optimizer = ktorch.optimizers.SGD(learning_rate=0.1, momentum=0.9)
        ```
    """

    def __init__(
        self,
        learning_rate: Any = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
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
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)):
            raise ValueError(f"`momentum` must be a float between [0, 1]. Received: {momentum!r}")
        if momentum < 0 or momentum > 1:
            raise ValueError(f"`momentum` must be a float between [0, 1]. Received: {momentum}")
        self.momentum = float(momentum)
        self.nesterov = nesterov

    def _create_torch_optimizer(self, param_groups, learning_rate):
        params = [p for group in param_groups for p in group["params"]]
        # Measured on CPU (MLP 784-128-10, 1 thread): fused 68 us vs foreach 115 us vs
        # single-tensor 111 us per step with momentum; fused is also torch's fastest on CUDA.
        implementation = {"fused": True} if fused_available(params) else {"foreach": True}
        return torch.optim.SGD(
            param_groups,
            lr=learning_rate,
            momentum=self.momentum,
            nesterov=self.nesterov and self.momentum > 0,
            **implementation,
        )

    def _prepare_step(self, learning_rate, params):
        if self.momentum == 0:
            return learning_rate
        previous = self._torch_lr
        if learning_rate == 0:
            # Keras still moves by `momentum * velocity`: feed a zero gradient at the previous
            # learning rate, which decays the buffer and applies exactly that.
            torch._foreach_zero_([p.grad for p in params])
            return previous if previous else 1.0
        if previous and previous != learning_rate:
            buffers = [
                state["momentum_buffer"]
                for state in self.torch_optimizer.state.values()
                if state.get("momentum_buffer") is not None
            ]
            if buffers:
                torch._foreach_mul_(buffers, previous / learning_rate)
        return learning_rate

    def _slot_groups(self):
        return [["momentum"]] if self.momentum != 0 else []

    def _keras_slot(self, name, param, state):
        buffer = state.get("momentum_buffer")
        if buffer is None:
            return torch.zeros_like(param)
        return buffer * -(self._torch_lr or 0.0)

    def _torch_state(self, slots, param):
        if "momentum" not in slots:
            # Plain SGD keeps no state (and Keras creates no slot for it).
            return {}
        lr = self._current_learning_rate()
        if not lr:
            return {"momentum_buffer": torch.zeros_like(param)}
        return {"momentum_buffer": slots["momentum"] / -lr}

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}
