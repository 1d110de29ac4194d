"""`ktorch.ops.fused_batch_norm` against `torch.nn.functional.batch_norm`, same process.

Two modes per shape and memory layout: `train` (forward with batch statistics and moving-average
update, then backward for x, gamma and beta) and `inference` (forward with the moving
statistics under `torch.no_grad()`). Both sides get the same tensors; the baseline is PyTorch's
native kernel (CPU) or cuDNN (CUDA, through `F.batch_norm`). Repetitions alternate between the
two implementations (the order flips each round); each time is the median over rounds and the
ratio (ktorch / torch, lower is better) the median of the per-round ratios.

Layouts: `nchw` is a contiguous (N, C, H, W) tensor, `channels_last` the same tensor in
`torch.channels_last` memory (which is also Keras's channels_last data seen as NCHW); 2D
`(N, C)` inputs have one layout.

Usage:
    python benchmarks/bench_batch_norm.py --threads 1
    python benchmarks/bench_batch_norm.py --threads 2
    python benchmarks/bench_batch_norm.py --threads 1 --clock cpu   # on a busy machine
    python benchmarks/bench_batch_norm.py --device cuda --dtype bfloat16   # ResNet-50 shapes
    python benchmarks/bench_batch_norm.py --quick                          # smoke run
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
# Lets the script run from a checkout that is not pip-installed.
sys.path.insert(0, str(ROOT))

import ktorch.ops  # noqa: E402

CPU_SHAPES = [(32, 64, 56, 56), (32, 256, 14, 14), (256, 512)]
# The batch-norm inputs of ResNet-50 at batch 32 (one of each distinct shape).
CUDA_SHAPES = [
    (32, 64, 112, 112),
    (32, 64, 56, 56),
    (32, 256, 56, 56),
    (32, 128, 28, 28),
    (32, 512, 28, 28),
    (32, 256, 14, 14),
    (32, 1024, 14, 14),
    (32, 512, 7, 7),
    (32, 2048, 7, 7),
]
MOMENTUM = 0.99  # Keras's meaning; torch's is 1 - this.
EPSILON = 1e-3


class Case:
    """Tensors of one benchmark case, shared by both implementations."""

    def __init__(self, shape, layout: str, dtype: torch.dtype, device: torch.device):
        self.shape = shape
        self.layout = layout
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(shape, generator=generator).to(device=device, dtype=dtype)
        grad = torch.randn(shape, generator=generator).to(device=device, dtype=dtype)
        if layout == "channels_last":
            x = x.contiguous(memory_format=torch.channels_last)
            grad = grad.contiguous(memory_format=torch.channels_last)
        channels = shape[1]
        self.x = x.requires_grad_()
        self.grad = grad
        # Parameters in float32 as Keras keeps them (autocast=False), also for 16-bit inputs.
        self.weight = torch.rand(channels, device=device).add_(0.5).requires_grad_()
        self.bias = torch.randn(channels, device=device).requires_grad_()
        self.mean = torch.zeros(channels, device=device)
        self.var = torch.ones(channels, device=device)
        if dtype != torch.float32 and device.type == "cpu":
            # torch's CPU kernel wants parameters of the input's dtype.
            self.torch_params = [
                t.detach().to(dtype).requires_grad_(t.requires_grad)
                for t in (self.weight, self.bias)
            ] + [self.mean.to(dtype), self.var.to(dtype)]
        else:
            self.torch_params = [self.weight, self.bias, self.mean, self.var]

    def ktorch_train(self) -> None:
        out = ktorch.ops.fused_batch_norm(
            self.x,
            self.mean,
            self.var,
            self.weight,
            self.bias,
            axis=1,
            training=True,
            momentum=MOMENTUM,
            epsilon=EPSILON,
        )
        out.backward(self.grad)

    def torch_train(self) -> None:
        weight, bias, mean, var = self.torch_params
        out = F.batch_norm(self.x, mean, var, weight, bias, True, 1 - MOMENTUM, EPSILON)
        out.backward(self.grad)

    def ktorch_inference(self) -> None:
        with torch.no_grad():
            ktorch.ops.fused_batch_norm(
                self.x, self.mean, self.var, self.weight, self.bias, axis=1, epsilon=EPSILON
            )

    def torch_inference(self) -> None:
        weight, bias, mean, var = self.torch_params
        with torch.no_grad():
            F.batch_norm(self.x, mean, var, weight, bias, False, 0.0, EPSILON)


def _timer(device: torch.device, clock: str) -> Callable[[Callable[[], None], int], float]:
    if device.type == "cuda":

        def cuda_time(fn: Callable[[], None], iterations: int) -> float:
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(iterations):
                fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3 / iterations

        return cuda_time

    # "cpu" counts the process's CPU time: on a shared machine it leaves out the time the
    # process waits for a core (with several threads it adds up the threads' times).
    now = time.process_time if clock == "cpu" else time.perf_counter

    def cpu_time(fn: Callable[[], None], iterations: int) -> float:
        start = now()
        for _ in range(iterations):
            fn()
        return (now() - start) / iterations

    return cpu_time


def _iterations(fn: Callable[[], None], timer, budget: float) -> int:
    """Iterations of `fn` that take about `budget` seconds (at least 1)."""
    fn()
    once = timer(fn, 1)
    return max(1, int(budget / max(once, 1e-7)))


def _measure(ours, theirs, timer, rounds: int, budget: float) -> tuple[float, float, float]:
    for fn in (ours, theirs):
        fn()
    iterations = _iterations(ours, timer, budget)
    ours_times, theirs_times, ratios = [], [], []
    for r in range(rounds):
        pair = (ours, theirs) if r % 2 == 0 else (theirs, ours)
        times = {fn: timer(fn, iterations) for fn in pair}
        ours_times.append(times[ours])
        theirs_times.append(times[theirs])
        ratios.append(times[ours] / times[theirs])
    return statistics.median(ours_times), statistics.median(theirs_times), statistics.median(ratios)


def _check_same_result(case: Case) -> None:
    """Both sides compute the same thing (output and gradients), before any timing."""
    x = case.x
    results = []
    for run in (case.ktorch_train, case.torch_train):
        x.grad = None
        for p in (case.weight, case.bias, *case.torch_params[:2]):
            p.grad = None
        run()
        weight_grad = case.weight.grad
        if weight_grad is None:
            weight_grad = case.torch_params[0].grad
        results.append((x.grad.float().clone(), weight_grad.float().clone()))
    tolerance = 1e-3 if x.dtype == torch.float32 else 5e-2
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, atol=tolerance, rtol=tolerance)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved repetitions")
    parser.add_argument("--budget", type=float, default=0.3, help="seconds per timed block")
    parser.add_argument(
        "--clock",
        default="wall",
        choices=["wall", "cpu"],
        help="CPU runs: wall-clock time, or the process's CPU time (steadier on a busy machine)",
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.budget = 3, 0.05

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device available", file=sys.stderr)
        return 1
    available = ktorch.ops.available()
    if not available[device.type]:
        print(f"ktorch._C has no {device.type} kernels: {available}", file=sys.stderr)
        return 1
    dtype = getattr(torch, args.dtype)
    timer = _timer(device, args.clock)
    shapes = CUDA_SHAPES if device.type == "cuda" else CPU_SHAPES
    where = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else f"{args.threads} thread(s)"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"fused_batch_norm vs F.batch_norm, {device.type} ({where}), {args.dtype}, torch "
        f"{torch.__version__}, {args.rounds} rounds, {args.clock} clock, load average {load:.2f}"
    )
    header = ("shape", "layout", "mode", "torch ms", "ktorch ms", "ratio")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (20, 13, 9, 10, 10, 7), strict=True)))
    for shape in shapes:
        layouts = ["nchw", "channels_last"] if len(shape) == 4 else ["nchw"]
        for layout in layouts:
            case = Case(shape, layout, dtype, device)
            _check_same_result(case)
            for mode in ("train", "inference"):
                ours = getattr(case, f"ktorch_{mode}")
                theirs = getattr(case, f"torch_{mode}")
                ours_time, theirs_time, ratio = _measure(
                    ours, theirs, timer, args.rounds, args.budget
                )
                shown = "nc" if len(shape) == 2 else layout
                print(
                    f"{str(shape):>20} {shown:>13} {mode:>9} {theirs_time * 1e3:>10.3f} "
                    f"{ours_time * 1e3:>10.3f} {ratio:>7.2f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
