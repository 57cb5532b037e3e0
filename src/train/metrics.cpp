#include "hone/train/metrics.h"

#include <ATen/ATen.h>

#include "hone/core/error.h"

namespace hone::train {

double EvalMetrics::score() const {
  if (accuracy) return *accuracy;
  if (rmse) return -*rmse;
  return -loss;
}

nlohmann::json EvalMetrics::to_json() const {
  nlohmann::json j = {{"split", split}, {"samples", samples}, {"loss", loss}};
  if (accuracy) j["accuracy"] = *accuracy;
  if (rmse) {
    j["mae"] = *mae;
    j["rmse"] = *rmse;
    j["naive_mae"] = *naive_mae;
    j["naive_rmse"] = *naive_rmse;
    j["rmse_vs_naive"] = *rmse / *naive_rmse;
  }
  return j;
}

std::string EvalMetrics::to_text() const {
  std::string out = fmt::format("{} loss {:.4f}", split, loss);
  if (accuracy) out += fmt::format(", accuracy {:.2f}%", 100 * *accuracy);
  if (rmse) {
    out += fmt::format(", RMSE {:.4f} (naive {:.4f}, ratio {:.4f}), MAE {:.4f} (naive {:.4f})", *rmse, *naive_rmse,
                       *rmse / *naive_rmse, *mae, *naive_mae);
  }
  return out + fmt::format(" [{} samples]", samples);
}

double accuracy(const at::Tensor& logits, const at::Tensor& labels) {
  HONE_CHECK(logits.dim() == 2 && labels.dim() == 1 && logits.size(0) == labels.size(0),
             "accuracy needs logits [N,C] and labels [N], got {} and {}", logits.sizes(), labels.sizes());
  if (labels.size(0) == 0) return 0;
  return logits.argmax(1).eq(labels).to(at::kDouble).mean().item<double>();
}

double rmse(const at::Tensor& predicted, const at::Tensor& actual) {
  HONE_CHECK(predicted.sizes() == actual.sizes(), "rmse: shapes {} and {} differ", predicted.sizes(), actual.sizes());
  return (predicted.to(at::kDouble) - actual.to(at::kDouble)).pow(2).mean().sqrt().item<double>();
}

double mae(const at::Tensor& predicted, const at::Tensor& actual) {
  HONE_CHECK(predicted.sizes() == actual.sizes(), "mae: shapes {} and {} differ", predicted.sizes(), actual.sizes());
  return (predicted.to(at::kDouble) - actual.to(at::kDouble)).abs().mean().item<double>();
}

}  // namespace hone::train
