"""Use of `torch.nn` loss modules (`nn.CrossEntropyLoss()`, ...) where Keras takes a loss."""

from __future__ import annotations

import inspect
from typing import Any

import torch

from ktorch.losses.loss import (
    Loss,
    reduce_weighted_values,
    squeeze_or_expand_to_same_rank,
    to_tensor,
)
from ktorch.utils.naming import to_snake_case

# Losses whose target holds class indices (or, shaped like the input, class probabilities).
_INDEX_TARGET_LOSSES = (torch.nn.CrossEntropyLoss, torch.nn.NLLLoss)


class TorchLoss(Loss):
    """Adapts a `torch.nn` loss module to the Keras loss signature.

    Calls `module(y_pred, y_true)` (torch's argument order). For `CrossEntropyLoss` and
    `NLLLoss`, a class-index target given as floats (as Keras pipelines often deliver it) is
    cast to long, and a trailing axis of size 1 is squeezed; other losses get `y_true` in
    `y_pred`'s dtype, with Keras's rank adjustment of a trailing axis of size 1.

    `sample_weight` needs a module built with `reduction="none"`: the per-sample values are
    then weighted and averaged with `"sum_over_batch_size"`.

    Args:
        module: a `torch.nn` loss module.
        name: name of the loss; defaults to the snake-cased module class name.

    Example:
        ```python
        model.compile(optimizer="adam", loss=torch.nn.CrossEntropyLoss())
        ```
    """

    _keras_module = "ktorch.losses"

    def __init__(self, module: torch.nn.Module, name: str | None = None):
        if not isinstance(module, torch.nn.Module):
            raise ValueError(
                "Invalid value for argument module. Expected a torch.nn loss module instance. "
                f"Received: module={module!r}"
            )
        super().__init__(name=name or to_snake_case(type(module).__name__))
        self.module = module
        self._index_target = isinstance(module, _INDEX_TARGET_LOSSES)

    def _prepare(self, y_true: Any, y_pred: Any) -> tuple[torch.Tensor, torch.Tensor]:
        y_pred = to_tensor(y_pred)
        y_true = to_tensor(y_true, device=y_pred.device)
        if not self._index_target:
            y_true, y_pred = squeeze_or_expand_to_same_rank(y_true.to(y_pred.dtype), y_pred)
            return y_true, y_pred
        if y_true.ndim == y_pred.ndim and y_true.ndim > 1 and y_true.shape[-1] == 1:
            y_true = y_true.squeeze(-1)
        if y_true.shape != y_pred.shape:
            # Class indices: decided from the shapes, so no host sync on the values.
            if y_true.dtype != torch.long:
                y_true = y_true.long()
        elif y_true.dtype != y_pred.dtype:
            y_true = y_true.to(y_pred.dtype)
        return y_true, y_pred

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> torch.Tensor:
        y_true, y_pred = self._prepare(y_true, y_pred)
        values = self.module(y_pred, y_true)
        if sample_weight is None:
            return values
        reduction = getattr(self.module, "reduction", None)
        if reduction != "none":
            raise ValueError(
                f"A sample_weight was passed to the torch loss {type(self.module).__name__} "
                f"whose reduction is {reduction!r}, which has already reduced the batch. "
                "Expected a module built with reduction='none' (e.g. "
                f"torch.nn.{type(self.module).__name__}(reduction='none'))."
            )
        return reduce_weighted_values(values, sample_weight=sample_weight)

    def call(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        y_true, y_pred = self._prepare(y_true, y_pred)
        return self.module(y_pred, y_true)

    def get_config(self) -> dict[str, Any]:
        """Returns the module's class name and its constructor arguments."""
        arguments = {}
        for key in inspect.signature(type(self.module).__init__).parameters:
            if key in ("self", "size_average", "reduce") or not hasattr(self.module, key):
                continue
            value = getattr(self.module, key)
            if isinstance(value, torch.Tensor):
                value = value.tolist()
            if value is None or isinstance(value, (bool, int, float, str, list)):
                arguments[key] = value
        return {
            "name": self.name,
            "module_class": type(self.module).__name__,
            "module_config": arguments,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TorchLoss:
        """Rebuilds the wrapped module; only loss classes of `torch.nn` are accepted."""
        class_name = config.get("module_class")
        module_cls = getattr(torch.nn, str(class_name), None)
        if not (
            inspect.isclass(module_cls) and issubclass(module_cls, torch.nn.modules.loss._Loss)
        ):
            raise ValueError(
                "Invalid TorchLoss config. Expected `module_class` to name a loss class of "
                f"torch.nn. Received: module_class={class_name!r}"
            )
        arguments = dict(config.get("module_config", {}))
        for key, value in arguments.items():
            if isinstance(value, list):
                arguments[key] = torch.tensor(value)
        return cls(module_cls(**arguments), name=config.get("name"))

    def __repr__(self) -> str:
        return f"<TorchLoss({self.module!r})>"
