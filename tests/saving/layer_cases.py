"""One small model per layer class, buildable with Keras 3 or ktorch from the same description.

Shared by the file-format tests: each case builds `Input(s) -> layer -> output` with the
library given (`keras` or `ktorch`), so that a file written by one library can be loaded into
the other's model and the predictions compared.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np


@dataclasses.dataclass
class Case:
    """A layer in a minimal functional model.

    Attributes:
        name: the test id (the class name, with a suffix for variants).
        make: `make(layers_module)` returns the layer.
        shapes: the input shapes, without the batch axis.
        call: how the inputs are passed: `"one"` (a single tensor), `"list"` (`layer([a, b])`)
            or `"args"` (`layer(a, b)`).
        dtype: the inputs' dtype.
        high: for integer inputs, the exclusive upper bound of the values.
        batch_size: a fixed batch size (stateful layers).
    """

    name: str
    make: Callable[[Any], Any]
    shapes: list[tuple[int, ...]]
    call: str = "one"
    dtype: str = "float32"
    high: int = 0
    batch_size: int | None = None


def _rnn(cell_name: str, units: int = 3):
    return lambda L: L.RNN(getattr(L, cell_name)(units))


CASES = [
    Case("Activation", lambda L: L.Activation("tanh"), [(4,)]),
    Case("ActivityRegularization", lambda L: L.ActivityRegularization(l1=0.01), [(4,)]),
    Case("Add", lambda L: L.Add(), [(4,), (4,)], "list"),
    Case("AlphaDropout", lambda L: L.AlphaDropout(0.2), [(4,)]),
    Case("Attention", lambda L: L.Attention(use_scale=True), [(3, 4), (5, 4)], "list"),
    Case(
        "Attention-concat",
        lambda L: L.Attention(use_scale=True, score_mode="concat"),
        [(3, 4), (5, 4)],
        "list",
    ),
    Case("Average", lambda L: L.Average(), [(4,), (4,)], "list"),
    Case("AveragePooling1D", lambda L: L.AveragePooling1D(2), [(6, 3)]),
    Case("AveragePooling2D", lambda L: L.AveragePooling2D(2), [(6, 6, 3)]),
    Case("AveragePooling3D", lambda L: L.AveragePooling3D(2), [(4, 4, 4, 2)]),
    Case("BatchNormalization", lambda L: L.BatchNormalization(), [(4,)]),
    Case("Bidirectional", lambda L: L.Bidirectional(L.LSTM(3)), [(5, 4)]),
    Case(
        "Bidirectional-backward_layer",
        lambda L: L.Bidirectional(
            L.GRU(2, return_sequences=True),
            backward_layer=L.GRU(2, return_sequences=True, go_backwards=True),
            merge_mode="sum",
        ),
        [(5, 4)],
    ),
    Case("Concatenate", lambda L: L.Concatenate(), [(4,), (3,)], "list"),
    Case("Conv1D", lambda L: L.Conv1D(2, 3), [(6, 3)]),
    Case("Conv1DTranspose", lambda L: L.Conv1DTranspose(2, 3), [(6, 3)]),
    Case("Conv2D", lambda L: L.Conv2D(2, 3, padding="same"), [(6, 6, 3)]),
    Case("Conv2D-groups", lambda L: L.Conv2D(4, 3, groups=2, use_bias=False), [(6, 6, 4)]),
    Case("Conv2DTranspose", lambda L: L.Conv2DTranspose(2, 3, strides=2), [(4, 4, 3)]),
    Case("Conv3D", lambda L: L.Conv3D(2, 2), [(4, 4, 4, 2)]),
    Case("Conv3DTranspose", lambda L: L.Conv3DTranspose(2, 2), [(3, 3, 3, 2)]),
    Case("Cropping1D", lambda L: L.Cropping1D(1), [(6, 3)]),
    Case("Cropping2D", lambda L: L.Cropping2D(1), [(6, 6, 3)]),
    Case("Cropping3D", lambda L: L.Cropping3D(1), [(4, 4, 4, 2)]),
    Case("Dense", lambda L: L.Dense(3), [(4,)]),
    Case("Dense-3d", lambda L: L.Dense(3, use_bias=False), [(2, 4)]),
    Case("DepthwiseConv1D", lambda L: L.DepthwiseConv1D(3, depth_multiplier=2), [(6, 3)]),
    Case("DepthwiseConv2D", lambda L: L.DepthwiseConv2D(3), [(6, 6, 3)]),
    Case("Dot", lambda L: L.Dot(axes=1), [(4,), (4,)], "list"),
    Case("Dropout", lambda L: L.Dropout(0.5, seed=3), [(4,)]),
    Case("ELU", lambda L: L.ELU(), [(4,)]),
    Case("Embedding", lambda L: L.Embedding(10, 3), [(5,)], dtype="int32", high=10),
    Case("Flatten", lambda L: L.Flatten(), [(3, 4)]),
    Case("GRU", lambda L: L.GRU(3), [(5, 4)]),
    Case("GRU-reset_before", lambda L: L.GRU(3, reset_after=False), [(5, 4)]),
    Case("GRUCell", _rnn("GRUCell"), [(5, 4)]),
    Case("GaussianDropout", lambda L: L.GaussianDropout(0.2), [(4,)]),
    Case("GaussianNoise", lambda L: L.GaussianNoise(0.1), [(4,)]),
    Case("GlobalAveragePooling1D", lambda L: L.GlobalAveragePooling1D(), [(6, 3)]),
    Case("GlobalAveragePooling2D", lambda L: L.GlobalAveragePooling2D(), [(6, 6, 3)]),
    Case("GlobalAveragePooling3D", lambda L: L.GlobalAveragePooling3D(), [(4, 4, 4, 2)]),
    Case("GlobalMaxPooling1D", lambda L: L.GlobalMaxPooling1D(), [(6, 3)]),
    Case("GlobalMaxPooling2D", lambda L: L.GlobalMaxPooling2D(), [(6, 6, 3)]),
    Case("GlobalMaxPooling3D", lambda L: L.GlobalMaxPooling3D(), [(4, 4, 4, 2)]),
    Case("GroupNormalization", lambda L: L.GroupNormalization(groups=2), [(5, 4)]),
    Case("Identity", lambda L: L.Identity(), [(4,)]),
    Case("LSTM", lambda L: L.LSTM(3), [(5, 4)]),
    Case("LSTM-stateful", lambda L: L.LSTM(3, stateful=True), [(5, 4)], batch_size=4),
    Case("LSTMCell", _rnn("LSTMCell"), [(5, 4)]),
    Case("LayerNormalization", lambda L: L.LayerNormalization(), [(4,)]),
    Case("LeakyReLU", lambda L: L.LeakyReLU(negative_slope=0.2), [(4,)]),
    Case("Masking", lambda L: L.Masking(0.0), [(3, 4)]),
    Case("MaxPooling1D", lambda L: L.MaxPooling1D(2), [(6, 3)]),
    Case("MaxPooling2D", lambda L: L.MaxPooling2D(2), [(6, 6, 3)]),
    Case("MaxPooling3D", lambda L: L.MaxPooling3D(2), [(4, 4, 4, 2)]),
    Case("Maximum", lambda L: L.Maximum(), [(4,), (4,)], "list"),
    Case("Minimum", lambda L: L.Minimum(), [(4,), (4,)], "list"),
    Case("MultiHeadAttention", lambda L: L.MultiHeadAttention(2, 3), [(3, 4), (5, 4)], "args"),
    Case("Multiply", lambda L: L.Multiply(), [(4,), (4,)], "list"),
    Case("Normalization", lambda L: L.Normalization(), [(3,)]),
    Case(
        "Normalization-fixed",
        lambda L: L.Normalization(mean=[0.5, 1.0, -1.0], variance=[1.0, 4.0, 0.25]),
        [(3,)],
    ),
    Case("PReLU", lambda L: L.PReLU(), [(4,)]),
    Case("Permute", lambda L: L.Permute((2, 1)), [(3, 4)]),
    Case("RNN-stacked", lambda L: L.RNN([L.LSTMCell(2), L.GRUCell(3)]), [(5, 4)]),
    Case("ReLU", lambda L: L.ReLU(max_value=0.5), [(4,)]),
    Case("RepeatVector", lambda L: L.RepeatVector(3), [(4,)]),
    Case("Rescaling", lambda L: L.Rescaling(0.5, offset=0.1), [(4,)]),
    Case("Reshape", lambda L: L.Reshape((2, 6)), [(3, 4)]),
    Case("SeparableConv1D", lambda L: L.SeparableConv1D(2, 3), [(6, 3)]),
    Case("SeparableConv2D", lambda L: L.SeparableConv2D(2, 3), [(6, 6, 3)]),
    Case("SimpleRNN", lambda L: L.SimpleRNN(3, return_sequences=True), [(5, 4)]),
    Case("SimpleRNNCell", _rnn("SimpleRNNCell"), [(5, 4)]),
    Case("Softmax", lambda L: L.Softmax(), [(4,)]),
    Case("SpatialDropout1D", lambda L: L.SpatialDropout1D(0.2), [(5, 4)]),
    Case("SpatialDropout2D", lambda L: L.SpatialDropout2D(0.2), [(4, 4, 3)]),
    Case("SpatialDropout3D", lambda L: L.SpatialDropout3D(0.2), [(3, 3, 3, 2)]),
    Case(
        "StackedRNNCells",
        lambda L: L.RNN(L.StackedRNNCells([L.SimpleRNNCell(2), L.LSTMCell(3)])),
        [(5, 4)],
    ),
    Case("Subtract", lambda L: L.Subtract(), [(4,), (4,)], "list"),
    Case("TimeDistributed", lambda L: L.TimeDistributed(L.Dense(2)), [(3, 4)]),
    Case("UnitNormalization", lambda L: L.UnitNormalization(), [(4,)]),
    Case("UpSampling1D", lambda L: L.UpSampling1D(2), [(3, 2)]),
    Case("UpSampling2D", lambda L: L.UpSampling2D(2), [(3, 3, 2)]),
    Case("UpSampling3D", lambda L: L.UpSampling3D(2), [(2, 2, 2, 2)]),
    Case("ZeroPadding1D", lambda L: L.ZeroPadding1D(1), [(3, 2)]),
    Case("ZeroPadding2D", lambda L: L.ZeroPadding2D(1), [(3, 3, 2)]),
    Case("ZeroPadding3D", lambda L: L.ZeroPadding3D(1), [(2, 2, 2, 2)]),
]

# Exported classes covered without a case of their own: `InputLayer` is in every case's
# model, `Lambda` has its own tests (its function needs registering in both libraries), and
# `Layer` is the abstract base.
COVERED_ELSEWHERE = {"InputLayer", "Lambda", "Layer"}
# The class each case exercises, when it is not the case's name before the first "-".
CLASS_OF = {"RNN-stacked": "RNN"}


def build_model(lib: Any, case: Case):
    """`Input(s) -> layer -> output` as a functional model of `lib` (`keras` or `ktorch`)."""
    inputs = [
        lib.Input(shape, dtype=case.dtype, batch_size=case.batch_size) for shape in case.shapes
    ]
    layer = case.make(lib.layers)
    if len(inputs) == 1:
        outputs = layer(inputs[0])
    elif case.call == "list":
        outputs = layer(inputs)
    else:
        outputs = layer(*inputs)
    return lib.Model(inputs if len(inputs) > 1 else inputs[0], outputs)


def sample_inputs(case: Case, seed: int = 0) -> list[np.ndarray]:
    """Random inputs for the case's model (a batch of 4)."""
    rng = np.random.default_rng(seed)
    if case.high:
        return [rng.integers(0, case.high, size=(4, *s)).astype(case.dtype) for s in case.shapes]
    return [rng.normal(size=(4, *s)).astype(case.dtype) for s in case.shapes]


def random_weights(weights: list, seed: int = 1) -> list[np.ndarray]:
    """New values for `weights` (variables with `.name` and `.shape`): positive variances."""
    rng = np.random.default_rng(seed)
    values = []
    for w in weights:
        shape = tuple(w.shape)
        name = str(w.name)
        dtype = np.dtype(str(w.dtype).replace("torch.", ""))
        if dtype.kind in "iu":
            values.append(np.full(shape, 7, dtype=dtype))
        elif "variance" in name:
            values.append(rng.uniform(0.5, 1.5, size=shape).astype(dtype))
        else:
            values.append(rng.uniform(-0.5, 0.5, size=shape).astype(dtype))
    return values
