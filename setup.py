"""Builds ktorch's native extension `ktorch._C`; the package metadata lives in pyproject.toml.

torch is needed to build, so install it first and build without isolation:
`pip install --no-build-isolation -e .`

Environment switches:
    FORCE_CUDA=1            build the CUDA kernels even when no GPU is visible (needs nvcc).
    KTORCH_NO_CUDA=1        build the CPU kernels only.
    KTORCH_NO_EXTENSION=1   build no extension; ktorch falls back to its pure-PyTorch ops.
    DEBUG=1                 build with -O0 -g.
"""

from __future__ import annotations

import glob
import os

from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))
CSRC = "csrc"


def _flag(name: str) -> bool:
    return os.environ.get(name, "0").strip().lower() in ("1", "true", "yes", "on")


def _sources(pattern: str) -> list[str]:
    # Relative, sorted paths: setuptools wants them relative and sorting keeps builds repeatable.
    return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, CSRC, pattern)))


def _extensions() -> tuple[list, dict]:
    if _flag("KTORCH_NO_EXTENSION"):
        print("ktorch: KTORCH_NO_EXTENSION=1, building no native extension")
        return [], {}

    import torch
    from torch.utils.cpp_extension import (
        CUDA_HOME,
        BuildExtension,
        CppExtension,
        CUDAExtension,
    )

    debug = _flag("DEBUG")
    want_cuda = torch.cuda.is_available() or _flag("FORCE_CUDA")
    use_cuda = (
        want_cuda
        and not _flag("KTORCH_NO_CUDA")
        and CUDA_HOME is not None
        and torch.version.cuda is not None
    )
    opt = ["-O0", "-g"] if debug else ["-O3"]
    cxx_flags = [*opt, "-fdiagnostics-color=always"]
    # Parallel loops (at::parallel_for) use OpenMP when torch itself was built with it.
    link_flags = ["-O0", "-g"] if debug else []
    if torch.backends.openmp.is_available():
        cxx_flags.append("-fopenmp")
        link_flags.append("-fopenmp")

    sources = _sources("*.cpp") + _sources("cpu/*.cpp")
    kwargs: dict = {
        "include_dirs": [os.path.join(ROOT, CSRC)],
        "extra_compile_args": {"cxx": cxx_flags},
        "extra_link_args": link_flags,
    }
    if use_cuda:
        sources += _sources("cuda/*.cu")
        # No --use_fast_math: flushing denormals would break bit-parity with the reference.
        kwargs["extra_compile_args"]["nvcc"] = [*opt, "-lineinfo"] if debug else opt
        extension = CUDAExtension
    else:
        extension = CppExtension
    print(
        f"ktorch: building ktorch._C with {'CPU and CUDA' if use_cuda else 'CPU'} kernels"
        f"{' (debug)' if debug else ''}"
    )
    ext = extension("ktorch._C", sources, **kwargs)
    return [ext], {"build_ext": BuildExtension}


ext_modules, cmdclass = _extensions()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
