#include <ATen/ATen.h>

#include "hone/core/error.h"
#include "hone/data/datasets.h"
#include "hone/data/paths.h"
#include "hone/io/csv.h"

namespace hone::data {

at::Tensor ForecastReference::to_price(const at::Tensor& normalized_prediction) const {
  at::Tensor p = normalized_prediction.detach().to(at::kCPU, at::kDouble).reshape({-1});
  HONE_CHECK(p.size(0) == last_value.size(0), "{} predictions for {} forecast samples", p.size(0), last_value.size(0));
  return last_value * at::exp(p * target_std + target_mean);
}

LoadedData make_forecasting_data(const std::string& name, const at::Tensor& prices,
                                 const std::vector<std::string>& columns, const DataOptions& options) {
  HONE_CHECK(prices.dim() == 2 && prices.size(1) >= 1, "{}: price table must be [days, series], got {}", name,
             prices.sizes());
  HONE_CHECK(static_cast<std::int64_t>(columns.size()) == prices.size(1), "{}: {} column names for {} series", name,
             columns.size(), prices.size(1));
  const at::Tensor p = prices.to(at::kDouble);
  HONE_CHECK(at::isfinite(p).all().item<bool>() && (p > 0).all().item<bool>(), "{}: prices must be finite and positive",
             name);
  const std::int64_t window = options.window;
  const std::int64_t days = p.size(0);
  const std::int64_t samples = days - 1 - window;
  HONE_CHECK(samples >= 20, "{}: {} days is too short for a window of {} (need at least {})", name, days, window,
             window + 21);

  // returns[j] = log(p[j+1] / p[j]). Sample s: inputs returns[s .. s+window-1], target returns[s+window]
  // (gold), i.e. the move from day s+window to day s+window+1.
  const at::Tensor returns = at::log(p.narrow(0, 1, days - 1) / p.narrow(0, 0, days - 1));
  const std::int64_t n_train = samples * 70 / 100;
  const std::int64_t n_val = samples * 15 / 100;
  const std::int64_t n_test = samples - n_train - n_val;

  // Normalization from the training period only: every return a training sample sees.
  const at::Tensor train_returns = returns.narrow(0, 0, n_train + window);
  const at::Tensor feature_mean = train_returns.mean(0);
  const at::Tensor feature_std = train_returns.std(0).clamp_min(1e-12);
  const at::Tensor train_targets = returns.narrow(0, window, n_train).select(1, 0);
  const double target_mean = train_targets.mean().item<double>();
  const double target_std = std::max(train_targets.std().item<double>(), 1e-12);

  const at::Tensor normalized = (returns - feature_mean) / feature_std;
  // unfold -> [samples+1, series, window]; keep `samples` windows, as [samples, window, series].
  const at::Tensor x =
      normalized.unfold(0, window, 1).narrow(0, 0, samples).transpose(1, 2).contiguous().to(at::kFloat);
  const at::Tensor y =
      ((returns.narrow(0, window, samples).select(1, 0) - target_mean) / target_std).unsqueeze(1).to(at::kFloat);
  const at::Tensor last = p.narrow(0, window, samples).select(1, 0).contiguous();
  const at::Tensor truth = p.narrow(0, window + 1, samples).select(1, 0).contiguous();

  auto cap = [&](std::int64_t k) { return options.limit > 0 ? std::min(k, options.limit) : k; };
  auto make_split = [&](std::int64_t start, std::int64_t length) {
    // With a limit, keep the *last* samples of train (closest to val) and the first of val/test.
    DataSplit split;
    split.dataset = TensorDataset(x.narrow(0, start, length), y.narrow(0, start, length));
    split.forecast =
        ForecastReference{last.narrow(0, start, length), truth.narrow(0, start, length), target_mean, target_std};
    return split;
  };
  LoadedData data;
  data.info.name = name;
  data.info.task = TaskKind::kForecasting;
  data.info.input_shape = {window, prices.size(1)};
  data.info.num_outputs = 1;
  data.train = make_split(n_train - cap(n_train), cap(n_train));
  data.val = make_split(n_train, cap(n_val));
  data.test = make_split(n_train + n_val, cap(n_test));
  data.provenance = {
      {"columns", columns},
      {"window", window},
      {"target", columns[0] + " next-day log-return"},
      {"split", {{"train", cap(n_train)}, {"val", cap(n_val)}, {"test", cap(n_test)}}},
      {"split_first_sample", {{"train", n_train - cap(n_train)}, {"val", n_train}, {"test", n_train + n_val}}},
      {"normalization",
       {{"feature_mean",
         std::vector<double>(feature_mean.data_ptr<double>(), feature_mean.data_ptr<double>() + feature_mean.numel())},
        {"feature_std",
         std::vector<double>(feature_std.data_ptr<double>(), feature_std.data_ptr<double>() + feature_std.numel())},
        {"target_mean", target_mean},
        {"target_std", target_std},
        {"fitted_on", "train"}}}};
  return data;
}

DatasetInfo goldsilver_info(const DataOptions& options) {
  DatasetInfo info;
  info.name = "goldsilver";
  info.task = TaskKind::kForecasting;
  info.input_shape = {options.window, 2};
  info.num_outputs = 1;
  return info;
}

LoadedData load_goldsilver(const DataOptions& options) {
  const auto path = require_file(exported_data_dir() / "goldsilver.csv", "GoldSilver price table",
                                 "run `make setup` (it exports GoldSilver from the Debian package r-cran-aer)");
  const io::CsvTable table = io::read_csv(path);
  const std::vector<std::size_t> cols = {table.column_index("gold"), table.column_index("silver")};
  LoadedData data = make_forecasting_data("goldsilver", table.to_tensor(cols), {"gold", "silver"}, options);
  const std::size_t date = table.column_index("date");
  data.provenance["source"] = path.string();
  data.provenance["package"] = "r-cran-aer (GoldSilver)";
  data.provenance["first_day"] = table.rows.front()[date];
  data.provenance["last_day"] = table.rows.back()[date];
  return data;
}

}  // namespace hone::data
