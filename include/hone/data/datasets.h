#pragma once
/// @file The real datasets hone trains and measures on, split into train / validation / test.
///
///   fashion-mnist  Debian dataset-fashion-mnist: 28x28 clothing images, 10 classes
///                  (train 54,000 / val 6,000 = last tenth of the official train set / test 10,000)
///   digits         Debian python3-sklearn: 8x8 handwritten digits, 1,797 samples, 10 classes
///                  (a fixed shuffle, then 70 / 15 / 15 %)
///   goldsilver     Debian r-cran-aer (GoldSilver, exported by the set-up): daily gold and silver
///                  spot price indices 1977-2012; windows of log-returns -> next day's gold return,
///                  chronological 70 / 15 / 15 % split, normalization fitted on train only
///   fine-foods     Debian r-cran-modeldata (small_fine_foods, exported by the set-up): Amazon
///                  fine-food reviews, great / other, as frozen all-MiniLM-L6-v2 embeddings [384]
///                  (train 3,600 / val 400 = a fixed tenth of the official 4,000 / test 1,000)
///   fine-foods-int8  the same reviews and splits, embedded by the encoder after quant_int8_dynamic
///
/// How to add a dataset: a loader in src/data/<name>.cpp returning LoadedData, one line in
/// src/data/registry.cpp. See docs/adding-a-model-or-dataset.md.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "hone/data/dataset_info.h"
#include "hone/data/tensor_dataset.h"

namespace hone::data {

/// For forecasting: what turns a model's normalized prediction back into a price, per sample.
struct ForecastReference {
  torch::Tensor last_value;  ///< [N] price on the last day of each window (the naive forecast)
  torch::Tensor true_value;  ///< [N] the price that was to be predicted
  double target_mean = 0;    ///< the normalized target is (log-return - mean) / std
  double target_std = 1;
  /// Price forecasts for normalized predictions [N] or [N,1].
  torch::Tensor to_price(const torch::Tensor& normalized_prediction) const;
};

struct DataSplit {
  TensorDataset dataset;
  std::optional<ForecastReference> forecast;
};

struct LoadedData {
  DatasetInfo info;
  DataSplit train, val, test;
  nlohmann::json provenance;  ///< source files, split sizes, normalization constants
};

struct DataOptions {
  std::int64_t window = 30;  ///< forecasting: days of history per sample
  std::int64_t limit = 0;    ///< > 0: keep at most this many samples per split (quick tests)
};

struct DatasetEntry {
  std::string name;
  std::string summary;
  TaskKind task;
  std::function<LoadedData(const DataOptions&)> load;
  /// The dataset's shapes without reading it (for timing models on inputs of its shape).
  std::function<DatasetInfo(const DataOptions&)> describe;
};

/// The registered datasets: this module's own (fashion-mnist, digits, goldsilver), then those that
/// upper modules registered (text: fine-foods; compress: fine-foods-int8, fine-foods-2of4), in
/// the order `hone train --help` lists them.
const std::vector<DatasetEntry>& dataset_registry();
/// Adds a dataset whose loader lives in an upper module (data depends on nothing above it).
/// Throws hone::Error when the name is taken. Call during start-up, before loading.
void register_dataset(DatasetEntry entry);
/// Throws hone::UsageError listing valid names when `name` is unknown.
const DatasetEntry& find_dataset(const std::string& name);
/// Whether `name` is a registered dataset.
bool is_dataset(const std::string& name);
LoadedData load_dataset(const std::string& name, const DataOptions& options = {});
DatasetInfo describe_dataset(const std::string& name, const DataOptions& options = {});

// The loaders (also reachable through the registry).
LoadedData load_fashion_mnist(const DataOptions& options);
LoadedData load_digits(const DataOptions& options);
LoadedData load_goldsilver(const DataOptions& options);
DatasetInfo fashion_mnist_info(const DataOptions& options);
DatasetInfo digits_info(const DataOptions& options);
DatasetInfo goldsilver_info(const DataOptions& options);

/// Builds forecasting windows from a [days, features] price table (column 0 is the target
/// series): log-returns, chronological split, normalization from train only. Exposed for tests.
LoadedData make_forecasting_data(const std::string& name, const torch::Tensor& prices,
                                 const std::vector<std::string>& columns, const DataOptions& options);

}  // namespace hone::data
