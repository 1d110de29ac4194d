// Autograd of ktorch::fused_batch_norm, ktorch::fused_batch_norm_inference and
// ktorch::fused_batch_norm_backward, for every device. It lives in C++ rather than in
// torch.library.register_autograd because the training op updates the moving statistics in
// place (register_autograd accepts only functional ops), and because it keeps the Python
// interpreter out of each call (tens of microseconds per op, a large share at small shapes).
// Double backward is not supported: differentiating a gradient raises an error.
#include <torch/all.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <array>
#include <initializer_list>
#include <optional>
#include <tuple>

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
    TORCH_CHECK(false,
                "ktorch::fused_batch_norm_backward: double backward (the gradient of a batch "
                "norm gradient) is not supported; run with ktorch.ops.set_backend('reference') "
                "for higher-order gradients.");
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
