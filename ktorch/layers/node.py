"""The symbolic graph: `KerasTensor` (a shape and dtype without data) and `Node` (one call).

Calling a layer on KerasTensors records a Node; `ktorch.models.Functional` replays the
recorded nodes on real tensors.
"""

from __future__ import annotations

from ktorch.utils import tree
from ktorch.utils.dtypes import standardize_dtype as standardize_dtype
from ktorch.utils.dtypes import torch_dtype as torch_dtype


class KerasTensor:
    """A symbolic tensor: the output of `Input()` or of a layer called on symbolic tensors.

    Attributes:
        shape: tuple, `None` for unknown dimensions (the batch dimension first).
        dtype: Keras dtype string, e.g. `"float32"`.
        name: optional name (the input name for `Input`).
    """

    def __init__(self, shape, dtype="float32", name=None, sparse=False):
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = standardize_dtype(dtype)
        self.name = name
        self.sparse = sparse
        self._keras_history = None
        self._mask_shape = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __bool__(self):
        raise TypeError("A symbolic KerasTensor has no truth value: it holds no data.")

    def __hash__(self):
        return id(self)

    def __iter__(self):
        raise TypeError(
            "A symbolic KerasTensor cannot be iterated. Index it with a layer (e.g. "
            "`layers.Lambda(lambda t: t[:, 0])(x)`) instead."
        )


def is_symbolic(structure) -> bool:
    return any(isinstance(x, KerasTensor) for x in tree.flatten(structure))


class Node:
    """One call of `layer` on symbolic inputs.

    Attributes:
        layer: the layer called.
        call_args, call_kwargs: the arguments, with KerasTensors where tensors were passed.
        input_tensors: the KerasTensors among the arguments, in order.
        outputs: the output structure of KerasTensors; `output_tensors` its flat list.
    """

    def __init__(self, layer, call_args=(), call_kwargs=None, outputs=None):
        self.layer = layer
        self.call_args = tuple(call_args)
        self.call_kwargs = dict(call_kwargs or {})
        self.input_tensors = [
            x
            for x in tree.flatten((self.call_args, self.call_kwargs))
            if isinstance(x, KerasTensor)
        ]
        self.outputs = outputs
        self.output_tensors = [x for x in tree.flatten(outputs) if isinstance(x, KerasTensor)]
        node_index = len(layer._inbound_nodes)
        layer._inbound_nodes.append(self)
        for i, tensor in enumerate(self.output_tensors):
            tensor._keras_history = (layer, node_index, i)
        # Fast path for the common single-tensor call: no argument structure to rebuild.
        self.single_input = (
            len(self.call_args) == 1
            and isinstance(self.call_args[0], KerasTensor)
            and not self.call_kwargs
        )

    @property
    def is_input(self) -> bool:
        return not self.input_tensors

    @property
    def parent_nodes(self) -> list[Node]:
        parents = []
        for tensor in self.input_tensors:
            layer, node_index, _ = tensor._keras_history
            parents.append(layer._inbound_nodes[node_index])
        return parents

    def __repr__(self) -> str:
        return f"<Node layer={self.layer.name}>"
