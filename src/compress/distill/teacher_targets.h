#pragma once
// What a pass that trains learns from: the task's own targets, or soft targets from one or more
// frozen teachers mixed with them (knowledge distillation). The teachers' outputs on the
// (unaugmented) training split are computed once and cached beside the labels, so an epoch costs
// the student's forward and backward only. Internal to compress (distill, prune_gradual).
#include <c10/core/Device.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "../passes.h"
#include "hone/data/datasets.h"
#include "hone/models/model.h"
#include "hone/train/train_step.h"

namespace hone::compress {

struct TeacherOptions {
  std::string pass;                   ///< for errors ("distill")
  std::vector<std::string> teachers;  ///< "source", run directories or zoo names; empty: no teacher
  std::vector<double> weights;        ///< per teacher (empty: equal)
  double temperature = 4.0;
  double alpha = 0.9;  ///< weight of the teacher's term; 0: the task loss alone
  c10::Device device = c10::kCPU;
};

struct TrainingTargets {
  data::TensorDataset train;  ///< the training inputs; targets packed as the loss expects
  train::LossFn loss;
  nlohmann::json details = nlohmann::json::object();  ///< teachers, their validation scores, the loss
};

/// Classification: targets [N, C + 1] = the teachers' averaged probabilities at T, then the label;
/// loss alpha·KL·T² + (1 − alpha)·CE. Regression: targets [N, 2·out] = the teachers' averaged
/// outputs, then the target; loss alpha·MSE(teacher) + (1 − alpha)·MSE(target). Without teachers
/// (or alpha 0): the split as it is, cross-entropy or MSE. A teacher whose outputs do not match the
/// student's (shape, task) is a hone::UsageError naming it, raised before any training.
TrainingTargets make_training_targets(models::Model& student, const data::LoadedData& data,
                                      const TeacherOptions& options,
                                      const std::function<models::ModelPtr(const std::string&)>& load_model);

/// The specs of `teachers` (default ["source"]), `alpha` (the pass's default) and `temperature` (4),
/// and the TeacherOptions read from them (validated options), on `device`.
std::vector<OptionSpec> teacher_option_specs(double alpha);
TeacherOptions read_teacher_options(const std::string& pass, const nlohmann::json& options, const c10::Device& device);

/// Refuses (hone::UsageError, option "pass") a model with integer weights: int8 layers do not
/// train, so a training pass must run before quantization.
void check_trainable(models::Model& model, const std::string& pass);

}  // namespace hone::compress
