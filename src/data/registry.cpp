#include "hone/core/error.h"
#include "hone/data/datasets.h"

namespace hone::data {

// The datasets, in the order `hone train --help` lists them.
const std::vector<DatasetEntry>& dataset_registry() {
  static const std::vector<DatasetEntry> kEntries = {
      {"fashion-mnist", "Fashion-MNIST 28x28 clothing images, 10 classes (Debian dataset-fashion-mnist)",
       TaskKind::kClassification, load_fashion_mnist, fashion_mnist_info},
      {"digits", "sklearn 8x8 handwritten digits, 10 classes (Debian python3-sklearn)", TaskKind::kClassification,
       load_digits, digits_info},
      {"goldsilver", "daily gold/silver prices 1977-2012, next-day gold forecast (Debian r-cran-aer)",
       TaskKind::kForecasting, load_goldsilver, goldsilver_info},
      {"fine-foods", "Amazon fine-food reviews, great/other, as frozen MiniLM embeddings (Debian r-cran-modeldata)",
       TaskKind::kClassification, load_fine_foods, fine_foods_info},
      {"fine-foods-int8", "the fine-foods reviews embedded by MiniLM after quant_int8_dynamic (int8 cost downstream)",
       TaskKind::kClassification, load_fine_foods_int8, fine_foods_int8_info},
      {"fine-foods-2of4", "the fine-foods reviews embedded by MiniLM after prune_semi_structured (2:4 cost downstream)",
       TaskKind::kClassification, load_fine_foods_2of4, fine_foods_2of4_info},
  };
  return kEntries;
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
