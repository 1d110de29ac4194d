"""AdamW: Adam with decoupled weight decay."""

from __future__ import annotations

from typing import Any

from ktorch.optimizers.adam import Adam


class AdamW(Adam):
    """Adam with decoupled weight decay (`w -= w * weight_decay * learning_rate` each step).

    The same update as `Adam(weight_decay=...)`, with a default decay of 0.004.

    Args:
        learning_rate: a float, a `LearningRateSchedule` or a callable. Defaults to 0.001.
        weight_decay: the decoupled weight decay; must be a float.
        beta_1: exponential decay rate of the first moment estimates.
        beta_2: exponential decay rate of the second moment estimates.
        epsilon: small constant for numerical stability.
        amsgrad: whether to use the AMSGrad variant.
        clipnorm: clip each gradient to this norm.
        clipvalue: clip each gradient to `[-clipvalue, clipvalue]`.
        global_clipnorm: clip all gradients to this global norm.
        name: name of the optimizer.
        **kwargs: the other `Optimizer` arguments.
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
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
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            amsgrad=amsgrad,
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
        if self.weight_decay is None:
            raise ValueError("Argument `weight_decay` must be a float. Received: weight_decay=None")
