#include "hone/profile/flop_counter.h"

#include <ATen/core/ivalue.h>
#include <ATen/record_function.h>

#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "hone/core/error.h"

namespace hone::profile {
namespace {

using Inputs = c10::ArrayRef<const c10::IValue>;

/// The counter the RecordFunction callbacks of this thread report to (callbacks are plain function
/// pointers, so they cannot carry it).
thread_local FlopCounter* active_counter = nullptr;

/// Returned by the start callback of a counted op, so its end callback knows to leave it.
struct CountedOpMarker : at::ObserverContext {};

/// The sizes of input `index` when it is a tensor of `dims` dimensions (any when dims < 0).
std::optional<std::vector<std::int64_t>> tensor_sizes(Inputs inputs, std::size_t index, std::int64_t dims = -1) {
  if (index >= inputs.size() || !inputs[index].isTensor()) return std::nullopt;
  const at::Tensor& tensor = inputs[index].toTensor();
  if (!tensor.defined() || (dims >= 0 && tensor.dim() != dims)) return std::nullopt;
  return tensor.sizes().vec();
}

std::optional<std::vector<std::int64_t>> int_list(Inputs inputs, std::size_t index) {
  if (index >= inputs.size() || !inputs[index].isIntList()) return std::nullopt;
  return inputs[index].toIntVector();
}

/// [m,k] x [k,n] at inputs a and b.
std::optional<std::int64_t> matrix_product_flops(Inputs inputs, std::size_t a, std::size_t b) {
  const auto left = tensor_sizes(inputs, a, 2);
  const auto right = tensor_sizes(inputs, b, 2);
  if (!left || !right) return std::nullopt;
  return 2 * (*left)[0] * (*left)[1] * (*right)[1];
}

/// [b,m,k] x [b,k,n] at inputs a and b.
std::optional<std::int64_t> batched_product_flops(Inputs inputs, std::size_t a, std::size_t b) {
  const auto left = tensor_sizes(inputs, a, 3);
  const auto right = tensor_sizes(inputs, b, 3);
  if (!left || !right) return std::nullopt;
  return 2 * (*left)[0] * (*left)[1] * (*left)[2] * (*right)[2];
}

/// aten::convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding,
/// groups); output size floor((in + 2·padding − dilation·(kernel − 1) − 1) / stride) + 1.
/// Stride/padding/dilation lists of one element apply to every spatial dimension.
std::optional<std::int64_t> convolution_flops(Inputs inputs) {
  const auto input = tensor_sizes(inputs, 0);
  const auto weight = tensor_sizes(inputs, 1);
  const auto stride = int_list(inputs, 3);
  const auto padding = int_list(inputs, 4);
  const auto dilation = int_list(inputs, 5);
  if (!input || !weight || !stride || !padding || !dilation || inputs.size() < 9) return std::nullopt;
  if (!inputs[6].isBool() || inputs[6].toBool()) return std::nullopt;  // transposed: not counted
  if (weight->size() < 3 || weight->size() > 5 || input->size() != weight->size()) return std::nullopt;
  const std::size_t spatial = weight->size() - 2;
  const auto at = [](const std::vector<std::int64_t>& list, std::size_t i) {
    return list.size() == 1 ? list[0] : list[i];
  };
  for (const auto* list : {&*stride, &*padding, &*dilation})
    if (list->size() != 1 && list->size() != spatial) return std::nullopt;

  // Each output element takes (C_in / groups) · prod(kernel) multiply-adds, and weight is
  // [C_out, C_in / groups, kernel...], so groups need not be read.
  std::int64_t flops = 2 * (*input)[0] * (*weight)[0] * (*weight)[1];
  for (std::size_t d = 0; d < spatial; ++d) {
    const std::int64_t kernel = (*weight)[2 + d];
    const std::int64_t output =
        ((*input)[2 + d] + 2 * at(*padding, d) - at(*dilation, d) * (kernel - 1) - 1) / at(*stride, d) + 1;
    flops *= output * kernel;
  }
  return flops;
}

/// aten::scaled_dot_product_attention(query, key, value, ...).
std::optional<std::int64_t> attention_flops(Inputs inputs) {
  const auto query = tensor_sizes(inputs, 0);
  const auto key = tensor_sizes(inputs, 1);
  const auto value = tensor_sizes(inputs, 2);
  if (!query || !key || !value || query->size() < 2 || key->size() < 2 || value->size() < 2) return std::nullopt;
  std::int64_t batch = 1;
  for (std::size_t d = 0; d + 2 < query->size(); ++d) batch *= (*query)[d];
  const std::int64_t query_length = query->end()[-2];
  const std::int64_t key_length = key->end()[-2];
  const std::int64_t head_dim = query->back();
  const std::int64_t value_dim = value->back();
  return 2 * batch * query_length * key_length * (head_dim + value_dim);
}

/// FLOPs of one counted op, nullopt for an op that is not counted. Inputs of an unexpected form
/// count 0 rather than throw: an exception must not escape into the dispatcher.
std::optional<std::int64_t> flops_of(std::string_view name, Inputs inputs) {
  if (name == "aten::mm") return matrix_product_flops(inputs, 0, 1).value_or(0);
  if (name == "aten::addmm") return matrix_product_flops(inputs, 1, 2).value_or(0);
  if (name == "aten::bmm") return batched_product_flops(inputs, 0, 1).value_or(0);
  if (name == "aten::baddbmm") return batched_product_flops(inputs, 1, 2).value_or(0);
  if (name == "aten::convolution") return convolution_flops(inputs).value_or(0);
  if (name == "aten::scaled_dot_product_attention") return attention_flops(inputs).value_or(0);
  return std::nullopt;
}

}  // namespace

namespace detail {

struct FlopCounterCallbacks {
  static std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
    FlopCounter* counter = active_counter;
    if (counter == nullptr || counter->inside_counted_op_) return nullptr;
    const std::string_view name = fn.name();
    std::optional<std::int64_t> flops;
    try {
      flops = flops_of(name, fn.inputs());
    } catch (...) {
      // Symbolic sizes and the like: count nothing rather than throw into the dispatcher.
      flops = std::nullopt;
    }
    if (!flops) return nullptr;
    if (*flops > 0) {
      counter->by_op_[std::string(name)] += *flops;
      counter->total_ += *flops;
    }
    counter->inside_counted_op_ = true;
    return std::make_unique<CountedOpMarker>();
  }

  static void on_end(const at::RecordFunction& /*fn*/, at::ObserverContext* context) {
    if (context != nullptr && active_counter != nullptr) active_counter->inside_counted_op_ = false;
  }
};

}  // namespace detail

FlopCounter::FlopCounter() {
  HONE_CHECK(active_counter == nullptr,
             "FlopCounter: another FlopCounter is already active on this thread; only one may be "
             "active per thread");
  record_function_was_enabled_ = at::isRecordFunctionEnabled();
  at::enableRecordFunction(true);
  callback_handle_ = at::addThreadLocalCallback(
      at::RecordFunctionCallback(&detail::FlopCounterCallbacks::on_start, &detail::FlopCounterCallbacks::on_end)
          .needsInputs(true)
          .scopes({at::RecordScope::FUNCTION}));
  active_counter = this;
}

FlopCounter::~FlopCounter() {
  at::removeCallback(callback_handle_);
  at::enableRecordFunction(record_function_was_enabled_);
  if (active_counter == this) active_counter = nullptr;
}

}  // namespace hone::profile
