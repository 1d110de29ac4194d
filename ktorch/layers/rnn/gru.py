"""`GRUCell` and `GRU`: the gated recurrent unit (Cho et al. 2014)."""

from __future__ import annotations

from ktorch import activations
from ktorch.layers.input_spec import InputSpec
from ktorch.layers.rnn._cell import RecurrentCell, cell_property, layer_config
from ktorch.layers.rnn.dropout_rnn_cell import project
from ktorch.layers.rnn.rnn import RNN
from ktorch.ops.gru import gru_sequence, gru_sequence_reference


class GRUCell(RecurrentCell):
    """One GRU step, gates in Keras's order z (update), r (reset), h (candidate).

    Args:
        units: dimensionality of the output and state.
        activation: candidate activation (tanh; None: linear).
        recurrent_activation: gate activation (sigmoid).
        use_bias: whether to add biases.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers
            (glorot_uniform, orthogonal, zeros).
        kernel_regularizer, recurrent_regularizer, bias_regularizer: weight regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: weight constraints.
        dropout: fraction of the inputs to drop (one mask per sequence).
        recurrent_dropout: fraction of the recurrent state to drop (one mask per gate).
        reset_after: apply the reset gate after the recurrent matmul, with separate input
            and recurrent biases (True, Keras's default and cuDNN's convention), or before.
        seed: seed of the dropout masks.

    Call arguments:
        inputs: `(batch, features)`.
        states: `[h]` with `h` of shape `(batch, units)`.
        training: whether dropout is active.

    Weights:
        kernel `(features, 3 * units)`, recurrent_kernel `(units, 3 * units)`, bias
        `(2, 3 * units)` with `reset_after` (input bias, recurrent bias) else `(3 * units,)`.

    Example:
        ```python
        layer = RNN(GRUCell(4))
        y = layer(torch.zeros(2, 5, 3))  # (2, 4)
        ```
    """

    def __init__(
        self,
        units: int,
        activation="tanh",
        recurrent_activation="sigmoid",
        reset_after: bool = True,
        **kwargs,
    ):
        implementation = kwargs.pop("implementation", 2)
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.reset_after = reset_after
        self.implementation = 1 if self.recurrent_dropout != 0.0 else implementation
        if self.implementation == 1:
            self.dropout_mask_count = 3
        self.state_size = self.units
        self.output_size = self.units

    def build(self, input_shape) -> None:
        self._add_kernels(input_shape[-1], 3)
        shape = (2, 3 * self.units) if self.reset_after else (3 * self.units,)
        self._add_bias(shape, self.bias_initializer)
        self.built = True

    def call(self, inputs, states, training=False):
        nested = isinstance(states, (list, tuple))
        h_tm1 = states[0] if nested else states
        units = self.units
        input_bias = recurrent_bias = None
        if self.bias is not None:
            if self.reset_after:
                input_bias, recurrent_bias = self.bias[0], self.bias[1]
            else:
                input_bias = self.bias
        dp_mask, rec_mask = self._dropout_masks(inputs, h_tm1, training, strict=True)
        x = project(inputs, self.kernel, dp_mask)
        if input_bias is not None:
            x = x + input_bias
        x_z, x_r, x_h = x.chunk(3, dim=-1)
        gate = self.recurrent_activation
        if self.reset_after:
            inner = project(h_tm1, self.recurrent_kernel, rec_mask)
            if recurrent_bias is not None:
                inner = inner + recurrent_bias
            r_z, r_r, r_h = inner.chunk(3, dim=-1)
            z = gate(x_z + r_z)
            r = gate(x_r + r_r)
            candidate = self.activation(x_h + r * r_h)
        else:
            gates_mask = None if rec_mask is None else rec_mask[:2]
            inner = project(h_tm1, self.recurrent_kernel[:, : 2 * units], gates_mask)
            r_z, r_r = inner.chunk(2, dim=-1)
            z = gate(x_z + r_z)
            r = gate(x_r + r_r)
            h_c = h_tm1 if rec_mask is None else h_tm1 * rec_mask[2]
            candidate = self.activation(x_h + (r * h_c) @ self.recurrent_kernel[:, 2 * units :])
        h = z * h_tm1 + (1 - z) * candidate
        return h, [h] if nested else h

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(self._weights_config())
        config.update(
            {
                "recurrent_activation": activations.serialize(self.recurrent_activation),
                "reset_after": self.reset_after,
                "seed": self.seed,
            }
        )
        return config


class GRU(RNN):
    """Gated Recurrent Unit layer (Cho et al. 2014).

    The whole sequence runs in one fused op (`ktorch.ops.gru_sequence`) when the activations
    are the default tanh and sigmoid and `unroll` is False: the inputs of all timesteps are
    projected by one matmul, then one recurrent matmul and one fused gate pass run per step.
    Other activations run the same math in plain PyTorch. With `recurrent_dropout` in
    training the layer steps its cell instead (one recurrent mask per gate, as Keras).

    Args:
        units, activation, recurrent_activation, use_bias, *_initializer, *_regularizer,
            *_constraint, dropout, recurrent_dropout, reset_after, seed: as for `GRUCell`.
        activity_regularizer: regularizer of the output.
        return_sequences, return_state, go_backwards, stateful, unroll: as for `RNN`.
        use_cudnn: accepted for compatibility (`"auto"`, True or False).

    Call arguments:
        sequences: `(batch, timesteps, features)`.
        initial_state: optional initial state `(batch, units)`.
        mask: optional `(batch, timesteps)` booleans.
        training: whether dropout is active.

    Example:
        ```python
        gru = GRU(4, return_sequences=True, return_state=True)
        seq, h = gru(torch.zeros(32, 10, 8))  # (32, 10, 4), (32, 4)
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
        reset_after: bool = True,
        use_cudnn="auto",
        **kwargs,
    ):
        cell = GRUCell(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
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
            reset_after=reset_after,
            seed=seed,
            implementation=kwargs.pop("implementation", 2),
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="gru_cell",
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
        weights = [cell.kernel, cell.recurrent_kernel, cell.bias, initial_state[0]]
        if cell.kernel.dtype != sequences.dtype:
            # Mixed precision: float32 weights compute in the inputs' dtype.
            weights = [w if w is None else w.to(sequences.dtype) for w in weights]
        options = {
            "mask": mask,
            "go_backwards": self.go_backwards,
            "reset_after": cell.reset_after,
            "return_sequences": self.return_sequences,
            "zero_output_for_mask": self.zero_output_for_mask,
        }
        if (
            cell.activation is activations.tanh
            and cell.recurrent_activation is activations.sigmoid
            and not self.unroll
        ):
            # The fused op (or its reference where the extension has no kernel).
            output, h = gru_sequence(sequences, *weights, **options)
        else:
            output, h = gru_sequence_reference(
                sequences,
                *weights,
                **options,
                activation=cell.activation,
                recurrent_activation=cell.recurrent_activation,
            )
        return output, [h]

    units = cell_property("units")
    activation = cell_property("activation")
    recurrent_activation = cell_property("recurrent_activation")
    use_bias = cell_property("use_bias")
    reset_after = cell_property("reset_after")
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
                "reset_after": self.reset_after,
                "seed": self.cell.seed,
            }
        )
        return config
