#include <ATen/ATen.h>

#include "hone/core/error.h"
#include "hone/data/datasets.h"
#include "hone/data/paths.h"
#include "hone/io/csv.h"

namespace hone::data {

DatasetInfo digits_info(const DataOptions&) {
  DatasetInfo info;
  info.name = "digits";
  info.task = TaskKind::kClassification;
  info.input_shape = {1, 8, 8};
  info.num_classes = 10;
  for (int c = 0; c < 10; ++c) info.class_names.push_back(std::to_string(c));
  return info;
}

LoadedData load_digits(const DataOptions& options) {
  const auto path = require_file(sklearn_data_dir() / "digits.csv.gz", "sklearn digits table",
                                 "install the Debian package python3-sklearn (`make setup` does)");
  io::CsvOptions csv;
  csv.header = false;
  const at::Tensor table = io::read_csv(path, csv).to_tensor();
  HONE_CHECK(table.dim() == 2 && table.size(1) == 65, "{}: expected 65 columns (64 pixels + label), got {}",
             path.string(), table.size(1));
  const std::int64_t n = table.size(0);
  at::Tensor pixels = table.narrow(1, 0, 64);
  at::Tensor labels = table.select(1, 64);
  HONE_CHECK(pixels.min().item<double>() >= 0 && pixels.max().item<double>() <= 16, "{}: pixel values outside 0..16",
             path.string());
  HONE_CHECK((labels == labels.round()).all().item<bool>() && labels.min().item<double>() >= 0 &&
                 labels.max().item<double>() <= 9,
             "{}: labels must be integers 0..9", path.string());

  // A fixed shuffle (the file is ordered by writer), then 70 / 15 / 15 %.
  auto generator = at::make_generator<at::CPUGeneratorImpl>(/*seed=*/20260101);
  at::Tensor order = at::randperm(n, generator, at::TensorOptions().dtype(at::kLong));
  at::Tensor x = pixels.index_select(0, order).to(at::kFloat).div_(16.0f).reshape({n, 1, 8, 8});
  at::Tensor y = labels.index_select(0, order).to(at::kLong);
  const std::int64_t n_train = n * 70 / 100;
  const std::int64_t n_val = n * 15 / 100;
  const std::int64_t n_test = n - n_train - n_val;
  auto cap = [&](std::int64_t k) { return options.limit > 0 ? std::min(k, options.limit) : k; };

  LoadedData data;
  data.info = digits_info(options);
  data.train.dataset = TensorDataset(x.narrow(0, 0, cap(n_train)), y.narrow(0, 0, cap(n_train)));
  data.val.dataset = TensorDataset(x.narrow(0, n_train, cap(n_val)), y.narrow(0, n_train, cap(n_val)));
  data.test.dataset =
      TensorDataset(x.narrow(0, n_train + n_val, cap(n_test)), y.narrow(0, n_train + n_val, cap(n_test)));
  data.provenance = {{"source", path.string()},
                     {"package", "python3-sklearn"},
                     {"split", {{"train", cap(n_train)}, {"val", cap(n_val)}, {"test", cap(n_test)}}},
                     {"normalization", {{"scale", 1.0 / 16}}}};
  return data;
}

}  // namespace hone::data
