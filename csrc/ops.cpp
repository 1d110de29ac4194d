// The ktorch operator library: every op schema is declared here, once. The CPU and CUDA
// implementations register themselves from csrc/cpu/*.cpp and csrc/cuda/*.cu; fake (meta)
// kernels are registered from Python, in ktorch/ops/, and so is autograd, except where a C++
// registration (csrc/*_autograd.cpp) saves the per-call Python cost on hot paths.
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
      "lstm_sequence(Tensor inputs, Tensor kernel, Tensor recurrent_kernel, Tensor? bias, "
      "Tensor h0, Tensor c0, Tensor? mask, bool go_backwards, bool zero_output_for_mask) -> "
      "(Tensor output, Tensor h, Tensor c, Tensor gates, Tensor h_prev, Tensor c_seq)");
  m.def(
      "lstm_sequence_backward(Tensor? grad_output, Tensor? grad_h, Tensor? grad_c, "
      "Tensor inputs, Tensor kernel, Tensor recurrent_kernel, Tensor c0, Tensor? mask, "
      "Tensor gates, Tensor h_prev, Tensor c_seq, bool go_backwards, bool zero_output_for_mask, "
      "bool compute_grad_inputs) -> (Tensor grad_inputs, Tensor grad_kernel, "
      "Tensor grad_recurrent_kernel, Tensor grad_bias, Tensor grad_h0, Tensor grad_c0)");
  // Draws its Philox key and stream from `generator` (the device's default when None); the tag
  // tells torch.compile that the op consumes random state. The autograd of the three dropout
  // ops is registered in C++, in fused_dropout_autograd.cpp, not from Python.
  m.def(
      "fused_dropout_rng(Tensor x, float p, Generator? generator=None) "
      "-> (Tensor out, Tensor mask)",
      {at::Tag::nondeterministic_seeded});
  m.def(
      "gru_sequence(Tensor inputs, Tensor kernel, Tensor recurrent_kernel, Tensor? bias, "
      "Tensor h0, Tensor? mask, bool go_backwards, bool reset_after, bool return_sequences, "
      "bool zero_output_for_mask) -> (Tensor output, Tensor h, Tensor states, Tensor gates)");
  m.def(
      "gru_sequence_backward(Tensor? grad_output, Tensor? grad_h, Tensor inputs, Tensor kernel, "
      "Tensor recurrent_kernel, Tensor? mask, Tensor states, Tensor gates, bool go_backwards, "
      "bool reset_after, bool return_sequences, bool zero_output_for_mask, "
      "bool grad_inputs_needed) -> (Tensor grad_inputs, Tensor grad_kernel, "
      "Tensor grad_recurrent_kernel, Tensor grad_bias, Tensor grad_h0)");
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
