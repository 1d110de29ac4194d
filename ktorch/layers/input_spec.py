"""`InputSpec`: the rank, dtype and axis sizes a layer accepts, checked with Keras-style errors."""

from __future__ import annotations


class InputSpec:
    """Specifies the rank, dtype and fixed axis sizes of a layer input.

    Args:
        dtype: expected dtype string, or None.
        shape: full expected shape (None for free dimensions), or None.
        ndim, max_ndim, min_ndim: rank constraints.
        axes: dict mapping axis index to its required size.
        allow_last_axis_squeeze: accept a missing or extra trailing axis of size 1.
        name: input name for messages.
        optional: whether the input may be None.
    """

    def __init__(
        self,
        dtype=None,
        shape=None,
        ndim=None,
        max_ndim=None,
        min_ndim=None,
        axes=None,
        allow_last_axis_squeeze=False,
        name=None,
        optional=False,
    ):
        self.dtype = dtype
        self.shape = tuple(shape) if shape is not None else None
        self.ndim = len(self.shape) if self.shape is not None else ndim
        self.max_ndim = max_ndim
        self.min_ndim = min_ndim
        self.axes = {int(k): v for k, v in (axes or {}).items()}
        self.allow_last_axis_squeeze = allow_last_axis_squeeze
        self.name = name
        self.optional = bool(optional)

    def __repr__(self) -> str:
        parts = [
            f"{k}={v}"
            for k, v in (
                ("dtype", self.dtype),
                ("shape", self.shape),
                ("ndim", self.ndim),
                ("max_ndim", self.max_ndim),
                ("min_ndim", self.min_ndim),
                ("axes", self.axes or None),
            )
            if v is not None
        ]
        return f"InputSpec({', '.join(parts)})"

    def get_config(self) -> dict:
        return {
            "dtype": self.dtype,
            "shape": self.shape,
            "ndim": self.ndim,
            "max_ndim": self.max_ndim,
            "min_ndim": self.min_ndim,
            "axes": self.axes,
            "optional": self.optional,
        }

    @classmethod
    def from_config(cls, config: dict) -> InputSpec:
        return cls(**config)


def assert_input_compatibility(specs, shapes, layer_name: str) -> None:
    """Raises a `ValueError` naming the layer when `shapes` do not satisfy `specs`.

    Args:
        specs: an InputSpec or a list of them (one per input).
        shapes: the input shape(s), tuples with None for unknown sizes.
        layer_name: for the message.
    """
    if specs is None:
        return
    if not isinstance(specs, (list, tuple)):
        specs = [specs]
        shapes = [shapes]
    if len(shapes) != len(specs):
        raise ValueError(
            f'Layer "{layer_name}" expects {len(specs)} input(s), but it received '
            f"{len(shapes)} input tensors."
        )
    for index, (spec, shape) in enumerate(zip(specs, shapes, strict=False)):
        if spec is None or shape is None:
            continue
        shape = tuple(shape)
        rank = len(shape)
        where = f'Input {index} of layer "{layer_name}" is incompatible with the layer'
        if spec.ndim is not None and not spec.allow_last_axis_squeeze and rank != spec.ndim:
            raise ValueError(
                f"{where}: expected ndim={spec.ndim}, found ndim={rank}. "
                f"Full shape received: {shape}"
            )
        if spec.max_ndim is not None and rank > spec.max_ndim:
            raise ValueError(f"{where}: expected max_ndim={spec.max_ndim}, found ndim={rank}")
        if spec.min_ndim is not None and rank < spec.min_ndim:
            raise ValueError(
                f"{where}: expected min_ndim={spec.min_ndim}, found ndim={rank}. "
                f"Full shape received: {shape}"
            )
        for axis, value in spec.axes.items():
            if value is None:
                continue
            if axis >= rank or axis < -rank:
                raise ValueError(
                    f"{where}: expected axis {axis} of size {value}, but the input "
                    f"has rank {rank}. Full shape received: {shape}"
                )
            if shape[axis] is not None and shape[axis] != value:
                raise ValueError(
                    f"{where}: expected axis {axis} of input shape to have value {value}, but "
                    f"received input with shape {shape}"
                )
        if spec.shape is not None:
            for expected, got in zip(spec.shape, shape, strict=False):
                if expected is not None and got is not None and expected != got:
                    raise ValueError(f"{where}: expected shape={spec.shape}, found shape={shape}")
