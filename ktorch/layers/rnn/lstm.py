"""`LSTMCell` and `LSTM`: the long short-term memory layer (Hochreiter 1997)."""

from __future__ import annotations

import torch

from ktorch import activations
from ktorch.layers.input_spec import InputSpec
from ktorch.layers.rnn._cell import RecurrentCell, cell_property, layer_config
from ktorch.layers.rnn._sequence import lstm_sequence
from ktorch.layers.rnn.dropout_rnn_cell import project
from ktorch.layers.rnn.rnn import RNN
from ktorch.ops.lstm import lstm_sequence as fused_lstm_sequence


class LSTMCell(RecurrentCell):
    """One LSTM step, gates in Keras's order i, f, c, o.

    Args:
        units: dimensionality of the output and of each state.
        activation: cell and output activation (tanh; None: linear).
        recurrent_activation: gate activation (sigmoid).
        use_bias: whether to add a bias vector.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers
            (glorot_uniform, orthogonal, zeros).
        unit_forget_bias: add 1 to the forget-gate bias at initialization (the rest of the
            bias then starts at zero).
        kernel_regularizer, recurrent_regularizer, bias_regularizer: weight regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: weight constraints.
        dropout: fraction of the inputs to drop (one mask per sequence).
        recurrent_dropout: fraction of the recurrent state to drop (one mask per gate).
        seed: seed of the dropout masks.

    Call arguments:
        inputs: `(batch, features)`.
        states: `[h, c]`, each `(batch, units)`.
        training: whether dropout is active.

    Weights:
        kernel `(features, 4 * units)`, recurrent_kernel `(units, 4 * units)`,
        bias `(4 * units,)`.

    Example:
        ```python
        layer = RNN(LSTMCell(4))
        y = layer(torch.zeros(2, 5, 3))  # (2, 4)
        ```
    """

    def __init__(
        self,
        units: int,
        activation="tanh",
        recurrent_activation="sigmoid",
        unit_forget_bias: bool = True,
        **kwargs,
    ):
        implementation = kwargs.pop("implementation", 2)
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = unit_forget_bias
        self.implementation = 1 if self.recurrent_dropout != 0.0 else implementation
        if self.implementation == 1:
            self.dropout_mask_count = 4
        self.state_size = [self.units, self.units]
        self.output_size = self.units

    def build(self, input_shape) -> None:
        self._add_kernels(input_shape[-1], 4)
        initializer = self.bias_initializer
        if self.unit_forget_bias:
            base, units = self.bias_initializer, self.units

            def initializer(shape, dtype=None):
                parts = [
                    torch.as_tensor(base((units,), dtype=dtype)),
                    torch.ones(units),
                    torch.as_tensor(base((2 * units,), dtype=dtype)),
                ]
                return torch.cat([p.to(parts[0].dtype) for p in parts])

        self._add_bias((4 * self.units,), initializer)
        self.built = True

    def call(self, inputs, states, training=False):
        h_tm1, c_tm1 = states[0], states[1]
        dp_mask, rec_mask = self._dropout_masks(inputs, h_tm1, training, strict=True)
        z = project(inputs, self.kernel, dp_mask) + project(h_tm1, self.recurrent_kernel, rec_mask)
        if self.bias is not None:
            z = z + self.bias
        i, f, g, o = z.chunk(4, dim=-1)
        gate = self.recurrent_activation
        c = gate(f) * c_tm1 + gate(i) * self.activation(g)
        h = gate(o) * self.activation(c)
        return h, [h, c]

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(self._weights_config())
        config.update(
            {
                "recurrent_activation": activations.serialize(self.recurrent_activation),
                "unit_forget_bias": self.unit_forget_bias,
                "seed": self.seed,
            }
        )
        return config


class LSTM(RNN):
    """Long Short-Term Memory layer (Hochreiter 1997).

    The whole sequence runs in one function: the inputs of all timesteps are projected by one
    matmul, then one recurrent matmul per step. With the default activations (tanh, sigmoid)
    and `unroll=False` that function is the fused op `ktorch.ops.lstm_sequence` (a native
    kernel forward and backward where the extension is built); other activations run the
    same math with torch ops. With `recurrent_dropout` in training the layer steps its cell
    instead (one recurrent mask per gate, as Keras).

    Args:
        units, activation, recurrent_activation, use_bias, *_initializer, unit_forget_bias,
            *_regularizer, *_constraint, dropout, recurrent_dropout, seed: as for `LSTMCell`.
        activity_regularizer: regularizer of the output.
        return_sequences, return_state, go_backwards, stateful, unroll: as for `RNN`.
        use_cudnn: accepted for compatibility (`"auto"`, True or False).

    Call arguments:
        sequences: `(batch, timesteps, features)`.
        initial_state: optional `[h, c]`.
        mask: optional `(batch, timesteps)` booleans.
        training: whether dropout is active.

    Example:
        ```python
        lstm = LSTM(4, return_sequences=True, return_state=True)
        seq, h, c = lstm(torch.zeros(32, 10, 8))  # (32, 10, 4), (32, 4), (32, 4)
        ```
    """

    def __init__(
        self,
        units: int,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias: bool = True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        use_cudnn="auto",
        **kwargs,
    ):
        cell = LSTMCell(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            unit_forget_bias=unit_forget_bias,
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
            implementation=kwargs.pop("implementation", 2),
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="lstm_cell",
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
        if use_cudnn not in ("auto", True, False):
            raise ValueError(
                "Invalid value received for argument `use_cudnn`. Expected one of "
                f"{{'auto', True, False}}. Received: use_cudnn={use_cudnn}"
            )
        self.use_cudnn = use_cudnn

    def inner_loop(self, sequences, initial_state, mask, training):
        cell = self.cell
        inputs = self._whole_sequence_inputs(sequences, training)
        if inputs is None:
            return super().inner_loop(sequences, initial_state, mask, training)
        sequences = inputs
        if self._uses_fused_op():
            output, h, c = fused_lstm_sequence(
                sequences,
                cell.kernel,
                cell.recurrent_kernel,
                cell.bias,
                initial_state[0],
                initial_state[1],
                mask=mask,
                go_backwards=self.go_backwards,
                zero_output_for_mask=self.zero_output_for_mask,
            )
            return (output if self.return_sequences else output[:, -1]), (h, c)
        return lstm_sequence(
            sequences,
            cell.kernel,
            cell.recurrent_kernel,
            cell.bias,
            initial_state[0],
            initial_state[1],
            mask=mask,
            go_backwards=self.go_backwards,
            activation=cell.activation,
            recurrent_activation=cell.recurrent_activation,
            return_sequences=self.return_sequences,
            zero_output_for_mask=self.zero_output_for_mask,
        )

    def _uses_fused_op(self) -> bool:
        # The op hard-codes tanh and sigmoid; `unroll=True` keeps the step-by-step torch ops.
        cell = self.cell
        return (
            not self.unroll
            and cell.activation is activations.tanh
            and cell.recurrent_activation is activations.sigmoid
        )

    units = cell_property("units")
    activation = cell_property("activation")
    recurrent_activation = cell_property("recurrent_activation")
    use_bias = cell_property("use_bias")
    unit_forget_bias = cell_property("unit_forget_bias")
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
        config = layer_config(self, self.cell._weights_config())
        config.update(
            {
                "recurrent_activation": activations.serialize(self.recurrent_activation),
                "unit_forget_bias": self.unit_forget_bias,
                "seed": self.cell.seed,
            }
        )
        return config
