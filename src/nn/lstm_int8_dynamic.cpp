#include "hone/nn/lstm_int8_dynamic.h"

#include <ATen/ATen.h>
#include <ATen/core/List.h>
#include <torch/utils.h>

#include <string>

#include "hone/core/error.h"

namespace hone::nn {

// As PyTorch's dynamic LSTM: 7-bit activations, which fbgemm's AVX2 path cannot saturate.
constexpr bool kReduceRange = true;

LstmInt8DynamicImpl::LstmInt8DynamicImpl(std::int64_t input_size, std::int64_t hidden_size, std::int64_t num_layers,
                                         bool per_channel)
    : input_size_(input_size), hidden_size_(hidden_size), num_layers_(num_layers), per_channel_(per_channel) {
  HONE_CHECK(input_size > 0 && hidden_size > 0 && num_layers > 0,
             "lstm_int8_dynamic: sizes must be positive, got input {}, hidden {}, layers {}", input_size, hidden_size,
             num_layers);
  for (std::int64_t k = 0; k < num_layers; ++k) {
    const auto suffix = "_l" + std::to_string(k);
    const auto in = k == 0 ? input_size : hidden_size;
    LayerWeights layer;
    layer.weight_ih = register_int8_weight(*this, "weight_ih" + suffix, {4 * hidden_size, in}, per_channel);
    layer.weight_hh = register_int8_weight(*this, "weight_hh" + suffix, {4 * hidden_size, hidden_size}, per_channel);
    layer.bias_ih = register_buffer("bias_ih" + suffix, at::zeros({4 * hidden_size}, at::kFloat));
    layer.bias_hh = register_buffer("bias_hh" + suffix, at::zeros({4 * hidden_size}, at::kFloat));
    layers_.push_back(std::move(layer));
  }
  repack();
}

std::shared_ptr<LstmInt8DynamicImpl> LstmInt8DynamicImpl::from_float(const torch::nn::LSTMImpl& lstm,
                                                                     bool per_channel) {
  const auto& options = lstm.options;
  HONE_CHECK(options.batch_first() && !options.bidirectional() && options.bias() && options.proj_size() == 0,
             "lstm_int8_dynamic supports batch_first, unidirectional LSTMs with biases and no projection");
  auto layer = std::make_shared<LstmInt8DynamicImpl>(options.input_size(), options.hidden_size(), options.num_layers(),
                                                     per_channel);
  const auto parameters = lstm.named_parameters(/*recurse=*/false);
  torch::NoGradGuard no_grad;
  for (std::int64_t k = 0; k < options.num_layers(); ++k) {
    const auto suffix = "_l" + std::to_string(k);
    auto& target = layer->layers_[k];
    assign_int8_weight(target.weight_ih, quantize_weight_int8(parameters["weight_ih" + suffix], per_channel));
    assign_int8_weight(target.weight_hh, quantize_weight_int8(parameters["weight_hh" + suffix], per_channel));
    target.bias_ih.copy_(parameters["bias_ih" + suffix]);
    target.bias_hh.copy_(parameters["bias_hh" + suffix]);
  }
  layer->repack();
  return layer;
}

void LstmInt8DynamicImpl::repack() {
  std::vector<c10::IValue> cells;
  for (const auto& layer : layers_) {
    const auto bias_ih = layer.bias_ih.to(at::kFloat).contiguous();
    const auto bias_hh = layer.bias_hh.to(at::kFloat).contiguous();
    auto packed_ih = call_op("quantized::linear_prepack", "", {to_qint8(layer.weight_ih, per_channel_), bias_ih});
    auto packed_hh = call_op("quantized::linear_prepack", "", {to_qint8(layer.weight_hh, per_channel_), bias_hh});
    cells.push_back(call_op("quantized::make_quantized_cell_params_dynamic", "",
                            {packed_ih.at(0), packed_hh.at(0), bias_ih, bias_hh, kReduceRange})
                        .at(0));
  }
  // The list's element type is the CellParamsBase class the operator returned.
  c10::impl::GenericList list(cells.front().type());
  for (auto& cell : cells) list.push_back(std::move(cell));
  params_ = c10::IValue(std::move(list));
}

torch::Tensor LstmInt8DynamicImpl::forward(const torch::Tensor& x) {
  HONE_CHECK(x.dim() == 3 && x.size(2) == input_size_, "lstm_int8_dynamic: expected input [B, T, {}], got {}",
             input_size_, x.sizes());
  const auto input = (x.is_quantized() ? x.dequantize() : x).to(at::kFloat).contiguous();
  const auto state = at::zeros({num_layers_, input.size(0), hidden_size_}, input.options());
  const c10::List<at::Tensor> hx({state, state});
  auto outputs = call_op("aten::quantized_lstm", "input",
                         {input, hx, params_, /*has_biases=*/true, num_layers_, /*dropout=*/0.0, /*train=*/false,
                          /*bidirectional=*/false, /*batch_first=*/true, /*dtype=*/at::kQInt8,
                          /*use_dynamic=*/true});
  return outputs.at(0).toTensor().to(x.is_quantized() ? at::kFloat : x.scalar_type());
}

nlohmann::json LstmInt8DynamicImpl::spec() const {
  return {{"kind", "lstm_int8_dynamic"},
          {"input_size", input_size_},
          {"hidden_size", hidden_size_},
          {"num_layers", num_layers_},
          {"per_channel", per_channel_}};
}

LayerKind lstm_int8_dynamic_kind() {
  return {"lstm_int8_dynamic", [](const nlohmann::json& spec) {
            return make_layer(LstmInt8Dynamic(spec_int(spec, "input_size"), spec_int(spec, "hidden_size"),
                                              spec_int(spec, "num_layers"), spec_bool(spec, "per_channel")));
          }};
}

}  // namespace hone::nn
