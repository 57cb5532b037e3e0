#include "hone/nn/linear_lowrank.h"

#include <ostream>

#include "hone/core/error.h"

namespace hone::nn {

LinearLowRankImpl::LinearLowRankImpl(std::int64_t in, std::int64_t rank, std::int64_t out, bool bias)
    : in_(in),
      rank_(rank),
      out_(out),
      first_(register_layer("first", torch::nn::Linear(torch::nn::LinearOptions(in, rank).bias(false)))),
      second_(register_layer("second", torch::nn::Linear(torch::nn::LinearOptions(rank, out).bias(bias)))) {
  HONE_CHECK(in > 0 && rank > 0 && out > 0, "linear_lowrank: in, rank and out must be positive, got {}, {}, {}", in,
             rank, out);
  declare_flow("first", "second");
}

torch::Tensor LinearLowRankImpl::forward(const torch::Tensor& x) { return (*second_)((*first_)(x)); }

void LinearLowRankImpl::pretty_print(std::ostream& stream) const {
  stream << "hone::nn::LinearLowRank(in_features=" << in_ << ", rank=" << rank_ << ", out_features=" << out_ << ")";
}

LayerKind linear_lowrank_kind() {
  return {"linear_lowrank", [](const nlohmann::json& spec) {
            const auto in = spec_int(spec, "in"), rank = spec_int(spec, "rank"), out = spec_int(spec, "out");
            HONE_CHECK(in > 0 && rank > 0 && out > 0,
                       "layer spec 'linear_lowrank': in, rank and out must be positive, got {}", spec.dump());
            return make_layer(LinearLowRank(in, rank, out, spec_bool(spec, "bias")));
          }};
}

}  // namespace hone::nn
