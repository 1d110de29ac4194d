// Autograd of ktorch::fused_dropout, fused_dropout_rng and fused_dropout_backward, registered
// for every device at the Autograd key. In C++ a training step pays no Python autograd cost;
// the device kernels are reached by redispatching below autograd, so under torch.compile the
// traced graph holds the ops themselves (with their Python fake kernels) and their backward.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/all.h>
#include <torch/library.h>

#include <optional>
#include <tuple>

namespace ktorch {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

using SeededSignature = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, double, int64_t,
                                                           int64_t);
using RngSignature = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, double,
                                                        std::optional<at::Generator>);
using BackwardSignature = at::Tensor(const at::Tensor&, const at::Tensor&, double);

const c10::TypedOperatorHandle<SeededSignature>& seeded_op() {
  static const auto handle = c10::Dispatcher::singleton()
                                 .findSchemaOrThrow("ktorch::fused_dropout", "")
                                 .typed<SeededSignature>();
  return handle;
}

const c10::TypedOperatorHandle<RngSignature>& rng_op() {
  static const auto handle = c10::Dispatcher::singleton()
                                 .findSchemaOrThrow("ktorch::fused_dropout_rng", "")
                                 .typed<RngSignature>();
  return handle;
}

// Called from the backward functions below: through the dispatcher, so a double backward
// records the backward op's own autograd node.
at::Tensor dropout_backward(const at::Tensor& grad, const at::Tensor& mask, double p) {
  static const auto handle = c10::Dispatcher::singleton()
                                 .findSchemaOrThrow("ktorch::fused_dropout_backward", "")
                                 .typed<BackwardSignature>();
  return handle.call(grad, mask, p);
}

// Saves the mask (an output, not differentiable) and p; the gradient of x is the backward op.
variable_list save_mask(AutogradContext* ctx, const std::tuple<at::Tensor, at::Tensor>& result,
                        double p) {
  const auto& [out, mask] = result;
  ctx->save_for_backward({mask});
  ctx->mark_non_differentiable({mask});
  // The mask gets no gradient: no zero tensor is made for it.
  ctx->set_materialize_grads(false);
  ctx->saved_data["p"] = p;
  return {out, mask};
}

// An undefined incoming gradient (the output was not used) stays undefined.
at::Tensor grad_of_x(AutogradContext* ctx, const variable_list& grads) {
  if (!grads[0].defined()) {
    return {};
  }
  const at::Tensor mask = ctx->get_saved_variables()[0];
  return dropout_backward(grads[0], mask, ctx->saved_data["p"].toDouble());
}

class SeededDropout : public torch::autograd::Function<SeededDropout> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, double p, int64_t seed,
                               int64_t offset) {
    const at::AutoDispatchBelowADInplaceOrView guard;
    return save_mask(ctx, seeded_op().call(x, p, seed, offset), p);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {grad_of_x(ctx, grads), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

class RngDropout : public torch::autograd::Function<RngDropout> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, double p,
                               std::optional<at::Generator> generator) {
    const at::AutoDispatchBelowADInplaceOrView guard;
    return save_mask(ctx, rng_op().call(x, p, std::move(generator)), p);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {grad_of_x(ctx, grads), at::Tensor(), at::Tensor()};
  }
};

// The backward is linear in grad with the same mask: its own gradient is itself.
class DropoutBackward : public torch::autograd::Function<DropoutBackward> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& grad, const at::Tensor& mask,
                            double p) {
    ctx->save_for_backward({mask});
    ctx->set_materialize_grads(false);
    ctx->saved_data["p"] = p;
    const at::AutoDispatchBelowADInplaceOrView guard;
    return dropout_backward(grad, mask, p);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {grad_of_x(ctx, grads), at::Tensor(), at::Tensor()};
  }
};

// Without a graph to record (grad mode off, as in every backward without create_graph, or an
// input that needs no gradient) the kernel is called directly: Function::apply would build and
// drop an autograd node for nothing, a measurable share of a small call.
bool records_graph(const at::Tensor& t) {
  return at::GradMode::is_enabled() && t.requires_grad();
}

std::tuple<at::Tensor, at::Tensor> fused_dropout_autograd(const at::Tensor& x, double p,
                                                          int64_t seed, int64_t offset) {
  if (!records_graph(x)) {
    const at::AutoDispatchBelowADInplaceOrView guard;
    return seeded_op().call(x, p, seed, offset);
  }
  const variable_list result = SeededDropout::apply(x, p, seed, offset);
  return {result[0], result[1]};
}

std::tuple<at::Tensor, at::Tensor> fused_dropout_rng_autograd(
    const at::Tensor& x, double p, std::optional<at::Generator> generator) {
  if (!records_graph(x)) {
    const at::AutoDispatchBelowADInplaceOrView guard;
    return rng_op().call(x, p, std::move(generator));
  }
  const variable_list result = RngDropout::apply(x, p, std::move(generator));
  return {result[0], result[1]};
}

at::Tensor fused_dropout_backward_autograd(const at::Tensor& grad, const at::Tensor& mask,
                                           double p) {
  if (!records_graph(grad)) {
    const at::AutoDispatchBelowADInplaceOrView guard;
    return dropout_backward(grad, mask, p);
  }
  return DropoutBackward::apply(grad, mask, p);
}

}  // namespace

TORCH_LIBRARY_IMPL(ktorch, Autograd, m) {
  m.impl("fused_dropout", &fused_dropout_autograd);
  m.impl("fused_dropout_backward", &fused_dropout_backward_autograd);
  m.impl("fused_dropout_rng", &fused_dropout_rng_autograd);
}

}  // namespace ktorch
