"""Overhead of ktorch's `fit` and `predict` against hand-written PyTorch loops, on one CPU thread.

Three workloads (MLP 784-128-10, a small convnet, LSTM(64) + Dense(10)) are trained with
`model.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=True)` and with the loop a PyTorch
user writes (shuffled permutation, index slicing, zero_grad/forward/loss/backward/step, one
`.item()` per step), from the same initial weights and with the same Adam (the torch optimizer is
built with the flags ktorch's `Adam` chose: fused or foreach, betas, epsilon). Repetitions
alternate between the implementations in one process; each figure is the median over rounds, the
ratio the median of the per-round ratios. `fit`'s per-call setup is inside the timed region.
Denormal floats are flushed to zero (`--keep-denormals` to keep them), for every side alike.

Also measured: `predict` throughput against a `torch.no_grad()` loop over the same batches, the
time `import ktorch` adds to `import torch` (fresh interpreters), whether it pulls in
`torch._dynamo` or `sympy`, and, when Keras 3 is installed, the same models trained and run by
Keras 3 on its torch backend.

Usage:
    python benchmarks/bench_fit.py            # full run (a few minutes on 2 cores)
    python benchmarks/bench_fit.py --quick    # short smoke run; figures are not for the record
    python benchmarks/bench_fit.py --only fit --workloads mlp,convnet
    python benchmarks/bench_fit.py --profile mlp   # cProfile of fit and predict, us/step
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import gc
import os
import platform
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _machine import cpu_model
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
# Lets the script run from a checkout that is not pip-installed.
sys.path.insert(0, str(ROOT))

import ktorch  # noqa: E402

BATCH_SIZE = 64
NUM_CLASSES = 10
LEARNING_RATE = 1e-3
IMPLEMENTATIONS = ("ktorch", "torch", "keras")


# ----------------------------------------------------------------------------- models


class KtorchLSTMClassifier(ktorch.Model):
    """`torch.nn.LSTM(32, 64)` (ktorch has no LSTM layer yet) followed by `Dense(10)`."""

    def __init__(self, lstm: nn.LSTM):
        super().__init__()
        self.lstm = lstm
        self.classifier = ktorch.layers.Dense(NUM_CLASSES)

    def build(self, input_shape):
        # The head's input width is the LSTM's hidden size: no probing forward pass needed.
        self.classifier.build((input_shape[0], self.lstm.hidden_size))
        self.built = True

    def call(self, inputs):
        _, (hidden, _) = self.lstm(inputs)
        return self.classifier(hidden[-1])


class TorchLSTMClassifier(nn.Module):
    """The PyTorch twin of `KtorchLSTMClassifier`."""

    def __init__(self, lstm: nn.LSTM):
        super().__init__()
        self.lstm = lstm
        self.classifier = nn.Linear(64, NUM_CLASSES)

    def forward(self, inputs):
        _, (hidden, _) = self.lstm(inputs)
        return self.classifier(hidden[-1])


def _copy_dense(dense, linear: nn.Linear) -> None:
    kernel, bias = dense.get_weights()
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(kernel.T))
        linear.bias.copy_(torch.from_numpy(bias))


def _copy_conv2d(conv, torch_conv: nn.Conv2d) -> None:
    kernel, bias = conv.get_weights()
    with torch.no_grad():
        torch_conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1)))
        torch_conv.bias.copy_(torch.from_numpy(bias))


def _ktorch_loss():
    return ktorch.losses.SparseCategoricalCrossentropy(from_logits=True)


def _build_mlp_ktorch():
    layers = ktorch.layers
    return ktorch.Sequential(
        [
            ktorch.Input((784,)),
            layers.Dense(128, activation="relu"),
            layers.Dense(NUM_CLASSES),
        ]
    )


def _build_mlp_torch(model) -> nn.Module:
    module = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, NUM_CLASSES))
    dense = [layer for layer in model.layers if isinstance(layer, ktorch.layers.Dense)]
    _copy_dense(dense[0], module[0])
    _copy_dense(dense[1], module[2])
    return module


def _build_mlp_keras(keras, model):
    layers = keras.layers
    keras_model = keras.Sequential(
        [
            keras.Input((784,)),
            layers.Dense(128, activation="relu"),
            layers.Dense(NUM_CLASSES),
        ]
    )
    keras_model.set_weights(model.get_weights())
    return keras_model


def _build_convnet_ktorch():
    layers = ktorch.layers
    return ktorch.Sequential(
        [
            ktorch.Input((28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(NUM_CLASSES),
        ]
    )


def _build_convnet_torch(model) -> nn.Module:
    module = nn.Sequential(
        nn.Conv2d(1, 32, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, NUM_CLASSES),
    )
    convs = [layer for layer in model.layers if isinstance(layer, ktorch.layers.Conv2D)]
    dense = [layer for layer in model.layers if isinstance(layer, ktorch.layers.Dense)]
    _copy_conv2d(convs[0], module[0])
    _copy_conv2d(convs[1], module[3])
    _copy_dense(dense[0], module[7])
    return module


def _build_convnet_keras(keras, model):
    layers = keras.layers
    keras_model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(NUM_CLASSES),
        ]
    )
    keras_model.set_weights(model.get_weights())
    return keras_model


def _build_lstm_ktorch():
    model = KtorchLSTMClassifier(nn.LSTM(32, 64, batch_first=True))
    with torch.no_grad():
        model(torch.zeros(2, 50, 32))
    return model


def _lstm_copy(model) -> nn.LSTM:
    lstm = nn.LSTM(32, 64, batch_first=True)
    lstm.load_state_dict(model.lstm.state_dict())
    return lstm


def _build_lstm_torch(model) -> nn.Module:
    module = TorchLSTMClassifier(_lstm_copy(model))
    _copy_dense(model.classifier, module.classifier)
    return module


def _build_lstm_keras(keras, model):
    class KerasLSTMClassifier(keras.Model):
        def __init__(self, lstm):
            super().__init__()
            # Keras's torch backend wraps a plain torch module in TorchModuleWrapper.
            self.lstm = lstm
            self.classifier = keras.layers.Dense(NUM_CLASSES)

        def call(self, inputs):
            _, (hidden, _) = self.lstm(inputs)
            return self.classifier(hidden[-1])

    keras_model = KerasLSTMClassifier(_lstm_copy(model))
    keras_model(np.zeros((2, 50, 32), dtype="float32"))
    keras_model.classifier.set_weights(model.classifier.get_weights())
    return keras_model


@dataclass
class Workload:
    """One model, built three ways from the same initial weights."""

    name: str
    title: str
    input_shape: tuple[int, ...]
    build_ktorch: Callable[[], Any]
    build_torch: Callable[[Any], nn.Module]
    build_keras: Callable[[Any, Any], Any]
    fit_steps: int
    fit_target: float | None
    rounds: int = 5
    channels_last_input: bool = False
    note: str = ""
    predict_batches: dict[int, int] = field(default_factory=dict)

    def data(self, num_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        x = rng.random((num_samples, *self.input_shape), dtype=np.float32)
        y = rng.integers(0, NUM_CLASSES, size=(num_samples,), dtype=np.int64)
        return x, y

    def torch_input(self, x: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(x)
        if self.channels_last_input:
            # The PyTorch user keeps images in NCHW.
            tensor = tensor.permute(0, 3, 1, 2).contiguous()
        return tensor


WORKLOADS = {
    "mlp": Workload(
        "mlp",
        "MLP 784-128-10",
        (784,),
        _build_mlp_ktorch,
        _build_mlp_torch,
        _build_mlp_keras,
        fit_steps=400,
        fit_target=1.10,
        predict_batches={64: 400, 1024: 40},
    ),
    "convnet": Workload(
        "convnet",
        "convnet 28x28x1",
        (28, 28, 1),
        _build_convnet_ktorch,
        _build_convnet_torch,
        _build_convnet_keras,
        fit_steps=200,
        fit_target=1.05,
        rounds=3,
        channels_last_input=True,
        predict_batches={64: 60},
    ),
    "lstm": Workload(
        "lstm",
        "LSTM(64) 50x32 (torch.nn.LSTM in ktorch.Model)",
        (50, 32),
        _build_lstm_ktorch,
        _build_lstm_torch,
        _build_lstm_keras,
        fit_steps=200,
        fit_target=None,
        rounds=3,
        note=(
            "ktorch has no LSTM layer yet: its model is a subclassed ktorch.Model wrapping "
            "torch.nn.LSTM(32, 64, batch_first=True) + ktorch.layers.Dense(10); Keras 3 wraps "
            "the same torch.nn.LSTM (TorchModuleWrapper). The fused ktorch LSTM comes later."
        ),
    ),
}


# ----------------------------------------------------------------------------- loops


def torch_fit_epoch(module, optimizer, loss_fn, x, y, batch_size=BATCH_SIZE) -> float:
    """The hand-written PyTorch epoch: one `.item()` per step, as in most training scripts."""
    module.train()
    num_samples = x.shape[0]
    order = torch.randperm(num_samples)
    total = 0.0
    for start in range(0, num_samples, batch_size):
        index = order[start : start + batch_size]
        x_batch, y_batch = x[index], y[index]
        optimizer.zero_grad()
        loss = loss_fn(module(x_batch), y_batch)
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total


def torch_predict(module, x, batch_size) -> np.ndarray:
    """The hand-written PyTorch inference loop over contiguous batches."""
    module.eval()
    with torch.no_grad():
        outputs = [module(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)]
        return torch.cat(outputs).numpy()


def torch_adam_like(ktorch_optimizer, params) -> tuple[torch.optim.Optimizer, str]:
    """`torch.optim.Adam` with the hyperparameters and kernel choice of ktorch's optimizer."""
    inner = ktorch_optimizer.torch_optimizer
    group = inner.param_groups[0]
    kwargs = {
        "lr": group["lr"],
        "betas": group["betas"],
        "eps": group["eps"],
        "weight_decay": group["weight_decay"],
        "amsgrad": group["amsgrad"],
        "foreach": group.get("foreach"),
        "fused": group.get("fused"),
    }
    shown = ", ".join(f"{k}={kwargs[k]}" for k in ("lr", "eps", "foreach", "fused"))
    return torch.optim.Adam(params, **kwargs), f"{type(inner).__name__}({shown})"


def import_keras():
    """Keras 3 on the torch backend, or None when it is not installed."""
    os.environ["KERAS_BACKEND"] = "torch"
    try:
        import keras
    except ImportError:
        return None
    if keras.backend.backend() != "torch":
        return None
    return keras


class Contenders:
    """The ktorch, torch and (optionally) Keras versions of one workload, ready to time."""

    def __init__(self, workload: Workload, keras, seed: int = 0):
        torch.manual_seed(seed)
        self.workload = workload
        self.model = workload.build_ktorch()
        self.module = workload.build_torch(self.model)
        self.keras_model = workload.build_keras(keras, self.model) if keras else None
        self.model.compile(
            optimizer=ktorch.optimizers.Adam(learning_rate=LEARNING_RATE), loss=_ktorch_loss()
        )
        self.model.optimizer.build(self.model.trainable_weights)
        self.optimizer, self.optimizer_desc = torch_adam_like(
            self.model.optimizer, self.module.parameters()
        )
        self.loss_fn = nn.CrossEntropyLoss()
        if self.keras_model is not None:
            self.keras_model.compile(
                optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            )
        self.keras = keras

    def parity(self) -> dict[str, float]:
        """Max absolute output difference to ktorch on a few samples (weights were copied)."""
        x, _ = self.workload.data(8, seed=123)
        with torch.no_grad():
            reference = self.model(torch.from_numpy(x), training=False).numpy()
            self.module.eval()
            result = {
                "torch": float(
                    np.abs(self.module(self.workload.torch_input(x)).numpy() - reference).max()
                )
            }
        if self.keras_model is not None:
            out = self.keras.ops.convert_to_numpy(self.keras_model(x, training=False))
            result["keras"] = float(np.abs(out - reference).max())
        return result

    def trained_parameter_counts(self) -> tuple[int, int]:
        inner = self.model.optimizer.torch_optimizer
        ktorch_count = sum(p.numel() for g in inner.param_groups for p in g["params"])
        return ktorch_count, sum(p.numel() for p in self.module.parameters())

    def fit_runners(self, x: np.ndarray, y: np.ndarray) -> dict[str, Callable[[], Any]]:
        tx, ty = self.workload.torch_input(x), torch.from_numpy(y)
        runners = {
            "ktorch": lambda: self.model.fit(
                x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0, shuffle=True
            ),
            "torch": lambda: torch_fit_epoch(self.module, self.optimizer, self.loss_fn, tx, ty),
        }
        if self.keras_model is not None:
            runners["keras"] = lambda: self.keras_model.fit(
                x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0, shuffle=True
            )
        return runners

    def predict_runners(self, x: np.ndarray, batch_size: int) -> dict[str, Callable[[], Any]]:
        tx = self.workload.torch_input(x)
        runners = {
            "ktorch": lambda: self.model.predict(x, batch_size=batch_size, verbose=0),
            "torch": lambda: torch_predict(self.module, tx, batch_size),
        }
        if self.keras_model is not None:
            runners["keras"] = lambda: self.keras_model.predict(x, batch_size=batch_size, verbose=0)
        return runners


# ----------------------------------------------------------------------------- timing


def alternate(runners: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    """Times each runner once per round, rotating the order from round to round."""
    names = list(runners)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            gc.collect()
            start = time.perf_counter()
            runners[name]()
            times[name].append(time.perf_counter() - start)
    return times


@dataclass
class Row:
    """One line of a result table."""

    workload: str
    baseline: float
    ktorch: float
    ratio: float
    ratio_range: tuple[float, float]
    keras: float | None
    keras_ratio: float | None
    target: str
    met: str


def _ratios(numerator: list[float], denominator: list[float]) -> list[float]:
    return [a / b for a, b in zip(numerator, denominator, strict=True)]


def bench_fit(workload: Workload, keras, rounds: int, steps: int, warmup: int) -> Row:
    contenders = Contenders(workload, keras)
    parity = contenders.parity()
    print(f"\n[fit] {workload.title}: {steps} steps x {rounds} rounds, batch {BATCH_SIZE}")
    if workload.note:
        print(f"  note: {workload.note}")
    print(f"  torch optimizer (mirrors ktorch's Adam): {contenders.optimizer_desc}")
    print(
        "  initial-output parity vs ktorch (max abs diff): "
        + ", ".join(f"{k} {v:.1e}" for k, v in parity.items())
    )
    if max(parity.values()) > 1e-4:
        raise RuntimeError(f"Weights were not copied faithfully: {parity}")
    warm_x, warm_y = workload.data(warmup * BATCH_SIZE, seed=1)
    for run in contenders.fit_runners(warm_x, warm_y).values():
        run()
    trained, expected = contenders.trained_parameter_counts()
    if trained != expected:
        raise RuntimeError(f"ktorch trains {trained} parameters, torch {expected}")
    x, y = workload.data(steps * BATCH_SIZE, seed=2)
    times = alternate(contenders.fit_runners(x, y), rounds)
    per_step = {name: [t / steps for t in values] for name, values in times.items()}
    for name, values in per_step.items():
        print(f"  {name:>6} s/step per round: " + " ".join(f"{v:.6f}" for v in values))
    ratios = _ratios(per_step["ktorch"], per_step["torch"])
    ratio = statistics.median(ratios)
    keras_s = keras_ratio = None
    if "keras" in per_step:
        keras_s = statistics.median(per_step["keras"])
        keras_ratio = statistics.median(_ratios(per_step["keras"], per_step["torch"]))
    target = workload.fit_target
    return Row(
        f"fit {workload.title}",
        statistics.median(per_step["torch"]),
        statistics.median(per_step["ktorch"]),
        ratio,
        (min(ratios), max(ratios)),
        keras_s,
        keras_ratio,
        f"<= {target:.2f}x" if target else "none",
        ("yes" if ratio <= target else "NO") if target else "-",
    )


def bench_predict(workload: Workload, keras, rounds: int, quick: bool) -> list[Row]:
    contenders = Contenders(workload, keras)
    rows = []
    for batch_size, batches in workload.predict_batches.items():
        batches = max(4, batches // 4) if quick else batches
        x, _ = workload.data(batches * batch_size, seed=3)
        runners = contenders.predict_runners(x, batch_size)
        for run in runners.values():
            run()
        print(
            f"\n[predict] {workload.title}: batch {batch_size}, {batches} batches x {rounds} rounds"
        )
        times = alternate(runners, rounds)
        rate = {name: [len(x) / t for t in values] for name, values in times.items()}
        for name, values in rate.items():
            print(f"  {name:>6} samples/s per round: " + " ".join(f"{v:.0f}" for v in values))
        ratios = _ratios(rate["ktorch"], rate["torch"])
        ratio = statistics.median(ratios)
        keras_rate = keras_ratio = None
        if "keras" in rate:
            keras_rate = statistics.median(rate["keras"])
            keras_ratio = statistics.median(_ratios(rate["keras"], rate["torch"]))
        rows.append(
            Row(
                f"predict {workload.title}, batch {batch_size}",
                statistics.median(rate["torch"]),
                statistics.median(rate["ktorch"]),
                ratio,
                (min(ratios), max(ratios)),
                keras_rate,
                keras_ratio,
                ">= 0.95x",
                "yes" if ratio >= 0.95 else "NO",
            )
        )
    return rows


def _time_subprocess(code: str, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - start


_MODULE_CHECK = """
import sys, torch
before = set(sys.modules)
import ktorch
new = set(sys.modules) - before
for name in ("torch._dynamo", "sympy"):
    print(name, name in before, name in new)
tops = sorted({m.split(".")[0] for m in new} - {"ktorch", "torch"})
print("new_packages", ",".join(tops))
"""


def bench_import(repeats: int) -> dict:
    """Wall time of fresh interpreters importing torch, and torch plus ktorch."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    )
    _time_subprocess("import torch, ktorch", env)
    torch_times, ktorch_times = [], []
    for _ in range(repeats):
        torch_times.append(_time_subprocess("import torch", env))
        ktorch_times.append(_time_subprocess("import torch, ktorch", env))
    check = subprocess.run(
        [sys.executable, "-c", _MODULE_CHECK],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    modules = {}
    for line in check:
        parts = line.split()
        if len(parts) == 3:
            modules[parts[0]] = {"by_torch": parts[1] == "True", "by_ktorch": parts[2] == "True"}
        elif len(parts) == 2 and parts[0] == "new_packages":
            modules["new_packages"] = parts[1]
    importtime = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import torch; import ktorch"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stderr
    heaviest = []
    for line in importtime.splitlines():
        fields = [f.strip() for f in line.split("|")]
        if len(fields) == 3 and fields[0].startswith("import time:") and fields[1].isdigit():
            heaviest.append((int(fields[1]), fields[2]))
    own = sorted((c for c in heaviest if c[1].lstrip().startswith("ktorch")), reverse=True)
    return {
        "torch": torch_times,
        "ktorch": ktorch_times,
        "modules": modules,
        "heaviest_ktorch": own[:8],
    }


# ----------------------------------------------------------------------------- profile


def profile(workload: Workload, steps: int) -> None:
    """Prints where ktorch's fit and predict spend their time (cProfile), next to torch's."""
    contenders = Contenders(workload, None)
    warm_x, warm_y = workload.data(20 * BATCH_SIZE, seed=1)
    for run in contenders.fit_runners(warm_x, warm_y).values():
        run()
    x, y = workload.data(steps * BATCH_SIZE, seed=2)
    fit_runners = contenders.fit_runners(x, y)
    predict_runners = contenders.predict_runners(x, BATCH_SIZE)
    for run in predict_runners.values():
        run()
    for task, runners in (("fit", fit_runners), ("predict", predict_runners)):
        for name in ("torch", "ktorch"):
            _profile_one(f"{name} {task}, {workload.title}", runners[name], steps)


def _profile_one(title: str, run: Callable[[], Any], steps: int) -> None:
    profiler = cProfile.Profile()
    gc.collect()
    start = time.perf_counter()
    profiler.runcall(run)
    elapsed = time.perf_counter() - start
    stats = pstats.Stats(profiler).stats
    print(
        f"\n[profile] {title}: {elapsed / steps * 1e6:.0f} us/step under cProfile "
        "(profiling inflates Python-heavy code)"
    )
    rows = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:25]
    _print_profile_rows("by self time", rows, steps)
    package = str(ROOT / "ktorch")
    own = [item for item in stats.items() if item[0][0].startswith(package)]
    if own:
        own_self = sum(item[1][2] for item in own)
        print(f"\n  ktorch Python code, self time: {own_self / steps * 1e6:.1f} us/step")
        rows = sorted(own, key=lambda item: item[1][3], reverse=True)[:25]
        _print_profile_rows("ktorch functions by cumulative time", rows, steps)


def _print_profile_rows(title: str, rows: list, steps: int) -> None:
    print(f"\n  {title}")
    print(f"  {'calls/step':>10} {'self us/step':>12} {'cum us/step':>11}  function")
    for (filename, line, func), (_, calls, self_time, cum_time, _) in rows:
        where = _short_path(filename)
        label = f"{where}:{line}({func})" if line else func
        print(
            f"  {calls / steps:>10.1f} {self_time / steps * 1e6:>12.1f} "
            f"{cum_time / steps * 1e6:>11.1f}  {label}"
        )


def _short_path(filename: str) -> str:
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


# ----------------------------------------------------------------------------- report


def _source_state() -> str:
    """The checkout's commit, and whether `ktorch/` differs from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "ktorch"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"commit {commit}" + (" with uncommitted changes in ktorch/" if dirty else "")


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def print_table(title: str, unit: str, rows: list[Row], spec: str) -> None:
    print(f"\n### {title}\n")
    print(
        f"| workload | torch {unit} | ktorch {unit} | ratio | ratio range | "
        f"keras {unit} | keras ratio | target | met? |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for row in rows:
        print(
            f"| {row.workload} | {_fmt(row.baseline, spec)} | {_fmt(row.ktorch, spec)} | "
            f"{row.ratio:.3f} | {row.ratio_range[0]:.2f}-{row.ratio_range[1]:.2f} | "
            f"{_fmt(row.keras, spec)} | {_fmt(row.keras_ratio, '.3f')} | {row.target} | "
            f"{row.met} |"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run (smoke test)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating repetitions")
    parser.add_argument("--steps", type=int, default=None, help="fit steps per repetition")
    parser.add_argument(
        "--only", default="fit,predict,import", help="comma-separated parts: fit, predict, import"
    )
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated subset of {','.join(WORKLOADS)}",
    )
    parser.add_argument("--no-keras", action="store_true", help="skip the Keras 3 column")
    parser.add_argument(
        "--keep-denormals",
        action="store_true",
        help="do not flush denormal floats to zero (Adam then slows down on every side)",
    )
    parser.add_argument(
        "--profile",
        choices=sorted(WORKLOADS),
        default=None,
        help="print a cProfile breakdown of fit and predict instead of benchmarking",
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    # With random labels many ReLU units die; their Adam moments decay into denormal floats and
    # stay there (measured: fused Adam 150 -> 235 us/step with 38% denormal moments), on every
    # side alike, which would blur the framework overhead this script measures.
    torch.set_flush_denormal(not args.keep_denormals)
    parts = set(args.only.split(","))
    names = [n for n in args.workloads.split(",") if n]
    unknown = set(names) - set(WORKLOADS) or parts - {"fit", "predict", "import"}
    if unknown:
        parser.error(f"unknown workloads or parts: {sorted(unknown)}")

    if args.profile:
        profile(WORKLOADS[args.profile], args.steps or WORKLOADS[args.profile].fit_steps)
        return

    predict_rounds = args.rounds or (2 if args.quick else 5)
    keras = None if args.no_keras else import_keras()
    load = os.getloadavg()
    print("# ktorch fit/predict overhead (CPU, 1 thread)")
    print(f"command: python {' '.join(sys.argv)}")
    print(f"date: {datetime.date.today().isoformat()}")
    print(
        f"cpu: {cpu_model()}, {os.cpu_count()} logical cores; torch threads "
        f"{torch.get_num_threads()}; denormals flushed to zero: {not args.keep_denormals}"
    )
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, ktorch "
        f"{ktorch.__version__}, keras {keras.__version__ if keras else 'not installed'}"
    )
    print(f"ktorch source: {_source_state()}")
    print(f"load average at start (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")

    fit_rows: list[Row] = []
    predict_rows: list[Row] = []
    if "fit" in parts:
        for name in names:
            workload = WORKLOADS[name]
            steps = args.steps or (
                max(50, workload.fit_steps // 4) if args.quick else workload.fit_steps
            )
            rounds = args.rounds or (2 if args.quick else workload.rounds)
            fit_rows.append(
                bench_fit(workload, keras, rounds, steps, warmup=5 if args.quick else 20)
            )
    if "predict" in parts:
        for name in names:
            if WORKLOADS[name].predict_batches:
                predict_rows.extend(
                    bench_predict(WORKLOADS[name], keras, predict_rounds, args.quick)
                )
    imports = bench_import(3 if args.quick else 5) if "import" in parts else None

    if fit_rows:
        print_table(
            "fit (median over rounds; ratio = ktorch / torch, lower is better)",
            "s/step",
            fit_rows,
            ".6f",
        )
    if predict_rows:
        print_table(
            "predict (median over rounds; ratio = ktorch / torch, higher is better)",
            "samples/s",
            predict_rows,
            ".0f",
        )
    if imports:
        torch_s = statistics.median(imports["torch"])
        ktorch_s = statistics.median(imports["ktorch"])
        extra = ktorch_s - torch_s
        print(f"\n### import (median of {len(imports['torch'])} fresh interpreters)\n")
        print("| `import torch` s | `import torch, ktorch` s | ktorch adds s | target | met? |")
        print("|---:|---:|---:|---|---|")
        print(
            f"| {torch_s:.3f} | {ktorch_s:.3f} | {extra:.3f} | <= 0.300 s | "
            f"{'yes' if extra <= 0.3 else 'NO'} |"
        )
        print("\nper run, torch: " + " ".join(f"{t:.3f}" for t in imports["torch"]))
        print("per run, torch+ktorch: " + " ".join(f"{t:.3f}" for t in imports["ktorch"]))
        for module in ("torch._dynamo", "sympy"):
            info = imports["modules"].get(module, {})
            print(
                f"{module}: imported by `import torch`: {info.get('by_torch')}; "
                f"newly imported by `import ktorch`: {info.get('by_ktorch')}"
            )
        print(f"packages newly imported by ktorch: {imports['modules'].get('new_packages') or '-'}")
        if imports["heaviest_ktorch"]:
            print(
                "heaviest ktorch modules (-X importtime, cumulative us): "
                + ", ".join(f"{name.strip()} {us}" for us, name in imports["heaviest_ktorch"])
            )
    load = os.getloadavg()
    print(f"\nload average at end (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
