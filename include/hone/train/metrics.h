#pragma once
/// @file Evaluation metrics: accuracy for classification; MAE / RMSE in price units for forecasting,
/// always beside the naive last-value forecast's, so a model is judged against doing nothing.
#include <ATen/core/Tensor.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace hone::train {

struct EvalMetrics {
  std::string split;  ///< "val" or "test"
  std::int64_t samples = 0;
  double loss = 0;                 ///< mean training loss (cross-entropy, or MSE on normalized targets)
  std::optional<double> accuracy;  ///< classification, 0..1
  std::optional<double> mae, rmse, naive_mae, naive_rmse;  ///< forecasting, in price units

  /// The number model selection maximizes: accuracy, or -RMSE.
  double score() const;
  nlohmann::json to_json() const;
  std::string to_text() const;  ///< one line
};

/// Fraction of rows whose arg-max logit equals the label.
double accuracy(const at::Tensor& logits, const at::Tensor& labels);
/// sqrt(mean((a - b)^2)) and mean(|a - b|), in double.
double rmse(const at::Tensor& predicted, const at::Tensor& actual);
double mae(const at::Tensor& predicted, const at::Tensor& actual);

}  // namespace hone::train
