"""Keras 2 config conversion: the older config forms that Keras 2 releases wrote.

The committed Keras 2 fixtures (tf-keras 2.21) cover today's Keras 2; these tests cover the
older forms by writing the configs as Keras 2.2 wrote them (bare-list Sequential configs,
`Model` class names, `lr`/`decay`, initializer configs without `module`).
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

import ktorch
from ktorch.saving import legacy_h5
from ktorch.saving.legacy_config import ConfigConverter, is_keras2, optimizer_config


def dense_config(name, units, activation="linear", **extra):
    config = {
        "name": name,
        "trainable": True,
        "dtype": "float32",
        "units": units,
        "activation": activation,
        "use_bias": True,
        "kernel_initializer": {
            "class_name": "VarianceScaling",
            "config": {"scale": 1.0, "mode": "fan_avg", "distribution": "normal", "seed": None},
        },
        "bias_initializer": {"class_name": "Zeros", "config": {}},
        "kernel_regularizer": {"class_name": "L1L2", "config": {"l1": 0.0, "l2": 0.01}},
        "bias_regularizer": None,
        "activity_regularizer": None,
        "kernel_constraint": None,
        "bias_constraint": None,
    }
    config.update(extra)
    return {"class_name": "Dense", "config": config}


def write_keras22_file(path, kernel, bias):
    """A whole-model file as Keras 2.2.4 wrote it (bare-list Sequential, old optimizer)."""
    model_config = {
        "class_name": "Sequential",
        "config": [dense_config("dense_1", 2, "hard_sigmoid", batch_input_shape=[None, 3])],
    }
    training_config = {
        "optimizer_config": {
            "class_name": "Adam",
            "config": {
                "lr": 0.002,
                "beta_1": 0.9,
                "beta_2": 0.999,
                "decay": 0.5,
                "epsilon": None,
                "amsgrad": False,
            },
        },
        "loss": "mean_squared_error",
        "metrics": ["accuracy"],
        "sample_weight_mode": None,
        "loss_weights": None,
    }
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.2.4"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(model_config).encode("utf8")
        f.attrs["training_config"] = json.dumps(training_config).encode("utf8")
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = [b"dense_1"]
        layer = group.create_group("dense_1")
        layer.attrs["weight_names"] = [b"dense_1/kernel:0", b"dense_1/bias:0"]
        layer["dense_1/kernel:0"] = kernel
        layer["dense_1/bias:0"] = bias
        # Keras 2.2's optimizer variables carry no slot names: their state cannot be mapped.
        optimizer = f.create_group("optimizer_weights")
        names = [b"Adam/iterations:0", b"training/Adam/Variable:0", b"training/Adam/Variable_1:0"]
        optimizer.attrs["weight_names"] = names
        optimizer["Adam/iterations:0"] = np.int64(3)
        optimizer["training/Adam/Variable:0"] = np.zeros((3, 2), "float32")
        optimizer["training/Adam/Variable_1:0"] = np.zeros((2,), "float32")


def test_keras22_file_loads_with_keras2_semantics(tmp_path):
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 2)).astype("float32")
    bias = rng.normal(size=(2,)).astype("float32")
    path = str(tmp_path / "keras22.h5")
    write_keras22_file(path, kernel, bias)
    with pytest.warns(UserWarning, match="freshly initialized optimizer"):
        model = ktorch.models.load_model(path)
    x = rng.normal(size=(4, 3)).astype("float32")
    # Keras 2's hard sigmoid: clip(0.2 x + 0.5, 0, 1).
    expected = np.clip(0.2 * (x @ kernel + bias) + 0.5, 0.0, 1.0)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-6)
    dense = model.layers[0]
    assert dense.kernel_initializer.distribution == "truncated_normal"
    # The legacy decay became the schedule Keras 2 applied: lr / (1 + decay * step).
    schedule = model.optimizer._learning_rate
    assert isinstance(schedule, ktorch.optimizers.schedules.InverseTimeDecay)
    assert schedule(2) == pytest.approx(0.002 / (1 + 0.5 * 2))
    assert model.optimizer.epsilon == pytest.approx(1e-7)
    assert model.optimizer.iterations == 0
    model.fit(x, expected, epochs=1, verbose=0)


def test_keras22_functional_config_with_model_class_name():
    config = {
        "class_name": "Model",
        "config": {
            "name": "model_1",
            "layers": [
                {
                    "name": "input_1",
                    "class_name": "InputLayer",
                    "config": {
                        "batch_input_shape": [None, 4],
                        "dtype": "float32",
                        "sparse": False,
                        "name": "input_1",
                    },
                    "inbound_nodes": [],
                },
                {
                    "name": "dense_1",
                    "class_name": "Dense",
                    **{k: v for k, v in dense_config("dense_1", 3).items() if k != "class_name"},
                    "inbound_nodes": [[["input_1", 0, 0, {}]]],
                },
                {
                    "name": "leaky",
                    "class_name": "LeakyReLU",
                    "config": {"name": "leaky", "trainable": True, "alpha": 0.25},
                    "inbound_nodes": [[["dense_1", 0, 0, {}]]],
                },
            ],
            "input_layers": [["input_1", 0, 0]],
            "output_layers": [["leaky", 0, 0]],
        },
    }
    converted = ConfigConverter(keras2=True).model(config)
    assert converted["class_name"] == "Functional"
    model = ktorch.layers.deserialize(converted)
    assert [layer.name for layer in model.layers] == ["input_1", "dense_1", "leaky"]
    x = torch.randn(2, 4)
    hidden = model.get_layer("dense_1")(x)
    torch.testing.assert_close(model(x), torch.where(hidden > 0, hidden, 0.25 * hidden))


def test_nested_model_calls_are_renumbered_and_kwargs_tensors_resolved():
    # Keras 2 numbers a nested model's calls from 1; kwargs may hold tensor references.
    inner = {
        "name": "inner",
        "layers": [
            {
                "name": "inner_in",
                "class_name": "InputLayer",
                "config": {"batch_input_shape": [None, 5, 4], "dtype": "float32"},
                "inbound_nodes": [],
            },
            {
                "name": "inner_dense",
                "class_name": "Dense",
                "config": dense_config("inner_dense", 4)["config"],
                "inbound_nodes": [[["inner_in", 0, 0, {}]]],
            },
        ],
        "input_layers": [["inner_in", 0, 0]],
        "output_layers": [["inner_dense", 0, 0]],
    }
    config = {
        "class_name": "Functional",
        "config": {
            "name": "outer",
            "layers": [
                {
                    "name": "seq",
                    "class_name": "InputLayer",
                    "config": {"batch_input_shape": [None, 5, 4], "dtype": "float32"},
                    "inbound_nodes": [],
                },
                {
                    "name": "inner",
                    "class_name": "Functional",
                    "config": inner,
                    "inbound_nodes": [[["seq", 0, 0, {}]]],
                },
                {
                    "name": "mha",
                    "class_name": "MultiHeadAttention",
                    "config": {
                        "name": "mha",
                        "num_heads": 2,
                        "key_dim": 2,
                        "query_shape": [None, 5, 4],
                        "key_shape": [None, 5, 4],
                        "value_shape": [None, 5, 4],
                        "softmax_robust_masking": False,
                    },
                    "inbound_nodes": [[["inner", 1, 0, {"value": ["seq", 0, 0]}]]],
                },
            ],
            "input_layers": [["seq", 0, 0]],
            "output_layers": [["inner", 1, 0], ["mha", 0, 0]],
        },
    }
    model = ktorch.layers.deserialize(ConfigConverter(keras2=True).model(config))
    x = torch.randn(2, 5, 4)
    inner_out, attended = model(x)
    inner_model = model.get_layer("inner")
    torch.testing.assert_close(inner_out, inner_model(x))
    torch.testing.assert_close(attended, model.get_layer("mha")(inner_model(x), x))


def test_unsupported_keras2_arguments_raise():
    lstm = {
        "class_name": "LSTM",
        "config": {"name": "lstm", "units": 2, "time_major": True},
    }
    with pytest.raises(ValueError, match="'lstm'.*time_major=True"):
        ConfigConverter(keras2=True).layer(lstm)


def test_unknown_arguments_are_dropped_with_a_warning():
    with pytest.warns(UserWarning, match="fancy_option=3 of layer 'dense'"):
        converted = ConfigConverter(keras2=True).layer(dense_config("dense", 2, fancy_option=3))
    assert "fancy_option" not in converted["config"]


def test_unknown_layer_class_raises_a_clear_error():
    config = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [{"class_name": "TFOpLambda", "config": {"name": "tf.math.add"}}],
        },
    }
    with pytest.raises(ValueError, match="Unknown layer: 'TFOpLambda'"):
        ktorch.layers.deserialize(ConfigConverter(keras2=True).model(config))


def test_optimizer_config_conversion():
    converted = optimizer_config(
        {
            "class_name": "Custom>RMSprop",
            "config": {
                "name": "RMSprop",
                "learning_rate": 0.01,
                "rho": 0.8,
                "momentum": 0.1,
                "epsilon": 1e-6,
                "centered": True,
                "jit_compile": True,
                "is_legacy_optimizer": False,
            },
        }
    )
    optimizer = ktorch.optimizers.deserialize(converted)
    assert isinstance(optimizer, ktorch.optimizers.RMSprop)
    assert (optimizer.rho, optimizer.momentum, optimizer.centered) == (0.8, 0.1, True)


def test_metrics_and_losses_from_keras2_training_configs():
    converter = ConfigConverter(keras2=True)
    args = converter.compile_args(
        {
            "optimizer_config": {"class_name": "SGD", "config": {"lr": 0.1}},
            "loss": {
                "class_name": "CategoricalCrossentropy",
                "config": {"reduction": "auto", "name": "cce", "from_logits": True},
            },
            "metrics": [
                [
                    {
                        "class_name": "MeanMetricWrapper",
                        "config": {"name": "accuracy", "dtype": "float32", "fn": "acc"},
                    },
                    {
                        "class_name": "MeanMetricWrapper",
                        "config": {"name": "mae", "fn": "mean_absolute_error"},
                    },
                ]
            ],
            "loss_weights": None,
        },
        output_names=["dense"],
    )
    assert args["optimizer"].learning_rate == pytest.approx(0.1)
    assert isinstance(args["loss"], ktorch.losses.CategoricalCrossentropy)
    assert args["loss"].from_logits
    assert args["metrics"] == ["accuracy", "mean_absolute_error"]


def test_keras_version_detection():
    assert is_keras2("2.21.0") and is_keras2("2.2.4") and is_keras2("1.2.2")
    assert not is_keras2("3.15.1") and not is_keras2("ktorch-0.1.0")
    assert is_keras2(None, {"config": {"layers": [{"inbound_nodes": [[["a", 0, 0, {}]]]}]}})


def test_is_legacy_weights_file_for_a_keras22_file(tmp_path):
    path = str(tmp_path / "keras22.h5")
    write_keras22_file(path, np.zeros((3, 2), "float32"), np.zeros(2, "float32"))
    assert legacy_h5.is_legacy_weights_file(path)
