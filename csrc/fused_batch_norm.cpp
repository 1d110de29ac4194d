// Autograd of ktorch::fused_batch_norm, ktorch::fused_batch_norm_inference and
// ktorch::fused_batch_norm_backward, for every device. It lives in C++ rather than in
// torch.library.register_autograd because the training op updates the moving statistics in
// place (register_autograd accepts only functional ops), and because it keeps the Python
// interpreter out of each call (tens of microseconds per op, a large share at small shapes).
// Double backward (create_graph=True) recomputes the normalization from the saved inputs with
// differentiable ATen ops and differentiates that; the fused backward kernel is first-order only.
#include <torch/all.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <array>
#include <initializer_list>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "fused_batch_norm.h"

namespace ktorch {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using OptionalTensor = std::optional<at::Tensor>;
using Grads = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

Grads call_train(const at::Tensor& x, const OptionalTensor& weight, const OptionalTensor& bias,
                 const OptionalTensor& running_mean, const OptionalTensor& running_var,
                 int64_t axis, double momentum, double eps) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("ktorch::fused_batch_norm", "")
          .typed<Grads(const at::Tensor&, const OptionalTensor&, const OptionalTensor&,
                       const OptionalTensor&, const OptionalTensor&, int64_t, double, double)>();
  return op.call(x, weight, bias, running_mean, running_var, axis, momentum, eps);
}

at::Tensor call_inference(const at::Tensor& x, const OptionalTensor& weight,
                          const OptionalTensor& bias, const at::Tensor& running_mean,
                          const at::Tensor& running_var, int64_t axis, double eps) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("ktorch::fused_batch_norm_inference", "")
          .typed<at::Tensor(const at::Tensor&, const OptionalTensor&, const OptionalTensor&,
                            const at::Tensor&, const at::Tensor&, int64_t, double)>();
  return op.call(x, weight, bias, running_mean, running_var, axis, eps);
}

Grads call_backward(const at::Tensor& grad_out, const at::Tensor& x, const OptionalTensor& weight,
                    const at::Tensor& mean, const at::Tensor& invstd, int64_t axis, bool training,
                    std::array<bool, 3> output_mask) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("ktorch::fused_batch_norm_backward", "")
          .typed<Grads(const at::Tensor&, const at::Tensor&, const OptionalTensor&,
                       const at::Tensor&, const at::Tensor&, int64_t, bool,
                       std::array<bool, 3>)>();
  return op.call(grad_out, x, weight, mean, invstd, axis, training, output_mask);
}

bool present(const OptionalTensor& t) {
  return t.has_value() && t->defined();
}

OptionalTensor optional(const at::Tensor& t) {
  return t.defined() ? OptionalTensor(t) : std::nullopt;
}

// The kernels read grad_out with x's layout. A gradient with other strides (a broadcast one
// from `out.sum()`, or a contiguous one for a channels_last x) is copied into x's layout.
at::Tensor like_x(const at::Tensor& grad, const at::Tensor& x, int64_t axis) {
  constexpr const char* op = "ktorch::fused_batch_norm_backward";
  const int64_t dim = batch_norm_axis(op, x, axis);
  const BatchNormDims dims = batch_norm_dims(op, x, dim);
  if (grad.scalar_type() == x.scalar_type() && batch_norm_same_layout(grad, x, dims, dim)) {
    return grad;
  }
  return batch_norm_empty_like(x).copy_(grad);
}

// The moving statistics are written below the autograd layer: bump their version counters
// so that autograd notices if a saved copy of them was modified.
void bump_version(const OptionalTensor& t) {
  if (present(t) && !t->is_inference()) {
    torch::autograd::impl::bump_version(*t);
  }
}

bool requires_grad(const OptionalTensor& t) {
  return present(t) && t->requires_grad();
}

// Without a gradient to record, the op runs straight below autograd: no graph node is built.
bool records_grad(std::initializer_list<bool> flags) {
  if (!at::GradMode::is_enabled()) {
    return false;
  }
  for (const bool flag : flags) {
    if (flag) {
      return true;
    }
  }
  return false;
}

at::Tensor grad_as(const at::Tensor& grad, bool needed, const at::Tensor& like) {
  return needed ? grad.to(like.scalar_type()) : at::Tensor();
}

// A per-channel vector of x's channel axis `dim`, in opmath, shaped to broadcast against x.
at::Tensor per_channel(const at::Tensor& v, const at::Tensor& x, int64_t dim) {
  std::vector<int64_t> shape(x.dim(), 1);
  shape[dim] = x.size(dim);
  return v.to(at::toOpMathType(x.scalar_type())).view(shape);
}

// (x - mean) * invstd * weight + bias with ATen ops, for the recomputation below; weight and
// bias may be undefined.
at::Tensor recompute_affine(const at::Tensor& normalized, const at::Tensor& weight,
                            const at::Tensor& bias, const at::Tensor& x, int64_t dim) {
  at::Tensor out = normalized;
  if (weight.defined()) {
    out = out * per_channel(weight, x, dim);
  }
  if (bias.defined()) {
    out = out + per_channel(bias, x, dim);
  }
  return out.to(x.scalar_type());
}

// For a backward run with create_graph=True: the gradients of `out` (recomputed by ATen ops
// from the saved inputs) into `inputs`, as a graph that can be differentiated again. `inputs`
// pairs each tensor that needs a gradient with its position among the op's arguments.
variable_list recomputed_grads(const at::Tensor& out, const at::Tensor& grad,
                               const std::vector<std::pair<size_t, at::Tensor>>& inputs,
                               size_t arguments) {
  variable_list result(arguments);
  if (inputs.empty()) {
    return result;
  }
  variable_list wrt;
  for (const auto& input : inputs) {
    wrt.push_back(input.second);
  }
  const variable_list grads = torch::autograd::grad({out}, wrt, {grad}, /*retain_graph=*/true,
                                                    /*create_graph=*/true, /*allow_unused=*/true);
  for (size_t i = 0; i < inputs.size(); ++i) {
    result[inputs[i].first] = grads[i];
  }
  return result;
}

struct TrainFunction : public torch::autograd::Function<TrainFunction> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x,
                               const OptionalTensor& weight, const OptionalTensor& bias,
                               const OptionalTensor& running_mean,
                               const OptionalTensor& running_var, int64_t axis, double momentum,
                               double eps) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [out, mean, invstd] =
        call_train(x, weight, bias, running_mean, running_var, axis, momentum, eps);
    bump_version(running_mean);
    bump_version(running_var);
    ctx->mark_non_differentiable({mean, invstd});
    // No zero tensors for the gradients of mean and invstd, which backward ignores.
    ctx->set_materialize_grads(false);
    ctx->save_for_backward({x, present(weight) ? *weight : at::Tensor(), mean, invstd,
                            present(bias) ? *bias : at::Tensor()});
    ctx->saved_data["axis"] = axis;
    ctx->saved_data["eps"] = eps;
    return {out, mean, invstd};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& weight = saved[1];
    const at::Tensor& bias = saved[4];
    const int64_t axis = ctx->saved_data["axis"].toInt();
    // Edges follow the tensor arguments that were given: x, weight, bias, ...
    size_t edge = 0;
    const bool need_x = ctx->needs_input_grad(edge++);
    const bool need_weight = weight.defined() && ctx->needs_input_grad(edge++);
    const bool need_bias = bias.defined() && ctx->needs_input_grad(edge++);
    variable_list result(8);
    if (!grads[0].defined() || !(need_x || need_weight || need_bias)) {
      return result;
    }
    if (at::GradMode::is_enabled()) {
      const int64_t dim = batch_norm_axis("ktorch::fused_batch_norm", x, axis);
      std::vector<int64_t> reduce;
      for (int64_t d = 0; d < x.dim(); ++d) {
        if (d != dim) {
          reduce.push_back(d);
        }
      }
      const at::Tensor xo = x.to(at::toOpMathType(x.scalar_type()));
      auto [var, mean] = at::var_mean(xo, reduce, std::optional<at::Scalar>(0), true);
      const at::Tensor normalized =
          (xo - mean) * (var + ctx->saved_data["eps"].toDouble()).rsqrt();
      std::vector<std::pair<size_t, at::Tensor>> inputs;
      if (need_x) inputs.emplace_back(0, x);
      if (need_weight) inputs.emplace_back(1, weight);
      if (need_bias) inputs.emplace_back(2, bias);
      return recomputed_grads(recompute_affine(normalized, weight, bias, x, dim), grads[0],
                              inputs, 8);
    }
    auto [grad_x, grad_weight, grad_bias] =
        call_backward(like_x(grads[0], x, axis), x, optional(weight), saved[2], saved[3], axis,
                      true, {need_x, need_weight, need_bias});
    result[0] = need_x ? grad_x : at::Tensor();
    result[1] = grad_as(grad_weight, need_weight, weight);
    result[2] = grad_as(grad_bias, need_bias, bias);
    return result;
  }
};

struct InferenceFunction : public torch::autograd::Function<InferenceFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x,
                            const OptionalTensor& weight, const OptionalTensor& bias,
                            const at::Tensor& running_mean, const at::Tensor& running_var,
                            int64_t axis, double eps) {
    at::AutoDispatchBelowADInplaceOrView guard;
    at::Tensor out = call_inference(x, weight, bias, running_mean, running_var, axis, eps);
    ctx->save_for_backward({x, present(weight) ? *weight : at::Tensor(),
                            present(bias) ? *bias : at::Tensor(), running_mean, running_var});
    ctx->saved_data["axis"] = axis;
    ctx->saved_data["eps"] = eps;
    return out;
  }

  // out = (x - m) * w * s + b with s = (v + eps)^-1/2, so besides the usual gradients:
  // d/dm = -w * s * sum(dy), d/dv = -w * s^2 / 2 * sum(dy * (x - m) * s).
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& weight = saved[1];
    const at::Tensor& bias = saved[2];
    const at::Tensor& running_mean = saved[3];
    const at::Tensor& running_var = saved[4];
    const int64_t axis = ctx->saved_data["axis"].toInt();
    const double eps = ctx->saved_data["eps"].toDouble();
    size_t edge = 0;
    const bool need_x = ctx->needs_input_grad(edge++);
    const bool need_weight = weight.defined() && ctx->needs_input_grad(edge++);
    const bool need_bias = bias.defined() && ctx->needs_input_grad(edge++);
    const bool need_mean = ctx->needs_input_grad(edge++);
    const bool need_var = ctx->needs_input_grad(edge++);
    variable_list result(7);
    if (!grads[0].defined() || !(need_x || need_weight || need_bias || need_mean || need_var)) {
      return result;
    }
    const auto opmath = at::toOpMathType(x.scalar_type());
    if (at::GradMode::is_enabled()) {
      const int64_t dim = batch_norm_axis("ktorch::fused_batch_norm_inference", x, axis);
      const at::Tensor normalized = (x.to(opmath) - per_channel(running_mean, x, dim)) *
                                    (per_channel(running_var, x, dim) + eps).rsqrt();
      std::vector<std::pair<size_t, at::Tensor>> inputs;
      if (need_x) inputs.emplace_back(0, x);
      if (need_weight) inputs.emplace_back(1, weight);
      if (need_bias) inputs.emplace_back(2, bias);
      if (need_mean) inputs.emplace_back(3, running_mean);
      if (need_var) inputs.emplace_back(4, running_var);
      return recomputed_grads(recompute_affine(normalized, weight, bias, x, dim), grads[0],
                              inputs, 7);
    }
    const at::Tensor mean = running_mean.to(opmath);
    const at::Tensor invstd = (running_var.to(opmath) + eps).rsqrt();
    auto [grad_x, grad_weight, grad_bias] =
        call_backward(like_x(grads[0], x, axis), x, optional(weight), mean, invstd, axis, false,
                      {need_x, need_weight || need_var, need_bias || need_mean});
    const at::Tensor scale = weight.defined() ? weight.to(opmath) * invstd : invstd;
    result[0] = need_x ? grad_x : at::Tensor();
    result[1] = grad_as(grad_weight, need_weight, weight);
    result[2] = grad_as(grad_bias, need_bias, bias);
    result[3] = grad_as(-grad_bias * scale, need_mean, running_mean);
    result[4] = grad_as(grad_weight * scale * invstd * -0.5, need_var, running_var);
    return result;
  }
};

struct BackwardFunction : public torch::autograd::Function<BackwardFunction> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& grad_out,
                               const at::Tensor& x, const OptionalTensor& weight,
                               const at::Tensor& mean, const at::Tensor& invstd, int64_t axis,
                               bool training, std::array<bool, 3> output_mask) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [grad_x, grad_weight, grad_bias] =
        call_backward(grad_out, x, weight, mean, invstd, axis, training, output_mask);
    return {grad_x, grad_weight, grad_bias};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    // Not reached through fused_batch_norm, whose double backward bypasses this op.
    TORCH_CHECK(false,
                "ktorch::fused_batch_norm_backward: differentiating this op directly is not "
                "supported; differentiate ktorch::fused_batch_norm with create_graph=True "
                "instead.");
    return {};
  }
};

Grads train_autograd(const at::Tensor& x, const OptionalTensor& weight, const OptionalTensor& bias,
                     const OptionalTensor& running_mean, const OptionalTensor& running_var,
                     int64_t axis, double momentum, double eps) {
  if (!records_grad({x.requires_grad(), requires_grad(weight), requires_grad(bias)})) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto out = call_train(x, weight, bias, running_mean, running_var, axis, momentum, eps);
    bump_version(running_mean);
    bump_version(running_var);
    return out;
  }
  auto out =
      TrainFunction::apply(x, weight, bias, running_mean, running_var, axis, momentum, eps);
  return {out[0], out[1], out[2]};
}

at::Tensor inference_autograd(const at::Tensor& x, const OptionalTensor& weight,
                              const OptionalTensor& bias, const at::Tensor& running_mean,
                              const at::Tensor& running_var, int64_t axis, double eps) {
  if (!records_grad({x.requires_grad(), requires_grad(weight), requires_grad(bias),
                     running_mean.requires_grad(), running_var.requires_grad()})) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_inference(x, weight, bias, running_mean, running_var, axis, eps);
  }
  return InferenceFunction::apply(x, weight, bias, running_mean, running_var, axis, eps);
}

Grads backward_autograd(const at::Tensor& grad_out, const at::Tensor& x,
                        const OptionalTensor& weight, const at::Tensor& mean,
                        const at::Tensor& invstd, int64_t axis, bool training,
                        std::array<bool, 3> output_mask) {
  if (!records_grad({grad_out.requires_grad(), x.requires_grad(), requires_grad(weight),
                     mean.requires_grad(), invstd.requires_grad()})) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_backward(grad_out, x, weight, mean, invstd, axis, training, output_mask);
  }
  auto out =
      BackwardFunction::apply(grad_out, x, weight, mean, invstd, axis, training, output_mask);
  return {out[0], out[1], out[2]};
}

}  // namespace

TORCH_LIBRARY_IMPL(ktorch, Autograd, m) {
  m.impl("fused_batch_norm", &train_autograd);
  m.impl("fused_batch_norm_inference", &inference_autograd);
  m.impl("fused_batch_norm_backward", &backward_autograd);
}

}  // namespace ktorch
