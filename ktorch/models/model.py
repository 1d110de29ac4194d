"""`Model`: a layer with training (`compile`/`fit`/...), summary and layer access."""

from __future__ import annotations

from ktorch.layers.layer import Layer
from ktorch.layers.node import KerasTensor
from ktorch.trainers.trainer import Trainer
from ktorch.utils import tree


class Model(Trainer, Layer):
    """A trainable, savable stack of layers.

    Three ways to make one, as in Keras:

    - functional: `Model(inputs, outputs, name=None)` with `inputs` from `ktorch.Input`;
    - `Sequential([...])`;
    - subclassing: `class MyModel(Model)` defining `__init__` (create layers) and
      `call(inputs, training=None)`.

    Example:
        ```python
        class MLP(ktorch.Model):
            def __init__(self):
                super().__init__()
                self.hidden = ktorch.layers.Dense(64, activation="relu")
                self.out = ktorch.layers.Dense(10)

            def call(self, x):
                return self.out(self.hidden(x))
        ```
    """

    def __new__(cls, *args, **kwargs):
        if _functional_init_arguments(args, kwargs):
            from ktorch.models.functional import Functional

            if not issubclass(cls, Functional):
                # `Model(inputs, outputs)`, or a Model subclass built like one (Keras's
                # pattern for overriding `train_step` on a functional model).
                target = Functional if cls is Model else _functional_variant(cls)
                return Layer.__new__(target, *args, **kwargs)
        return super().__new__(cls, *args, **kwargs)

    def __init__(self, *args, **kwargs):
        if args or "inputs" in kwargs:
            raise TypeError(
                f"{type(self).__name__} is a subclass of Model: create it with its own "
                "constructor, or use `ktorch.Model(inputs, outputs)` for a functional model."
            )
        Layer.__init__(self, **kwargs)
        Trainer.__init__(self)

    @property
    def layers(self) -> list[Layer]:
        """The model's direct sub-layers, in the order they were assigned."""
        return list(self._flatten_layers(include_self=False, recursive=False))

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """Returns a layer by name or by index in `model.layers`."""
        if index is not None and name is not None:
            raise ValueError(
                f"Provide only a layer name or a layer index. Received: index={index}, name={name}."
            )
        if index is not None:
            layers = self.layers
            if not -len(layers) <= index < len(layers):
                raise ValueError(
                    f"Was asked to retrieve layer at index {index} but model only has "
                    f"{len(layers)} layers."
                )
            return layers[index]
        if name is not None:
            for layer in self.layers:
                if layer.name == name:
                    return layer
            names = [layer.name for layer in self.layers]
            raise ValueError(f"No such layer: {name}. Existing layers are: {names}.")
        raise ValueError("Provide either a layer name or layer index at `get_layer`.")

    def build(self, input_shape=None) -> None:
        """Builds the model's weights by running it once on zeros of `input_shape`."""
        if self.built:
            return
        self._track_containers()
        self.built = True
        if input_shape is not None:
            self.__dict__["_build_input_shape"] = input_shape
            specs = _specs(input_shape, self._compute_dtype)
            self._probe_output_spec((specs,), {})

    def _maybe_build(self, args, kwargs) -> None:
        if type(self).build is Model.build:
            # A subclassed model's sub-layers build themselves during the call. The input
            # shape is kept for `get_build_config()`, so that a saved model can be rebuilt.
            self._track_containers()
            if args:
                self.__dict__["_build_input_shape"] = tree.map_structure(
                    lambda x: tuple(x.shape) if hasattr(x, "shape") else None, args[0]
                )
            self.built = True
            return
        super()._maybe_build(args, kwargs)

    def summary(
        self,
        line_length=None,
        positions=None,
        print_fn=None,
        expand_nested=False,
        show_trainable=False,
        layer_range=None,
    ) -> None:
        """Prints a Keras-style table of layers, output shapes and parameter counts."""
        from ktorch.utils.summary_utils import print_summary

        print_summary(
            self,
            line_length=line_length,
            positions=positions,
            print_fn=print_fn,
            expand_nested=expand_nested,
            show_trainable=show_trainable,
        )

    def reset_states(self) -> None:
        """Resets the state of every stateful sub-layer (recurrent layers with `stateful=True`)."""
        for layer in self._flatten_layers(include_self=False):
            if hasattr(layer, "reset_states") and getattr(layer, "stateful", False):
                layer.reset_states()

    def get_config(self) -> dict:
        return Layer.get_config(self)

    # Saving goes through ktorch.saving, imported on use: saving sits above models.

    def save(self, filepath, overwrite: bool = True, include_optimizer: bool = True, **kwargs):
        """Saves the whole model: architecture, weights, compile config and optimizer state.

        Args:
            filepath: a `.keras` path (the Keras 3 zip) or a `.h5`/`.hdf5` path (the legacy
                Keras 2 HDF5 layout).
            overwrite: whether to replace an existing file (else ask on the terminal).
            include_optimizer: whether to store the optimizer's state with the model.

        Example:
            ```python
            model.save("model.keras")
            restored = ktorch.saving.load_model("model.keras")
            ```
        """
        from ktorch.saving import saving_api

        saving_api.save_model(
            self, filepath, overwrite=overwrite, include_optimizer=include_optimizer, **kwargs
        )

    def save_weights(self, filepath, overwrite: bool = True, **kwargs) -> None:
        """Saves the weights to `.weights.h5` (Keras 3), `.h5` (Keras 2) or `.safetensors`."""
        from ktorch.saving import saving_api

        saving_api.save_weights(self, filepath, overwrite=overwrite, **kwargs)

    def load_weights(
        self, filepath, skip_mismatch: bool = False, by_name: bool = False, **kwargs
    ) -> None:
        """Loads weights saved by `save_weights` (or by Keras) from any supported format.

        Args:
            filepath: a `.weights.h5`, `.h5`, `.keras` or `.safetensors` file.
            skip_mismatch: skip the layers whose weights do not match in count or shape,
                with a warning, instead of raising.
            by_name: match layers by name instead of by position/path; layers absent from the
                file keep their weights.
        """
        from ktorch.saving import saving_api

        saving_api.load_weights(
            self, filepath, skip_mismatch=skip_mismatch, by_name=by_name, **kwargs
        )

    def to_json(self, **kwargs) -> str:
        """Returns the model's architecture as a JSON string (`model_from_json` reads it)."""
        from ktorch.saving import saving_api

        return saving_api.model_to_json(self, **kwargs)

    def to_yaml(self, **kwargs) -> str:
        """Returns the model's architecture as a YAML string (`model_from_yaml` reads it)."""
        from ktorch.saving import saving_api

        return saving_api.model_to_yaml(self, **kwargs)


_FUNCTIONAL_VARIANTS: dict[type, type] = {}


def _functional_init_arguments(args, kwargs) -> bool:
    """Whether constructor arguments are `(inputs, outputs)` of a functional graph."""
    if len(args) == 2:
        inputs = args[0]
    elif len(args) == 1 and "outputs" in kwargs:
        inputs = args[0]
    elif not args and "inputs" in kwargs and "outputs" in kwargs:
        inputs = kwargs["inputs"]
    else:
        return False
    if isinstance(inputs, dict):
        inputs = list(inputs.values())
    if not isinstance(inputs, (list, tuple)):
        inputs = [inputs]
    return bool(inputs) and all(isinstance(t, KerasTensor) for t in inputs)


def _functional_variant(cls: type) -> type:
    """`cls` with `Functional` mixed in, named as `cls`: its overrides win, the graph runs."""
    variant = _FUNCTIONAL_VARIANTS.get(cls)
    if variant is None:
        from ktorch.models.functional import Functional

        variant = type(
            cls.__name__,
            (cls, Functional),
            {
                "__module__": cls.__module__,
                "__qualname__": cls.__qualname__,
                "__doc__": cls.__doc__,
            },
        )
        variant._functional_origin = cls
        _FUNCTIONAL_VARIANTS[cls] = variant
    return variant


def _specs(shape, dtype):
    if isinstance(shape, dict):
        return {k: _specs(v, dtype) for k, v in shape.items()}
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
        return [_specs(s, dtype) for s in shape]
    return KerasTensor(tuple(shape), dtype)
