// qat: quantization-aware training, then conversion into the int8 static layers of
// quant_int8_static. The slots quant_int8_static would quantize are called through fake-quantizing
// functions (the module tree does not change): the input is rounded to the quint8 grid of its
// observed range, the weight to the symmetric int8 grid (per channel), and the output to its own
// range (after the ReLU the int8 layer will fuse), each in float with the straight-through
// estimator for the gradient; residual adds see their inputs and output rounded likewise. Ranges
// come from exponential-moving-average min/max observers, seeded on calibration batches and frozen
// after `freeze_observers_after` epochs, so the last epochs train against the ranges the int8
// model will use. Batch norms must be folded first (fuse_conv_bn, which the registry runs before):
// folded norms are frozen statistics, as QAT wants them. After training the float layers come back
// with their trained weights and go to int8 with the observers' ranges, exactly as a post-training
// run would convert them, so the result loads and runs like any int8 static run.
#include <ATen/ATen.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/utils.h>

#include <fmt/format.h>

#include "../distill/teacher_targets.h"
#include "../passes.h"
#include "../training/fine_tune.h"
#include "hone/compress/fake_quant.h"
#include "hone/core/error.h"
#include "hone/data/datasets.h"
#include "hone/nn/layer.h"
#include "int8_static_plan.h"
#include "observers.h"
#include "quant_common.h"
#include "sensitivity.h"

namespace hone::compress {

at::Tensor fake_quantize_weight(const at::Tensor& weight, bool per_channel) {
  const at::Tensor rows = weight.detach().reshape({weight.size(0), -1}).to(at::kDouble);
  at::Tensor amax = per_channel ? rows.abs().amax(1) : rows.abs().max().reshape({1});
  const at::Tensor scale = at::where(amax > 0, amax / 127.0, at::ones_like(amax));
  if (per_channel) {
    return at::fake_quantize_per_channel_affine(
        weight, scale.to(at::kFloat).to(weight.device()),
        at::zeros(scale.sizes(), at::TensorOptions().dtype(at::kInt).device(weight.device())),
        /*axis=*/0, -127, 127);
  }
  return at::fake_quantize_per_tensor_affine(weight, scale.item<double>(), 0, -127, 127);
}

at::Tensor fake_quantize_activation(const at::Tensor& x, const nn::ActivationQParams& qparams, std::int64_t quant_min,
                                    std::int64_t quant_max) {
  return at::fake_quantize_per_tensor_affine(x, qparams.scale, qparams.zero_point, quant_min, quant_max);
}

namespace {

/// min/max as exponential moving averages of each batch's min and max (PyTorch's
/// MovingAverageMinMaxObserver), the first batch taken as it is; frozen, it records nothing.
class EmaObserver : public Observer {
 public:
  EmaObserver(QuantRange range, double momentum) : Observer(range), momentum_(momentum) {}
  std::pair<double, double> clip_range() const override {
    HONE_CHECK(seen_, "qat: an observer was read before it saw any activation");
    return {lo_, hi_};
  }
  bool frozen = false;

 protected:
  void record(const at::Tensor& values) override {
    if (frozen || values.numel() == 0) return;
    const auto extrema = at::aminmax(values);
    const double lo = std::get<0>(extrema).item<double>(), hi = std::get<1>(extrema).item<double>();
    if (!seen_) {
      lo_ = lo, hi_ = hi, seen_ = true;
    } else {
      lo_ += momentum_ * (lo - lo_);
      hi_ += momentum_ * (hi - hi_);
    }
  }

 private:
  double momentum_;
  bool seen_ = false;
  double lo_ = 0, hi_ = 0;
};

EmaObserver& ema(const std::unique_ptr<Observer>& o) { return static_cast<EmaObserver&>(*o); }

/// Observes `x` unless the observer is frozen (then not even its min/max are read).
void watch(const std::unique_ptr<Observer>& o, const at::Tensor& x) {
  if (!ema(o).frozen) o->observe(x);
}

/// A residual add whose inputs and output are observed and fake-quantized as the int8 add will.
class FakeQuantResidualAdd : public nn::ResidualAddImpl {
 public:
  FakeQuantResidualAdd(std::shared_ptr<nn::ResidualAddImpl> original, quant::StaticTarget& target, QuantRange range)
      : nn::ResidualAddImpl(original->relu()), original_(std::move(original)), target_(target), range_(range) {}
  torch::Tensor forward(const torch::Tensor& a, const torch::Tensor& b) override {
    watch(target_.input, a);
    watch(target_.input_b, b);
    auto y = original_->forward(fq(a, *target_.input), fq(b, *target_.input_b));
    watch(target_.output, y);
    return fq(y, *target_.output);
  }

 private:
  at::Tensor fq(const at::Tensor& x, const Observer& o) const {
    return fake_quantize_activation(x, o.qparams(), range_.min, range_.max);
  }
  std::shared_ptr<nn::ResidualAddImpl> original_;
  quant::StaticTarget& target_;
  QuantRange range_;
};

/// The training tap of a Conv2d / Linear target: fake-quantized input, weight and output.
nn::Layer fake_quant_tap(quant::StaticTarget& target, bool per_channel, QuantRange range) {
  if (target.type == quant::StaticTargetType::kAdd) {
    return nn::make_layer(std::make_shared<FakeQuantResidualAdd>(
        std::dynamic_pointer_cast<nn::ResidualAddImpl>(target.original.module), target, range));
  }
  nn::Layer tap;
  tap.module = target.original.module;
  const bool quantize_output = target.has_consumer;  // a float output (logits) stays float in int8 too
  const bool relu = target.relu.has_value();
  auto* t = &target;
  std::function<at::Tensor(const at::Tensor&, const at::Tensor&)> compute;
  if (target.type == quant::StaticTargetType::kConv) {
    auto conv = std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(target.original.module);
    compute = [conv, per_channel](const at::Tensor& x, const at::Tensor&) {
      const auto& o = conv->options;
      const auto padding = std::get<torch::ExpandingArray<2>>(o.padding());
      return at::conv2d(x, fake_quantize_weight(conv->weight, per_channel), conv->bias, *o.stride(), *padding,
                        *o.dilation(), o.groups());
    };
  } else {
    auto linear = std::dynamic_pointer_cast<torch::nn::LinearImpl>(target.original.module);
    compute = [linear, per_channel](const at::Tensor& x, const at::Tensor&) {
      return at::linear(x, fake_quantize_weight(linear->weight, per_channel), linear->bias);
    };
  }
  tap.call = [t, compute, range, relu, quantize_output](const at::Tensor& x) {
    watch(t->input, x);
    at::Tensor y = compute(fake_quantize_activation(x, t->input->qparams(), range.min, range.max), x);
    if (relu) y = y.relu();  // the ReLU slot after it applies it again: a no-op
    watch(t->output, y);
    return quantize_output ? fake_quantize_activation(y, t->output->qparams(), range.min, range.max) : y;
  };
  return tap;
}

class Qat : public Pass {
 public:
  PassReport apply(models::Model& model, const nlohmann::json& options, PassContext& context) override {
    PassReport report{"qat", options, {}, {}};
    if (context.data == nullptr || !context.load_model || !context.calibration_batches)
      fail_usage_option("pass", "qat trains on the run's dataset: compress a run directory, not a zoo name");
    check_trainable(model, "qat");
    const bool per_channel = options.at("per_channel").get<bool>();
    const double momentum = options.at("ema_momentum").get<double>();
    const auto freeze_after = options.at("freeze_observers_after").get<std::int64_t>();
    const QuantRange range = quant::static_activation_range();

    auto targets = quant::plan_static_targets(model, options.at("skip"), report);
    if (targets.empty()) {
      report.skipped.push_back("nothing to quantize: no Conv2d, Linear or residual add (the model is unchanged)");
      return report;
    }
    for (auto& target : targets) {
      target.input = std::make_unique<EmaObserver>(range, momentum);
      target.output = std::make_unique<EmaObserver>(range, momentum);
      if (target.type == quant::StaticTargetType::kAdd) target.input_b = std::make_unique<EmaObserver>(range, momentum);
    }
    // Seed the ranges on real batches (the float model), so the first step already rounds.
    quant::calibrate_static_targets(model, targets,
                                    context.calibration_batches(options.at("calibration_batches").get<std::int64_t>()));
    std::erase_if(targets, [&](const quant::StaticTarget& t) {
      if (!t.input->empty()) return false;
      report.skipped.push_back(fmt::format("{}: not reached by the calibration batches; left in float", t.ref.path));
      return true;
    });

    const auto& data = *context.data;
    const TeacherOptions teacher = read_teacher_options("qat", options, c10::kCPU);
    TrainingTargets training = make_training_targets(model, data, teacher, context.load_model);

    // int8 layers and their observers live on the CPU.
    FineTuneOptions tune =
        read_fine_tune_options("qat", options, c10::kCPU);           // int8 layers and their observers live on the CPU
    tune.best_from_epoch = std::min(freeze_after + 1, tune.epochs);  // ranges fixed from then on

    const auto freeze = [&](bool frozen) {
      for (auto& t : targets) {
        ema(t.input).frozen = frozen;
        ema(t.output).frozen = frozen;
        if (t.input_b) ema(t.input_b).frozen = frozen;
      }
    };
    quant::replace_targets(targets, [&](quant::StaticTarget& t) { return fake_quant_tap(t, per_channel, range); });
    const auto val_score = validation_scorer(data, c10::kCPU);
    FineTuneResult result;
    const at::Tensor probe = context.calibration_batches(1).front();
    at::Tensor fake_output;
    try {
      result = fine_tune(
          model, training.train, training.loss, tune,
          [&](models::Model& m) {
            // Validation sees the fake-quantized model; it must not move the ranges.
            freeze(true);
            const double score = val_score(m);
            freeze(false);
            return score;
          },
          {}, [&](std::int64_t epoch) { freeze(epoch > freeze_after); });
      freeze(true);
      torch::NoGradGuard no_grad;
      fake_output = model.forward(probe);
    } catch (...) {
      quant::restore_targets(targets);
      throw;
    }
    quant::restore_targets(targets);

    auto candidates = quant::static_candidates(targets, per_channel, range, report);
    auto details = quant::quantize_within_budget(model, candidates, /*budget=*/-1, context, report);
    {
      // How far the converted int8 model is from the fake-quantized one it was trained as, in
      // steps of the output's quantization (logits: their float range / 255).
      torch::NoGradGuard no_grad;
      const at::Tensor int8_output = model.forward(probe).to(at::kFloat);
      const double span = (fake_output.max() - fake_output.min()).item<double>();
      const double step = span > 0 ? span / 255.0 : 1.0;
      report.details["fake_quant_vs_int8_max_abs"] = (int8_output - fake_output).abs().max().item<double>();
      report.details["fake_quant_vs_int8_steps"] = (int8_output - fake_output).abs().max().item<double>() / step;
    }
    report.details["layers"] = std::move(details);
    report.details["training"] = result.to_json();
    report.details["loss"] = training.details;
    report.details["activation_max"] = range.max;
    return report;
  }
};

}  // namespace

PassEntry qat_entry() {
  using Type = OptionSpec::Type;
  std::vector<OptionSpec> specs = fine_tune_option_specs(/*epochs=*/2, /*lr=*/2e-4, /*weight_decay=*/0.0);
  for (OptionSpec spec : std::vector<OptionSpec>{
           {"per_channel", Type::Boolean, true, {}, -1e300, 1e300, "one weight scale per output channel"},
           {"ema_momentum", Type::Number, 0.01, {}, 1e-6, 1.0, "how fast the activation ranges follow each batch"},
           {"freeze_observers_after",
            Type::Integer,
            1,
            {},
            0,
            1000,
            "epochs after which the activation ranges stop moving (later epochs train against fixed ranges)"},
           {"calibration_batches", Type::Integer, 8, {}, 1, 1e9, "training batches that seed the ranges"}})
    specs.push_back(std::move(spec));
  for (auto& spec : teacher_option_specs(/*alpha=*/0.0)) specs.push_back(spec);
  specs.push_back(skip_option("layer paths (or path prefixes) to leave in float"));
  return {"qat",
          "quantization-aware training (fake-quantized int8 weights and activations, EMA ranges), then int8 static "
          "layers as quant_int8_static makes them (needs a run directory; fold batch norms first)",
          std::move(specs), [] { return std::make_unique<Qat>(); }};
}

}  // namespace hone::compress
