#include "teacher_targets.h"

#include <ATen/ATen.h>
#include <torch/nn/functional/loss.h>
#include <torch/utils.h>

#include "hone/compress/distill_loss.h"
#include "hone/core/error.h"
#include "hone/core/format.h"
#include "hone/core/log.h"
#include "hone/train/evaluate.h"

namespace hone::compress {
namespace {

/// The model's outputs on every row of `inputs`, in batches on `device`, gathered on the CPU.
at::Tensor outputs_on(models::Model& model, const at::Tensor& inputs, const c10::Device& device) {
  torch::NoGradGuard no_grad;
  model.eval();
  model.to(device);
  std::vector<at::Tensor> parts;
  constexpr std::int64_t kBatch = 512;
  for (std::int64_t start = 0; start < inputs.size(0); start += kBatch) {
    const auto rows = inputs.narrow(0, start, std::min(kBatch, inputs.size(0) - start)).to(device);
    parts.push_back(model.forward(rows).to(at::kFloat).cpu());
  }
  model.to(c10::kCPU);
  return at::cat(parts);
}

std::vector<std::int64_t> output_shape(models::Model& model, const at::Tensor& sample) {
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  const auto shape = model.forward(sample).sizes().vec();
  if (was_training) model.train();
  return shape;
}

}  // namespace

std::vector<OptionSpec> teacher_option_specs(double alpha) {
  using Type = OptionSpec::Type;
  return {{"teachers",
           Type::StringList,
           nlohmann::json::array({"source"}),
           {},
           -1e300,
           1e300,
           "teachers: \"source\" (the model before any pass), run directories or zoo names; several are averaged"},
          {"alpha",
           Type::Number,
           alpha,
           {},
           0.0,
           1.0,
           "weight of the teacher term; 1 - alpha goes to the true labels (0: the labels alone)"},
          {"temperature", Type::Number, 4.0, {}, 1e-3, 1000, "softmax temperature T of the soft targets"}};
}

TeacherOptions read_teacher_options(const std::string& pass, const nlohmann::json& options, const c10::Device& device) {
  TeacherOptions teacher;
  teacher.pass = pass;
  teacher.teachers = options.at("teachers").get<std::vector<std::string>>();
  teacher.temperature = options.at("temperature").get<double>();
  teacher.alpha = options.at("alpha").get<double>();
  teacher.device = device;
  return teacher;
}

void check_trainable(models::Model& model, const std::string& pass) {
  for (const auto& item : model.named_buffers()) {
    const auto type = item.value().scalar_type();
    if (type == at::kChar || type == at::kByte || type == at::kQInt8 || type == at::kQUInt8) {
      fail_usage_option("pass",
                        "{} trains float layers, but '{}' is an int8 tensor: put {} before the quantization passes "
                        "in the recipe",
                        pass, item.key(), pass);
    }
  }
}

TrainingTargets make_training_targets(models::Model& student, const data::LoadedData& data,
                                      const TeacherOptions& options,
                                      const std::function<models::ModelPtr(const std::string&)>& load_model) {
  const bool classification = data.info.task == data::TaskKind::kClassification;
  TrainingTargets out;
  const auto& train = data.train.dataset;
  if (options.teachers.empty() || options.alpha == 0) {
    out.train = train;
    out.loss = [classification](const at::Tensor& y, const at::Tensor& t) {
      return classification ? torch::nn::functional::cross_entropy(y.to(at::kFloat), t)
                            : torch::nn::functional::mse_loss(y.to(at::kFloat), t);
    };
    out.details["loss"] = classification ? "cross-entropy on the labels" : "MSE on the targets";
    return out;
  }
  if (!(options.temperature > 0))
    fail_usage_option("temperature", "{}: temperature must be > 0, got {}", options.pass, options.temperature);
  if (options.alpha < 0 || options.alpha > 1)
    fail_usage_option("alpha", "{}: alpha must be in [0, 1], got {}", options.pass, options.alpha);
  std::vector<double> weights = options.weights;
  if (weights.empty()) weights.assign(options.teachers.size(), 1.0);
  if (weights.size() != options.teachers.size())
    fail_usage_option("teacher_weights", "{}: {} weights for {} teachers", options.pass, weights.size(),
                      options.teachers.size());

  const at::Tensor sample = train.inputs().narrow(0, 0, std::min<std::int64_t>(2, train.count()));
  const auto student_shape = output_shape(student, sample);
  std::vector<at::Tensor> teacher_outputs;
  nlohmann::json teachers = nlohmann::json::array();
  for (const auto& name : options.teachers) {
    models::ModelPtr teacher = load_model(name);
    std::vector<std::int64_t> shape;
    try {
      shape = output_shape(*teacher, sample);
    } catch (const c10::Error& e) {
      fail_usage_option("teachers", "{}: teacher '{}' ({}) cannot run on the student's inputs of shape {}: {}",
                        options.pass, name, teacher->architecture(), fmt::format("{}", sample.sizes()),
                        e.what_without_backtrace());
    } catch (const UsageError&) {
      throw;
    } catch (const Error& e) {
      fail_usage_option("teachers", "{}: teacher '{}' ({}) cannot run on the student's inputs of shape {}: {}",
                        options.pass, name, teacher->architecture(), fmt::format("{}", sample.sizes()), e.what());
    }
    if (shape != student_shape) {
      fail_usage_option("teachers", "{}: teacher '{}' outputs {} per batch of 2 where the student outputs {}",
                        options.pass, name, fmt::format("{}", c10::IntArrayRef(shape)),
                        fmt::format("{}", c10::IntArrayRef(student_shape)));
    }
    log_info("{}: caching teacher '{}' outputs on {} training samples", options.pass, name, train.count());
    teacher_outputs.push_back(outputs_on(*teacher, train.inputs(), options.device));
    teacher->to(options.device);
    const double score = train::evaluate(*teacher, data.val, data.info.task, "val", options.device).score();
    teacher->to(c10::kCPU);
    teachers.push_back({{"teacher", name}, {"val_score", score}, {"parameters", models::count_parameters(*teacher)}});
  }
  out.details["teachers"] = teachers;
  out.details["teacher_weights"] = weights;
  out.details["cached_outputs"] = train.count();
  const double t = options.temperature, alpha = options.alpha;
  if (classification) {
    const at::Tensor probs = teacher_probabilities(teacher_outputs, weights, t);
    const std::int64_t classes = probs.size(1);
    out.train = data::TensorDataset(train.inputs(), at::cat({probs, train.targets().to(at::kFloat).unsqueeze(1)}, 1));
    out.loss = [t, alpha, classes](const at::Tensor& y, const at::Tensor& packed) {
      return distillation_loss(y, packed.narrow(1, 0, classes), packed.select(1, classes).to(at::kLong), t, alpha);
    };
    out.details["loss"] =
        fmt::format("{} * KL(teacher || student) at T={} * T^2 + {} * cross-entropy", alpha, t, 1 - alpha);
  } else {
    at::Tensor mean;
    double total = 0;
    for (const double w : weights) total += w;
    for (std::size_t i = 0; i < teacher_outputs.size(); ++i) {
      const at::Tensor part = teacher_outputs[i] * (weights[i] / total);
      mean = mean.defined() ? mean + part : part;
    }
    const at::Tensor targets = train.targets().to(at::kFloat).reshape(mean.sizes());
    const std::int64_t width = mean.size(1);
    out.train = data::TensorDataset(train.inputs(), at::cat({mean, targets}, 1));
    out.loss = [alpha, width](const at::Tensor& y, const at::Tensor& packed) {
      return regression_distillation_loss(y, packed.narrow(1, 0, width), packed.narrow(1, width, width), alpha);
    };
    out.details["loss"] = fmt::format("{} * MSE(teacher) + {} * MSE(target)", alpha, 1 - alpha);
  }
  return out;
}

}  // namespace hone::compress
