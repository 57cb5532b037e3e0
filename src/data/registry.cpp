#include "hone/core/error.h"
#include "hone/data/datasets.h"

namespace hone::data {

namespace {

std::vector<DatasetEntry>& entries() {
  static std::vector<DatasetEntry> registry = {
      {"fashion-mnist", "Fashion-MNIST 28x28 clothing images, 10 classes (Debian dataset-fashion-mnist)",
       TaskKind::kClassification, load_fashion_mnist, fashion_mnist_info},
      {"digits", "sklearn 8x8 handwritten digits, 10 classes (Debian python3-sklearn)", TaskKind::kClassification,
       load_digits, digits_info},
      {"goldsilver", "daily gold/silver prices 1977-2012, next-day gold forecast (Debian r-cran-aer)",
       TaskKind::kForecasting, load_goldsilver, goldsilver_info},
  };
  return registry;
}

}  // namespace

const std::vector<DatasetEntry>& dataset_registry() { return entries(); }

void register_dataset(DatasetEntry entry) {
  HONE_CHECK(!entry.name.empty() && entry.load && entry.describe, "a dataset needs a name, a loader and a describer");
  HONE_CHECK(!is_dataset(entry.name), "dataset '{}' is registered twice", entry.name);
  entries().push_back(std::move(entry));
}

bool is_dataset(const std::string& name) {
  for (const auto& entry : dataset_registry()) {
    if (entry.name == name) return true;
  }
  return false;
}

const DatasetEntry& find_dataset(const std::string& name) {
  std::string names;
  for (const auto& entry : dataset_registry()) {
    if (entry.name == name) return entry;
    names += (names.empty() ? "" : ", ") + entry.name;
  }
  fail_usage("unknown dataset '{}'; valid: {}", name, names);
}

DatasetInfo describe_dataset(const std::string& name, const DataOptions& options) {
  HONE_CHECK(options.window > 0, "window must be positive, got {}", options.window);
  return find_dataset(name).describe(options);
}

LoadedData load_dataset(const std::string& name, const DataOptions& options) {
  HONE_CHECK(options.window > 0, "window must be positive, got {}", options.window);
  HONE_CHECK(options.limit >= 0, "limit must be >= 0, got {}", options.limit);
  return find_dataset(name).load(options);
}

}  // namespace hone::data
