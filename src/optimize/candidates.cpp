#include "hone/optimize/candidates.h"

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/rnn.h>

#include <fmt/format.h>

#include <algorithm>

#include "hone/compress/pass.h"

namespace hone::optimize {

ModelTraits describe_model(models::Model& model) {
  ModelTraits traits;
  for (const auto& module : model.modules(/*include_self=*/true)) {
    const auto* m = module.get();
    traits.conv |= dynamic_cast<const torch::nn::Conv2dImpl*>(m) != nullptr;
    traits.linear |= dynamic_cast<const torch::nn::LinearImpl*>(m) != nullptr;
    traits.lstm |= dynamic_cast<const torch::nn::LSTMImpl*>(m) != nullptr;
    traits.batch_norm |= dynamic_cast<const torch::nn::BatchNorm2dImpl*>(m) != nullptr ||
                         dynamic_cast<const torch::nn::BatchNorm1dImpl*>(m) != nullptr;
  }
  traits.channel_groups = !model.channel_groups().empty();
  return traits;
}

namespace {

nlohmann::json pass(const char* name, nlohmann::json options = nlohmann::json::object()) {
  options["pass"] = name;
  return options;
}

nlohmann::json recipe(std::initializer_list<nlohmann::json> passes) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& p : passes) list.push_back(p);
  nlohmann::json out = nlohmann::json::object();
  out["passes"] = std::move(list);
  return out;
}

bool has_option(const std::string& pass_name, const char* option) {
  const auto& entry = compress::find_pass(pass_name);
  return std::any_of(entry.options.begin(), entry.options.end(), [&](const auto& s) { return s.name == option; });
}

}  // namespace

bool is_training_pass(const std::string& name) {
  return name == "distill" || name == "qat" || name == "prune_gradual" || name == "lottery_ticket";
}

std::vector<CandidatePlan> propose_candidates(const ModelTraits& traits, const DeviceTraits& device,
                                              const Targets& targets) {
  std::vector<CandidatePlan> plans;
  const auto add = [&](const char* stage, std::string label, nlohmann::json r) {
    const bool training = std::string(stage) == "training";
    const auto count = std::count_if(plans.begin(), plans.end(), [&](const auto& p) { return p.stage == stage; });
    plans.push_back({fmt::format("{}{:02}", training ? "t" : "p", count + 1), std::move(label), stage, std::move(r)});
  };
  const bool weights = traits.conv || traits.linear;
  const double budget = targets.max_accuracy_drop;
  // Post-training: cheap, all measured. Folding first where there are batch norms, as a recipe
  // given as flags would order it.
  if (traits.batch_norm)
    add("post-training", "fold batch norms, fuse ReLUs", recipe({pass("fuse_conv_bn"), pass("fuse_relu")}));
  if (device.native_bf16 && weights) {
    add("post-training", "bf16 weights and compute",
        traits.batch_norm ? recipe({pass("fuse_conv_bn"), pass("quant_float", {{"dtype", "bf16"}})})
                          : recipe({pass("quant_float", {{"dtype", "bf16"}})}));
  }
  if (device.cuda && weights) {
    add("post-training", "fp16 weights and compute",
        traits.batch_norm ? recipe({pass("fuse_conv_bn"), pass("quant_float", {{"dtype", "fp16"}})})
                          : recipe({pass("quant_float", {{"dtype", "fp16"}})}));
  }
  if (!device.cuda && weights) {
    // LibTorch's int8 kernels are CPU kernels.
    const auto fold =
        traits.batch_norm ? std::vector<nlohmann::json>{pass("fuse_conv_bn")} : std::vector<nlohmann::json>{};
    auto minmax = fold;
    minmax.push_back(pass("quant_int8_static", {{"observer", "minmax"}}));
    add("post-training", "int8 static (min-max ranges)", {{"passes", minmax}});
    auto budgeted = fold;
    budgeted.push_back(pass("quant_int8_static", {{"observer", "percentile"}, {"accuracy_budget", budget}}));
    add("post-training", fmt::format("int8 static, most sensitive layers kept float (budget {:g})", budget),
        {{"passes", budgeted}});
  }
  if (!device.cuda && (traits.linear || traits.lstm)) {
    add("post-training", "int8 dynamic (Linear, LSTM)", recipe({pass("quant_int8_dynamic")}));
  }
  if (device.cuda && traits.linear) {
    add("post-training", "int8 weight-only Linear", recipe({pass("quant_weight_only", {{"bits", 8}})}));
  }
  if (traits.linear) add("post-training", "low-rank Linear (SVD)", recipe({pass("lowrank_svd")}));
  if (traits.channel_groups && !device.cuda && weights) {
    auto passes =
        nlohmann::json::array({pass("prune_structured", {{"amount", 0.15}, {"recalibrate_batch_norm", true}})});
    if (traits.batch_norm) passes.push_back(pass("fuse_conv_bn"));
    passes.push_back(pass("quant_int8_static", {{"observer", "minmax"}}));
    add("post-training", "prune 15% of channels, int8 static", {{"passes", passes}});
  }
  // Training: structured pruning shrinks tensors, distillation from the source repairs the loss,
  // then QAT into int8 (CPU) or a float precision (GPU). Three depths of pruning: how far it can
  // go within the accuracy budget is what the search finds out.
  if (traits.channel_groups && weights) {
    for (const double amount : {0.25, 0.5, 0.75}) {
      // Distillation trains in bf16 where the device computes it natively (about 2x faster a step on
      // an AVX512-BF16 CPU); QAT stays in fp32, its fake-quantized grid is an fp32 grid.
      nlohmann::json distill = {{"epochs", 3}, {"lr", 2e-3}, {"temperature", 4}, {"alpha", 0.9}};
      if (device.native_bf16) distill["precision"] = "bf16";
      auto passes = nlohmann::json::array(
          {pass("prune_structured", {{"amount", amount}, {"recalibrate_batch_norm", traits.batch_norm}}),
           pass("distill", distill)});
      if (traits.batch_norm) passes.push_back(pass("fuse_conv_bn"));
      std::string finish;
      if (!device.cuda) {
        passes.push_back(pass("qat", {{"epochs", 1}, {"lr", 1e-4}}));
        finish = "QAT to int8";
      } else {
        passes.push_back(pass("quant_float", {{"dtype", "bf16"}}));
        finish = "bf16";
      }
      add("training", fmt::format("prune {:g}% of channels, distill, {}", amount * 100, finish), {{"passes", passes}});
    }
  }
  return plans;
}

nlohmann::json cap_recipe_steps(const nlohmann::json& r, std::int64_t steps) {
  auto out = r;
  for (auto& p : out["passes"]) {
    const auto name = p.at("pass").get<std::string>();
    if (is_training_pass(name) && has_option(name, "max_steps_per_epoch")) p["max_steps_per_epoch"] = steps;
  }
  return out;
}

nlohmann::json shorten_recipe(const nlohmann::json& r, std::int64_t steps) {
  auto out = cap_recipe_steps(r, steps);
  for (auto& p : out["passes"]) {
    const auto name = p.at("pass").get<std::string>();
    if (is_training_pass(name) && has_option(name, "epochs")) p["epochs"] = 1;
  }
  return out;
}

std::int64_t training_steps(const nlohmann::json& r, std::int64_t train_samples) {
  std::int64_t total = 0;
  for (const auto& p : r.at("passes")) {
    const auto name = p.at("pass").get<std::string>();
    if (!is_training_pass(name)) continue;
    const auto& entry = compress::find_pass(name);
    const auto options = compress::validate_options(entry, [&] {
      auto o = p;
      o.erase("pass");
      return o;
    }());
    const auto epochs = options.value("epochs", std::int64_t{1}) * options.value("rounds", std::int64_t{1});
    const auto batch = std::max<std::int64_t>(1, options.value("batch_size", std::int64_t{128}));
    auto per_epoch = (train_samples + batch - 1) / batch;
    const auto cap = options.value("max_steps_per_epoch", std::int64_t{0});
    if (cap > 0) per_epoch = std::min(per_epoch, cap);
    total += epochs * per_epoch;
  }
  return total;
}

}  // namespace hone::optimize
