#include "hone/serve/model_service.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <mutex>
#include <numeric>

#include "hone/core/error.h"
#include "hone/core/log.h"
#include "hone/data/datasets.h"
#include "hone/run/run_dir.h"
#include "hone/runtime/settings.h"

namespace hone::serve {
namespace fs = std::filesystem;
namespace {

using Batcher = DynamicBatcher<at::Tensor, at::Tensor>;

std::int64_t product(const std::vector<std::int64_t>& shape) {
  return std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>());
}

std::string default_name(const runtime::ModelTarget& target) {
  std::error_code ec;
  if (fs::is_directory(target.target, ec)) {
    fs::path path = fs::path(target.target).lexically_normal();
    if (path.filename().empty()) path = path.parent_path();
    return path.filename().string();
  }
  return target.target;
}

std::vector<std::size_t> make_buckets(std::size_t max_batch) {
  std::vector<std::size_t> buckets;
  for (std::size_t b = 1; b < max_batch; b *= 2) buckets.push_back(b);
  buckets.push_back(max_batch);
  return buckets;
}

/// ‖a − b‖ / ‖b‖ in double.
double relative_error(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor da = a.to(at::kDouble), db = b.to(at::kDouble);
  return ((da - db).norm() / db.norm().clamp_min(1e-30)).item<double>();
}

}  // namespace

nlohmann::json VerifyReport::to_json() const {
  return {{"samples", samples},
          {"inputs", inputs},
          {"warmed_batch_sizes", warmed_batch_sizes},
          {"batch_sizes_seen", batch_sizes_seen},
          {"max_relative_error", max_relative_error},
          {"seconds", seconds}};
}

at::Tensor load_real_inputs(const runtime::ModelTarget& target, std::int64_t count, std::string* source) {
  std::string dataset;
  data::DataOptions data_options;
  std::error_code ec;
  if (fs::is_directory(target.target, ec)) {
    const run::RunConfig config = run::load_run_config(target.target);
    dataset = config.dataset;
    data_options = config.data_options;
  } else {
    dataset = target.info.name;
  }
  if (!data::is_dataset(dataset)) return {};
  const data::LoadedData loaded = data::load_dataset(dataset, data_options);
  const at::Tensor& inputs = loaded.test.dataset.inputs();
  HONE_CHECK(inputs.defined() && inputs.size(0) > 0, "dataset {}: the test split is empty", dataset);
  if (source != nullptr) *source = dataset + " test split";
  return inputs.slice(0, 0, std::min<std::int64_t>(count, inputs.size(0))).contiguous();
}

std::vector<std::string> make_infer_bodies(const runtime::ModelTarget& target, const ModelMetadata& metadata,
                                           std::int64_t count) {
  const at::Tensor inputs = load_real_inputs(target, count);
  if (!inputs.defined()) fail("{}: no real dataset to take request bodies from", target.target);
  HONE_CHECK(!metadata.inputs.empty(), "model {}: metadata has no input", metadata.name);
  const TensorSpec& spec = metadata.inputs.front();
  std::vector<std::string> bodies;
  for (std::int64_t i = 0; i < inputs.size(0); ++i) {
    const at::Tensor row = inputs[i].contiguous();
    std::vector<std::int64_t> shape{1};
    for (const auto d : row.sizes()) shape.push_back(d);
    nlohmann::json tensor{{"name", spec.name}, {"shape", shape}, {"datatype", to_string(spec.datatype)}};
    if (spec.datatype == DataType::int64) {
      const at::Tensor ids = row.to(at::kLong);
      tensor["data"] =
          std::vector<std::int64_t>(ids.data_ptr<std::int64_t>(), ids.data_ptr<std::int64_t>() + ids.numel());
    } else {
      const at::Tensor values = row.to(at::kFloat);
      tensor["data"] = std::vector<float>(values.data_ptr<float>(), values.data_ptr<float>() + values.numel());
    }
    bodies.push_back(nlohmann::json{{"id", std::to_string(i)}, {"inputs", {tensor}}}.dump());
  }
  return bodies;
}

struct ModelService::Impl {
  runtime::ModelTarget target;
  ModelServiceOptions options;
  runtime::RunSettings settings;
  ModelMetadata metadata;
  bool token_inputs = false;
  std::int64_t sample_elements = 0;  ///< float models: numbers per row
  std::int64_t max_tokens = 0;       ///< token models: the longest sequence the model takes
  std::vector<std::size_t> buckets;
  std::mutex model_mutex;  ///< the worker and direct (verification) forwards take turns
  std::atomic<ServeMetrics*> metrics{nullptr};
  std::unique_ptr<Batcher> batcher;

  at::Tensor forward(const at::Tensor& batch) {
    std::lock_guard<std::mutex> lock(model_mutex);
    c10::InferenceMode inference;
    runtime::AutocastScope autocast(settings);
    at::Tensor input = batch.to(settings.device);
    if (!token_inputs) input = input.to(settings.dtype);
    return target.model->forward(input).to(at::kCPU, at::kFloat).contiguous();
  }

  ComputeResult<at::Tensor> compute(std::vector<at::Tensor>& payloads) {
    std::vector<std::int64_t> rows;
    rows.reserve(payloads.size());
    for (const at::Tensor& p : payloads) rows.push_back(p.size(0));
    at::Tensor batch = payloads.size() == 1 ? payloads.front() : at::cat(payloads, 0);
    const std::int64_t n = batch.size(0);
    // On the GPU, batches are padded up to a warmed bucket size so kernels (and their algorithm
    // choices) are the ones warm-up selected; on the CPU padding would only cost compute.
    if (settings.device.is_cuda()) {
      const auto bucket = std::lower_bound(buckets.begin(), buckets.end(), static_cast<std::size_t>(n));
      if (bucket != buckets.end() && static_cast<std::int64_t>(*bucket) > n) {
        std::vector<std::int64_t> pad_shape(batch.sizes().begin(), batch.sizes().end());
        pad_shape[0] = static_cast<std::int64_t>(*bucket) - n;
        batch = at::cat({batch, at::zeros(pad_shape, batch.options())}, 0);
      }
    }
    const at::Tensor out = forward(batch).slice(0, 0, n);
    ComputeResult<at::Tensor> result;
    std::int64_t start = 0;
    for (const std::int64_t r : rows) {
      result.results.push_back(out.slice(0, start, start + r));
      start += r;
    }
    return result;
  }

  /// A request's scheduling inputs; token rows are padded to their bucket's length here.
  RequestOptions schedule(at::Tensor& rows, Clock::time_point deadline) const {
    RequestOptions request;
    request.deadline = deadline;
    if (token_inputs) {
      const std::int64_t length = rows.size(1);
      const std::int64_t bucket = options.token_bucket;
      const std::int64_t padded = std::min(max_tokens, (length + bucket - 1) / bucket * bucket);
      if (padded > length) rows = at::constant_pad_nd(rows, {0, padded - length}, 0);
      request.bucket_key = padded;
      request.tokens = rows.size(0) * padded;
    } else {
      // The token budget bounds rows: a batch's "padded tokens" (requests x most rows of one
      // request) stays within max_batch_size rows.
      request.tokens = rows.size(0);
    }
    return request;
  }

  BatchOutcome<at::Tensor> run(at::Tensor rows, Clock::time_point deadline) {
    RequestOptions request = schedule(rows, deadline);
    return batcher->run(std::move(rows), std::move(request));
  }

  /// Rows for the model from a validated OIP input.
  at::Tensor rows_from(const InferTensor& input, const std::string& field) const {
    if (input.shape.empty() || input.shape[0] < 1)
      throw ProtocolError(field + ".shape", "the batch dimension must be >= 1");
    if (token_inputs) {
      if (input.shape[1] < 1 || input.shape[1] > max_tokens) {
        throw ProtocolError(field + ".shape", "sequence length " + std::to_string(input.shape[1]) + " is outside [1, " +
                                                  std::to_string(max_tokens) + "]");
      }
      check_token_ids(input.int_data, field + ".data");
      return at::tensor(input.int_data, at::kLong).reshape(input.shape);
    }
    return at::tensor(input.float_data, at::kDouble).to(at::kFloat).reshape(input.shape);
  }

  void check_token_ids(const std::vector<std::int64_t>& ids, const std::string& field) const {
    const std::int64_t vocab = target.info.vocab_size;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || ids[i] >= vocab) {
        throw ProtocolError(
            field + "[" + std::to_string(i) + "]",
            "token id " + std::to_string(ids[i]) + " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
      }
    }
  }
};

ModelService::ModelService(runtime::ModelTarget target, ModelServiceOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& impl = *impl_;
  HONE_CHECK(target.model != nullptr, "model service: target {} has no model", target.target);
  if (options.max_batch_size < 1) fail_option("max_batch_size", "max batch size must be >= 1");
  if (options.max_queue_size < 1) fail_option("max_queue_size", "queue size must be >= 1");
  if (options.max_queue_delay.count() < 0) fail_option("max_queue_delay", "queue delay must not be negative");
  if (options.timeout.count() < 1) fail_option("timeout", "request timeout must be >= 1 ms");
  if (options.token_bucket < 1) fail_option("token_bucket", "token bucket must be >= 1");
  if (options.verify_samples < 1) fail_option("verify_samples", "verification samples must be >= 1");
  impl.target = std::move(target);
  impl.options = std::move(options);
  impl.settings = runtime::make_run_settings(impl.options.device, "fp32", false, false, impl.options.seq_len);
  runtime::prepare_model(*impl.target.model, impl.settings);
  const data::DatasetInfo& info = impl.target.info;
  impl.token_inputs = info.vocab_size > 0;
  impl.buckets = make_buckets(impl.options.max_batch_size);
  HONE_CHECK(!info.input_shape.empty(), "model {}: its dataset gives no input shape", impl.target.target);

  ModelMetadata& m = impl.metadata;
  m.name = impl.options.name.empty() ? default_name(impl.target) : impl.options.name;
  m.versions = {"1"};
  m.platform = "hone-libtorch";
  if (impl.token_inputs) {
    impl.max_tokens = info.input_shape.front();
    HONE_CHECK(impl.options.max_batch_tokens >= impl.max_tokens,
               "max batch tokens {} must hold one sequence of {} tokens", impl.options.max_batch_tokens,
               impl.max_tokens);
    m.inputs = {{"input_ids", DataType::int64, {-1, -1}}};
  } else {
    std::vector<std::int64_t> shape{-1};
    shape.insert(shape.end(), info.input_shape.begin(), info.input_shape.end());
    m.inputs = {{"input", DataType::fp32, shape}};
    impl.sample_elements = product(info.input_shape);
  }
  // The output's width comes from the model itself (one forward of a random row, timing only).
  const at::Tensor probe = impl.forward(runtime::make_random_input(info, 1, impl.settings).to(at::kCPU));
  std::vector<std::int64_t> out_shape(probe.sizes().begin(), probe.sizes().end());
  out_shape[0] = -1;
  const char* out_name = info.task == data::TaskKind::kForecasting    ? "forecast"
                         : info.num_classes > 0 && !impl.token_inputs ? "logits"
                                                                      : "output";
  m.outputs = {{out_name, DataType::fp32, out_shape}};

  BatcherOptions batcher_options;
  batcher_options.max_batch_size = impl.options.max_batch_size;
  batcher_options.max_queue_size = impl.options.max_queue_size;
  batcher_options.max_queue_delay = impl.options.max_queue_delay;
  batcher_options.max_batch_tokens =
      impl.token_inputs ? impl.options.max_batch_tokens : static_cast<std::int64_t>(impl.options.max_batch_size);
  batcher_options.on_batch = [&impl](const BatchReport& batch) {
    if (ServeMetrics* metrics = impl.metrics.load()) metrics->observe_batch(batch);
  };
  impl.batcher = std::make_unique<Batcher>(
      std::move(batcher_options), [&impl](std::vector<at::Tensor>& payloads) { return impl.compute(payloads); });
}

ModelService::~ModelService() { drain(); }

const ModelMetadata& ModelService::metadata() const { return impl_->metadata; }
const runtime::ModelTarget& ModelService::target() const { return impl_->target; }
const ModelServiceOptions& ModelService::options() const { return impl_->options; }
const std::vector<std::size_t>& ModelService::batch_buckets() const { return impl_->buckets; }
void ModelService::drain() { impl_->batcher->drain(); }
std::size_t ModelService::queue_depth() const { return impl_->batcher->queue_depth(); }
BatcherStats ModelService::stats() const { return impl_->batcher->stats(); }

void ModelService::observe_with(ServeMetrics& metrics, MetricsRegistry& registry) {
  impl_->metrics.store(&metrics);
  registry.add_collect_hook([this, &metrics] { metrics.queue_depth.set({}, static_cast<double>(queue_depth())); });
}

ServeHandlers ModelService::handlers() {
  ServeHandlers h;
  h.find_model = [this](const std::string& name) -> std::optional<ModelMetadata> {
    if (name == impl_->metadata.name) return impl_->metadata;
    return std::nullopt;
  };
  h.infer = [this](const ModelMetadata& model, InferRequest request) { return infer(model, std::move(request)); };
  h.predict = [this](PredictRequest request) { return predict(std::move(request)); };
  std::error_code ec;
  const std::string& dir = impl_->target.target;
  if (fs::is_directory(dir, ec) && run::is_compressed_run(dir)) {
    const nlohmann::json manifest = run::load_compress_manifest(dir);
    h.verdict = [manifest] {
      return nlohmann::json{{"compressed", true},
                            {"source", manifest.value("source", "")},
                            {"recipe", manifest.value("recipe", nlohmann::json())},
                            {"passes", manifest.value("passes", nlohmann::json::array())}};
    };
  }
  return h;
}

namespace {

InferTensor to_infer_tensor(const TensorSpec& spec, const at::Tensor& out) {
  InferTensor tensor;
  tensor.name = spec.name;
  tensor.datatype = DataType::fp32;
  tensor.shape.assign(out.sizes().begin(), out.sizes().end());
  const at::Tensor values = out.contiguous();
  const float* data = values.data_ptr<float>();
  tensor.float_data.assign(data, data + values.numel());
  return tensor;
}

std::vector<float> row_values(const at::Tensor& row) {
  const at::Tensor values = row.contiguous();
  return std::vector<float>(values.data_ptr<float>(), values.data_ptr<float>() + values.numel());
}

}  // namespace

HandlerReply ModelService::infer(const ModelMetadata& model, InferRequest request) {
  const Clock::time_point deadline = Clock::now() + impl_->options.timeout;
  at::Tensor rows = impl_->rows_from(request.inputs.front(), "inputs[0]");
  BatchOutcome<at::Tensor> outcome = impl_->run(std::move(rows), deadline);
  return reply_from(outcome, [&](const at::Tensor& out) {
    return make_infer_response(model.name, request.id, {to_infer_tensor(impl_->metadata.outputs.front(), out)});
  });
}

HandlerReply ModelService::predict(PredictRequest request) {
  Impl& impl = *impl_;
  const Clock::time_point deadline = Clock::now() + impl.options.timeout;
  const auto n = static_cast<std::int64_t>(request.instances.size());
  const auto width = static_cast<std::int64_t>(request.instances.front().size());
  at::Tensor rows;
  if (impl.token_inputs) {
    if (width > impl.max_tokens) {
      throw ProtocolError("instances[0]", std::to_string(width) + " token ids; the model takes at most " +
                                              std::to_string(impl.max_tokens));
    }
    std::vector<std::int64_t> ids;
    ids.reserve(static_cast<std::size_t>(n * width));
    for (std::size_t i = 0; i < request.instances.size(); ++i) {
      for (const double v : request.instances[i]) {
        if (v != static_cast<double>(static_cast<std::int64_t>(v))) {
          throw ProtocolError("instances[" + std::to_string(i) + "]", "token ids must be integers");
        }
        ids.push_back(static_cast<std::int64_t>(v));
      }
    }
    impl.check_token_ids(ids, "instances");
    rows = at::tensor(ids, at::kLong).reshape({n, width});
  } else {
    if (width != impl.sample_elements) {
      throw ProtocolError("instances[0]", std::to_string(width) + " numbers; the model takes " +
                                              std::to_string(impl.sample_elements) + " per instance");
    }
    std::vector<float> values;
    values.reserve(static_cast<std::size_t>(n * width));
    for (const auto& instance : request.instances) values.insert(values.end(), instance.begin(), instance.end());
    std::vector<std::int64_t> shape{n};
    shape.insert(shape.end(), impl.target.info.input_shape.begin(), impl.target.info.input_shape.end());
    rows = at::tensor(values, at::kFloat).reshape(shape);
  }
  BatchOutcome<at::Tensor> outcome = impl.run(std::move(rows), deadline);
  return reply_from(outcome, [&](const at::Tensor& out) {
    const data::DatasetInfo& info = impl.target.info;
    nlohmann::json predictions = nlohmann::json::array();
    const bool classifier = info.task == data::TaskKind::kClassification && info.num_classes > 0 && !impl.token_inputs;
    const at::Tensor probabilities = classifier ? out.softmax(1) : at::Tensor();
    for (std::int64_t i = 0; i < out.size(0); ++i) {
      if (classifier) {
        const std::int64_t label = probabilities[i].argmax().item<std::int64_t>();
        nlohmann::json p{{"label", label}, {"probabilities", row_values(probabilities[i])}};
        if (label < static_cast<std::int64_t>(info.class_names.size())) p["class"] = info.class_names[label];
        predictions.push_back(std::move(p));
      } else {
        predictions.push_back({{impl.metadata.outputs.front().name, row_values(out[i])}});
      }
    }
    return make_predict_response(predictions);
  });
}

VerifyReport ModelService::warm_up_and_verify() {
  Impl& impl = *impl_;
  const auto start = Clock::now();
  VerifyReport report;
  const data::DatasetInfo& info = impl.target.info;
  for (const std::size_t b : impl.buckets) {
    impl.forward(runtime::make_random_input(info, static_cast<std::int64_t>(b), impl.settings).to(at::kCPU));
    report.warmed_batch_sizes.push_back(b);
  }
  at::Tensor inputs = load_real_inputs(impl.target, impl.options.verify_samples, &report.inputs);
  if (!inputs.defined()) {
    inputs = runtime::make_random_input(info, impl.options.verify_samples, impl.settings).to(at::kCPU);
    report.inputs = "random inputs (the model has no real dataset)";
  }
  const std::int64_t n = inputs.size(0);
  // Requests of one row each; token requests get different lengths so that padding is checked.
  std::vector<at::Tensor> requests;
  for (std::int64_t i = 0; i < n; ++i) {
    at::Tensor row = inputs.slice(0, i, i + 1);
    if (impl.token_inputs) row = row.slice(1, 0, std::max<std::int64_t>(1, row.size(1) - (i * 7) % row.size(1)));
    requests.push_back(row.contiguous());
  }
  std::vector<at::Tensor> direct;
  for (const at::Tensor& r : requests) direct.push_back(impl.forward(r));
  // Sent in growing waves (1, 2, 3... at once, no more than the queue holds) while the model is
  // held, so that the worker blocks on its first batch and the rest of the wave queues up behind
  // it: batches of several requests and sizes, however fast the model is.
  std::size_t next = 0;
  for (std::size_t wave = 1; next < requests.size(); ++wave) {
    std::vector<std::future<BatchOutcome<at::Tensor>>> futures;
    const std::size_t end = std::min(requests.size(), next + std::min(wave, impl.options.max_queue_size));
    {
      std::lock_guard<std::mutex> hold(impl.model_mutex);
      for (std::size_t i = next; i < end; ++i) {
        at::Tensor rows = requests[i];
        RequestOptions request = impl.schedule(rows, Clock::now() + std::chrono::minutes(1));
        futures.push_back(impl.batcher->submit(rows, std::move(request)));
      }
    }
    for (std::size_t i = next; i < end; ++i) {
      BatchOutcome<at::Tensor> outcome = futures[i - next].get();
      if (!outcome.ok()) fail("verification request {} was not computed: {}", i, outcome.error);
      const at::Tensor& served = *outcome.result;
      const at::Tensor& expected = direct[i];
      if (served.sizes() != expected.sizes()) {
        fail("verification request {}: served output has shape {}, direct forward {}", i, served.sizes(),
             expected.sizes());
      }
      const double error = relative_error(served, expected);
      const double bound =
          impl.options.verify_relative +
          impl.options.verify_absolute / std::max(1e-30, expected.to(at::kDouble).norm().item<double>());
      report.max_relative_error = std::max(report.max_relative_error, error);
      if (!(error <= bound)) {
        fail(
            "verification failed: request {} ({}), computed in a batch of {}, differs from its direct forward by "
            "relative error {:.3g} (allowed {:.3g})",
            i, report.inputs, outcome.timing.batch_size, error, bound);
      }
      if (std::find(report.batch_sizes_seen.begin(), report.batch_sizes_seen.end(), outcome.timing.batch_size) ==
          report.batch_sizes_seen.end()) {
        report.batch_sizes_seen.push_back(outcome.timing.batch_size);
      }
    }
    next = end;
  }
  std::sort(report.batch_sizes_seen.begin(), report.batch_sizes_seen.end());
  report.samples = n;
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return report;
}

}  // namespace hone::serve
