"""`K.function` and `K.learning_phase()`: the Keras 2 way to evaluate part of a graph.

`function(inputs, outputs)` wraps the symbolic tensors of a functional graph (for example
`model.layers[0].input` and `model.layers[3].output`) into a callable taking a list of arrays and
returning a list of NumPy arrays. Put `learning_phase()` among the inputs to choose the mode per
call: feed 1 for training behaviour (dropout active, batch statistics), 0 for inference.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ktorch.utils.dtypes import torch_dtype


class _LearningPhase:
    """The placeholder for the training flag in `function` inputs."""

    def __repr__(self) -> str:
        return "<learning_phase>"


_LEARNING_PHASE = _LearningPhase()
_default_phase: int = 0


def learning_phase() -> _LearningPhase:
    """The learning-phase placeholder: put it in `function`'s inputs, feed 0 or 1 for it."""
    return _LEARNING_PHASE


def set_learning_phase(value: int) -> None:
    """Sets the mode used by `function`s that take no learning-phase input (deprecated).

    Args:
        value: 0 (inference) or 1 (training).
    """
    global _default_phase
    if value not in (0, 1):
        raise ValueError(f"Expected learning phase to be 0 or 1. Received: value={value!r}")
    warnings.warn(
        "`set_learning_phase` is deprecated: pass `training=True/False` when calling a model, "
        "or feed `learning_phase()` to `function`.",
        DeprecationWarning,
        stacklevel=2,
    )
    _default_phase = value


class Function:
    """A callable evaluating `outputs` from fed `inputs` (see `function`)."""

    def __init__(self, inputs, outputs, name: str | None = None):
        from ktorch.layers.node import KerasTensor
        from ktorch.models.functional import Functional

        inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        self._single_output = not isinstance(outputs, (list, tuple))
        outputs = [outputs] if self._single_output else list(outputs)
        self._phase_index = None
        tensors = []
        for i, value in enumerate(inputs):
            if value is _LEARNING_PHASE:
                if self._phase_index is not None:
                    raise ValueError("`learning_phase()` appears more than once in `inputs`.")
                self._phase_index = i
            elif isinstance(value, KerasTensor):
                tensors.append(value)
            else:
                raise TypeError(
                    "`function` inputs must be symbolic tensors (such as `layer.input`) or "
                    f"`learning_phase()`. Received: {value!r} at position {i}"
                )
        for i, value in enumerate(outputs):
            if not isinstance(value, KerasTensor):
                raise TypeError(
                    "`function` outputs must be symbolic tensors (such as `layer.output`). "
                    f"Received: {value!r} at position {i}"
                )
        self.inputs = inputs
        self.outputs = outputs
        self._graph = Functional(tensors, outputs, name=name)
        self._dtypes = [torch_dtype(t.dtype) for t in tensors]

    def __call__(self, values):
        values = list(values) if isinstance(values, (list, tuple)) else [values]
        if len(values) != len(self.inputs):
            raise ValueError(
                f"This function takes {len(self.inputs)} inputs. Received: {len(values)} values"
            )
        phase = _default_phase
        if self._phase_index is not None:
            phase = values.pop(self._phase_index)
            if phase not in (0, 1, True, False):
                raise ValueError(f"The learning phase must be fed 0 or 1. Received: {phase!r}")
        device = self._graph._device()
        tensors = [
            torch.as_tensor(np.asarray(v) if not torch.is_tensor(v) else v, device=device).to(dtype)
            for v, dtype in zip(values, self._dtypes, strict=True)
        ]
        with torch.no_grad():
            result = self._graph(tensors if len(tensors) > 1 else tensors[0], training=bool(phase))
        result = [result] if torch.is_tensor(result) else list(result)
        arrays = [r.detach().cpu().numpy() for r in result]
        return arrays[0] if self._single_output else arrays


def function(inputs, outputs, updates=None, name: str | None = None, **kwargs) -> Function:
    """Returns a callable that evaluates `outputs` from values fed for `inputs` (Keras 2).

    Args:
        inputs: list of symbolic tensors (`layer.input`, `ktorch.Input(...)`), optionally with
            `learning_phase()` among them.
        outputs: a symbolic tensor or a list of them, reachable from `inputs`.
        updates: not supported (state updates happen in the layers themselves); must be None.
        name: optional name of the underlying graph.

    Returns:
        A `Function`: call it with a list of arrays (one per input, 0/1 for the learning
        phase); it returns a list of NumPy arrays (one array when `outputs` was one tensor).

    Example:
        ```python
        get_3rd_layer_output = K.function([model.layers[0].input], [model.layers[3].output])
        layer_output = get_3rd_layer_output([x])[0]
        ```
    """
    if updates:
        raise ValueError(
            "`updates` is not supported by ktorch's `function`: layers update their own state "
            f"when called in training mode. Received: updates={updates!r}"
        )
    if kwargs:
        raise TypeError(f"function() got unexpected keyword arguments: {sorted(kwargs)}")
    return Function(inputs, outputs, name=name)
