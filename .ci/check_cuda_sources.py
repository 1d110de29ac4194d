"""Compile-only check of the CUDA sources in csrc/cuda/ against the installed torch headers.

A CPU build of torch ships the ATen/c10 CUDA headers but not the generated
`c10/cuda/impl/cuda_cmake_macros.h`; this script supplies that one file in a temporary include
directory so that `nvcc -c` can compile each `.cu` file on a machine without a GPU. It catches
syntax, template and API errors before a GPU build does; it does not run any kernel.

Usage:
    python .ci/check_cuda_sources.py [files.cu ...] [--arch sm_90] [--jobs 2]

Exits non-zero when nvcc is missing or a file fails to compile.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MACROS = "#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n"


def _include_dirs(stub_dir: str) -> list[str]:
    from torch.utils.cpp_extension import include_paths

    return [stub_dir, os.path.join(ROOT, "csrc"), *include_paths(), sysconfig.get_path("include")]


def _compile(nvcc: str, source: str, includes: list[str], arch: str, out_dir: str) -> str | None:
    obj = os.path.join(out_dir, os.path.basename(source) + ".o")
    cmd = [
        nvcc,
        "-c",
        source,
        "-o",
        obj,
        "-std=c++20",
        f"-arch={arch}",
        "--expt-relaxed-constexpr",
        "-DTORCH_EXTENSION_NAME=_C",
        *(f"-I{d}" for d in includes),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        return f"{source}:\n{result.stderr[-6000:]}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="default: every csrc/cuda/*.cu")
    parser.add_argument("--arch", default="sm_90")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args(argv)

    nvcc = shutil.which("nvcc")
    if nvcc is None:
        print("nvcc not found on PATH", file=sys.stderr)
        return 2
    files = args.files or sorted(glob.glob(os.path.join(ROOT, "csrc", "cuda", "*.cu")))
    with tempfile.TemporaryDirectory() as tmp:
        stub = os.path.join(tmp, "include")
        os.makedirs(os.path.join(stub, "c10", "cuda", "impl"))
        with open(os.path.join(stub, "c10", "cuda", "impl", "cuda_cmake_macros.h"), "w") as f:
            f.write(MACROS)
        includes = _include_dirs(stub)
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            errors = list(pool.map(lambda s: _compile(nvcc, s, includes, args.arch, tmp), files))
    failed = [e for e in errors if e]
    for error in failed:
        print(error, file=sys.stderr)
    print(f"{len(files) - len(failed)}/{len(files)} CUDA sources compile for {args.arch}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
