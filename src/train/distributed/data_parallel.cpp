#include "hone/train/distributed/data_parallel.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <chrono>
#include <functional>

#include <fmt/ranges.h>

#include "hone/core/error.h"

namespace hone::train::distributed {

struct DataParallel::Impl {
  Communicator& group;
  DataParallelOptions options;
  std::vector<at::Tensor> params;   ///< trainable parameters, model.parameters() order
  std::vector<at::Tensor> buffers;  ///< floating-point buffers (BatchNorm statistics)
  std::vector<std::vector<std::size_t>> buckets;
  std::vector<std::size_t> bucket_of;  ///< parameter index -> bucket
  // Per step:
  bool armed = false;                  ///< hooks act (the step's last micro-batch)
  std::vector<char> ready;             ///< parameter index -> its gradient landed
  std::vector<std::size_t> remaining;  ///< bucket -> gradients still to land
  std::vector<at::Tensor> flat;        ///< bucket -> the flattened gradients in flight
  std::vector<Communicator::Pending> pending;
  std::int64_t launched_in_backward = 0;
  double exposed_wait_ms = 0;
  std::int64_t steps = 0;

  Impl(Communicator& g, DataParallelOptions o) : group(g), options(o) {}

  void launch(std::size_t b, bool from_hook) {
    std::vector<at::Tensor> pieces;
    pieces.reserve(buckets[b].size());
    for (std::size_t i : buckets[b]) {
      at::Tensor& p = params[i];
      if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p, at::MemoryFormat::Contiguous);
      pieces.push_back(p.grad().detach().reshape(-1));
    }
    flat[b] = at::cat(pieces);
    pending[b] = group.all_reduce_sum_async(flat[b], "the gradient all-reduce");
    if (from_hook) ++launched_in_backward;
  }

  void on_gradient(std::size_t i) {
    if (!armed) return;
    HONE_CHECK(!ready[i],
               "data-parallel training: parameter {} (shape {}) received a second gradient in one backward pass (a "
               "weight used twice); its bucket was already on its way",
               i, fmt::format("{}", params[i].sizes()));
    ready[i] = 1;
    const std::size_t b = bucket_of[i];
    if (--remaining[b] == 0) launch(b, /*from_hook=*/true);
  }
};

namespace {

/// Runs when autograd has accumulated the parameter's gradient into .grad.
class ReadyHook final : public torch::autograd::PostAccumulateGradHook {
 public:
  explicit ReadyHook(std::function<void()> ready) : ready_(std::move(ready)) {}
  void operator()(const torch::autograd::Variable&) override { ready_(); }

 private:
  std::function<void()> ready_;
};

}  // namespace

DataParallel::DataParallel(Communicator& group, models::Model& model, DataParallelOptions options)
    : impl_(std::make_unique<Impl>(group, options)) {
  Impl& impl = *impl_;
  HONE_CHECK(options.bucket_bytes > 0, "data-parallel training: the bucket size must be > 0 bytes");
  std::vector<at::Tensor> everything;
  for (const at::Tensor& p : model.parameters()) {
    everything.push_back(p);
    if (p.requires_grad()) impl.params.push_back(p);
  }
  for (const at::Tensor& b : model.buffers()) {
    everything.push_back(b);
    if (at::isFloatingType(b.scalar_type())) impl.buffers.push_back(b);
  }
  // Rank 0's initial weights and buffers everywhere (contiguous copies travel, then land in place).
  {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> staged;
    for (const at::Tensor& t : everything) staged.push_back(t.detach().contiguous().clone());
    group.broadcast(staged, 0, "the broadcast of rank 0's initial weights");
    for (std::size_t i = 0; i < everything.size(); ++i) everything[i].detach().copy_(staged[i]);
  }
  // Buckets in reverse registration order (backward produces the last layers' gradients first),
  // one dtype and device per bucket, each up to bucket_bytes.
  impl.bucket_of.assign(impl.params.size(), 0);
  std::int64_t bytes = 0;
  for (std::size_t k = impl.params.size(); k-- > 0;) {
    const at::Tensor& p = impl.params[k];
    const std::int64_t size = p.numel() * static_cast<std::int64_t>(p.element_size());
    const bool fits = !impl.buckets.empty() && bytes + size <= options.bucket_bytes &&
                      impl.params[impl.buckets.back().front()].scalar_type() == p.scalar_type() &&
                      impl.params[impl.buckets.back().front()].device() == p.device();
    if (!fits) {
      impl.buckets.emplace_back();
      bytes = 0;
    }
    impl.buckets.back().push_back(k);
    impl.bucket_of[k] = impl.buckets.size() - 1;
    bytes += size;
  }
  impl.ready.assign(impl.params.size(), 0);
  impl.remaining.assign(impl.buckets.size(), 0);
  impl.flat.resize(impl.buckets.size());
  impl.pending.resize(impl.buckets.size());
  for (std::size_t i = 0; i < impl.params.size(); ++i) {
    auto& hook = torch::autograd::impl::post_acc_grad_hooks(impl.params[i]);
    HONE_CHECK(hook == nullptr, "data-parallel training: parameter {} already has a post-accumulate-grad hook", i);
    torch::autograd::impl::set_post_acc_grad_hooks(impl.params[i],
                                                   std::make_unique<ReadyHook>([&impl, i] { impl.on_gradient(i); }));
  }
}

DataParallel::~DataParallel() {
  for (const at::Tensor& p : impl_->params) torch::autograd::impl::set_post_acc_grad_hooks(p, nullptr);
}

void DataParallel::begin_step() {
  Impl& impl = *impl_;
  impl.armed = false;
  impl.launched_in_backward = 0;
  std::fill(impl.ready.begin(), impl.ready.end(), 0);
  for (std::size_t b = 0; b < impl.buckets.size(); ++b) impl.remaining[b] = impl.buckets[b].size();
  if (impl.options.broadcast_buffers && !impl.buffers.empty()) {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> staged;
    for (const at::Tensor& b : impl.buffers) staged.push_back(b.contiguous());
    impl.group.broadcast(staged, 0, "the broadcast of rank 0's buffers");
    for (std::size_t i = 0; i < impl.buffers.size(); ++i)
      if (!staged[i].is_same(impl.buffers[i])) impl.buffers[i].copy_(staged[i]);
  }
}

void DataParallel::before_backward(bool last_micro_batch) { impl_->armed = last_micro_batch; }

void DataParallel::finish_gradients() {
  Impl& impl = *impl_;
  impl.armed = false;
  // Buckets whose gradients did not all land (unused parameters, an empty shard, a step whose last
  // micro-batch was empty) go out now, with zeros for the missing ones.
  for (std::size_t b = 0; b < impl.buckets.size(); ++b)
    if (!impl.pending[b].valid()) impl.launch(b, /*from_hook=*/false);
  const double world = static_cast<double>(impl.group.world_size());
  at::NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t b = 0; b < impl.buckets.size(); ++b) {
    impl.pending[b].wait();
    if (b + 1 == impl.buckets.size())
      impl.exposed_wait_ms +=
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    impl.flat[b].div_(world);
    std::int64_t offset = 0;
    for (std::size_t i : impl.buckets[b]) {
      at::Tensor grad = impl.params[i].mutable_grad();
      const std::int64_t n = grad.numel();
      grad.copy_(impl.flat[b].narrow(0, offset, n).view(grad.sizes()));
      offset += n;
    }
    impl.flat[b] = at::Tensor();
  }
  ++impl.steps;
}

void DataParallel::agree(at::Tensor& found_inf) {
  if (found_inf.defined()) impl_->group.all_reduce_max(found_inf, "the loss scaler's overflow check");
}

const std::vector<std::vector<std::size_t>>& DataParallel::buckets() const { return impl_->buckets; }

std::int64_t DataParallel::buckets_launched_in_backward() const { return impl_->launched_in_backward; }
double DataParallel::exposed_wait_ms() const { return impl_->exposed_wait_ms; }
std::int64_t DataParallel::steps() const { return impl_->steps; }

}  // namespace hone::train::distributed
