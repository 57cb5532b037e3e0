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

using Arguments = std::vector<OpArgument>;

/// The counter the RecordFunction callbacks of this thread report to (callbacks are plain function
/// pointers, so they cannot carry it).
thread_local FlopCounter* active_counter = nullptr;

/// Returned by the start callback of a counted op, so its end callback knows to leave it.
struct CountedOpMarker : at::ObserverContext {};

/// The sizes of argument `index` when it is a tensor of `dims` dimensions (any when dims < 0).
std::optional<std::vector<std::int64_t>> tensor_sizes(const Arguments& args, std::size_t index,
                                                      std::int64_t dims = -1) {
  if (index >= args.size() || !args[index].sizes) return std::nullopt;
  const auto& sizes = *args[index].sizes;
  if (dims >= 0 && static_cast<std::int64_t>(sizes.size()) != dims) return std::nullopt;
  return sizes;
}

std::optional<std::vector<std::int64_t>> int_list(const Arguments& args, std::size_t index) {
  if (index >= args.size()) return std::nullopt;
  return args[index].ints;
}

/// [m,k] x [k,n] at arguments a and b.
std::optional<std::int64_t> matrix_product_flops(const Arguments& args, std::size_t a, std::size_t b) {
  const auto left = tensor_sizes(args, a, 2);
  const auto right = tensor_sizes(args, b, 2);
  if (!left || !right) return std::nullopt;
  return 2 * (*left)[0] * (*left)[1] * (*right)[1];
}

/// [b,m,k] x [b,k,n] at arguments a and b.
std::optional<std::int64_t> batched_product_flops(const Arguments& args, std::size_t a, std::size_t b) {
  const auto left = tensor_sizes(args, a, 3);
  const auto right = tensor_sizes(args, b, 3);
  if (!left || !right) return std::nullopt;
  return 2 * (*left)[0] * (*left)[1] * (*left)[2] * (*right)[2];
}

/// aten::convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding,
/// groups); output size floor((in + 2·padding − dilation·(kernel − 1) − 1) / stride) + 1.
/// Stride/padding/dilation lists of one element apply to every spatial dimension.
std::optional<std::int64_t> convolution_flops(const Arguments& args) {
  const auto input = tensor_sizes(args, 0);
  const auto weight = tensor_sizes(args, 1);
  const auto stride = int_list(args, 3);
  const auto padding = int_list(args, 4);
  const auto dilation = int_list(args, 5);
  if (!input || !weight || !stride || !padding || !dilation || args.size() < 9) return std::nullopt;
  if (!args[6].flag || *args[6].flag) return std::nullopt;  // transposed: not counted
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
std::optional<std::int64_t> attention_flops(const Arguments& args) {
  const auto query = tensor_sizes(args, 0);
  const auto key = tensor_sizes(args, 1);
  const auto value = tensor_sizes(args, 2);
  if (!query || !key || !value || query->size() < 2 || key->size() < 2 || value->size() < 2) return std::nullopt;
  std::int64_t batch = 1;
  for (std::size_t d = 0; d + 2 < query->size(); ++d) batch *= (*query)[d];
  const std::int64_t query_length = query->end()[-2];
  const std::int64_t key_length = key->end()[-2];
  const std::int64_t head_dim = query->back();
  const std::int64_t value_dim = value->back();
  return 2 * batch * query_length * key_length * (head_dim + value_dim);
}

/// What the formulas need of a dispatcher argument.
OpArgument to_argument(const c10::IValue& value) {
  OpArgument arg;
  if (value.isTensor()) {
    const at::Tensor& tensor = value.toTensor();
    if (tensor.defined()) arg.sizes = tensor.sizes().vec();
  } else if (value.isIntList()) {
    arg.ints = value.toIntVector();
  } else if (value.isBool()) {
    arg.flag = value.toBool();
  }
  return arg;
}

}  // namespace

bool is_counted_op(std::string_view name) {
  return name == "aten::mm" || name == "aten::addmm" || name == "aten::_addmm_activation" || name == "aten::bmm" ||
         name == "aten::baddbmm" || name == "aten::convolution" || name == "aten::scaled_dot_product_attention";
}

std::optional<std::int64_t> op_flops(std::string_view name, const std::vector<OpArgument>& args) {
  if (name == "aten::mm") return matrix_product_flops(args, 0, 1).value_or(0);
  // _addmm_activation: addmm with ReLU/GELU in the GEMM's epilogue (the epilogue is not counted).
  if (name == "aten::addmm" || name == "aten::_addmm_activation") return matrix_product_flops(args, 1, 2).value_or(0);
  if (name == "aten::bmm") return batched_product_flops(args, 0, 1).value_or(0);
  if (name == "aten::baddbmm") return batched_product_flops(args, 1, 2).value_or(0);
  if (name == "aten::convolution") return convolution_flops(args).value_or(0);
  if (name == "aten::scaled_dot_product_attention") return attention_flops(args).value_or(0);
  return std::nullopt;
}

namespace detail {

struct FlopCounterCallbacks {
  static std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
    FlopCounter* counter = active_counter;
    if (counter == nullptr || counter->inside_counted_op_) return nullptr;
    const std::string_view name = fn.name();
    if (!is_counted_op(name)) return nullptr;
    std::optional<std::int64_t> flops;
    try {
      std::vector<OpArgument> args;
      args.reserve(fn.inputs().size());
      for (const c10::IValue& input : fn.inputs()) args.push_back(to_argument(input));
      flops = op_flops(name, args);
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
