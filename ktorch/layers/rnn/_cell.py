"""Shared argument handling of the built-in recurrent cells and layers."""

from __future__ import annotations

import torch

from ktorch import activations, constraints, initializers, regularizers
from ktorch.layers.layer import Layer
from ktorch.layers.regularization.seed_generator import SeedGenerator
from ktorch.layers.rnn.dropout_rnn_cell import DropoutRNNCell


def _rate(value) -> float:
    return min(1.0, max(0.0, float(value)))


class RecurrentCell(Layer, DropoutRNNCell):
    """A cell with Keras's kernel / recurrent_kernel / bias arguments and dropout."""

    def __init__(
        self,
        units: int,
        activation="tanh",
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        if not isinstance(units, int) or isinstance(units, bool) or units <= 0:
            raise ValueError(
                "Received an invalid value for argument `units`, expected a positive integer. "
                f"Received: units={units}"
            )
        super().__init__(**kwargs)
        self.units = units
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = _rate(dropout)
        self.recurrent_dropout = _rate(recurrent_dropout)
        self.seed = seed
        self.seed_generator = SeedGenerator(seed)

    def _add_kernels(self, input_dim: int, gates: int) -> None:
        self.kernel = self.add_weight(
            shape=(input_dim, gates * self.units),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, gates * self.units),
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
            name="recurrent_kernel",
        )

    def _add_bias(self, shape, initializer) -> None:
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=shape,
                initializer=initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name="bias",
            )

    def _weights_config(self) -> dict:
        return {
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
        }

    def _dropout_masks(self, inputs, h_tm1, training, strict: bool):
        """The input and recurrent masks of this step (None where dropout is off).

        `strict`: apply a rate only inside (0, 1), as Keras's LSTM and GRU cells do.
        """
        dp_mask = rec_mask = None
        if training:
            if (0.0 < self.dropout < 1.0) if strict else self.dropout > 0:
                dp_mask = self.get_dropout_mask(inputs)
            if (0.0 < self.recurrent_dropout < 1.0) if strict else self.recurrent_dropout > 0:
                rec_mask = self.get_recurrent_dropout_mask(h_tm1)
        return dp_mask, rec_mask

    def get_initial_state(self, batch_size: int | None = None) -> list:
        sizes = self.state_size if isinstance(self.state_size, list) else [self.state_size]
        device = self.kernel.device if self.built else None
        return [
            torch.zeros((batch_size, s), dtype=self._compute_torch_dtype, device=device)
            for s in sizes
        ]


def cell_property(name: str) -> property:
    """A read-only layer property forwarding to the same attribute of `self.cell`."""
    return property(lambda self: getattr(self.cell, name), doc=f"The cell's `{name}`.")


def layer_config(layer, cell_config: dict) -> dict:
    """A recurrent layer's config: its RNN options, then the cell's arguments."""
    config = layer._rnn_config()
    config.update(cell_config)
    config["activity_regularizer"] = regularizers.serialize(layer.activity_regularizer)
    return config
