#pragma once
/// @file What a dataset offers a model: the task, one sample's input shape, classes or outputs.
#include <cstdint>
#include <string>
#include <vector>

namespace hone::data {

enum class TaskKind { kClassification, kForecasting };

struct DatasetInfo {
  std::string name;  ///< "fashion-mnist"
  TaskKind task = TaskKind::kClassification;
  std::vector<std::int64_t> input_shape;  ///< one sample: [C,H,W] images, [F] tables, [T,F] windows, [T] tokens
  std::int64_t num_classes = 0;           ///< classification
  std::int64_t num_outputs = 0;           ///< forecasting: values predicted per sample
  std::vector<std::string> class_names;
  std::int64_t vocab_size = 0;  ///< > 0: inputs are token ids in [0, vocab_size), not floats
};

inline const char* to_string(TaskKind task) {
  return task == TaskKind::kClassification ? "classification" : "forecasting";
}

}  // namespace hone::data
