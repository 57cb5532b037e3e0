#include "hone/train/distributed/training_group.h"

#include <ATen/ATen.h>

#include <unistd.h>
#include <cmath>
#include <csignal>
#include <cstdlib>

#include <fmt/ranges.h>

#include "hone/core/device.h"
#include "hone/core/error.h"
#include "hone/core/log.h"
#include "hone/train/distributed/shard.h"
#include "hone/train/evaluate.h"

namespace hone::train::distributed {
namespace {

c10::Device rank_device(const std::string& device, const Environment& env) {
  const c10::Device asked = parse_device(device);
  if (!asked.is_cuda()) return asked;
  try {
    return parse_device(fmt::format("cuda:{}", env.local_rank));
  } catch (const Error& e) {
    fail_usage("LOCAL_RANK={} needs cuda:{}: {} (one GPU per local rank; use at most as many processes per machine)",
               env.local_rank, env.local_rank, e.what());
  }
}

}  // namespace

std::unique_ptr<TrainingGroup> TrainingGroup::from_environment(const std::string& device,
                                                               std::chrono::milliseconds timeout) {
  const auto env = environment_from_variables();
  if (!env || env->world_size == 1) return nullptr;
  return std::make_unique<TrainingGroup>(*env, rank_device(device, *env), timeout);
}

TrainingGroup::TrainingGroup(const Environment& env, c10::Device device, std::chrono::milliseconds timeout)
    : device_(device) {
  CommunicatorOptions options;
  options.env = env;
  options.device = device;
  options.timeout = timeout;
  communicator_ = std::make_unique<Communicator>(options);
  log_info("rank {} of {}: {} on {}", env.rank, env.world_size, communicator_->backend(), device.str());
}

TrainingGroup::~TrainingGroup() = default;

void TrainingGroup::check_same_config(const nlohmann::json& config) {
  const auto all = communicator_->exchange("config", config.dump());
  const nlohmann::json reference = nlohmann::json::parse(all.front());
  for (int r = 1; r < world_size(); ++r) {
    const nlohmann::json other = nlohmann::json::parse(all[static_cast<std::size_t>(r)]);
    if (other == reference) continue;
    std::vector<std::string> differences;
    for (const auto& [key, value] : reference.items()) {
      if (!other.contains(key))
        differences.push_back(fmt::format("{} missing", key));
      else if (other.at(key) != value)
        differences.push_back(fmt::format("{} {} vs {}", key, other.at(key).dump(), value.dump()));
    }
    for (const auto& [key, value] : other.items())
      if (!reference.contains(key)) differences.push_back(fmt::format("{} only on rank {}", key, r));
    fail_usage(
        "distributed: rank {}'s training config differs from rank 0's: {}", r,
        fmt::join(differences.begin(), differences.begin() + std::min<std::ptrdiff_t>(4, differences.size()), "; "));
  }
}

DataParallel& TrainingGroup::attach(models::Model& model) {
  parallel_ = std::make_unique<DataParallel>(*communicator_, model);
  return *parallel_;
}

double TrainingGroup::mean(double value, const std::string& what) {
  at::Tensor t = at::full({1}, value, at::TensorOptions().device(device_).dtype(at::kDouble));
  communicator_->all_reduce_sum(t, what);
  return t.item<double>() / world_size();
}

double TrainingGroup::max(double value, const std::string& what) {
  at::Tensor t = at::full({1}, value, at::TensorOptions().device(device_).dtype(at::kDouble));
  communicator_->all_reduce_max(t, what);
  return t.item<double>();
}

EvalMetrics TrainingGroup::evaluate(models::Model& model, const data::DataSplit& split, data::TaskKind task,
                                    const std::string& split_name) {
  if (task != data::TaskKind::kClassification) return train::evaluate(model, split, task, split_name, device_);
  const Shard part = split_rows(split.dataset.count(), rank(), world_size());
  double sums[3] = {0, 0, 0};  // samples, loss × samples, correct
  if (part.count > 0) {
    data::DataSplit mine{split.dataset.slice(part.start, part.count), std::nullopt};
    const EvalMetrics local = train::evaluate(model, mine, task, split_name, device_);
    const double n = static_cast<double>(local.samples);
    sums[0] = n;
    sums[1] = local.loss * n;
    sums[2] = local.accuracy.value_or(0.0) * n;
  }
  at::Tensor t = at::tensor(at::ArrayRef<double>(sums, 3), at::TensorOptions().dtype(at::kDouble)).to(device_);
  communicator_->all_reduce_sum(t, "the validation metrics");
  const at::Tensor host = t.cpu();
  const double* total = host.data_ptr<double>();
  EvalMetrics metrics;
  metrics.split = split_name;
  HONE_CHECK(total[0] > 0, "the {} split is empty", split_name);
  metrics.samples = static_cast<std::int64_t>(total[0]);
  metrics.loss = total[1] / total[0];
  metrics.accuracy = std::round(total[2]) / total[0];  // correct counts are whole numbers
  return metrics;
}

void TrainingGroup::barrier(const std::string& what) { communicator_->barrier(what); }

void maybe_inject_fault(int rank, std::int64_t global_step) {
  static const std::string spec = [] {
    const char* value = std::getenv("HONE_FAULT_INJECT");
    return std::string(value != nullptr ? value : "");
  }();
  if (spec.empty()) return;
  const auto first = spec.find(':');
  const auto second = spec.find(':', first + 1);
  if (first == std::string::npos || second == std::string::npos)
    fail_usage("HONE_FAULT_INJECT='{}': expected kill:RANK:STEP or hang:RANK:STEP", spec);
  const std::string kind = spec.substr(0, first);
  const int target = std::stoi(spec.substr(first + 1, second - first - 1));
  const std::int64_t step = std::stoll(spec.substr(second + 1));
  if (target != rank || global_step != step) return;
  log_info("HONE_FAULT_INJECT: rank {} {} at step {}", rank, kind == "hang" ? "hangs" : "dies", step);
  if (kind == "kill")
    ::raise(SIGKILL);
  else if (kind == "hang")
    ::raise(SIGSTOP);
  else
    fail_usage("HONE_FAULT_INJECT='{}': the kind must be kill or hang", spec);
}

}  // namespace hone::train::distributed
