#pragma once
/// @file `hone export`: a hone model (a zoo model or a run directory, compressed runs included) as
/// an ONNX file that takes what a user has — pixel values in [0, 1], raw feature values, token ids
/// with an attention mask, or windows of raw prices — because the normalization hone's loader
/// applies is part of the graph; and, unless told not to, proved equal to hone by onnxruntime on
/// the run's real test split (docs/export.md).
///
/// Use:
/// @code
///   hone::onnx::ExportOptions options;
///   options.target = "runs/cnn";            // or a zoo name: "cnn", "minilm"...
///   options.output = "cnn.onnx";
///   hone::onnx::ExportReport report = hone::onnx::export_model(options);
///   // report.passed: every output within tolerance at batch 1, 7, 256 and on the whole test split
/// @endcode
///
/// What is lowered how (one ONNX node per layer where ONNX has the op): Linear -> Gemm (rank 2) or
/// MatMul + Add; Conv2d -> Conv; BatchNorm2d -> BatchNormalization (onnxruntime folds it into the
/// conv); ReLU/ReLU6/GELU/Tanh -> Relu/Clip/Gelu/Tanh; LayerNorm -> LayerNormalization; global
/// average pooling -> GlobalAveragePool; attention -> MatMul, Softmax, MatMul (opsets 20-22) or
/// ONNX's Attention op (opsets 23-25, the padding mask as its bool attn_mask); LSTM ->
/// one LSTM node per layer in ONNX's gate order (i, o, f, c), batch-first through transposes.
/// Compressed layers lower to their float math: conv/linear + ReLU fused -> the op then Relu;
/// low-rank -> two products; sketched Linear -> the two products of its packed factors; pruned and
/// 2:4 -> the dense weight (its zeros kept); fp16/bf16/weight-only weights -> widened to the
/// export's dtype; int8 static (Conv2d, Linear, residual add) -> QDQ: QuantizeLinear /
/// DequantizeLinear pairs around float ops, int8 weights per output channel on axis 0, int32 bias at
/// input scale x weight scale, which onnxruntime fuses into QLinearConv / QGemm / QLinearAdd; int8
/// dynamic Linear -> DynamicQuantizeLinear + MatMulInteger; int8 dynamic LSTM -> the float LSTM op
/// on the dequantized weights. A layer with no lowering (sketched Conv2d, Performer attention) is a
/// hone::Error naming its path and kind, and nothing is written.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hone/data/dataset_info.h"
#include "hone/export/onnx_proto.h"
#include "hone/models/model.h"

namespace hone::onnx {

/// The export's own tolerances, by dtype (relative: max |ort - hone| / max |hone| per output):
/// fp32 is the same math in other kernels; fp16 rounds weights and activations to 11 bits.
inline constexpr double kExportFp32Relative = 1e-5;
inline constexpr double kExportFp16Relative = 2e-2;
/// int8 static runs (exported as QDQ): onnxruntime's int8 kernels round some values one
/// quantization step away from LibTorch's (each step ~0.4 % of a tensor's range), so outputs agree
/// to a few steps, and the task metric must agree too: accuracy within this many points.
inline constexpr double kExportInt8Relative = 5e-2;
inline constexpr double kExportInt8AccuracyPoints = 0.3;

/// The default-domain opsets hone lowers to: from 20 (Gelu and LayerNormalization are ops) to 25,
/// the newest the venv's onnxruntime (1.32) runs; attention becomes ONNX's Attention op at 23.
inline constexpr std::int64_t kMinOpset = 20;
inline constexpr std::int64_t kMaxOpset = 25;

/// How a model is lowered.
struct LowerOptions {
  std::int64_t opset = 20;      ///< default-domain opset, kMinOpset..kMaxOpset
  std::string dtype = "fp32";   ///< fp32 | fp16 (weights and compute; Casts at the graph's edges)
  std::int64_t batch_size = 0;  ///< 0: a dynamic batch axis ("batch"); > 0: fixed
  /// The loader's normalization (a dataset's provenance["normalization"]: {mean, std}, {scale} or
  /// the forecasting {feature_mean, feature_std, target_mean, target_std}); null: none.
  nlohmann::json normalization;
  std::string graph_name = "hone";
};

/// A graph input or output as a user sees it.
struct TensorSpec {
  std::string name;
  DataType type = DataType::kFloat;
  std::vector<Dimension> shape;
  std::string meaning;  ///< e.g. "pixel values in [0, 1]"
};

struct LoweredModel {
  ModelProto model;
  std::vector<TensorSpec> inputs, outputs;
};

/// The ONNX graph of `model` (in eval mode) for inputs described by `info`. Throws hone::Error
/// naming the layer path and kind of a layer that cannot be lowered.
LoweredModel lower_model(models::Model& model, const data::DatasetInfo& info, const LowerOptions& options = {});

/// The PyTorch LSTM gate blocks (i, f, g, o) of a [4H, ...] tensor in ONNX's order (i, o, f, c).
at::Tensor lstm_gates_to_onnx(const at::Tensor& pytorch_gates);

/// Graph input name -> tensor, in the graph's input order or any.
using NamedInputs = std::vector<std::pair<std::string, at::Tensor>>;

/// Runs an ONNX model (its serialized bytes) in onnxruntime on the CPU once per input set and
/// returns each set's outputs by name (what export's verification does, for tests and peers).
/// Throws hone::Error with onnxruntime's message when it rejects the model. `python` as in
/// ExportOptions.
std::vector<std::map<std::string, at::Tensor>> run_onnxruntime(const std::string& model_bytes,
                                                               const std::vector<NamedInputs>& cases,
                                                               const std::string& python = {});

/// `hone export`'s options (the CLI fills these).
struct ExportOptions {
  std::string target;            ///< a run directory or a zoo name
  std::filesystem::path output;  ///< the .onnx file to write
  std::int64_t opset = 20;
  std::string dtype = "fp32";   ///< fp32 | fp16 (a bf16 run exports as either, and says so)
  std::int64_t batch_size = 0;  ///< 0: dynamic batch axis
  bool verify = true;           ///< run onnxruntime on the real test split and compare
  std::int64_t seq_len = 128;   ///< zoo text models: tokens per random verification sample
  std::int64_t largest_batch = 256;
  std::string python;  ///< empty: $HONE_PYTHON, else the venv found at configure time
};

/// One output's agreement between onnxruntime and hone on one set of inputs.
struct OutputCheck {
  std::string case_name;  ///< "batch 1", "batch 7", "batch 256", "test split (10000)"
  std::string output;
  double max_abs_error = 0;
  double max_rel_error = 0;  ///< max |ort - hone| / max |hone|
  bool passed = false;
};

struct ExportReport {
  std::string target, output;
  std::string inputs_from;  ///< "fashion-mnist test split", or random inputs (labelled)
  std::vector<TensorSpec> inputs, outputs;
  std::int64_t nodes = 0;
  std::int64_t file_bytes = 0;
  std::vector<std::string> notes;  ///< e.g. "bf16 weights widened to fp32"
  bool verified = false;
  bool passed = true;
  double tolerance = kExportFp32Relative;
  std::vector<OutputCheck> checks;
  std::string metric;  ///< accuracy | rmse | cosine (mean over samples)
  double metric_hone = 0, metric_onnxruntime = 0;
  /// onnxruntime's optimized graph at each level (basic, extended, all): op type -> count.
  std::map<std::string, std::map<std::string, std::int64_t>> fusion;
  double seconds = 0;
  nlohmann::json to_json() const;
  std::string to_text() const;
};

/// Lowers, writes `output` atomically, and (unless !verify) runs onnxruntime on it. A failed
/// verification leaves no file at `output` (report.passed = false, the caller exits 1); a
/// lowering error throws before anything is written.
ExportReport export_model(const ExportOptions& options);

}  // namespace hone::onnx
