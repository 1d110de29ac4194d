"""`TorchOptimizer`: the ktorch optimizer interface around a user's `torch.optim` optimizer."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ktorch.optimizers.optimizer import Optimizer, as_parameter
from ktorch.optimizers.schedules.learning_rate_schedule import LearningRateSchedule


class TorchOptimizer(Optimizer):
    """Gives a `torch.optim.Optimizer` the ktorch optimizer interface.

    The wrapped optimizer keeps its own update, parameters and hyperparameters; this adapter
    counts `iterations`, exposes `learning_rate` (read from `param_groups[0]["lr"]`; setting
    it sets every group, and a `LearningRateSchedule` is evaluated before each step) and
    provides `step`, `zero_grad`, `apply` and `apply_gradients`. No clipping or weight decay is
    added.

    Args:
        torch_optimizer: the optimizer to wrap.
        name: name of the optimizer; defaults to `"torch_<class name>"`.

    Example:
        ```python
        optimizer = TorchOptimizer(torch.optim.SGD(model.parameters(), lr=0.1))
        ```
    """

    def __init__(self, torch_optimizer: torch.optim.Optimizer, name: str | None = None):
        if not isinstance(torch_optimizer, torch.optim.Optimizer):
            raise ValueError(
                "Invalid value for argument torch_optimizer. Expected a torch.optim.Optimizer. "
                f"Received: {torch_optimizer!r}"
            )
        learning_rate = torch_optimizer.param_groups[0]["lr"]
        super().__init__(
            learning_rate=float(learning_rate),
            name=name or f"torch_{type(torch_optimizer).__name__.lower()}",
        )
        self.torch_optimizer = torch_optimizer
        self._trainable_variables = [p for g in torch_optimizer.param_groups for p in g["params"]]
        self._index = {id(p): i for i, p in enumerate(self._trainable_variables)}
        self._torch_lr = float(learning_rate)
        self.built = True

    def build(self, variables: Iterable[Any]) -> None:
        """Checks that the wrapped optimizer covers every variable in `variables`."""
        missing = [
            tuple(p.shape) for p in (as_parameter(v) for v in variables) if id(p) not in self._index
        ]
        if missing:
            raise ValueError(
                f"The torch optimizer wrapped by '{self.name}' does not update "
                f"{len(missing)} of the model's trainable variables (shapes {missing}). "
                "Create it over all of them, e.g. with `model.parameters()`."
            )

    def _current_learning_rate(self) -> float:
        if isinstance(self._learning_rate, LearningRateSchedule) or callable(self._learning_rate):
            return super()._current_learning_rate()
        return float(self.torch_optimizer.param_groups[0]["lr"])

    @Optimizer.learning_rate.setter
    def learning_rate(self, learning_rate: float | LearningRateSchedule) -> None:
        self._learning_rate = self._check_learning_rate(learning_rate)
        if isinstance(self._learning_rate, float):
            for group in self.torch_optimizer.param_groups:
                group["lr"] = self._learning_rate
            self._torch_lr = self._learning_rate

    @torch.no_grad()
    def _step(self, params: list[torch.Tensor]) -> None:
        if not isinstance(self._learning_rate, float):
            lr = self._current_learning_rate()
            if lr != self._torch_lr:
                for group in self.torch_optimizer.param_groups:
                    group["lr"] = lr
                self._torch_lr = lr
        self.torch_optimizer.step()
        self.iterations += 1

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Calls the wrapped optimizer's `zero_grad`."""
        self.torch_optimizer.zero_grad(set_to_none=set_to_none)

    @property
    def variables(self) -> list[torch.Tensor]:
        """`iterations` followed by the tensors of the wrapped optimizer's state."""
        values = [torch.tensor(self.iterations, dtype=torch.int64)]
        for param in self._trainable_variables:
            state = self.torch_optimizer.state.get(param, {})
            values.extend(v for v in state.values() if isinstance(v, torch.Tensor))
        return values

    def load_own_variables(self, store: dict) -> None:
        raise NotImplementedError(
            f"'{self.name}' wraps a torch optimizer: restore it with `load_state_dict()`."
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "learning_rate": self.learning_rate,
            "torch_optimizer": type(self.torch_optimizer).__name__,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict | None = None):
        raise NotImplementedError(
            "A TorchOptimizer cannot be rebuilt from its config: it needs the model's "
            f"parameters. Re-create the torch optimizer (a {config.get('torch_optimizer')}) "
            "and wrap it again."
        )
