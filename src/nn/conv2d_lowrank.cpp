#include "hone/nn/conv2d_lowrank.h"

#include <ostream>
#include <utility>

#include "hone/core/error.h"

namespace hone::nn {
namespace {

const Conv2dLowRankOptions& checked(const Conv2dLowRankOptions& o) {
  HONE_CHECK(o.in > 0 && o.rank > 0 && o.out > 0, "conv2d_lowrank: in, rank and out must be positive, got {}, {}, {}",
             o.in, o.rank, o.out);
  HONE_CHECK(o.stride.size() == 2 && o.padding.size() == 2 && o.dilation.size() == 2,
             "conv2d_lowrank: stride, padding and dilation must have 2 values each");
  return o;
}

torch::nn::Conv2d first_factor(const Conv2dLowRankOptions& o) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(o.in, o.rank, 1).stride(o.stride).padding(o.padding).dilation(o.dilation).bias(false));
}

torch::nn::Conv2d second_factor(const Conv2dLowRankOptions& o) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(o.rank, o.out, 1).bias(o.bias));
}

}  // namespace

Conv2dLowRankImpl::Conv2dLowRankImpl(Conv2dLowRankOptions options)
    : options_(std::move(options)),
      first_(register_layer("first", first_factor(checked(options_)))),
      second_(register_layer("second", second_factor(options_))) {
  declare_flow("first", "second");
}

torch::Tensor Conv2dLowRankImpl::forward(const torch::Tensor& x) { return (*second_)((*first_)(x)); }

nlohmann::json Conv2dLowRankImpl::spec() const {
  const auto& o = options_;
  return {{"kind", "conv2d_lowrank"}, {"in", o.in},           {"rank", o.rank},         {"out", o.out},
          {"stride", o.stride},       {"padding", o.padding}, {"dilation", o.dilation}, {"bias", o.bias}};
}

void Conv2dLowRankImpl::pretty_print(std::ostream& stream) const {
  const auto& o = options_;
  stream << "hone::nn::Conv2dLowRank(in_channels=" << o.in << ", rank=" << o.rank << ", out_channels=" << o.out
         << ", stride=" << c10::IntArrayRef(o.stride) << ")";
}

LayerKind conv2d_lowrank_kind() {
  return {"conv2d_lowrank", [](const nlohmann::json& spec) {
            Conv2dLowRankOptions o{spec_int(spec, "in"),      spec_int(spec, "rank"),     spec_int(spec, "out"),
                                   spec_ints(spec, "stride"), spec_ints(spec, "padding"), spec_ints(spec, "dilation"),
                                   spec_bool(spec, "bias")};
            HONE_CHECK(o.in > 0 && o.rank > 0 && o.out > 0,
                       "layer spec 'conv2d_lowrank': in, rank and out must be positive, got {}", spec.dump());
            HONE_CHECK(o.stride.size() == 2 && o.padding.size() == 2 && o.dilation.size() == 2,
                       "layer spec 'conv2d_lowrank': stride, padding and dilation need 2 values each, got {}",
                       spec.dump());
            return make_layer(Conv2dLowRank(std::move(o)));
          }};
}

}  // namespace hone::nn
