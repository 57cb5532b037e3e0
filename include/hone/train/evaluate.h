#pragma once
/// @file Evaluation of a model on a data split, and of a saved run on its test set.
#include <c10/core/Device.h>

#include <filesystem>
#include <string>

#include "hone/data/datasets.h"
#include "hone/models/model.h"
#include "hone/train/metrics.h"

namespace hone::train {

/// No-grad, eval-mode pass over `split` in order. The model must already be on `device`.
EvalMetrics evaluate(models::Model& model, const data::DataSplit& split, data::TaskKind task,
                     const std::string& split_name, c10::Device device, std::int64_t batch_size = 256);

struct RunEvaluation {
  std::string architecture;
  std::string dataset;
  std::int64_t parameters = 0;
  std::int64_t buffer_values = 0;  ///< non-trainable tensors' elements (int8 weights, BN statistics)
  EvalMetrics metrics;
  nlohmann::json to_json() const;
};

/// Loads run_dir's config and best weights, reloads its dataset, evaluates `split` ("test" or "val").
/// `dataset`, when not empty, evaluates on that dataset instead (e.g. a probe trained on fp32
/// embeddings, on embeddings from a compressed encoder); it must have the run's task and input
/// shape, or a hone::UsageError names both.
RunEvaluation evaluate_run(const std::filesystem::path& run_dir, const std::string& device = "cpu",
                           const std::string& split = "test", std::int64_t batch_size = 256,
                           const std::string& dataset = "");

}  // namespace hone::train
