#pragma once
/// @file Counts the floating-point operations of the ATen ops a thread runs, from their input shapes,
/// by observing the dispatcher through at::RecordFunction.
///
/// A multiply-add is 2 FLOPs. Counted ops and formulas (everything else counts 0):
///   aten::mm        [m,k] x [k,n]            2·m·k·n
///   aten::addmm     bias + [m,k] x [k,n]     2·m·k·n   (the bias add and the alpha/beta scaling are
///                                                       ignored: O(m·n) beside the product)
///   aten::bmm, aten::baddbmm [b,m,k] x [b,k,n] 2·b·m·k·n (baddbmm's add ignored likewise)
///   aten::convolution (non-transposed, 1-, 2- or 3-d)
///                   2 · N · C_out · prod(output spatial) · (C_in / groups) · prod(kernel)
///   aten::scaled_dot_product_attention, query [..., Lq, E], key [..., Lk, E], value [..., Lk, Ev]
///                   2·batch·Lq·Lk·E (Q·Kᵀ) + 2·batch·Lq·Lk·Ev (attention·V), batch = prod(...);
///                   softmax, scaling, masks and dropout ignored; a causal mask still counts the
///                   full Lq × Lk product.
/// Composite ops (aten::linear, aten::matmul, aten::conv2d, ...) are not counted themselves: they
/// reach one of the ops above, which is. The counted ops are leaves: while one runs, nested ops
/// (SDPA's math decomposition into bmm, aten::_convolution, mkldnn_convolution...) are ignored, so
/// nothing is counted twice. Transposed convolutions, aten::mv, aten::dot and element-wise ops are
/// not counted.
///
/// Backward passes are counted as far as their ops run on this thread (on CPU the autograd engine
/// runs them on the calling thread); ops run on other threads (e.g. CUDA autograd workers) are not.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hone::profile {

/// One argument of an op call as the formulas above read it.
struct OpArgument {
  std::optional<std::vector<std::int64_t>> sizes;  ///< a defined tensor's sizes
  std::optional<std::vector<std::int64_t>> ints;   ///< an int list (stride, padding, dilation)
  std::optional<bool> flag;                        ///< a bool (convolution's `transposed`)
};

/// Whether `name` is one of the counted ops above (ops nested inside one are not counted).
bool is_counted_op(std::string_view name);

/// The formulas above, for callers that see ops some other way than FlopCounter does (the
/// profiler's event tree, profile/kineto_trace.h): the FLOPs of one call of `name`, 0 when its
/// arguments are not of the expected form, nullopt when `name` is not a counted op.
std::optional<std::int64_t> op_flops(std::string_view name, const std::vector<OpArgument>& args);

namespace detail {
struct FlopCounterCallbacks;
}

/// While alive, counts the FLOPs of the ops this thread dispatches. Only one FlopCounter may be
/// active per thread (constructing a second throws hone::Error); it must be destroyed on the thread
/// that built it. It turns RecordFunction on for this thread while alive (and restores the previous
/// setting after); a DisableRecordFunctionGuard opened inside its lifetime hides ops from it.
///
///   hone::profile::FlopCounter counter;
///   model->forward(x);
///   fmt::print("{} FLOPs\n", counter.total());
class FlopCounter {
 public:
  FlopCounter();
  ~FlopCounter();
  FlopCounter(const FlopCounter&) = delete;
  FlopCounter& operator=(const FlopCounter&) = delete;

  /// FLOPs counted so far, over all ops.
  std::int64_t total() const { return total_; }
  /// FLOPs counted so far by op name ("aten::addmm", ...); ops that counted nothing are absent.
  const std::map<std::string, std::int64_t>& by_op() const { return by_op_; }

 private:
  friend struct detail::FlopCounterCallbacks;

  std::map<std::string, std::int64_t> by_op_;
  std::int64_t total_ = 0;
  std::uint64_t callback_handle_ = 0;  ///< at::CallbackHandle
  bool inside_counted_op_ = false;     ///< a counted op is running: ignore nested ops
  bool record_function_was_enabled_ = true;
};

}  // namespace hone::profile
