"""`Embedding`: maps integer indices to dense vectors."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from ktorch import constraints, initializers, regularizers
from ktorch.layers.layer import Layer
from ktorch.layers.node import KerasTensor


def _check_positive_int(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(
            f"`{name}` must be a positive integer. Received: {name}={value} "
            f"(of type {type(value).__name__})."
        )


class Embedding(Layer):
    """Turns non-negative integers (indices) into dense vectors of fixed size.

    Args:
        input_dim: size of the vocabulary, i.e. the largest index + 1.
        output_dim: dimension of the embedding vectors.
        embeddings_initializer: initializer of the `embeddings` matrix (`"uniform"`).
        embeddings_regularizer: regularizer of the `embeddings` matrix.
        embeddings_constraint: constraint of the `embeddings` matrix.
        mask_zero: whether index 0 is padding to be masked out; the layer then produces a
            mask (`inputs != 0`) for the following layers, and `input_dim` should be the
            vocabulary size + 1.
        weights: optional initial `(input_dim, output_dim)` matrix (or a one-element list).

    Call arguments:
        inputs: integer tensor of any shape `(batch, ...)`; floats are truncated to integers.

    Weights:
        embeddings `(input_dim, output_dim)`.

    Example:
        ```python
        layer = Embedding(1000, 64, mask_zero=True)
        y = layer(torch.tensor([[4, 20, 0]]))  # (1, 3, 64), y._keras_mask: [[True, True, False]]
        ```
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        embeddings_constraint=None,
        mask_zero: bool = False,
        weights=None,
        lora_rank=None,
        lora_alpha=None,
        quantization_config=None,
        **kwargs,
    ):
        _check_positive_int("input_dim", input_dim)
        _check_positive_int("output_dim", output_dim)
        if kwargs.pop("input_length", None) is not None:
            warnings.warn("Argument `input_length` is deprecated. Just remove it.", stacklevel=2)
        super().__init__(**kwargs)
        for name, value in (
            ("lora_rank", lora_rank),
            ("lora_alpha", lora_alpha),
            ("quantization_config", quantization_config),
        ):
            if value is not None:
                raise ValueError(f"Argument `{name}` is not supported. Received: {name}={value}")
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero
        self.autocast = False
        if weights is not None:
            self.build()
            if not (isinstance(weights, list) and len(weights) == 1):
                weights = [weights]
            self.set_weights(weights)

    def build(self, input_shape=None) -> None:
        if self.built:
            return
        self.embeddings = self.add_weight(
            shape=(self.input_dim, self.output_dim),
            initializer=self.embeddings_initializer,
            regularizer=self.embeddings_regularizer,
            constraint=self.embeddings_constraint,
            name="embeddings",
        )
        self.built = True

    def call(self, inputs):
        if inputs.dtype not in (torch.int32, torch.int64):
            inputs = inputs.long()
        outputs = F.embedding(inputs, self.embeddings)
        if outputs.dtype is not self._compute_torch_dtype:
            outputs = outputs.to(self._compute_torch_dtype)
        return outputs

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return inputs != 0

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.output_dim)

    def compute_output_spec(self, inputs, *args, **kwargs):
        output = KerasTensor(self.compute_output_shape(inputs.shape), self.compute_dtype)
        if self.mask_zero:
            output._mask_shape = tuple(inputs.shape)
        return output

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "input_dim": self.input_dim,
                "output_dim": self.output_dim,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
                "activity_regularizer": regularizers.serialize(self.activity_regularizer),
                "embeddings_constraint": constraints.serialize(self.embeddings_constraint),
                "mask_zero": self.mask_zero,
                "quantization_config": None,
            }
        )
        return config
