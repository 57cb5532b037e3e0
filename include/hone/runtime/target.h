#pragma once
/// @file A model to run by name: a zoo model (random weights, its default dataset's shapes) or a
/// saved run directory (its weights, its dataset's shapes). What bench, profile and serve load.
///
///   runtime::ModelTarget t = runtime::load_target("runs/cnn");   // or "cnn", "minilm"
#include <cstdint>
#include <string>

#include "hone/data/dataset_info.h"
#include "hone/models/model.h"

namespace hone::runtime {

struct ModelTarget {
  std::string target;  ///< as given: a zoo name or a run directory
  models::ModelPtr model;
  data::DatasetInfo info;       ///< input shape (one sample), vocab size for token inputs
  std::int64_t file_bytes = 0;  ///< the run's model.safetensors; 0 for a zoo model
  std::string weights;          ///< "random (timing only)" or the weights file
};

/// A zoo name (random weights, its default dataset's shapes; text models take seq_len tokens) or a
/// run directory. Unknown names throw hone::UsageError listing the zoo; a broken run directory
/// throws hone::Error naming the file.
ModelTarget load_target(const std::string& target, std::int64_t seq_len = 128);

}  // namespace hone::runtime
