"""`Layer`: the Keras layer, as a `torch.nn.Module`.

A layer creates its weights in `build(input_shape)` with `add_weight`, lazily on the first
call when no shape was given. Weights are `Variable`s (`nn.Parameter`s) registered on the
module under their attribute name, so `state_dict()` keys follow the attribute structure.
Calling a layer on symbolic `KerasTensor`s records a graph `Node` instead of computing.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any

import numpy as np
import torch
from torch.nn.modules import module as _torch_module

from ktorch import config
from ktorch.layers.input_spec import assert_input_compatibility
from ktorch.layers.node import KerasTensor, Node, standardize_dtype, torch_dtype
from ktorch.layers.variable import Variable, to_numpy_copy
from ktorch.utils import naming, tree

_ALLOWED_KWARGS = {"input_shape", "batch_input_shape", "batch_size", "input_dim", "weights"}
# Sizes substituted for unknown dimensions when inferring output shapes by running the layer.
_PROBE_SIZES = ((32, 33), (224, 225))


class _CallContext(threading.local):
    """Per-thread state of the current (outermost) layer call."""

    def __init__(self):
        self.training = None
        self.depth = 0
        self.call_losses = []
        self.loss_layers = []
        self.build_device = None


_context = _CallContext()


def new_call() -> None:
    """Starts an outermost call: losses added from now on belong to it.

    No counter is bumped here: under torch.compile it would be guarded on and recompile the
    forward every step.
    """
    # Cleared in place: compiled graphs keep referring to the same list objects.
    for layer in _context.loss_layers:
        layer._losses.clear()
    _context.loss_layers.clear()
    _context.call_losses.clear()


def _dtype_name(dtype) -> tuple[str, str]:
    """Returns (variable dtype, compute dtype) for a dtype or Keras dtype policy."""
    if dtype is None:
        name = config.floatx()
        return name, name
    if isinstance(dtype, dict):
        dtype = dtype.get("config", {}).get("name", config.floatx())
    if hasattr(dtype, "name") and not isinstance(dtype, torch.dtype):
        dtype = dtype.name
    if isinstance(dtype, str) and dtype.startswith("mixed_"):
        return "float32", dtype[len("mixed_") :]
    name = standardize_dtype(dtype)
    return name, name


def _shape_of(x):
    if isinstance(x, KerasTensor):
        return x.shape
    if torch.is_tensor(x) or isinstance(x, np.ndarray):
        return tuple(x.shape)
    return None


class Layer(torch.nn.Module):
    """Base class of all layers: a `torch.nn.Module` with the Keras layer API.

    Args:
        trainable: whether the layer's weights are updated in training.
        name: unique name; generated from the class name (`dense`, `dense_1`, ...) if omitted.
        dtype: dtype of the weights and computations (`"float32"` by default, see
            `ktorch.config.floatx()`), or a Keras dtype policy such as `"mixed_bfloat16"`.
        activity_regularizer: regularizer applied to the layer's outputs.
        input_shape: shape of the input without the batch axis, for the first layer of a
            `Sequential` model.
        batch_size: fixed batch size for the first layer of a `Sequential` model.

    Call arguments:
        inputs: tensor(s), or symbolic `KerasTensor`s to build a functional graph.
        training: True for training behaviour (dropout on, batch statistics), False for
            inference; None inherits the outer call's value, else the module's `training` flag
            (False unless `.train()` was called).
        mask: optional mask tensor (propagated automatically when a layer produces one).
    """

    _keras_module = "keras.layers"
    _call_has_training = False
    _call_has_mask = False
    _build_arg_names: tuple = ("input_shape",)
    _overrides_compute_mask = False
    _overrides_output_shape = False
    _overrides_get_config = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        params = inspect.signature(cls.call).parameters
        cls._call_has_training = "training" in params
        cls._call_has_mask = "mask" in params
        cls._call_arg_names = tuple(params)[1:]
        build_params = [
            p.name
            for p in inspect.signature(cls.build).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ][1:]
        cls._build_arg_names = tuple(build_params)
        cls._overrides_compute_mask = cls.compute_mask is not Layer.compute_mask
        cls._overrides_output_shape = cls.compute_output_shape is not Layer.compute_output_shape
        cls._overrides_get_config = cls.get_config is not Layer.get_config

    def __new__(cls, *args, **kwargs):
        instance = super().__new__(cls)
        # Remember constructor arguments so custom layers without get_config still serialize.
        instance.__dict__["_init_args"] = (args, kwargs)
        return instance

    def __init__(
        self,
        *,
        activity_regularizer=None,
        trainable: bool = True,
        dtype=None,
        autocast: bool = True,
        name: str | None = None,
        **kwargs,
    ):
        unknown = set(kwargs) - _ALLOWED_KWARGS
        if unknown:
            raise ValueError(
                f"Unrecognized keyword arguments passed to {type(self).__name__}: "
                f"{ {k: kwargs[k] for k in sorted(unknown)} }"
            )
        super().__init__()
        if name is None:
            name = naming.auto_name(type(self).__name__)
        elif not isinstance(name, str) or "/" in name:
            raise ValueError(
                f"Argument `name` must be a string without '/'. Received: name={name!r}"
            )
        d = self.__dict__
        d["_name"] = name
        d["_trainable"] = bool(trainable)
        d["built"] = False
        d["_trainable_variables"] = []
        d["_non_trainable_variables"] = []
        d["_inbound_nodes"] = []
        d["_losses"] = []
        d["supports_masking"] = False
        d["input_spec"] = None
        d["autocast"] = autocast
        variable_dtype, compute_dtype = _dtype_name(dtype)
        d["_dtype_policy_name"] = (
            f"mixed_{compute_dtype}" if variable_dtype != compute_dtype else variable_dtype
        )
        d["_variable_dtype"] = variable_dtype
        d["_compute_dtype"] = compute_dtype
        d["_compute_torch_dtype"] = getattr(torch, compute_dtype)
        from ktorch import regularizers

        d["activity_regularizer"] = regularizers.get(activity_regularizer)
        # Keras layers run in inference mode unless told otherwise (torch modules default to
        # train mode); `fit` passes training=True explicitly.
        self.training = False

        input_shape = kwargs.get("input_shape")
        if "input_dim" in kwargs and input_shape is None:
            input_shape = (kwargs["input_dim"],)
        batch_input_shape = kwargs.get("batch_input_shape")
        if input_shape is not None:
            batch_input_shape = (kwargs.get("batch_size"),) + tuple(input_shape)
        d["_batch_input_shape"] = tuple(batch_input_shape) if batch_input_shape else None
        d["_initial_weights"] = kwargs.get("weights")

    # ----------------------------------------------------------------- attributes

    @property
    def name(self) -> str:
        return self._name

    @property
    def dtype(self) -> str:
        """The dtype of the layer's weights."""
        return self._variable_dtype

    @property
    def variable_dtype(self) -> str:
        return self._variable_dtype

    @property
    def compute_dtype(self) -> str:
        return self._compute_dtype

    @property
    def dtype_policy(self) -> str:
        return self._dtype_policy_name

    @property
    def path(self) -> str:
        return self._name

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, Variable):
            # A weight made by add_weight is re-registered under the attribute that holds it,
            # so state_dict() keys follow the attribute structure.
            for key, param in list(self._parameters.items()):
                if param is value and key != name:
                    del self._parameters[key]
        elif (
            isinstance(value, (list, tuple))
            and value
            and all(isinstance(v, torch.nn.Module) for v in value)
        ):
            value = torch.nn.ModuleList(value)
        elif (
            isinstance(value, dict)
            and value
            and all(isinstance(k, str) for k in value)
            and all(isinstance(v, torch.nn.Module) for v in value.values())
        ):
            value = torch.nn.ModuleDict(value)
        super().__setattr__(name, value)

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        value = bool(value)
        self.__dict__["_trainable"] = value
        for variable in self._trainable_variables:
            variable.trainable = value
        for layer in self._flatten_layers(include_self=False, recursive=False):
            layer.trainable = value
        for param in self._foreign_parameters():
            param.requires_grad_(value)

    def _flatten_layers(self, include_self: bool = True, recursive: bool = True):
        """Yields this layer's sub-layers (through torch containers), depth first."""
        if include_self:
            yield self
        seen = {id(self)}
        stack = list(reversed(list(self._modules.values())))
        while stack:
            module = stack.pop()
            if module is None or id(module) in seen:
                continue
            seen.add(id(module))
            if isinstance(module, Layer):
                yield module
                if recursive:
                    stack.extend(reversed([m for m in module._modules.values()]))
            else:
                stack.extend(reversed(list(module._modules.values())))

    def _foreign_parameters(self) -> list[torch.nn.Parameter]:
        """Parameters of plain torch modules held directly (not through a Layer)."""
        params = []
        stack = [m for m in self._modules.values() if not isinstance(m, Layer)]
        while stack:
            module = stack.pop(0)
            if module is None:
                continue
            params.extend(p for p in module._parameters.values() if p is not None)
            stack.extend(m for m in module._modules.values() if not isinstance(m, Layer))
        return params

    @property
    def weights(self) -> list[Variable]:
        """All weights: own trainable, own non-trainable, then sub-layers', deduplicated."""
        weights, seen = [], set()
        own = self._trainable_variables + self._non_trainable_variables
        for w in own + self._foreign_parameters():
            if id(w) not in seen:
                seen.add(id(w))
                weights.append(w)
        for layer in self._flatten_layers(include_self=False, recursive=False):
            for w in layer.weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    weights.append(w)
        return weights

    @property
    def trainable_weights(self) -> list[Variable]:
        """Weights updated in training: empty when this layer or its parents are frozen."""
        if not self.trainable:
            return []
        weights, seen = [], set()
        own = self._trainable_variables + self._non_trainable_variables
        for w in own + self._foreign_parameters():
            if id(w) not in seen and _is_trainable(w):
                seen.add(id(w))
                weights.append(w)
        for layer in self._flatten_layers(include_self=False, recursive=False):
            for w in layer.trainable_weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    weights.append(w)
        return weights

    @property
    def non_trainable_weights(self) -> list[Variable]:
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    variables = weights
    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights

    def get_weights(self) -> list[np.ndarray]:
        """Returns the weights as a list of NumPy arrays, in `weights` order."""
        return [to_numpy_copy(w) for w in self.weights]

    def set_weights(self, weights) -> None:
        """Sets the weights from a list of arrays, in `weights` order."""
        params = self.weights
        weights = list(weights)
        if len(params) != len(weights):
            raise ValueError(
                f"You called `set_weights(weights)` on layer '{self.name}' with a weight list "
                f"of length {len(weights)}, but the layer was expecting {len(params)} weights."
            )
        for param, value in zip(params, weights, strict=False):
            value = np.asarray(value) if not torch.is_tensor(value) else value
            if tuple(param.shape) != tuple(value.shape):
                raise ValueError(
                    f"Layer {self.name} weight shape {tuple(param.shape)} is not compatible with "
                    f"provided weight shape {tuple(value.shape)}."
                )
        with torch.no_grad():
            for param, value in zip(params, weights, strict=False):
                param.copy_(
                    torch.as_tensor(np.asarray(value) if not torch.is_tensor(value) else value).to(
                        param.device, param.dtype
                    )
                )

    def count_params(self) -> int:
        """Total number of scalars in the layer's weights."""
        if not self.built:
            raise ValueError(
                f"You tried to call `count_params` on layer '{self.name}', but the layer isn't "
                "built. You can build it manually via: `layer.build(input_shape)`."
            )
        return int(sum(w.numel() for w in self.weights))

    # -------------------------------------------------------------------- weights

    def add_weight(
        self,
        shape=None,
        initializer=None,
        dtype=None,
        trainable: bool = True,
        autocast: bool = True,
        regularizer=None,
        constraint=None,
        aggregation: str = "none",
        overwrite_with_gradient: bool = False,
        name: str | None = None,
    ) -> Variable:
        """Creates a weight of this layer and registers it on the module.

        Args:
            shape: the Keras shape of the weight (e.g. `(in, out)` for a Dense kernel).
            initializer: initializer name or callable; `"glorot_uniform"` for floats by default.
            dtype: dtype; the layer's variable dtype by default.
            trainable: whether the optimizer updates it.
            regularizer: penalty added to `layer.losses`.
            constraint: projection applied after each optimizer step.
            name: the weight's name, also its attribute name on the module.

        Returns:
            The new `Variable`.
        """
        from ktorch import constraints, initializers, regularizers

        if isinstance(shape, str) and name is None:
            # Keras 2 order: add_weight(name, shape, ...).
            name, shape = shape, initializer
            initializer = None
        shape = () if shape is None else tuple(int(s) for s in shape)
        dtype = standardize_dtype(dtype or self._variable_dtype)
        if initializer is None:
            initializer = "glorot_uniform" if "float" in dtype else "zeros"
        init = initializers.get(initializer)
        value = init(shape, dtype=dtype) if callable(init) else torch.as_tensor(init)
        value = torch.as_tensor(value, dtype=torch_dtype(dtype))
        if tuple(value.shape) != shape:
            value = value.reshape(shape)
        device = _context.build_device or self._weights_device()
        if device is not None:
            value = value.to(device)
        name = name or "variable"
        key = name.replace("/", "_").replace(".", "_").replace(":", "_")
        base, i = key, 1
        while (
            key in self._parameters or key in self._modules or (self.__dict__.get(key) is not None)
        ):
            key = f"{base}_{i}"
            i += 1
        if key in self.__dict__:
            del self.__dict__[key]  # a placeholder such as `self.bias = None`
        variable = Variable(
            value,
            requires_grad=bool(trainable) and self._trainable,
            name=name,
            path=f"{self.path}/{name}",
            regularizer=regularizers.get(regularizer),
            constraint=constraints.get(constraint),
        )
        variable._trainable = bool(trainable) and self._trainable
        self.register_parameter(key, variable)
        if trainable:
            self._trainable_variables.append(variable)
        else:
            self._non_trainable_variables.append(variable)
        return variable

    add_variable = add_weight

    def _weights_device(self):
        for param in self._parameters.values():
            if param is not None:
                return param.device
        return None

    # --------------------------------------------------------------------- losses

    @property
    def losses(self) -> list[torch.Tensor]:
        """Activity-regularization losses of the last call plus weight-regularization losses."""
        losses = []
        for layer in self._flatten_layers():
            losses.extend(layer._losses)
            for w in layer._trainable_variables + layer._non_trainable_variables:
                if w.regularizer is not None:
                    losses.append(w.regularizer(w))
        return losses

    def add_loss(self, loss) -> None:
        """Adds a loss tensor to `layer.losses` for the current call."""
        if not self._losses:
            _context.loss_layers.append(self)
        self._losses.append(loss)
        _context.call_losses.append(loss)

    # ---------------------------------------------------------------------- build

    def build(self, input_shape) -> None:
        """Creates the weights for inputs of `input_shape` (batch axis first, None if unknown)."""
        self.built = True

    def get_build_config(self) -> dict | None:
        shape = getattr(self, "_build_input_shape", None)
        if shape is None:
            return None
        return {"input_shape": shape}

    def build_from_config(self, build_config: dict | None) -> None:
        if build_config and not self.built:
            shapes = build_config.get("input_shape")
            if "shapes_dict" in build_config:
                self._build_with_shapes(
                    {k.removesuffix("_shape"): v for k, v in build_config["shapes_dict"].items()}
                )
            elif shapes is not None:
                self._build_with_shapes({self._first_arg_name(): shapes})

    def _first_arg_name(self) -> str:
        names = getattr(type(self), "_call_arg_names", ("inputs",))
        return names[0] if names else "inputs"

    def _build_with_shapes(self, shapes_by_arg: dict) -> None:
        names = self._build_arg_names
        first = self._first_arg_name()
        shapes = [
            tuple(s) if isinstance(s, list) and _is_shape(s) else s for s in shapes_by_arg.values()
        ]
        if len(names) <= 1:
            shape = shapes_by_arg.get(first, shapes[0] if shapes else None)
            shape = _to_shape(shape)
            self.__dict__["_build_input_shape"] = shape
            self.build(shape)
        else:
            kwargs = {}
            for build_name in names:
                arg = build_name[: -len("_shape")] if build_name.endswith("_shape") else build_name
                if arg in shapes_by_arg:
                    kwargs[build_name] = _to_shape(shapes_by_arg[arg])
            self.__dict__["_build_input_shape"] = _to_shape(shapes_by_arg.get(first))
            self.build(**kwargs)
        self.built = True
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self.__dict__["_initial_weights"] = None

    def _track_containers(self) -> None:
        """Registers layers held in plain lists/dicts filled after assignment.

        `self.blocks = []` followed by `self.blocks.append(Dense(...))` (a common Keras
        pattern) is only known to hold layers once filled; before the first build such
        public containers become `ModuleList`/`ModuleDict` so their weights are registered.
        Private attributes (`_name`) are left alone: they hold the module's own bookkeeping.
        """
        for name, value in list(self.__dict__.items()):
            if isinstance(value, (list, tuple, dict)) and not name.startswith("_"):
                items = value.values() if isinstance(value, dict) else value
                if items and all(isinstance(v, torch.nn.Module) for v in items):
                    setattr(self, name, value)

    def _maybe_build(self, args, kwargs) -> None:
        self._track_containers()
        shapes_by_arg = {}
        names = getattr(type(self), "_call_arg_names", ("inputs",))
        for arg_name, value in zip(names, args, strict=False):
            shapes_by_arg[arg_name] = tree.map_structure(_shape_of, value)
        for arg_name, value in kwargs.items():
            if arg_name in ("training", "mask"):
                continue
            shapes_by_arg[arg_name] = tree.map_structure(_shape_of, value)
        first = args[0] if args else None
        device = None
        for x in tree.flatten(first):
            if torch.is_tensor(x):
                device = x.device
                break
        previous = _context.build_device
        _context.build_device = device
        try:
            self._build_with_shapes(shapes_by_arg)
        finally:
            _context.build_device = previous

    # ----------------------------------------------------------------------- call

    def call(self, inputs, *args, **kwargs):
        """The layer's computation; override in subclasses."""
        raise NotImplementedError(f"Layer {type(self).__name__} does not implement `call()`.")

    def forward(self, *args, **kwargs):
        return self.call(*args, **kwargs)

    def compute_mask(self, inputs, mask=None):
        """Output mask for the given inputs and input mask (pass-through if supports_masking)."""
        if self.supports_masking:
            return mask
        return None

    def __call__(self, *args, **kwargs):
        first = args[0] if args else None
        if type(first) is not torch.Tensor:
            if isinstance(first, KerasTensor) or (
                not torch.is_tensor(first) and _contains_symbolic(args, kwargs)
            ):
                return self._symbolic_call(args, kwargs)
            if isinstance(first, np.ndarray):
                first = self._convert_input(first)
                args = (first,) + args[1:]
        if (
            self.autocast
            and torch.is_tensor(first)
            and first.dtype is not self._compute_torch_dtype
            and first.is_floating_point()
        ):
            first = first.to(self._compute_torch_dtype)
            args = (first,) + args[1:]
        if not self.built:
            self._maybe_build(args, kwargs)
        ctx = _context
        outer_training = ctx.training
        if self._call_has_training:
            training = kwargs.get("training")
            if training is None:
                training = outer_training if outer_training is not None else self.training
                kwargs["training"] = training
        else:
            training = kwargs.pop("training", None) if kwargs else None
            if training is None:
                training = outer_training
        mask = None
        if self._call_has_mask:
            mask = kwargs.get("mask")
            if mask is None:
                mask = _get_mask(first)
                if mask is not None:
                    kwargs["mask"] = mask
        else:
            if kwargs:
                kwargs.pop("mask", None)
            if self.supports_masking:
                mask = _get_mask(first)
        if ctx.depth == 0:
            new_call()
        ctx.depth += 1
        ctx.training = training
        try:
            if _has_hooks(self):
                outputs = torch.nn.Module.__call__(self, *args, **kwargs)
            else:
                # No hooks registered: skip nn.Module's dispatch wrappers (two frames per layer).
                outputs = self.call(*args, **kwargs)
        except RuntimeError as error:
            if self.input_spec is not None:
                assert_input_compatibility(
                    self.input_spec, _spec_shapes(self.input_spec, first), self.name
                )
            raise error
        finally:
            ctx.training = outer_training
            ctx.depth -= 1
        if self.activity_regularizer is not None:
            for output in tree.flatten(outputs):
                if torch.is_tensor(output):
                    loss = self.activity_regularizer(output)
                    if output.ndim > 0:
                        loss = loss / output.shape[0]
                    self.add_loss(loss)
        if self._overrides_compute_mask or mask is not None:
            out_mask = self.compute_mask(first if len(args) == 1 else list(args), mask)
            if out_mask is not None:
                _set_mask(outputs, out_mask)
        return outputs

    def _convert_input(self, x):
        x = torch.as_tensor(x)
        if x.is_floating_point() and self.autocast:
            x = x.to(self._compute_torch_dtype)
        return x

    # ------------------------------------------------------------------ symbolic

    def compute_output_shape(self, input_shape):
        """Output shape(s) for `input_shape`; by default found by running the layer."""
        spec = self.compute_output_spec(KerasTensor(input_shape, self._compute_dtype))
        return tree.map_structure(lambda t: t.shape, spec)

    def compute_output_spec(self, *args, **kwargs):
        """Output KerasTensor(s) for symbolic inputs."""
        if self._overrides_output_shape:
            shapes = self.compute_output_shape(
                tree.map_structure(_shape_of, args[0]) if args else None
            )
            return _specs_from_shapes(shapes, self._compute_dtype)
        return self._probe_output_spec(args, kwargs)

    def _probe_output_spec(self, args, kwargs):
        symbolic = [x for x in tree.flatten((args, kwargs)) if isinstance(x, KerasTensor)]
        batch = next((x.shape[0] for x in symbolic if x.shape and x.shape[0] is not None), None)
        free = any(d is None for x in symbolic for d in x.shape[1:])
        device = self._weights_device() or torch.device("cpu")
        error = None
        for sizes in _PROBE_SIZES:
            try:
                first = self._probe(args, kwargs, batch or 2, sizes[0], device)
                second = self._probe(args, kwargs, batch or 2, sizes[1], device) if free else None
            except RecursionError:
                raise
            except (RuntimeError, ValueError, IndexError) as e:
                error = e
                continue
            break
        else:
            raise error
        flat_first = tree.flatten(first)
        flat_second = tree.flatten(second) if second is not None else flat_first
        specs = []
        for a, b in zip(flat_first, flat_second, strict=False):
            if not torch.is_tensor(a):
                specs.append(a)
                continue
            shape = list(a.shape)
            for i in range(1, len(shape)):
                if b.shape[i] != a.shape[i]:
                    shape[i] = None
            if shape and batch is None and shape[0] == 2:
                shape[0] = None
            spec = KerasTensor(shape, standardize_dtype(a.dtype))
            out_mask = getattr(a, "_keras_mask", None)
            if out_mask is not None:
                mask_shape = list(out_mask.shape)
                if mask_shape and batch is None:
                    mask_shape[0] = None
                spec._mask_shape = tuple(mask_shape)
            specs.append(spec)
        return tree.pack_sequence_as(first, specs)

    def _probe(self, args, kwargs, batch, size, device):
        def concrete(x):
            if not isinstance(x, KerasTensor):
                return x
            shape = [batch if i == 0 else (size if d is None else d) for i, d in enumerate(x.shape)]
            tensor = torch.zeros(shape, dtype=torch_dtype(x.dtype), device=device)
            if x._mask_shape is not None:
                mask_shape = [
                    batch if i == 0 else (size if d is None else d)
                    for i, d in enumerate(x._mask_shape)
                ]
                tensor._keras_mask = torch.ones(mask_shape, dtype=torch.bool, device=device)
            return tensor

        real_args = tree.map_structure(concrete, list(args))
        real_kwargs = tree.map_structure(concrete, dict(kwargs))
        previous = _context.training
        if "training" not in real_kwargs or real_kwargs["training"] is None:
            _context.training = False
        try:
            with torch.no_grad():
                return self(*real_args, **real_kwargs)
        finally:
            _context.training = previous

    def _symbolic_call(self, args, kwargs):
        if not self.built:
            self._maybe_build(args, kwargs)
        if self.input_spec is not None and args:
            assert_input_compatibility(
                self.input_spec, _spec_shapes(self.input_spec, args[0]), self.name
            )
        outputs = self.compute_output_spec(*args, **kwargs)
        Node(self, args, kwargs, outputs)
        return outputs

    # --------------------------------------------------------------- graph access

    def _single_node(self, attr: str):
        # As in Keras 3: the first call's tensors (a layer reused later keeps its first node).
        if not self._inbound_nodes:
            raise AttributeError(
                f"The layer '{self.name}' has never been called and thus has no defined {attr}."
            )
        return self._inbound_nodes[0]

    @property
    def input(self):
        node = self._single_node("input")
        return node.call_args[0] if len(node.call_args) == 1 else list(node.call_args)

    @property
    def output(self):
        return self._single_node("output").outputs

    def get_input_at(self, node_index: int):
        node = self._inbound_nodes[node_index]
        return node.call_args[0] if len(node.call_args) == 1 else list(node.call_args)

    def get_output_at(self, node_index: int):
        return self._inbound_nodes[node_index].outputs

    @property
    def input_shape(self):
        return tree.map_structure(lambda t: t.shape, self.input)

    @property
    def output_shape(self):
        return tree.map_structure(lambda t: t.shape, self.output)

    # --------------------------------------------------------------- serialization

    def get_config(self) -> dict:
        """Returns the constructor arguments of the layer, as Keras 3 writes them."""
        config_ = {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": {
                "module": "keras",
                "class_name": "DTypePolicy",
                "config": {"name": self._dtype_policy_name},
                "registered_name": None,
            },
        }
        if self._batch_input_shape is not None:
            config_["batch_input_shape"] = list(self._batch_input_shape)
        if self.activity_regularizer is not None:
            from ktorch import regularizers

            config_["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        if type(self)._overrides_get_config or type(self).__module__.startswith("ktorch."):
            return config_
        args, kwargs = self._init_args
        if args:
            raise NotImplementedError(
                f"Layer {type(self).__name__} was created with positional arguments {args}; "
                "implement `get_config()` to make it serializable."
            )
        extra = {k: v for k, v in kwargs.items() if k not in config_}
        return {**config_, **extra}

    @classmethod
    def from_config(cls, config_: dict):
        """Creates a layer from its `get_config()` output."""
        return cls(**config_)

    def extra_repr(self) -> str:
        return f"name={self.name}"


def _is_trainable(w) -> bool:
    return w.trainable if isinstance(w, Variable) else w.requires_grad


def _is_shape(value) -> bool:
    return all(d is None or isinstance(d, int) for d in value)


def _to_shape(shape):
    if shape is None:
        return None
    if isinstance(shape, (list, tuple)) and _is_shape(shape):
        return tuple(shape)
    if isinstance(shape, dict):
        return {k: _to_shape(v) for k, v in shape.items()}
    if isinstance(shape, (list, tuple)):
        return [_to_shape(s) for s in shape]
    return shape


def _specs_from_shapes(shapes, dtype):
    """KerasTensors for a shape or a nested structure of shapes."""
    if isinstance(shapes, dict):
        return {k: _specs_from_shapes(v, dtype) for k, v in shapes.items()}
    if isinstance(shapes, (list, tuple)) and not _is_shape(shapes):
        return type(shapes)(_specs_from_shapes(s, dtype) for s in shapes)
    return KerasTensor(shapes, dtype)


def _spec_shapes(spec, first):
    if isinstance(spec, (list, tuple)):
        return [_shape_of(x) for x in tree.flatten(first)]
    return _shape_of(first)


def _has_hooks(layer) -> bool:
    return bool(
        layer._forward_hooks
        or layer._forward_pre_hooks
        or layer._backward_hooks
        or layer._backward_pre_hooks
        or _torch_module._global_forward_hooks
        or _torch_module._global_forward_pre_hooks
        or _torch_module._global_backward_hooks
        or _torch_module._global_backward_pre_hooks
    )


def _contains_symbolic(args, kwargs) -> bool:
    return any(isinstance(x, KerasTensor) for x in tree.flatten((args, kwargs)))


def _get_mask(inputs):
    if torch.is_tensor(inputs):
        return getattr(inputs, "_keras_mask", None)
    if isinstance(inputs, (list, tuple)):
        masks = [getattr(x, "_keras_mask", None) for x in inputs]
        return masks if any(m is not None for m in masks) else None
    return None


def _set_mask(outputs, mask) -> None:
    if torch.is_tensor(outputs):
        if not isinstance(mask, (list, tuple)):
            outputs._keras_mask = mask
        return
    if isinstance(outputs, (list, tuple)):
        masks = mask if isinstance(mask, (list, tuple)) else [mask] * len(outputs)
        for output, m in zip(outputs, masks, strict=False):
            if torch.is_tensor(output) and m is not None:
                output._keras_mask = m
