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
  m.def(
      "fused_batch_norm(Tensor x, Tensor? weight, Tensor? bias, Tensor(a!)? running_mean, "
      "Tensor(b!)? running_var, int axis, float momentum, float eps) -> (Tensor out, "
      "Tensor mean, Tensor invstd)");
  m.def(
      "fused_batch_norm_inference(Tensor x, Tensor? weight, Tensor? bias, Tensor running_mean, "
      "Tensor running_var, int axis, float eps) -> Tensor");
  m.def(
      "fused_batch_norm_backward(Tensor grad_out, Tensor x, Tensor? weight, Tensor mean, "
      "Tensor invstd, int axis, bool training, bool[3] output_mask) -> (Tensor grad_x, "
      "Tensor grad_weight, Tensor grad_bias)");
}
