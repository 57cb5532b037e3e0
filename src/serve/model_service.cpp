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
#include "hone/models/bert_encoder.h"
#include "hone/run/run_dir.h"
#include "hone/runtime/settings.h"
#include "hone/text/fine_foods.h"

namespace hone::serve {
namespace fs = std::filesystem;
namespace {

/// One request's rows. Token rows carry their padding mask [rows, length] (true = padding):
/// OIP rows are masked where the id is the pad id (as the encoder itself does), /embed rows by
/// length (a "[PAD]" written in a text stays a token, as in `hone embed`).
struct Rows {
  at::Tensor input;
  at::Tensor padding;
};

using Batcher = DynamicBatcher<Rows, at::Tensor>;

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

/// The real sentences text encoders are verified on: fine-foods test reviews, when exported.
std::vector<std::string> verification_texts(std::int64_t count, std::string* source) {
  try {
    std::vector<std::string> texts = text::load_fine_foods_texts("test");
    if (texts.size() > static_cast<std::size_t>(count)) texts.resize(static_cast<std::size_t>(count));
    *source = "fine-foods test reviews (r-cran-modeldata), against hone embed's encoder";
    return texts;
  } catch (const Error& e) {
    log_warn("no real sentences to verify /embed with ({}); verifying token ids instead", e.what());
    return {};
  }
}

}  // namespace

VerifyTolerance verify_tolerance(const ModelServiceOptions& options) {
  if (options.dtype == "bf16") return kVerifyBf16;
  if (options.dtype == "fp16") return kVerifyFp16;
  return {options.verify_relative, options.verify_absolute};
}

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
  std::optional<text::SentenceEncoder> encoder;  ///< /embed's tokenizer and model, when served as text
  models::BertEncoder* bert = nullptr;           ///< the model, when it takes a padding mask
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

  at::Tensor forward(const at::Tensor& batch, const at::Tensor& padding = {}) {
    std::lock_guard<std::mutex> lock(model_mutex);
    c10::InferenceMode inference;
    runtime::AutocastScope autocast(settings);
    at::Tensor input = batch.to(settings.device);
    if (!token_inputs) input = input.to(settings.dtype);
    const at::Tensor out = bert != nullptr && padding.defined() ? bert->forward(input, padding.to(settings.device))
                                                                : target.model->forward(input);
    return out.to(at::kCPU, at::kFloat).contiguous();
  }

  ComputeResult<at::Tensor> compute(std::vector<Rows>& payloads) {
    std::vector<std::int64_t> rows;
    rows.reserve(payloads.size());
    std::vector<at::Tensor> inputs, paddings;
    for (const Rows& p : payloads) {
      rows.push_back(p.input.size(0));
      inputs.push_back(p.input);
      if (p.padding.defined()) paddings.push_back(p.padding);
    }
    at::Tensor batch = inputs.size() == 1 ? inputs.front() : at::cat(inputs, 0);
    at::Tensor padding;
    if (!paddings.empty()) padding = paddings.size() == 1 ? paddings.front() : at::cat(paddings, 0);
    const std::int64_t n = batch.size(0);
    // On the GPU, batches are padded up to a warmed bucket size so kernels (and their algorithm
    // choices) are the ones warm-up selected; on the CPU padding would only cost compute.
    if (settings.device.is_cuda()) {
      const auto bucket = std::lower_bound(buckets.begin(), buckets.end(), static_cast<std::size_t>(n));
      if (bucket != buckets.end() && static_cast<std::int64_t>(*bucket) > n) {
        std::vector<std::int64_t> pad_shape(batch.sizes().begin(), batch.sizes().end());
        pad_shape[0] = static_cast<std::int64_t>(*bucket) - n;
        batch = at::cat({batch, at::zeros(pad_shape, batch.options())}, 0);
        // Filler rows attend to their zeros (all-masked rows would be 0/0 in attention).
        if (padding.defined()) padding = at::cat({padding, at::zeros(pad_shape, padding.options())}, 0);
      }
    }
    const at::Tensor out = forward(batch, padding).slice(0, 0, n);
    ComputeResult<at::Tensor> result;
    std::int64_t start = 0;
    for (const std::int64_t r : rows) {
      result.results.push_back(out.slice(0, start, start + r));
      start += r;
    }
    return result;
  }

  std::int64_t pad_id() const { return bert != nullptr ? bert->bert_config().pad_id : 0; }

  /// A request's scheduling inputs; token rows are padded to their bucket's length here (and get
  /// their padding mask: by id unless the caller gave one by length).
  RequestOptions schedule(Rows& rows, Clock::time_point deadline) const {
    RequestOptions request;
    request.deadline = deadline;
    at::Tensor& ids = rows.input;
    if (token_inputs) {
      if (!rows.padding.defined()) rows.padding = ids.eq(pad_id());
      const std::int64_t length = ids.size(1);
      const std::int64_t bucket = options.token_bucket;
      const std::int64_t padded = std::min(max_tokens, (length + bucket - 1) / bucket * bucket);
      if (padded > length) {
        ids = at::constant_pad_nd(ids, {0, padded - length}, static_cast<double>(pad_id()));
        rows.padding = at::cat({rows.padding, at::ones({ids.size(0), padded - length}, at::kBool)}, 1);
      }
      request.bucket_key = padded;
      request.tokens = ids.size(0) * padded;
    } else {
      // The token budget bounds rows: a batch's "padded tokens" (requests x most rows of one
      // request) stays within max_batch_size rows.
      request.tokens = ids.size(0);
    }
    return request;
  }

  BatchOutcome<at::Tensor> run(at::Tensor input, Clock::time_point deadline) {
    Rows rows{std::move(input), {}};
    RequestOptions request = schedule(rows, deadline);
    return batcher->run(std::move(rows), std::move(request));
  }

  /// A text as one /embed request's row: [CLS] pieces [SEP], masked by length.
  Rows text_rows(const std::string& text, bool truncate, const std::string& field, bool* too_long) const {
    bool cut = false;
    std::vector<std::int64_t> ids;
    try {
      ids = encoder->tokenizer().encode(text, encoder->max_length(), &cut);
    } catch (const Error& e) {
      throw ProtocolError(field, e.what());
    }
    *too_long = cut && !truncate;
    const auto length = static_cast<std::int64_t>(ids.size());
    return {at::tensor(ids, at::kLong).reshape({1, length}), at::zeros({1, length}, at::kBool)};
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

ModelService::ModelService(runtime::ModelTarget target, ModelServiceOptions options)
    : ModelService(ServeTarget{std::move(target), std::nullopt}, std::move(options)) {}

ModelService::ModelService(ServeTarget serve_target, ModelServiceOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& impl = *impl_;
  runtime::ModelTarget& target = serve_target.model;
  HONE_CHECK(target.model != nullptr, "model service: target {} has no model", target.target);
  if (options.max_batch_size < 1) fail_option("max_batch_size", "max batch size must be >= 1");
  if (options.max_queue_size < 1) fail_option("max_queue_size", "queue size must be >= 1");
  if (options.max_queue_delay.count() < 0) fail_option("max_queue_delay", "queue delay must not be negative");
  if (options.timeout.count() < 1) fail_option("timeout", "request timeout must be >= 1 ms");
  if (options.token_bucket < 1) fail_option("token_bucket", "token bucket must be >= 1");
  if (options.verify_samples < 1) fail_option("verify_samples", "verification samples must be >= 1");
  if (options.max_texts_per_request < 1) fail_option("max_texts_per_request", "texts per request must be >= 1");
  impl.target = std::move(target);
  impl.encoder = std::move(serve_target.text_encoder);
  impl.options = std::move(options);
  impl.settings =
      runtime::make_run_settings(impl.options.device, impl.options.dtype, false, false, impl.options.seq_len);
  runtime::prepare_model(*impl.target.model, impl.settings);
  impl.bert = dynamic_cast<models::BertEncoder*>(impl.target.model.get());
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
    if (impl.options.max_batch_tokens < impl.max_tokens) {
      fail_option("max_batch_tokens", "max batch tokens {} must hold one sequence of {} tokens",
                  impl.options.max_batch_tokens, impl.max_tokens);
    }
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
  impl.batcher = std::make_unique<Batcher>(std::move(batcher_options),
                                           [&impl](std::vector<Rows>& payloads) { return impl.compute(payloads); });
}

ModelService::~ModelService() { drain(); }

const ModelMetadata& ModelService::metadata() const { return impl_->metadata; }
const runtime::ModelTarget& ModelService::target() const { return impl_->target; }
const ModelServiceOptions& ModelService::options() const { return impl_->options; }
const std::vector<std::size_t>& ModelService::batch_buckets() const { return impl_->buckets; }
void ModelService::drain() { impl_->batcher->drain(); }
const text::SentenceEncoder* ModelService::text_encoder() const { return impl_->encoder ? &*impl_->encoder : nullptr; }
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
  if (impl_->encoder) h.embed = [this](EmbedRequest request) { return embed(std::move(request)); };
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

HandlerReply ModelService::embed(EmbedRequest request) {
  Impl& impl = *impl_;
  if (!impl.encoder) return HandlerReply::failure(RequestStatus::not_found, "/embed is not served by this model");
  const Clock::time_point deadline = Clock::now() + impl.options.timeout;
  const bool model_normalizes = impl.bert != nullptr && impl.bert->bert_config().normalize;
  if (!request.normalize && model_normalizes) {
    throw ProtocolError("normalize",
                        "false is not available: this model L2-normalizes its embeddings itself (its "
                        "sentence-transformers Normalize module)");
  }
  const std::size_t n = request.inputs.size();
  if (n > impl.options.max_texts_per_request) {
    return HandlerReply::failure(RequestStatus::too_large,
                                 fmt::format("inputs: {} texts exceed the server's limit of {} per request "
                                             "(max_texts_per_request)",
                                             n, impl.options.max_texts_per_request));
  }
  std::vector<Rows> rows;
  rows.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::string field = "inputs[" + std::to_string(i) + "]";
    bool too_long = false;
    rows.push_back(impl.text_rows(request.inputs[i], request.truncate, field, &too_long));
    if (too_long) {
      return HandlerReply::failure(RequestStatus::too_large,
                                   fmt::format("{}: more than the model's {} tokens; send \"truncate\": true to "
                                               "cut it",
                                               field, impl.encoder->max_length()));
    }
  }
  // Each text is its own request: bucketed by its own length, batched with other clients' texts.
  // One cancel flag for all: if one is refused, the rest are dropped before they cost compute.
  CancelFlag cancel;
  std::vector<std::future<BatchOutcome<at::Tensor>>> futures;
  futures.reserve(n);
  for (Rows& r : rows) {
    RequestOptions options = impl.schedule(r, deadline);
    options.cancel = cancel;
    futures.push_back(impl.batcher->submit(std::move(r), std::move(options)));
  }
  std::vector<std::vector<float>> embeddings;
  embeddings.reserve(n);
  RequestTiming timing;
  std::optional<BatchOutcome<at::Tensor>> refused;
  for (auto& future : futures) {
    BatchOutcome<at::Tensor> outcome = future.get();
    timing.queue_time = std::max(timing.queue_time, outcome.timing.queue_time);
    timing.compute_time = std::max(timing.compute_time, outcome.timing.compute_time);
    timing.batch_size = std::max(timing.batch_size, outcome.timing.batch_size);
    if (!outcome.ok()) {
      // The first refusal is the answer; a cancellation it caused is not.
      if (!refused || refused->status == RequestStatus::cancelled) refused = std::move(outcome);
      cancel.cancel();
      continue;
    }
    at::Tensor vector = *outcome.result;
    if (request.normalize && !model_normalizes) vector = vector / vector.norm(2, 1, true).clamp_min(1e-12);
    embeddings.push_back(row_values(vector[0]));
  }
  if (refused) return HandlerReply::failure(refused->status, refused->error, timing);
  return HandlerReply::success(make_embed_response(embeddings), timing);
}

VerifyReport ModelService::warm_up_and_verify() {
  Impl& impl = *impl_;
  const auto start = Clock::now();
  VerifyReport report;
  data::DatasetInfo info = impl.target.info;
  // Token models warm at the verification length (a text encoder's 256-token maximum at the
  // largest batch would cost more than everything it warms).
  if (impl.token_inputs) info.input_shape = {std::min(impl.max_tokens, impl.options.seq_len)};
  for (const std::size_t b : impl.buckets) {
    impl.forward(runtime::make_random_input(info, static_cast<std::int64_t>(b), impl.settings).to(at::kCPU));
    report.warmed_batch_sizes.push_back(b);
  }
  // Requests of one row each, and each one's direct output.
  std::vector<Rows> requests;
  std::vector<at::Tensor> direct;
  const std::vector<std::string> texts =
      impl.encoder ? verification_texts(impl.options.verify_samples, &report.inputs) : std::vector<std::string>();
  if (!texts.empty()) {
    // A text encoder: real sentences through /embed's path against `hone embed`'s computation
    // (SentenceEncoder::encode: sorted by length, batches padded to their longest text).
    for (std::size_t i = 0; i < texts.size(); ++i) {
      bool too_long = false;
      requests.push_back(impl.text_rows(texts[i], /*truncate=*/true, "verification text", &too_long));
    }
    text::Embeddings embeddings;
    {
      std::lock_guard<std::mutex> lock(impl.model_mutex);
      c10::InferenceMode inference;
      embeddings = impl.encoder->encode(texts);
    }
    for (std::size_t i = 0; i < texts.size(); ++i) {
      direct.push_back(embeddings.vectors.slice(0, static_cast<std::int64_t>(i), static_cast<std::int64_t>(i) + 1));
    }
  } else {
    at::Tensor inputs = load_real_inputs(impl.target, impl.options.verify_samples, &report.inputs);
    if (!inputs.defined()) {
      inputs = runtime::make_random_input(info, impl.options.verify_samples, impl.settings).to(at::kCPU);
      report.inputs = "random inputs (the model has no real dataset)";
    }
    // Token requests get different lengths so that padding is checked.
    for (std::int64_t i = 0; i < inputs.size(0); ++i) {
      at::Tensor row = inputs.slice(0, i, i + 1);
      if (impl.token_inputs) row = row.slice(1, 0, std::max<std::int64_t>(1, row.size(1) - (i * 7) % row.size(1)));
      requests.push_back({row.contiguous(), {}});
      direct.push_back(impl.forward(requests.back().input));
    }
  }
  const VerifyTolerance tolerance = verify_tolerance(impl.options);
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
        Rows rows = requests[i];
        RequestOptions request = impl.schedule(rows, Clock::now() + std::chrono::minutes(1));
        futures.push_back(impl.batcher->submit(std::move(rows), std::move(request)));
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
          tolerance.relative + tolerance.absolute / std::max(1e-30, expected.to(at::kDouble).norm().item<double>());
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
  report.samples = static_cast<std::int64_t>(requests.size());
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return report;
}

}  // namespace hone::serve
