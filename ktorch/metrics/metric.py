"""The `Metric` base class: a few state tensors accumulated on the device of the inputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ktorch.losses.loss import to_tensor
from ktorch.utils.dtypes import standardize_dtype, torch_dtype
from ktorch.utils.naming import auto_name


def first_device(*values: Any) -> torch.device | None:
    """Returns the device of the first tensor among `values`, or None."""
    for value in values:
        if isinstance(value, torch.Tensor):
            return value.device
    return None


def divide_no_nan(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Returns `x / y`, with 0 where `y == 0`."""
    return torch.where(y == 0, torch.zeros((), dtype=x.dtype, device=x.device), x / y)


def _make_initial_value(
    initializer: str | float | Callable, shape: tuple[int, ...], dtype: torch.dtype, device
) -> torch.Tensor:
    if initializer is None or initializer == "zeros":
        return torch.zeros(shape, dtype=dtype, device=device)
    if initializer == "ones":
        return torch.ones(shape, dtype=dtype, device=device)
    if isinstance(initializer, (int, float)):
        return torch.full(shape, float(initializer), dtype=dtype, device=device)
    if callable(initializer):
        return to_tensor(initializer(shape, dtype), dtype, device).clone()
    raise ValueError(
        "Invalid value for argument initializer. Expected 'zeros', 'ones', a number or a "
        f"callable. Received: initializer={initializer!r}"
    )


class Metric:
    """Encapsulates metric logic and state.

    The state is a few torch tensors created with `add_variable()`. `update_state()`
    accumulates into them in place, on the device of its inputs (the state follows the inputs
    to their device on the first update) and without reading any value back to the host, so
    it can run every training step. `result()` computes the metric from the state.

    Args:
        dtype: dtype of the metric's computations; defaults to `ktorch.config.floatx()`.
        name: name of the metric instance; defaults to the snake-case class name.

    Example:
        ```python
        class BinaryTruePositives(Metric):
            def __init__(self, name="binary_true_positives", **kwargs):
                super().__init__(name=name, **kwargs)
                self.true_positives = self.add_variable(shape=(), name="true_positives")

            def update_state(self, y_true, y_pred, sample_weight=None):
                values = (y_true.bool() & y_pred.bool()).to(self.true_positives.dtype)
                if sample_weight is not None:
                    values = values * sample_weight
                self.true_positives.add_(values.sum())

            def result(self):
                return self.true_positives.clone()
        ```
    """

    _keras_module = "keras.metrics"
    # Whether larger ("up") or smaller ("down") values are better; None when unknown.
    _direction: str | None = None
    # The state is additive: a cross-process reduction may all-reduce `variables` by sum.
    _reduction = "sum"

    def __init__(self, dtype: Any = None, name: str | None = None):
        self.name = name or auto_name(type(self).__name__)
        self._dtype = standardize_dtype(dtype)
        self._variables: list[torch.Tensor] = []
        self._variable_names: list[str] = []
        self._device = torch.device("cpu")

    @property
    def dtype(self) -> str:
        """The dtype name of the metric's computations, e.g. `"float32"`."""
        return self._dtype

    @property
    def variables(self) -> list[torch.Tensor]:
        """The state tensors, in creation order."""
        return list(self._variables)

    def add_variable(
        self,
        shape: tuple[int, ...] | list[int] | int,
        initializer: str | float | Callable = "zeros",
        dtype: Any = None,
        name: str | None = None,
    ) -> torch.Tensor:
        """Creates a state tensor, records it in `variables` and returns it.

        Args:
            shape: shape of the tensor.
            initializer: `"zeros"`, `"ones"`, a number, or a callable `(shape, dtype)`.
            dtype: dtype of the tensor; defaults to the metric's dtype.
            name: name of the variable.

        Returns:
            The new tensor, on the device the metric's state currently lives on.
        """
        if isinstance(shape, int):
            shape = (shape,)
        value = _make_initial_value(
            initializer, tuple(shape), torch_dtype(dtype or self._dtype), self._device
        )
        self._variables.append(value)
        self._variable_names.append(name or f"variable_{len(self._variables) - 1}")
        return value

    def add_weight(
        self,
        shape: tuple[int, ...] = (),
        initializer: str | float | Callable | None = None,
        dtype: Any = None,
        name: str | None = None,
    ) -> torch.Tensor:
        """Alias of `add_variable` kept for older code."""
        return self.add_variable(shape, initializer or "zeros", dtype=dtype, name=name)

    def _place(self, *inputs: Any) -> torch.device:
        """Moves the state to the device of the first tensor input; returns that device."""
        device = first_device(*inputs) or self._device
        if device != self._device:
            # `.data` keeps each tensor's identity, so attributes pointing at it stay valid.
            for value in self._variables:
                value.data = value.data.to(device)
            self._device = device
        return device

    def update_state(self, *args, **kwargs) -> None:
        """Accumulates statistics for the metric."""
        raise NotImplementedError

    def result(self) -> torch.Tensor | dict | list:
        """Returns the current value of the metric (a 0-d tensor unless stated otherwise)."""
        raise NotImplementedError

    def reset_state(self) -> None:
        """Zeroes every state tensor in place."""
        for value in self._variables:
            value.zero_()

    def merge_state(self, metrics: list[Metric]) -> None:
        """Adds the state of `metrics` (same class and configuration) into this metric.

        Args:
            metrics: metrics whose state to add, e.g. the same metric from other processes.
        """
        if self._reduction != "sum":
            raise NotImplementedError(
                f"Metric {type(self).__name__} does not have an additive state and cannot merge."
            )
        for other in metrics:
            if type(other) is not type(self):
                raise ValueError(
                    f"Cannot merge metrics of different classes into '{self.name}': expected "
                    f"{type(self).__name__}. Received: {type(other).__name__}"
                )
            if len(other.variables) < len(self._variables):
                # A lazily built peer that never saw data has nothing to add.
                continue
            if len(other.variables) > len(self._variables):
                self._build_like(other)
            for value, incoming in zip(self._variables, other.variables, strict=True):
                if value.shape != incoming.shape:
                    raise ValueError(
                        f"Cannot merge the state of metric '{other.name}' into '{self.name}': "
                        f"expected a variable of shape {tuple(value.shape)}. Received: shape="
                        f"{tuple(incoming.shape)}"
                    )
                value.add_(incoming.to(value.device))

    def _build_like(self, other: Metric) -> None:
        raise ValueError(
            f"Cannot merge metric '{other.name}' into '{self.name}': expected "
            f"{len(self._variables)} variables. Received: {len(other.variables)}"
        )

    def __call__(self, *args, **kwargs) -> torch.Tensor | dict | list:
        """Updates the state with the arguments, then returns `result()`."""
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self) -> dict[str, Any]:
        """Returns the serializable config of the metric."""
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        """Creates a metric from its config."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"
