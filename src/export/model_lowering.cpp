// The zoo's architectures as ONNX graphs: the graph's inputs (what a user has) and the loader's
// normalization, then each architecture's forward as hone runs it at inference, then the outputs
// (forecasts back in price units). Layers go through lower_layer, so a compressed slot lowers as
// whatever the pass put there.
#include <ATen/ATen.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <limits>

#include "hone/core/error.h"
#include "hone/export/export.h"
#include "hone/models/bert_encoder.h"
#include "hone/models/transformer_encoder.h"
#include "lowering.h"

namespace hone::onnx {
namespace {

using detail::lower_layer;
using detail::Lowering;
using detail::Value;

torch::nn::Module& child(torch::nn::Module& parent, const std::string& name, const std::string& path) {
  for (const auto& item : parent.named_children()) {
    if (item.key() == name) return *item.value();
  }
  fail("ONNX export: {} has no submodule '{}'", path.empty() ? "the model" : path, name);
}

torch::nn::Module* maybe_child(torch::nn::Module& parent, const std::string& name) {
  for (const auto& item : parent.named_children()) {
    if (item.key() == name) return item.value().get();
  }
  return nullptr;
}

/// The module in slot `name` of `parent` (an nn::Module), or its plain child of that name.
torch::nn::Module& slot(torch::nn::Module& parent, const std::string& name, const std::string& path) {
  if (auto* module = dynamic_cast<nn::Module*>(&parent)) {
    if (auto* s = module->find_layer(name)) return *s->module();
  }
  return child(parent, name, path);
}

std::string join(const std::string& path, const std::string& name) { return path.empty() ? name : path + "." + name; }

Value layer(Lowering& l, torch::nn::Module& parent, const std::string& path, const std::string& name, const Value& x) {
  return lower_layer(l, slot(parent, name, path), join(path, name), x);
}

Value add(Lowering& l, const Value& a, const Value& b, const std::string& hint) {
  return {l.op("Add", {a.name, b.name}, {}, hint), std::max(a.rank, b.rank)};
}

/// mean over H, W of [B, C, H, W] -> [B, C]
Value global_average_pool(Lowering& l, const Value& x, const std::string& path) {
  const std::string pooled = l.op("GlobalAveragePool", {x.name}, {}, path + ".pool");
  const Value flat{l.op("Flatten", {pooled}, {attribute_int("axis", 1)}, path + ".flatten"), 2};
  // The mean of a quint8 tensor is quint8 with the input's qparams (LibTorch's quantized mean).
  return x.quant ? detail::quantize_dequantize(l, flat, *x.quant, path + ".pool_output") : flat;
}

/// Multi-head attention: q [B, Tq, d], k and v [B, Tk, d] -> the heads joined, [B, Tq, d].
/// At opset >= 23 one ONNX Attention node (3-D inputs, q_num_heads = kv_num_heads = heads), with
/// `mask` as its attn_mask (empty: none; see key_mask); below, per-head Reshape/Transpose, MatMul,
/// Mul (1/sqrt(head_dim)), Add `mask` (an additive bias broadcasting to [B, heads, Tq, Tk]),
/// Softmax, MatMul.
Value attention(Lowering& l, const Value& q, const Value& k, const Value& v, const std::string& mask,
                std::int64_t heads, std::int64_t d_model, const std::string& path) {
  const auto head_dim = d_model / heads;
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  if (l.has_attention_op()) {
    std::vector<std::string> inputs{q.name, k.name, v.name};
    if (!mask.empty()) inputs.push_back(mask);
    return {l.op("Attention", std::move(inputs),
                 {attribute_int("q_num_heads", heads), attribute_int("kv_num_heads", heads),
                  attribute_float("scale", static_cast<float>(scale))},
                 path),
            3};
  }
  const auto split_shape = l.ints({0, 0, heads, head_dim}, path + ".split_shape");
  const auto split = [&](const Value& t, std::vector<std::int64_t> perm, const std::string& what) {
    const auto r = l.op("Reshape", {t.name, split_shape}, {}, path + "." + what + "_heads");
    return l.op("Transpose", {r}, {attribute_ints("perm", std::move(perm))}, path + "." + what + "_t");
  };
  const auto qh = split(q, {0, 2, 1, 3}, "q"), kh = split(k, {0, 2, 3, 1}, "k"), vh = split(v, {0, 2, 1, 3}, "v");
  std::string scores = l.op("MatMul", {qh, kh}, {}, path + ".scores");
  scores = l.op("Mul", {scores, l.scalar(scale, path + ".scale")}, {}, path + ".scaled");
  if (!mask.empty()) scores = l.op("Add", {scores, mask}, {}, path + ".masked");
  const auto weights = l.op("Softmax", {scores}, {attribute_int("axis", -1)}, path + ".softmax");
  const auto context = l.op("MatMul", {weights, vh}, {}, path + ".context");
  const auto joined = l.op("Transpose", {context}, {attribute_ints("perm", {0, 2, 1, 3})}, path + ".context_t");
  return {l.op("Reshape", {joined, l.ints({0, 0, d_model}, path + ".join_shape")}, {}, path + ".joined"), 3};
}

/// The attention mask of padded token sequences, from the graph's int64 `mask` [B, T] (1 = a real
/// token) and `keep` (it cast to the compute type). For the Attention op: bool, true where a key
/// may be attended, expanded to [B, 1, T, T] (onnxruntime 1.32's CPU Attention at opsets 23 and 24
/// rejects a mask broadcast over the query axis: "inconsistent q_sequence_length"). For MatMul /
/// Softmax: the additive bias, 0 where a key may be attended and the dtype's lowest finite value
/// where it is padding, [B, 1, 1, T] (what hone adds).
std::string key_mask(Lowering& l, const std::string& mask, const std::string& keep, const std::string& length) {
  if (l.has_attention_op()) {
    const auto attend =
        l.op("Cast", {mask}, {attribute_int("to", static_cast<std::int64_t>(DataType::kBool))}, "attend");
    const auto keys = l.op("Unsqueeze", {attend, l.ints({1, 2}, "head_query_axes")}, {}, "attend_keys");
    const auto queries = l.op("Concat", {l.ints({1, 1}, "batch_head_ones"), length, l.ints({1}, "key_one")},
                              {attribute_int("axis", 0)}, "query_expansion");
    return l.op("Expand", {keys, queries}, {}, "attention_mask");
  }
  const double lowest = l.compute() == DataType::kFloat16 ? -65504.0 : std::numeric_limits<float>::lowest();
  const auto padding = l.op("Sub", {l.scalar(1.0, "one"), keep}, {}, "padding");
  const auto bias_2d = l.op("Mul", {padding, l.scalar(lowest, "lowest")}, {}, "bias_2d");
  return l.op("Unsqueeze", {bias_2d, l.ints({1, 2}, "head_query_axes")}, {}, "attention_bias");
}

/// One TransformerEncoderLayer (pre- or post-LN) on x [B, T, d].
Value encoder_layer(Lowering& l, torch::nn::Module& module, const std::string& path, const Value& x,
                    const std::string& mask) {
  auto* encoder = dynamic_cast<models::TransformerEncoderLayerImpl*>(&module);
  HONE_CHECK(encoder != nullptr, "ONNX export: {}: expected a transformer encoder layer, got {}", path, module.name());
  const auto& config = encoder->config();
  const auto self_attention = [&](const Value& h) {
    const Value q = layer(l, module, path, "query", h), k = layer(l, module, path, "key", h),
                v = layer(l, module, path, "value", h);
    const Value context = attention(l, q, k, v, mask, config.num_heads, config.d_model, path + ".attention");
    return layer(l, module, path, "attention_output", context);
  };
  const auto feed_forward = [&](const Value& h) {
    Value hidden = layer(l, module, path, "intermediate", h);
    hidden = {config.activation == "gelu"
                  ? l.op("Gelu", {hidden.name}, {attribute_string("approximate", "none")}, path + ".gelu")
                  : l.op("Relu", {hidden.name}, {}, path + ".relu"),
              hidden.rank};
    return layer(l, module, path, "output", hidden);
  };
  const auto norm = [&](const std::string& name, const Value& h) {
    return detail::lower_layer_norm(l, child(module, name, path), join(path, name), h);
  };
  if (config.norm_first) {
    const Value y = add(l, x, self_attention(norm("attention_norm", x)), path + ".residual1");
    return add(l, y, feed_forward(norm("output_norm", y)), path + ".residual2");
  }
  const Value y = norm("attention_norm", add(l, x, self_attention(x), path + ".residual1"));
  return norm("output_norm", add(l, y, feed_forward(y), path + ".residual2"));
}

/// The ResNet basic block: every slot but the add in order, the shortcut, then the join.
Value residual_block(Lowering& l, nn::Module& block, const std::string& path, const Value& x) {
  Value y = x;
  nn::ResidualAddImpl* join_layer = nullptr;
  for (const auto& [name, s] : block.layers()) {
    if (auto* add_layer = s->as<nn::ResidualAddImpl>()) {
      join_layer = add_layer;
      continue;
    }
    y = lower_layer(l, *s->module(), join(path, name), y);
  }
  HONE_CHECK(join_layer != nullptr, "ONNX export: {}: the block has no residual add (kind {})", path,
             block.layers().back().second->module()->name());
  Value shortcut = x;
  if (auto* chain = maybe_child(block, "shortcut")) shortcut = lower_layer(l, *chain, join(path, "shortcut"), x);
  return detail::lower_residual_add(l, *join_layer, join_layer->relu(), path + ".add", y, shortcut);
}

Value lower_cnn(Lowering& l, models::Model& model, const Value& input, bool mobilenet) {
  auto& features = dynamic_cast<nn::ChainImpl&>(child(model, "features", ""));
  Value x = input;
  const std::size_t stem = 3;
  std::size_t index = 0;
  for (const auto& [name, s] : features.layers()) {
    const auto path = "features." + name;
    if (index++ < stem) {
      x = lower_layer(l, *s->module(), path, x);
    } else if (mobilenet) {
      auto& block = *s->module();
      const auto relu6 = [&](const Value& v, const std::string& what) {
        return Value{
            l.op("Clip", {v.name, l.scalar(0.0, path + ".zero"), l.scalar(6.0, path + ".six")}, {}, path + "." + what),
            4};
      };
      x = layer(l, block, path, "depthwise", x);
      x = relu6(layer(l, block, path, "depthwise_norm", x), "depthwise_relu6");
      x = layer(l, block, path, "pointwise", x);
      x = relu6(layer(l, block, path, "pointwise_norm", x), "pointwise_relu6");
    } else {
      auto* block = dynamic_cast<nn::Module*>(s->module().get());
      HONE_CHECK(block != nullptr, "ONNX export: {}: expected a residual block, got {}", path, s->module()->name());
      x = residual_block(l, *block, path, x);
    }
  }
  x = global_average_pool(l, x, "features");
  x = layer(l, model, "", "dropout", x);
  return layer(l, model, "", "classifier", x);
}

Value lower_mlp(Lowering& l, models::Model& model, const Value& input) {
  const Value flat{l.op("Flatten", {input.name}, {attribute_int("axis", 1)}, "flatten"), 2};
  return lower_layer(l, child(model, "layers", ""), "layers", flat);
}

Value lower_transformer(Lowering& l, models::Model& model, const Value& input) {
  const auto config = model.config();
  const auto shape = config.at("input_shape").get<std::vector<std::int64_t>>();
  Value tokens = input;
  if (shape.size() == 3) {  // [B, C, H, W] -> [B, H, C, W] -> [B, H, C*W]: each row is a token
    const auto t = l.op("Transpose", {input.name}, {attribute_ints("perm", {0, 2, 1, 3})}, "rows");
    tokens = {l.op("Reshape", {t, l.ints({0, shape[1], shape[0] * shape[2]}, "token_shape")}, {}, "tokens"), 3};
  }
  Value x = layer(l, model, "", "embed", tokens);
  const at::Tensor positions = model.named_parameters(/*recurse=*/false)["positions"];
  x = {l.op("Add", {x.name, l.weight(positions, "positions")}, {}, "embed_positions"), 3};
  auto& layers = child(model, "layers", "");
  std::size_t i = 0;
  for (const auto& item : layers.named_children()) {
    x = encoder_layer(l, *item.value(), "layers." + std::to_string(i++), x, "");
  }
  x = {l.op("ReduceMean", {x.name, l.ints({1}, "token_axis")}, {attribute_int("keepdims", 0)}, "mean_tokens"), 2};
  x = detail::lower_layer_norm(l, child(model, "norm", ""), "norm", x);
  return layer(l, model, "", "head", x);
}

Value lower_lstm_forecaster(Lowering& l, models::Model& model, const Value& input) {
  Value last;
  detail::lower_lstm(l, slot(model, "lstm", ""), "lstm", input, &last);
  return layer(l, model, "", "head", last);
}

Value lower_attention_forecaster(Lowering& l, models::Model& model, const Value& input) {
  const auto config = model.config();
  const auto hidden_size = config.at("hidden_size").get<std::int64_t>();
  const auto heads = config.at("num_heads").get<std::int64_t>();
  Value last;
  const Value sequence = detail::lower_lstm(l, slot(model, "lstm", ""), "lstm", input, &last);
  const Value query_in{l.op("Unsqueeze", {last.name, l.ints({1}, "step_axis")}, {}, "last_step"), 3};
  const Value q = layer(l, model, "", "query", query_in), k = layer(l, model, "", "key", sequence),
              v = layer(l, model, "", "value", sequence);
  Value context = attention(l, q, k, v, "", heads, hidden_size, "attention");
  context = {l.op("Reshape", {context.name, l.ints({0, hidden_size}, "context_shape")}, {}, "context"), 2};
  const Value attended = layer(l, model, "", "attention_output", context);
  Value x{l.op("Concat", {attended.name, last.name}, {attribute_int("axis", 1)}, "attended_last"), 2};
  x = layer(l, model, "", "hidden", x);
  x.name = l.op("Relu", {x.name}, {}, "hidden_relu");
  return layer(l, model, "", "head", x);
}

/// MiniLM / BERT: token ids and the attention mask (int64, 1 = a real token) -> pooled output.
Value lower_bert(Lowering& l, models::BertEncoder& model, const std::string& ids, const std::string& mask) {
  const auto& config = model.bert_config();
  auto& embeddings = child(model, "embeddings", "");
  const auto table = [&](const std::string& name) {
    return dynamic_cast<torch::nn::EmbeddingImpl&>(child(embeddings, name, "embeddings")).weight;
  };
  const auto words = l.op("Gather", {l.weight(table("word"), "embeddings.word"), ids}, {}, "embeddings.words");
  // Positions 0..T-1 plus token type 0, added once and broadcast over the batch (as hone does).
  const auto length = l.op("Shape", {ids}, {attribute_int("start", 1), attribute_int("end", 2)}, "sequence_length");
  const auto positions = l.op(
      "Slice",
      {l.weight(table("position"), "embeddings.position"), l.ints({0}, "zero"), length, l.ints({0}, "position_axis")},
      {}, "embeddings.positions");
  const auto type0 = table("token_type")[0];
  const auto offsets = l.op("Add", {positions, l.weight(type0, "embeddings.token_type0")}, {}, "embeddings.offsets");
  Value x{l.op("Add", {words, offsets}, {}, "embeddings.sum"), 3};
  x = detail::lower_layer_norm(l, child(embeddings, "norm", "embeddings"), "embeddings.norm", x);

  const auto keep = l.op("Cast", {mask}, {attribute_int("to", static_cast<std::int64_t>(l.compute()))}, "keep");
  const auto attention_mask = key_mask(l, mask, keep, length);
  auto& layers = child(model, "layers", "");
  std::size_t i = 0;
  for (const auto& item : layers.named_children()) {
    x = encoder_layer(l, *item.value(), "layers." + std::to_string(i++), x, attention_mask);
  }
  Value pooled;
  if (config.pooling == "cls") {
    pooled = {l.op("Gather", {x.name, l.constant(at::scalar_tensor(0, at::kLong), "cls_index")},
                   {attribute_int("axis", 1)}, "cls"),
              2};
  } else {  // sentence-transformers' mean pooling: sum of real tokens' states / max(count, 1e-9)
    const auto keep3 = l.op("Unsqueeze", {keep, l.ints({-1}, "feature_axis")}, {}, "keep3");
    const auto masked = l.op("Mul", {x.name, keep3}, {}, "masked_states");
    const auto axis = l.ints({1}, "sequence_axis");
    const auto sum = l.op("ReduceSum", {masked, axis}, {attribute_int("keepdims", 0)}, "state_sum");
    const auto count = l.op("ReduceSum", {keep3, axis}, {attribute_int("keepdims", 0)}, "token_count");
    const auto safe = l.op("Max", {count, l.scalar(1e-9, "min_count")}, {}, "safe_count");
    pooled = {l.op("Div", {sum, safe}, {}, "mean_pooled"), 2};
  }
  if (auto* head = maybe_child(model, "head")) return lower_layer(l, *head, "head", pooled);
  if (!config.normalize) return pooled;
  const auto norm =
      l.op("ReduceL2", {pooled.name, l.ints({1}, "embedding_axis")}, {attribute_int("keepdims", 1)}, "l2_norm");
  const auto safe = l.op("Max", {norm, l.scalar(1e-12, "min_norm")}, {}, "safe_norm");
  return {l.op("Div", {pooled.name, safe}, {}, "normalized"), 2};
}

std::vector<double> doubles(const nlohmann::json& j, const char* key) {
  return j.at(key).is_array() ? j.at(key).get<std::vector<double>>() : std::vector<double>{j.at(key).get<double>()};
}

/// The IR version onnx released with each opset (onnx.helper.VERSION_TABLE): 10 up to opset 22
/// (onnx 1.17), then 11, 12, 13 for opsets 23, 24, 25.
std::int64_t ir_version_for(std::int64_t opset) { return opset <= 22 ? 10 : opset - 12; }

Dimension batch_dim(const LowerOptions& options) {
  return options.batch_size > 0 ? Dimension(options.batch_size) : Dimension("batch");
}

}  // namespace

LoweredModel lower_model(models::Model& model, const data::DatasetInfo& info, const LowerOptions& options) {
  HONE_CHECK(options.dtype == "fp32" || options.dtype == "fp16", "ONNX export: dtype must be fp32 or fp16, got '{}'",
             options.dtype);
  HONE_CHECK(options.opset >= kMinOpset && options.opset <= kMaxOpset,
             "ONNX export: opset {} is outside {}..{} (Gelu needs opset >= {}; {} is the newest this lowering was "
             "checked at with the venv's onnxruntime)",
             options.opset, kMinOpset, kMaxOpset, kMinOpset, kMaxOpset);
  const DataType compute = options.dtype == "fp16" ? DataType::kFloat16 : DataType::kFloat;
  GraphBuilder graph(options.graph_name, options.opset);
  Lowering l(graph, compute, options.opset);
  LoweredModel lowered;
  model.eval();
  const auto arch = model.architecture();
  const auto& norm = options.normalization;
  const Dimension batch = batch_dim(options);
  const auto to_compute = [&](const std::string& v, const std::string& hint) {
    return compute == DataType::kFloat
               ? v
               : l.op("Cast", {v}, {attribute_int("to", static_cast<std::int64_t>(compute))}, hint);
  };
  const auto to_float = [&](const Value& v) {
    return compute == DataType::kFloat
               ? v.name
               : l.op("Cast", {v.name}, {attribute_int("to", static_cast<std::int64_t>(DataType::kFloat))}, "to_float");
  };

  Value result;
  std::string output_meaning;
  if (arch == "minilm") {
    auto& bert = dynamic_cast<models::BertEncoder&>(model);
    const std::vector<Dimension> shape{batch, "sequence"};
    graph.add_input("input_ids", DataType::kInt64, shape);
    graph.add_input("attention_mask", DataType::kInt64, shape);
    lowered.inputs = {{"input_ids", DataType::kInt64, shape, "WordPiece token ids ([CLS] ... [SEP], padded)"},
                      {"attention_mask", DataType::kInt64, shape, "1 for a real token, 0 for padding"}};
    result = lower_bert(l, bert, "input_ids", "attention_mask");
    const bool classifier = bert.bert_config().num_classes > 0;
    const std::string name = classifier ? "logits" : "embedding";
    const auto width = classifier ? bert.bert_config().num_classes : bert.bert_config().hidden_size;
    graph.add_node("Identity", {to_float(result)}, {name}, {}, "output");
    graph.add_output(name, DataType::kFloat, {batch, width});
    lowered.outputs = {
        {name,
         DataType::kFloat,
         {batch, width},
         classifier ? "class logits"
                    : (bert.bert_config().normalize ? "L2-normalized sentence embedding" : "sentence embedding")}};
  } else if (info.task == data::TaskKind::kForecasting) {
    // Raw prices in, prices out: [B, window + 1, series] float64 -> log-returns -> the loader's
    // normalization -> the model -> next-day price of series 0 = last price * exp(prediction).
    HONE_CHECK(info.input_shape.size() == 2, "ONNX export: forecasting inputs must be [T, F], got {} dims",
               info.input_shape.size());
    const auto window = info.input_shape[0], series = info.input_shape[1];
    const std::vector<Dimension> shape{batch, window + 1, series};
    graph.add_input("prices", DataType::kDouble, shape);
    lowered.inputs = {
        {"prices", DataType::kDouble, shape, "the last window+1 daily prices of each series (oldest first), positive"}};
    const auto axis = l.ints({1}, "time_axis");
    const auto later =
        l.op("Slice", {"prices", l.ints({1}, "from_1"), l.ints({window + 1}, "to_end"), axis}, {}, "later_prices");
    const auto earlier =
        l.op("Slice", {"prices", l.ints({0}, "from_0"), l.ints({window}, "to_window"), axis}, {}, "earlier_prices");
    std::string returns = l.op("Log", {l.op("Div", {later, earlier}, {}, "ratios")}, {}, "log_returns");
    std::string target_mean = "", target_std = "";
    if (!norm.is_null()) {
      const auto mean = at::tensor(doubles(norm, "feature_mean"), at::kDouble);
      const auto std = at::tensor(doubles(norm, "feature_std"), at::kDouble);
      returns = l.op("Sub", {returns, l.constant(mean, "feature_mean")}, {}, "centered");
      returns = l.op("Div", {returns, l.constant(std, "feature_std")}, {}, "normalized");
      target_mean = l.constant(at::scalar_tensor(norm.at("target_mean").get<double>(), at::kDouble), "target_mean");
      target_std = l.constant(at::scalar_tensor(norm.at("target_std").get<double>(), at::kDouble), "target_std");
    }
    const auto input =
        l.op("Cast", {returns}, {attribute_int("to", static_cast<std::int64_t>(compute))}, "model_input");
    const Value prediction = arch == "lstm"          ? lower_lstm_forecaster(l, model, {input, 3})
                             : arch == "attention"   ? lower_attention_forecaster(l, model, {input, 3})
                             : arch == "transformer" ? lower_transformer(l, model, {input, 3})
                             : arch == "mlp"         ? lower_mlp(l, model, {input, 3})
                                                     : Value{};
    HONE_CHECK(!prediction.name.empty(), "ONNX export: architecture '{}' has no lowering for forecasting", arch);
    std::string p = l.op("Cast", {prediction.name}, {attribute_int("to", static_cast<std::int64_t>(DataType::kDouble))},
                         "prediction");
    if (!target_std.empty()) {
      p = l.op("Add", {l.op("Mul", {p, target_std}, {}, "scaled"), target_mean}, {}, "log_return");
    }
    const auto last = l.op("Slice", {"prices", l.ints({window}, "last_day"), l.ints({window + 1}, "after_last"), axis},
                           {}, "last_prices");
    const auto last_target = l.op("Gather", {last, l.constant(at::tensor(std::vector<std::int64_t>{0}), "series0")},
                                  {attribute_int("axis", 2)}, "last_target");  // [B, 1, 1]
    const auto flat_last = l.op("Reshape", {last_target, l.ints({0, 1}, "last_shape")}, {}, "last_price");
    const auto outputs = info.num_outputs;
    graph.add_node("Mul", {flat_last, l.op("Exp", {p}, {}, "growth")}, {"price"}, {}, "price");
    graph.add_output("price", DataType::kDouble, {batch, outputs});
    lowered.outputs = {{"price", DataType::kDouble, {batch, outputs}, "next-day price of series 0"}};
  } else {
    std::vector<Dimension> shape{batch};
    for (const auto size : info.input_shape) shape.emplace_back(size);
    const bool images = info.input_shape.size() == 3;
    const std::string name = images ? "pixels" : "features";
    graph.add_input(name, DataType::kFloat, shape);
    std::string meaning = images ? "pixel values in [0, 1]" : "raw feature values";
    std::string x = name;
    if (!norm.is_null() && norm.contains("mean")) {
      x = l.op("Sub", {x, l.constant(at::scalar_tensor(norm.at("mean").get<double>(), at::kFloat), "mean")}, {},
               "centered");
      x = l.op("Div", {x, l.constant(at::scalar_tensor(norm.at("std").get<double>(), at::kFloat), "std")}, {},
               "normalized");
    } else if (!norm.is_null() && norm.contains("scale")) {
      x = l.op("Mul", {x, l.constant(at::scalar_tensor(norm.at("scale").get<double>(), at::kFloat), "scale")}, {},
               "scaled");
      const double scale = norm.at("scale").get<double>();
      meaning = fmt::format("raw {} values in [0, {:g}] (the loader's x * {:g} is in the graph)",
                            images ? "pixel" : "feature", 1.0 / scale, scale);
    }
    lowered.inputs = {{name, DataType::kFloat, shape, meaning}};
    const Value input{to_compute(x, "model_input"), static_cast<std::int64_t>(shape.size())};
    if (arch == "cnn" || arch == "mobilenet") {
      result = lower_cnn(l, model, input, arch == "mobilenet");
    } else if (arch == "mlp") {
      result = lower_mlp(l, model, input);
    } else if (arch == "transformer") {
      result = lower_transformer(l, model, input);
    } else {
      fail("ONNX export: architecture '{}' has no lowering for {} inputs of shape [{}]", arch,
           data::to_string(info.task), fmt::join(info.input_shape, ", "));
    }
    const auto classes = info.num_classes;
    graph.add_node("Identity", {to_float(result)}, {"logits"}, {}, "output");
    graph.add_output("logits", DataType::kFloat, {batch, classes});
    lowered.outputs = {{"logits", DataType::kFloat, {batch, classes}, "class logits (argmax = the predicted class)"}};
  }
  ModelInfo model_info;
  model_info.ir_version = ir_version_for(options.opset);
  model_info.producer_version = HONE_VERSION;
  lowered.model = graph.build_model(model_info);
  return lowered;
}

}  // namespace hone::onnx
