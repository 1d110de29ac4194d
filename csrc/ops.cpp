// The ktorch operator library: every op schema is declared here, once. The CPU and CUDA
// implementations register themselves from csrc/cpu/*.cpp and csrc/cuda/*.cu; autograd and
// fake (meta) kernels are registered from Python, in ktorch/ops/.
#include <Python.h>

#include <torch/library.h>

extern "C" {
// `import ktorch._C` loads this shared library, which runs the static registrations below and
// in the kernel files. The module itself is empty: ops are reached through torch.ops.ktorch.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT,
      "_C",
      "Kernels of ktorch, registered as torch.ops.ktorch.*",
      -1,
      nullptr,
  };
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(ktorch, m) {
  m.def("fused_dropout(Tensor x, float p, int seed, int offset) -> (Tensor out, Tensor mask)");
  m.def("fused_dropout_backward(Tensor grad, Tensor mask, float p) -> Tensor");
  // Draws its Philox key and stream from `generator` (the device's default when None); the tag
  // tells torch.compile that the op consumes random state. The autograd of the three dropout
  // ops is registered in C++, in fused_dropout_autograd.cpp, not from Python.
  m.def(
      "fused_dropout_rng(Tensor x, float p, Generator? generator=None) "
      "-> (Tensor out, Tensor mask)",
      {at::Tag::nondeterministic_seeded});
}
