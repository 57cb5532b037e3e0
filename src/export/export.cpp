// hone export: load, lower, write, verify through onnxruntime, write the metadata, keep or remove.
#include "hone/export/export.h"
#include "hone/export/onnx_graph.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <optional>

#include "hone/core/error.h"
#include "hone/core/format.h"
#include "hone/core/fs.h"
#include "hone/data/datasets.h"
#include "hone/io/safetensors.h"
#include "hone/models/bert_encoder.h"
#include "hone/nn/layer.h"
#include "hone/run/run_dir.h"
#include "hone/runtime/target.h"
#include "ort_process.h"

namespace hone::onnx {
namespace fs = std::filesystem;
namespace {

/// What the graph is checked on: its inputs for the whole split, hone's outputs for them, and
/// what the task metric needs.
struct Reference {
  std::string from;
  bool real = false;
  std::vector<std::pair<std::string, at::Tensor>> inputs;   // graph input name -> [N, ...]
  std::vector<std::pair<std::string, at::Tensor>> outputs;  // graph output name -> hone's [N, ...]
  at::Tensor labels;                                        // classification
  at::Tensor truth;                                         // forecasting: true next-day price
};

at::Tensor batched(const std::function<at::Tensor(const at::Tensor&)>& forward, const at::Tensor& inputs,
                   std::int64_t batch) {
  std::vector<at::Tensor> parts;
  for (std::int64_t begin = 0; begin < inputs.size(0); begin += batch) {
    parts.push_back(forward(inputs.narrow(0, begin, std::min(batch, inputs.size(0) - begin))));
  }
  return at::cat(parts).to(at::kDouble);
}

Reference make_reference(models::Model& model, const data::DatasetInfo& info, const data::LoadedData* data,
                         const nlohmann::json& norm, const ExportOptions& options) {
  torch::NoGradGuard no_grad;
  model.eval();
  Reference ref;
  const auto forward = [&](const at::Tensor& x) { return model.forward(x); };
  if (model.architecture() == "minilm") {
    auto& bert = dynamic_cast<models::BertEncoder&>(model);
    const auto pad = bert.bert_config().pad_id;
    at::Tensor ids;
    if (data != nullptr && info.vocab_size > 0) {
      ids = data->test.dataset.inputs().to(at::kLong);
      ref.labels = data->test.dataset.targets();
      ref.from = fmt::format("{} test split ({} samples)", info.name, ids.size(0));
      ref.real = true;
    } else {
      // Random token ids of random lengths (the zoo's weights are random too: agreement only).
      auto generator = at::make_generator<at::CPUGeneratorImpl>(17);
      const auto n = options.largest_batch, t = options.seq_len;
      ids = at::randint(1000, bert.bert_config().vocab_size, {n, t}, generator, at::kLong);
      const auto lengths = at::randint(1, t + 1, {n, 1}, generator, at::kLong);
      ids.masked_fill_(at::arange(t, at::kLong).unsqueeze(0).ge(lengths), pad);
      ref.from =
          fmt::format("{} random token-id rows of {} tokens, random lengths (random weights: agreement only)", n, t);
    }
    const auto padding = ids.eq(pad);
    ref.inputs = {{"input_ids", ids}, {"attention_mask", padding.logical_not().to(at::kLong)}};
    std::vector<at::Tensor> parts;
    // In slices of the verifier's size: an int8 dynamic model's scales then come from the same rows.
    const auto chunk = options.largest_batch;
    for (std::int64_t b = 0; b < ids.size(0); b += chunk) {
      const auto len = std::min<std::int64_t>(chunk, ids.size(0) - b);
      parts.push_back(bert.forward(ids.narrow(0, b, len), padding.narrow(0, b, len)));
    }
    ref.outputs = {{bert.bert_config().num_classes > 0 ? "logits" : "embedding", at::cat(parts).to(at::kDouble)}};
    return ref;
  }
  if (info.task == data::TaskKind::kForecasting) {
    HONE_CHECK(data != nullptr && data->test.forecast && !norm.is_null(),
               "ONNX export: verifying a forecaster needs its dataset's test split and normalization");
    const auto& x = data->test.dataset.inputs();  // [N, W, F] normalized log-returns
    const auto& forecast = *data->test.forecast;
    const auto mean = at::tensor(norm.at("feature_mean").get<std::vector<double>>(), at::kDouble);
    const auto std = at::tensor(norm.at("feature_std").get<std::vector<double>>(), at::kDouble);
    // The windows' prices, rebuilt from their returns backwards from the last day: series 0 from
    // its true last price, the others from an index of 100 (the graph reads only ratios).
    const at::Tensor returns = x.to(at::kDouble) * std + mean;
    const at::Tensor after = returns.flip({1}).cumsum(1).flip({1});  // sum of returns from day t on
    const at::Tensor log_relative = at::cat({after.neg(), at::zeros_like(after.narrow(1, 0, 1))}, 1);
    at::Tensor level = at::full({x.size(0), 1, x.size(2)}, 100.0, at::kDouble);
    level.select(2, 0).copy_(forecast.last_value.reshape({-1, 1}));
    ref.inputs = {{"prices", log_relative.exp() * level}};
    ref.outputs = {{"price", forecast.to_price(batched(forward, x, 256)).reshape({-1, 1})}};
    ref.truth = forecast.true_value.to(at::kDouble).reshape({-1, 1});
    ref.from = fmt::format("{} test split ({} windows; prices rebuilt from the returns)", info.name, x.size(0));
    ref.real = true;
    return ref;
  }
  const std::string name = info.input_shape.size() == 3 ? "pixels" : "features";
  at::Tensor model_inputs;
  at::Tensor raw;
  if (data != nullptr) {
    model_inputs = data->test.dataset.inputs();
    ref.labels = data->test.dataset.targets();
    raw = model_inputs;
    if (!norm.is_null() && norm.contains("mean")) {
      raw = model_inputs * norm.at("std").get<double>() + norm.at("mean").get<double>();
    } else if (!norm.is_null() && norm.contains("scale")) {
      raw = model_inputs / norm.at("scale").get<double>();
    }
    ref.from = fmt::format("{} test split ({} samples)", info.name, model_inputs.size(0));
    ref.real = true;
  } else {
    auto generator = at::make_generator<at::CPUGeneratorImpl>(17);
    std::vector<std::int64_t> shape{options.largest_batch};
    shape.insert(shape.end(), info.input_shape.begin(), info.input_shape.end());
    raw = model_inputs = at::rand(shape, generator, at::kFloat);
    ref.from = fmt::format("{} random inputs in [0, 1) (no dataset: agreement only)", options.largest_batch);
  }
  ref.inputs = {{name, raw.to(at::kFloat).contiguous()}};
  ref.outputs = {{"logits", batched(forward, model_inputs, 256)}};
  return ref;
}

std::string metric_name(const Reference& ref, const std::string& architecture) {
  if (ref.truth.defined()) return "rmse";
  // Sentence embeddings of labelled reviews (the pretrained encoder): the labels score no embedding.
  if (ref.labels.defined() && ref.outputs.front().first != "embedding") return "accuracy";
  return architecture == "minilm" ? "cosine" : "";
}

double metric(const std::string& name, const at::Tensor& output, const Reference& ref) {
  if (name == "rmse") return (output - ref.truth).pow(2).mean().sqrt().item<double>();
  if (name == "accuracy") return output.argmax(1).eq(ref.labels.to(at::kLong)).to(at::kDouble).mean().item<double>();
  // cosine: the lowest cosine similarity between onnxruntime's and hone's rows
  const auto& hone = ref.outputs.front().second;
  return at::cosine_similarity(output, hone, 1, 1e-12).min().item<double>();
}

bool has_dtype(torch::nn::Module& model, at::ScalarType type) {
  for (const auto& p : model.parameters()) {
    if (p.scalar_type() == type) return true;
  }
  for (const auto& b : model.buffers()) {
    if (b.scalar_type() == type) return true;
  }
  return false;
}

std::string json_of(const std::vector<TensorSpec>& specs) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& s : specs) {
    nlohmann::json shape = nlohmann::json::array();
    for (const auto& d : s.shape) shape.push_back(d.value ? nlohmann::json(*d.value) : nlohmann::json(d.param));
    j.push_back({{"name", s.name}, {"type", data_type_name(s.type)}, {"shape", shape}, {"meaning", s.meaning}});
  }
  return j.dump();
}

fs::path make_scratch() {
  std::string pattern = (fs::temp_directory_path() / "hone-export-XXXXXX").string();
  HONE_CHECK(::mkdtemp(pattern.data()) != nullptr, "ONNX export: cannot create a temporary directory under {}",
             fs::temp_directory_path().string());
  return pattern;
}

struct ScratchDir {
  fs::path path = make_scratch();
  ~ScratchDir() { remove_tree(path); }
};

void verify(const ExportOptions& options, const Reference& ref, const std::string& model_bytes, models::Model& model,
            ExportReport& report) {
  ScratchDir scratch;
  const auto model_path = scratch.path / "model.onnx";
  write_file_atomic(model_path, model_bytes);
  const auto rows = ref.inputs.front().second.size(0);
  std::vector<std::pair<std::string, std::int64_t>> cases;  // name, rows (a prefix of the split)
  for (const std::int64_t b : {std::int64_t{1}, std::int64_t{7}, options.largest_batch}) {
    if (b <= rows) cases.emplace_back(fmt::format("batch {}", b), b);
  }
  if (ref.real || cases.empty()) cases.emplace_back(fmt::format("test split ({})", rows), rows);
  io::NamedTensors tensors;
  nlohmann::json names = nlohmann::json::array();
  for (const auto& [name, count] : cases) {
    names.push_back(name);
    for (const auto& [input, tensor] : ref.inputs)
      tensors.emplace_back(name + "/" + input, tensor.narrow(0, 0, count).contiguous());
  }
  io::save_safetensors(scratch.path / "inputs.safetensors", tensors, {{"cases", names.dump()}});
  const auto verifier = detail::run_verifier(detail::verifier_python(options.python), scratch.path, model_path,
                                             scratch.path / "inputs.safetensors", scratch.path / "outputs.safetensors",
                                             options.largest_batch);
  report.verified = true;
  const auto checker = verifier.value("checker", std::string("not run"));
  if (checker != "ok") {
    report.passed = false;
    report.notes.push_back("onnx checker: " + checker);
  }
  for (const auto& [level, ops] : verifier.at("fusion").items()) {
    for (const auto& [op, count] : ops.items()) report.fusion[level][op] = count.get<std::int64_t>();
  }
  const auto results = io::load_safetensors(scratch.path / "outputs.safetensors");
  report.metric = metric_name(ref, model.architecture());
  for (const auto& [name, count] : cases) {
    for (const auto& [output, hone] : ref.outputs) {
      const at::Tensor ort = results.at(name + "/" + output).to(at::kDouble);
      const at::Tensor expected = hone.narrow(0, 0, count);
      HONE_CHECK(ort.sizes() == expected.sizes(), "ONNX export: onnxruntime's '{}' for {} has shape {}, hone's {}",
                 output, name, ort.sizes(), expected.sizes());
      OutputCheck check;
      check.case_name = name;
      check.output = output;
      check.max_abs_error = (ort - expected).abs().max().item<double>();
      const double scale = expected.abs().max().item<double>();
      check.max_rel_error = scale > 0 ? check.max_abs_error / scale : check.max_abs_error;
      check.passed = std::isfinite(check.max_rel_error) && check.max_rel_error <= report.tolerance;
      report.passed = report.passed && check.passed;
      report.checks.push_back(check);
      if (count == rows && !report.metric.empty() && output == ref.outputs.front().first) {
        report.metric_onnxruntime = metric(report.metric, ort, ref);
        report.metric_hone = report.metric == "cosine" ? 1.0 : metric(report.metric, expected, ref);
      }
    }
  }
}

}  // namespace

std::vector<std::map<std::string, at::Tensor>> run_onnxruntime(const std::string& model_bytes,
                                                               const std::vector<NamedInputs>& cases,
                                                               const std::string& python) {
  ScratchDir scratch;
  const auto model_path = scratch.path / "model.onnx";
  write_file_atomic(model_path, model_bytes);
  io::NamedTensors tensors;
  nlohmann::json names = nlohmann::json::array();
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto name = "case" + std::to_string(i);
    names.push_back(name);
    for (const auto& [input, tensor] : cases[i]) tensors.emplace_back(name + "/" + input, tensor.contiguous());
  }
  io::save_safetensors(scratch.path / "inputs.safetensors", tensors, {{"cases", names.dump()}});
  detail::run_verifier(detail::verifier_python(python), scratch.path, model_path, scratch.path / "inputs.safetensors",
                       scratch.path / "outputs.safetensors", std::numeric_limits<std::int32_t>::max());
  const auto results = io::load_safetensors(scratch.path / "outputs.safetensors");
  std::vector<std::map<std::string, at::Tensor>> out(cases.size());
  for (const auto& [name, tensor] : results.tensors) {
    const auto slash = name.find('/');
    out.at(std::stoul(name.substr(4, slash - 4)))[name.substr(slash + 1)] = tensor.clone();
  }
  return out;
}

ExportReport export_model(const ExportOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  HONE_CHECK(!options.output.empty(), "ONNX export: no output file given");
  HONE_CHECK(options.largest_batch >= 1, "ONNX export: the largest verified batch must be >= 1, got {}",
             options.largest_batch);
  ExportReport report;
  report.target = options.target;
  report.output = options.output.string();
  report.tolerance = options.dtype == "fp16" ? kExportFp16Relative : kExportFp32Relative;

  runtime::ModelTarget target = runtime::load_target(options.target, options.seq_len);
  models::Model& model = *target.model;
  model.to(at::kCPU);
  model.eval();

  // The dataset the model was trained on (a run's own, a zoo model's default), when it is real.
  std::optional<data::LoadedData> data;
  std::error_code ec;
  if (fs::is_directory(options.target, ec)) {
    const auto config = run::load_run_config(options.target);
    if (data::is_dataset(config.dataset)) data = data::load_dataset(config.dataset, config.data_options);
  } else if (data::is_dataset(target.info.name)) {
    data = data::load_dataset(target.info.name);
  }
  nlohmann::json norm;
  if (data && data->provenance.contains("normalization")) norm = data->provenance.at("normalization");

  if (has_dtype(model, at::kBFloat16)) {
    report.notes.push_back(
        fmt::format("bf16 weights exported as {} (onnxruntime's CPU has no bf16 MatMul)", options.dtype));
  }
  if (has_dtype(model, at::kHalf) && options.dtype == "fp32") report.notes.push_back("fp16 weights widened to fp32");
  const bool int8 = has_dtype(model, at::kChar);
  if (int8) {
    report.tolerance = kExportInt8Relative;
    report.notes.push_back(
        "int8 layers exported as ONNX int8 ops: static ones as QDQ (QuantizeLinear/DequantizeLinear, per-channel "
        "int8 weights, int32 biases), dynamic Linears as DynamicQuantizeLinear + MatMulInteger, int8 LSTMs as the "
        "float LSTM op on its int8 weights through DequantizeLinear");
  }
  if (has_dtype(model, at::kBFloat16) || has_dtype(model, at::kHalf)) {
    // hone computes those layers in 16 bits, the export in its own dtype: 16-bit agreement at best.
    report.tolerance = std::max(report.tolerance, kExportFp16Relative);
  }

  LowerOptions lower;
  lower.opset = options.opset;
  lower.dtype = options.dtype;
  lower.batch_size = options.batch_size;
  lower.normalization = norm;
  lower.graph_name = "hone_" + model.architecture();
  LoweredModel lowered = lower_model(model, target.info, lower);  // throws before anything is written
  report.inputs = lowered.inputs;
  report.outputs = lowered.outputs;
  report.nodes = static_cast<std::int64_t>(lowered.model.graph.node.size());

  auto& meta = lowered.model.metadata_props;
  const auto set = [&](const std::string& key, std::string value) { meta.push_back({key, std::move(value)}); };
  set("hone.version", HONE_VERSION);
  set("hone.source", options.target);
  set("hone.architecture", model.architecture());
  set("hone.dataset", target.info.name);
  set("hone.inputs", json_of(lowered.inputs));
  set("hone.outputs", json_of(lowered.outputs));
  if (!target.info.class_names.empty()) set("hone.labels", nlohmann::json(target.info.class_names).dump());
  if (!norm.is_null()) set("hone.normalization", norm.dump());
  set("hone.dtype", options.dtype);

  if (options.verify) {
    HONE_CHECK(options.batch_size == 0,
               "ONNX export: verification needs a dynamic batch axis (the export is fixed at {})", options.batch_size);
    const Reference ref = make_reference(model, target.info, data ? &*data : nullptr, norm, options);
    report.inputs_from = ref.from;
    verify(options, ref, serialize(lowered.model), model, report);
    if (int8 && report.metric == "accuracy" &&
        std::abs(report.metric_hone - report.metric_onnxruntime) * 100 > kExportInt8AccuracyPoints) {
      report.passed = false;
      report.notes.push_back(
          fmt::format("int8: onnxruntime's accuracy is more than {} points from hone's", kExportInt8AccuracyPoints));
    }
    nlohmann::json figures = nlohmann::json::object();
    for (const auto& c : report.checks) {
      figures[c.case_name + "/" + c.output] = {{"max_abs", c.max_abs_error}, {"max_rel", c.max_rel_error}};
    }
    set("hone.verification", nlohmann::json{{"onnxruntime_vs_hone", figures},
                                            {"inputs", ref.from},
                                            {"metric", report.metric},
                                            {"metric_hone", report.metric_hone},
                                            {"metric_onnxruntime", report.metric_onnxruntime},
                                            {"tolerance", report.tolerance}}
                                 .dump());
  }
  if (!report.passed) {
    // Nothing at `output` may pass for this export: an earlier file of that name goes too.
    fs::remove(options.output, ec);
  } else {
    const std::string bytes = serialize(lowered.model);
    write_file_atomic(options.output, bytes);
    report.file_bytes = static_cast<std::int64_t>(bytes.size());
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return report;
}

nlohmann::json ExportReport::to_json() const {
  nlohmann::json checks_json = nlohmann::json::array();
  for (const auto& c : checks) {
    checks_json.push_back({{"case", c.case_name},
                           {"output", c.output},
                           {"max_abs_error", c.max_abs_error},
                           {"max_rel_error", c.max_rel_error},
                           {"passed", c.passed}});
  }
  return {{"target", target},
          {"output", output},
          {"written", passed},
          {"file_bytes", file_bytes},
          {"nodes", nodes},
          {"inputs", nlohmann::json::parse(json_of(inputs))},
          {"outputs", nlohmann::json::parse(json_of(outputs))},
          {"notes", notes},
          {"verified", verified},
          {"passed", passed},
          {"verification_inputs", inputs_from},
          {"tolerance", tolerance},
          {"checks", checks_json},
          {"metric", metric},
          {"metric_hone", metric_hone},
          {"metric_onnxruntime", metric_onnxruntime},
          {"fusion", fusion},
          {"seconds", seconds}};
}

std::string ExportReport::to_text() const {
  std::string out = fmt::format("{} -> {}: {} nodes, {:.1f} KiB{}\n", target, output, nodes, file_bytes / 1024.0,
                                passed ? "" : " (NOT written)");
  for (const auto& s : inputs) out += fmt::format("  input  {} {}: {}\n", s.name, data_type_name(s.type), s.meaning);
  for (const auto& s : outputs) out += fmt::format("  output {} {}: {}\n", s.name, data_type_name(s.type), s.meaning);
  for (const auto& n : notes) out += "  note: " + n + "\n";
  if (!verified) return out + "  not verified\n";
  out += fmt::format("onnxruntime vs hone on {} (tolerance {:g} relative):\n", inputs_from, tolerance);
  for (const auto& c : checks) {
    out += fmt::format("  {:<20} {:<10} max abs {:.3g}  max rel {:.3g}  {}\n", c.case_name, c.output, c.max_abs_error,
                       c.max_rel_error, c.passed ? "ok" : "BEYOND TOLERANCE");
  }
  if (!metric.empty()) {
    out += metric == "cosine"
               ? fmt::format("  cosine(onnxruntime, hone) lowest {:.7f}\n", metric_onnxruntime)
               : fmt::format("  {}: hone {:.6g}  onnxruntime {:.6g}\n", metric, metric_hone, metric_onnxruntime);
  }
  out += "onnxruntime's optimized graph (fusion report):\n";
  for (const char* level : {"basic", "extended", "all"}) {
    const auto it = fusion.find(level);
    if (it == fusion.end()) continue;
    const auto& ops = it->second;
    std::vector<std::string> parts;
    for (const auto& [op, count] : ops) parts.push_back(fmt::format("{} {}", op, count));
    out += fmt::format("  {:<9} {}\n", level, fmt::join(parts, ", "));
  }
  out += fmt::format("{} in {:.1f} s\n", passed ? "verified" : "FAILED verification: no file written", seconds);
  return out;
}

}  // namespace hone::onnx
