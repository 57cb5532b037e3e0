#include "hone/train/evaluate.h"

#include <ATen/ATen.h>
#include <torch/nn/functional/loss.h>
#include <torch/utils.h>

#include <fmt/ranges.h>

#include "hone/core/device.h"
#include "hone/core/error.h"
#include "hone/run/run_dir.h"

namespace hone::train {

EvalMetrics evaluate(models::Model& model, const data::DataSplit& split, data::TaskKind task,
                     const std::string& split_name, c10::Device device, std::int64_t batch_size) {
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  EvalMetrics metrics;
  metrics.split = split_name;
  double loss_sum = 0;
  std::int64_t correct = 0;
  std::vector<at::Tensor> predictions;
  data::LoaderOptions loader;
  loader.batch_size = batch_size;
  data::for_each_batch(split.dataset, loader, [&](torch::data::Example<>& batch) {
    at::Tensor x = batch.data.to(device);
    at::Tensor y = batch.target.to(device);
    at::Tensor out = model.forward(x);
    const auto n = x.size(0);
    if (task == data::TaskKind::kClassification) {
      loss_sum += torch::nn::functional::cross_entropy(out, y).item<double>() * static_cast<double>(n);
      correct += out.argmax(1).eq(y).sum().item<std::int64_t>();
    } else {
      loss_sum += torch::nn::functional::mse_loss(out, y).item<double>() * static_cast<double>(n);
      predictions.push_back(out.to(at::kCPU));
    }
    metrics.samples += n;
  });
  if (was_training) model.train();
  HONE_CHECK(metrics.samples > 0, "the {} split is empty", split_name);
  metrics.loss = loss_sum / static_cast<double>(metrics.samples);
  if (task == data::TaskKind::kClassification) {
    metrics.accuracy = static_cast<double>(correct) / static_cast<double>(metrics.samples);
  } else {
    HONE_CHECK(split.forecast.has_value(), "forecasting split '{}' has no price reference", split_name);
    const auto& ref = *split.forecast;
    const at::Tensor price = ref.to_price(at::cat(predictions));
    metrics.mae = mae(price, ref.true_value);
    metrics.rmse = rmse(price, ref.true_value);
    metrics.naive_mae = mae(ref.last_value, ref.true_value);
    metrics.naive_rmse = rmse(ref.last_value, ref.true_value);
  }
  return metrics;
}

nlohmann::json RunEvaluation::to_json() const {
  return {{"architecture", architecture},
          {"dataset", dataset},
          {"parameters", parameters},
          {"buffer_values", buffer_values},
          {"metrics", metrics.to_json()}};
}

RunEvaluation evaluate_run(const std::filesystem::path& run_dir, const std::string& device_name,
                           const std::string& split, std::int64_t batch_size, const std::string& dataset) {
  if (split != "test" && split != "val") fail_usage("unknown split '{}': expected test or val", split);
  const c10::Device device = parse_device(device_name);
  const run::RunConfig config = run::load_run_config(run_dir);
  const std::string name = dataset.empty() ? config.dataset : dataset;
  if (name != config.dataset) {
    const auto trained = data::describe_dataset(config.dataset, config.data_options);
    const auto other = data::describe_dataset(name, config.data_options);
    if (trained.task != other.task || trained.input_shape != other.input_shape ||
        trained.num_classes != other.num_classes || trained.num_outputs != other.num_outputs) {
      fail_usage("cannot evaluate {} (trained on {}, inputs {}) on {} (inputs {}): task, input shape or classes differ",
                 run_dir.string(), config.dataset, fmt::join(trained.input_shape, "x"), name,
                 fmt::join(other.input_shape, "x"));
    }
  }
  models::ModelPtr model = run::load_run_model(run_dir);
  model->to(device);
  const data::LoadedData data = data::load_dataset(name, config.data_options);
  RunEvaluation result;
  result.architecture = config.architecture;
  result.dataset = name;
  result.parameters = models::count_parameters(*model);
  for (const auto& buffer : model->buffers()) result.buffer_values += buffer.numel();
  result.metrics = evaluate(*model, split == "test" ? data.test : data.val, data.info.task, split, device, batch_size);
  return result;
}

}  // namespace hone::train
