#pragma once
/// @file lstm_int8_dynamic: torch::nn::LSTM (batch_first, unidirectional, with biases) with int8
/// weights; each gate GEMM quantizes its input on the fly (at::quantized_lstm, use_dynamic).
/// Buffers keep LSTM's names: weight_ih_l{k} (+ _scale, _zero_point), weight_hh_l{k}, bias_ih_l{k},
/// bias_hh_l{k}. Spec: {"kind": "lstm_int8_dynamic", "input_size", "hidden_size", "num_layers",
/// "per_channel": bool}.
#include <ATen/core/ivalue.h>
#include <torch/nn/modules/rnn.h>
#include <torch/nn/pimpl.h>

#include <nlohmann/json.hpp>

#include <vector>

#include "hone/nn/layer_kinds.h"
#include "hone/nn/quantized_weight.h"

namespace hone::nn {

class LstmInt8DynamicImpl : public torch::nn::Module, public Repackable {
 public:
  LstmInt8DynamicImpl(std::int64_t input_size, std::int64_t hidden_size, std::int64_t num_layers, bool per_channel);
  /// Throws hone::Error when `lstm` is not batch_first, unidirectional, with biases and no projection.
  static std::shared_ptr<LstmInt8DynamicImpl> from_float(const torch::nn::LSTMImpl& lstm, bool per_channel);

  /// x [B, T, input_size] -> the output sequence [B, T, hidden_size] (zero initial state).
  torch::Tensor forward(const torch::Tensor& x);
  void repack() override;
  nlohmann::json spec() const;

  struct LayerWeights {
    Int8Weight weight_ih, weight_hh;
    torch::Tensor bias_ih, bias_hh;
  };
  const std::vector<LayerWeights>& layers() const { return layers_; }

 private:
  std::int64_t input_size_, hidden_size_, num_layers_;
  bool per_channel_;
  std::vector<LayerWeights> layers_;
  c10::IValue params_;  ///< CellParamsBase[] for at::quantized_lstm
};
TORCH_MODULE(LstmInt8Dynamic);

LayerKind lstm_int8_dynamic_kind();

}  // namespace hone::nn
