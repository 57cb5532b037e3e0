#pragma once
/// @file The shape of a 2-D convolution as layer specs record it, shared by every layer kind that
/// replaces a torch::nn::Conv2d (fused, fp16/bf16, int8).
#include <torch/nn/modules/conv.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <variant>
#include <vector>

#include "hone/core/error.h"
#include "hone/nn/layer_kinds.h"

namespace hone::nn {

struct Conv2dGeometry {
  std::int64_t in = 0, out = 0;
  std::vector<std::int64_t> kernel{1, 1}, stride{1, 1}, padding{0, 0}, dilation{1, 1};
  std::int64_t groups = 1;
  bool bias = true;

  /// Read off an existing Conv2d (sizes from its weight). Only explicit zero padding can be
  /// recorded; anything else throws hone::Error naming `who`.
  static Conv2dGeometry of(const torch::nn::Conv2dImpl& conv, const char* who) {
    const auto* padding = std::get_if<torch::ExpandingArray<2>>(&conv.options.padding());
    HONE_CHECK(padding != nullptr && std::holds_alternative<torch::enumtype::kZeros>(conv.options.padding_mode()),
               "{}: only explicit zero padding is supported", who);
    const auto two = [](const std::array<std::int64_t, 2>& v) { return std::vector<std::int64_t>{v[0], v[1]}; };
    const auto& w = conv.weight;
    return {w.size(1) * conv.options.groups(),
            w.size(0),
            {w.size(2), w.size(3)},
            two(*conv.options.stride()),
            two(**padding),
            two(*conv.options.dilation()),
            conv.options.groups(),
            conv.bias.defined()};
  }
  /// Strictly from a layer spec's fields (hone::Error naming the missing or mistyped one).
  static Conv2dGeometry from_spec(const nlohmann::json& spec) {
    return {spec_int(spec, "in"),      spec_int(spec, "out"),      spec_ints(spec, "kernel"),
            spec_ints(spec, "stride"), spec_ints(spec, "padding"), spec_ints(spec, "dilation"),
            spec_int(spec, "groups"),  spec_bool(spec, "bias")};
  }
  /// `spec` plus these fields.
  nlohmann::json with_spec(nlohmann::json spec) const {
    spec.update({{"in", in},
                 {"out", out},
                 {"kernel", kernel},
                 {"stride", stride},
                 {"padding", padding},
                 {"dilation", dilation},
                 {"groups", groups},
                 {"bias", bias}});
    return spec;
  }
};

}  // namespace hone::nn
