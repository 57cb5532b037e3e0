#pragma once
/// @file A loaded model made servable: it turns Open Inference Protocol tensors and /predict rows
/// into torch batches, runs them through one DynamicBatcher, splits the outputs per request, and
/// decides readiness by verification, not by having loaded.
///
/// Why verification: a server that batches requests computes each one inside batches whose size
/// and neighbours it does not choose; a bug in concatenating, padding or splitting would answer
/// with another request's numbers. So before the service says it is ready, every batch bucket is
/// warmed once and a few real test inputs of the run's own dataset are sent through the batcher
/// concurrently (so they land in batches of several sizes) and compared with the same inputs'
/// direct, one-at-a-time forward passes, within the fp32 "reordered" tolerance (kernels chosen by
/// batch size may sum in another order).
///
///     ModelService service(runtime::load_target("runs/cnn"), {.max_batch_size = 32});
///     HttpServer server({.port = 8080}, service.handlers());
///     service.observe_with(server.metrics(), server.metrics_registry());
///     server.start();
///     VerifyReport report = service.warm_up_and_verify();   // throws when served != direct
///     server.set_ready(true);
///     ...
///     server.stop();       // finish in-flight HTTP requests
///     service.drain();     // then the batcher's queue
///
/// Image, table and window models take FP32 `input` [-1, ...one sample's shape]; token models
/// (vocab_size > 0) take INT64 `input_ids` [-1, -1], padded with 0 (masked by the encoder) to the
/// next multiple of token_bucket, batched only with requests of the same padded length and at most
/// max_batch_tokens padded tokens per batch.
///
/// A sentence encoder loaded with its tokenizer (ServeTarget::text_encoder, e.g. `hone serve
/// minilm`: the pretrained all-MiniLM-L6-v2) also answers TEI's `POST /embed`: each text is
/// tokenized by hone's WordPiece, queued as its own request (so texts of one body are bucketed by
/// their own lengths and batched with other clients' texts), padded by length (a "[PAD]" written
/// in a text stays a token, as in `hone embed`), mean-pooled by the encoder. Verification then
/// compares served embeddings of real review sentences with `hone embed`'s own computation.
#include <ATen/core/Tensor.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hone/runtime/target.h"
#include "hone/serve/dynamic_batcher.h"
#include "hone/serve/http_server.h"
#include "hone/serve/inference_protocol.h"
#include "hone/serve/serve_target.h"

namespace hone::serve {

struct ModelServiceOptions {
  /// The model's name in /v2/models/{name}; empty: the run directory's base name or the zoo name.
  std::string name;
  std::string device = "cpu";
  /// Weights and float activations: fp32, bf16 or fp16 (token ids stay int64).
  std::string dtype = "fp32";
  /// Most rows in one model batch (and most requests per batch). A request with more rows runs alone.
  std::size_t max_batch_size = 32;
  /// Most requests waiting; one more is answered 429.
  std::size_t max_queue_size = 256;
  /// 0: greedy. > 0: wait up to this long for a fuller batch (BatcherOptions::max_queue_delay).
  std::chrono::microseconds max_queue_delay{0};
  /// Each request's deadline from its arrival; past it, it is answered 504 without compute.
  std::chrono::milliseconds timeout{1000};
  /// Token models: padded lengths are multiples of this; a batch holds one padded length only.
  std::int64_t token_bucket = 32;
  /// Token models: most padded tokens (rows x padded length) per batch.
  std::int64_t max_batch_tokens = 8192;
  /// Token models loaded by zoo name: the sequence length random verification inputs have.
  std::int64_t seq_len = 128;
  /// /embed: most texts in one body (each is queued as one request). More is a 413.
  std::size_t max_texts_per_request = 256;
  /// Real test inputs checked through the batcher before ready.
  std::int64_t verify_samples = 16;
  /// Served against direct outputs: ‖served − direct‖ ≤ relative·‖direct‖ + absolute per request.
  /// The tolerance table's kFp32Reordered row (same math, kernels of another batch size); used
  /// for fp32 (bf16 and fp16 use verify_tolerance's rows).
  double verify_relative = 1e-4;
  double verify_absolute = 1e-5;
};

/// A relative and absolute bound: ‖served − direct‖ ≤ relative·‖direct‖ + absolute.
struct VerifyTolerance {
  double relative = 0;
  double absolute = 0;
};
/// The tolerance table's kBf16 and kFp16 rows: in 16-bit floats, kernels picked by batch size (and
/// padding to another length) round differently, so served and direct outputs differ by more
/// than fp32's reordering (tests/serve checks these equal tests/support/tolerances.h).
inline constexpr VerifyTolerance kVerifyBf16{1e-2, 1e-2};
inline constexpr VerifyTolerance kVerifyFp16{5e-3, 1e-3};
/// The tolerance verification applies for options.dtype.
VerifyTolerance verify_tolerance(const ModelServiceOptions& options);

/// What warm_up_and_verify found.
struct VerifyReport {
  std::int64_t samples = 0;
  std::string inputs;  ///< where the inputs came from ("fashion-mnist test split", or random ones labelled)
  std::vector<std::size_t> warmed_batch_sizes;
  std::vector<std::size_t> batch_sizes_seen;  ///< batch sizes the verification requests were computed in
  double max_relative_error = 0;
  double seconds = 0;

  nlohmann::json to_json() const;
};

/// A model's real test inputs (the run's dataset's test split, or for a zoo name its default
/// dataset's), at most `count` rows; undefined when the target has no real dataset (zoo text
/// models). `source` says which split was used.
at::Tensor load_real_inputs(const runtime::ModelTarget& target, std::int64_t count, std::string* source = nullptr);

/// OIP v2 infer bodies of one real test input each (see load_real_inputs), for `hone loadgen`.
std::vector<std::string> make_infer_bodies(const runtime::ModelTarget& target, const ModelMetadata& metadata,
                                           std::int64_t count);

class ModelService {
 public:
  /// Prepares the model (eval, no grad, the device) and starts the batcher's worker. Throws
  /// hone::Error naming the option for bad options.
  ModelService(runtime::ModelTarget target, ModelServiceOptions options);
  /// The same for a target that may carry a text encoder (then /embed is served too).
  ModelService(ServeTarget target, ModelServiceOptions options);
  ~ModelService();  ///< drain()
  ModelService(const ModelService&) = delete;
  ModelService& operator=(const ModelService&) = delete;

  const ModelMetadata& metadata() const;
  const runtime::ModelTarget& target() const;
  const ModelServiceOptions& options() const;

  /// Handlers for HttpServer: find_model, infer and predict; verdict when the run was compressed.
  ServeHandlers handlers();
  /// Feeds the batcher's batches and queue depth into the server's metrics. Call before serving.
  void observe_with(ServeMetrics& metrics, MetricsRegistry& registry);

  /// Runs the model once per batch bucket, then checks real inputs through the batcher against
  /// direct forwards. Throws hone::Error naming the first request whose outputs differ.
  VerifyReport warm_up_and_verify();

  /// Parsed, validated requests in; replies (ok, or the batcher's reason) out. Thread-safe.
  HandlerReply infer(const ModelMetadata& model, InferRequest request);
  HandlerReply predict(PredictRequest request);
  /// TEI /embed (only with a text encoder): one embedding per text, in order. 413 (too_large) for
  /// more texts than max_texts_per_request or a text over the encoder's max length without
  /// `truncate`; ProtocolError naming the field for normalize false on a model that normalizes
  /// itself and for text that is not UTF-8.
  HandlerReply embed(EmbedRequest request);
  /// The sentence encoder /embed uses, or nullptr when the model is not served as one.
  const text::SentenceEncoder* text_encoder() const;

  /// The batch sizes warmed (and, on CUDA, the sizes batches are padded up to).
  const std::vector<std::size_t>& batch_buckets() const;

  /// Refuse new work, finish what is queued, stop the worker. Idempotent.
  void drain();
  std::size_t queue_depth() const;
  BatcherStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hone::serve
