"""`SimpleRNNCell` and `SimpleRNN`: the fully connected recurrent layer."""

from __future__ import annotations

from ktorch.layers.input_spec import InputSpec
from ktorch.layers.rnn._cell import RecurrentCell, cell_property, layer_config
from ktorch.layers.rnn._sequence import simple_rnn_sequence
from ktorch.layers.rnn.dropout_rnn_cell import project
from ktorch.layers.rnn.rnn import RNN


class SimpleRNNCell(RecurrentCell):
    """One step of a fully connected RNN: `h = activation(x @ kernel + h_prev @ rk + bias)`.

    Args:
        units: dimensionality of the output and state.
        activation: activation (tanh; None: linear).
        use_bias: whether to add a bias vector.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers
            (glorot_uniform, orthogonal, zeros).
        kernel_regularizer, recurrent_regularizer, bias_regularizer: weight regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: weight constraints.
        dropout: fraction of the inputs to drop (one mask per sequence).
        recurrent_dropout: fraction of the recurrent state to drop.
        seed: seed of the dropout masks.

    Call arguments:
        inputs: `(batch, features)`.
        states: list with the previous state `(batch, units)`.
        training: whether dropout is active.

    Weights:
        kernel `(features, units)`, recurrent_kernel `(units, units)`, bias `(units,)`.

    Example:
        ```python
        layer = RNN(SimpleRNNCell(4))
        y = layer(torch.zeros(2, 5, 3))  # (2, 4)
        ```
    """

    def __init__(self, units: int, activation="tanh", **kwargs):
        super().__init__(units, activation=activation, **kwargs)
        self.state_size = self.units
        self.output_size = self.units

    def build(self, input_shape) -> None:
        self._add_kernels(input_shape[-1], 1)
        self._add_bias((self.units,), self.bias_initializer)
        self.built = True

    def call(self, inputs, states, training=False):
        prev = states[0] if isinstance(states, (list, tuple)) else states
        dp_mask, rec_mask = self._dropout_masks(inputs, prev, training, strict=False)
        h = project(inputs, self.kernel, dp_mask)
        if self.bias is not None:
            h = h + self.bias
        output = self.activation(h + project(prev, self.recurrent_kernel, rec_mask))
        return output, [output] if isinstance(states, (list, tuple)) else output

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(self._weights_config())
        config["seed"] = self.seed
        return config


class SimpleRNN(RNN):
    """Fully connected RNN whose output is fed back as the next step's state.

    Args:
        units, activation, use_bias, *_initializer, *_regularizer, *_constraint, dropout,
            recurrent_dropout, seed: as for `SimpleRNNCell`.
        activity_regularizer: regularizer of the output.
        return_sequences, return_state, go_backwards, stateful, unroll: as for `RNN`.

    Call arguments:
        sequences: `(batch, timesteps, features)`.
        initial_state: optional initial state `(batch, units)`.
        mask: optional `(batch, timesteps)` booleans.
        training: whether dropout is active.

    Example:
        ```python
        layer = SimpleRNN(4, return_sequences=True)
        y = layer(torch.zeros(2, 5, 3))  # (2, 5, 4)
        ```
    """

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
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        seed: int | None = None,
        **kwargs,
    ):
        cell = SimpleRNNCell(
            units,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="simple_rnn_cell",
        )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            activity_regularizer=activity_regularizer,
            **kwargs,
        )
        self.input_spec = InputSpec(ndim=3)

    def inner_loop(self, sequences, initial_state, mask, training):
        cell = self.cell
        if training and cell.recurrent_dropout > 0:
            return super().inner_loop(sequences, initial_state, mask, training)
        if training and cell.dropout > 0:
            sequences = sequences * cell.get_dropout_mask(sequences[:, 0]).unsqueeze(1)
        return simple_rnn_sequence(
            sequences,
            cell.kernel,
            cell.recurrent_kernel,
            cell.bias,
            initial_state[0],
            mask=mask,
            go_backwards=self.go_backwards,
            activation=cell.activation,
            return_sequences=self.return_sequences,
            zero_output_for_mask=self.zero_output_for_mask,
        )

    units = cell_property("units")
    activation = cell_property("activation")
    use_bias = cell_property("use_bias")
    kernel_initializer = cell_property("kernel_initializer")
    recurrent_initializer = cell_property("recurrent_initializer")
    bias_initializer = cell_property("bias_initializer")
    kernel_regularizer = cell_property("kernel_regularizer")
    recurrent_regularizer = cell_property("recurrent_regularizer")
    bias_regularizer = cell_property("bias_regularizer")
    kernel_constraint = cell_property("kernel_constraint")
    recurrent_constraint = cell_property("recurrent_constraint")
    bias_constraint = cell_property("bias_constraint")
    dropout = cell_property("dropout")
    recurrent_dropout = cell_property("recurrent_dropout")

    def get_config(self) -> dict:
        return layer_config(self, self.cell._weights_config())
