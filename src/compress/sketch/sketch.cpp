// sketch: replaces Linear layers by SketchedLinear (y = 1/(2L)·Σ(x·S1ᵢ·U1ᵢ + x·U2ᵢ·S2ᵢ) + b) and
// groups = 1 Conv2d layers by SketchedConv2d (y = 1/(2L)·Σ Uᵢᵀ·conv(x, Sᵢ) + b): unbiased but noisy
// estimates of the dense layer whose variance falls like 1/(L·k). Nothing is fine-tuned here, so a
// sketched layer usually costs accuracy; the auto-tuner only keeps one that is measurably faster
// and stays within the accuracy budget.
//
// Fixed mode ('terms' and 'rank' both given): every chosen layer whose multiply-adds per output row
// (Linear) or output pixel (Conv2d) would shrink is sketched, without measuring anything.
//
// Auto-tuning (either left at 0), greedily per layer in execution order:
//   1. one calibration batch through the model records each chosen layer's real input shape;
//   2. the dense layer and every (L, k) of the grids with fewer multiply-adds run on a random input
//      of that shape with 'batch' rows (timing only), interleaved in rounds after a warm-up, on
//      PassContext::device; latencies are medians;
//   3. candidates at least 'min_speedup' faster than dense are tried fastest first: each is put into
//      the model and PassContext::validation_score is evaluated; the first whose drop from the
//      score before this pass (so the drops of earlier accepted layers count too) is within
//      'accuracy_budget' is kept, otherwise the dense layer goes back.
// Trials swap the slot's layer directly; only the accepted layer goes through the ModelEditor, so
// compress.json replays exactly the layers that were kept.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/utils.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../layer_patterns.h"
#include "../layer_timing.h"
#include "../passes.h"
#include "../score_scale.h"
#include "hone/core/error.h"
#include "hone/nn/conv_geometry.h"
#include "hone/nn/layer.h"
#include "hone/nn/sketched_conv2d.h"
#include "hone/nn/sketched_linear.h"

namespace hone::compress {
namespace {

/// Different sketches for every layer from one seed (splitmix64 of seed and the slot's index).
std::uint64_t layer_seed(std::uint64_t seed, std::size_t index) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (static_cast<std::uint64_t>(index) + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// A sketched layer and the spec that rebuilds it.
struct Sketched {
  nn::Layer layer;
  nlohmann::json spec;
};

/// One layer the pass may sketch: a Linear or a groups = 1 Conv2d (exactly one is set).
struct Target {
  nn::SlotRef ref;
  std::size_t index = 0;  ///< among all slots of the model (for the seed)
  std::shared_ptr<torch::nn::LinearImpl> linear;
  std::shared_ptr<torch::nn::Conv2dImpl> conv;
  nn::Conv2dGeometry geometry;  ///< of `conv`

  const torch::Tensor& weight() const { return linear ? linear->weight : conv->weight; }
  bool has_bias() const { return linear ? linear->bias.defined() : conv->bias.defined(); }
  std::optional<torch::Tensor> bias_on(const c10::Device& device) const {
    const auto& bias = linear ? linear->bias : conv->bias;
    return bias.defined() ? std::optional<torch::Tensor>(bias.detach().to(device)) : std::nullopt;
  }
  /// "[out x in]" or "Conv2d [out x C x kh x kw]".
  std::string shape() const {
    const auto& w = weight();
    if (linear) return fmt::format("[{} x {}]", w.size(0), w.size(1));
    return fmt::format("Conv2d [{} x {} x {} x {}]", w.size(0), w.size(1), w.size(2), w.size(3));
  }
  /// Multiply-adds per output row (Linear) or output pixel (Conv2d).
  std::int64_t dense_macs() const { return weight().numel(); }
  std::int64_t sketched_macs(std::int64_t terms, std::int64_t rank) const {
    if (linear) return nn::sketched_linear_macs(weight().size(1), weight().size(0), terms, rank);
    return nn::sketched_conv2d_macs_per_pixel(conv_options(terms, rank, 0));
  }
  /// The slot's original layer, as the model registered it.
  nn::Layer dense_layer() const { return linear ? nn::make_layer(linear) : nn::make_layer(conv); }
  /// The dense layer with its weights on `device` (a copy when they live elsewhere).
  nn::Layer dense_layer_on(const c10::Device& device) const {
    if (weight().device() == device) return dense_layer();
    if (linear) return nn::make_layer(std::dynamic_pointer_cast<torch::nn::LinearImpl>(linear->clone(device)));
    return nn::make_layer(std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(conv->clone(device)));
  }
  /// The sketch of this layer, built with its weights on `device`.
  Sketched sketch(std::int64_t terms, std::int64_t rank, std::uint64_t seed, const c10::Device& device) const {
    const auto w = weight().detach().to(device);
    if (linear) {
      const nn::SketchedLinearOptions options{w.size(1), w.size(0), terms, rank, has_bias(), seed};
      const nlohmann::json spec = {
          {"kind", "sketched_linear"}, {"in", options.in}, {"out", options.out}, {"terms", terms}, {"rank", rank},
          {"bias", options.bias}};
      return {nn::make_layer(nn::SketchedLinear(options, w, bias_on(device))), spec};
    }
    nn::SketchedConv2d layer(conv_options(terms, rank, seed), w, bias_on(device));
    auto spec = layer->spec();
    return {nn::make_layer(layer), std::move(spec)};
  }
  /// The input a timing run takes: the recorded shape with `batch` rows (or images).
  std::vector<std::int64_t> timing_shape(std::vector<std::int64_t> recorded, std::int64_t batch) const {
    const std::size_t batched_rank = linear ? 2 : 4;
    if (recorded.size() < batched_rank) recorded.insert(recorded.begin(), batch);
    recorded.front() = batch;
    return recorded;
  }

 private:
  nn::SketchedConv2dOptions conv_options(std::int64_t terms, std::int64_t rank, std::uint64_t seed) const {
    const auto& g = geometry;
    return {g.in, g.out, g.kernel, g.stride, g.padding, g.dilation, terms, rank, g.bias, seed};
  }
};

struct Candidate {
  std::int64_t terms = 0, rank = 0;
  Sketched sketched;
  double ms = 0, speedup = 0;
  nlohmann::json row;
};

/// Each target's input shape in a forward pass of `batch` (empty when the forward never called it).
std::vector<std::vector<std::int64_t>> record_input_shapes(models::Model& model, const std::vector<Target>& targets,
                                                           const torch::Tensor& batch) {
  auto shapes = std::make_shared<std::vector<std::vector<std::int64_t>>>(targets.size());
  // Puts the dense layers back however the forward ends.
  struct Restore {
    const std::vector<Target>& targets;
    ~Restore() {
      for (const auto& target : targets) target.ref.parent->replace_layer(target.ref.name, target.dense_layer());
    }
  } restore{targets};
  for (std::size_t i = 0; i < targets.size(); ++i) {
    auto dense = targets[i].dense_layer();
    auto call = dense.call;
    nn::Layer recording{dense.module,
                        [call, shapes, i](const torch::Tensor& x) {
                          if ((*shapes)[i].empty()) (*shapes)[i] = x.sizes().vec();
                          return call(x);
                        },
                        false};
    targets[i].ref.parent->replace_layer(targets[i].ref.name, std::move(recording));
  }
  model.forward(batch);
  return *shapes;
}

class Sketch : public Pass {
 public:
  PassReport apply(models::Model& model, const nlohmann::json& options, PassContext& context) override {
    PassReport report{"sketch", options, {}, {}};
    report.details["layers"] = nlohmann::json::array();
    torch::NoGradGuard no_grad;
    const auto targets = choose_targets(model, options, report);
    const auto terms = options["terms"].get<std::int64_t>();
    const auto rank = options["rank"].get<std::int64_t>();
    if (!targets.empty()) {
      if (terms > 0 && rank > 0) {
        for (const auto& target : targets) sketch_fixed(target, terms, rank, options, context, report);
      } else {
        auto_tune(model, targets, options, context, report);
      }
    }
    if (report.changed.empty() && report.skipped.empty()) {
      report.skipped.push_back("no Linear or Conv2d layer in this model");
    }
    return report;
  }

 private:
  static std::vector<Target> choose_targets(models::Model& model, const nlohmann::json& options, PassReport& report) {
    const auto patterns = options["layers"].get<std::vector<std::string>>();
    std::vector<bool> pattern_used(patterns.size(), false);
    std::vector<Target> targets;
    const auto slots = nn::all_slots(model);
    for (std::size_t index = 0; index < slots.size(); ++index) {
      const auto& ref = slots[index];
      auto linear = std::dynamic_pointer_cast<torch::nn::LinearImpl>(ref.slot->module());
      auto conv = std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(ref.slot->module());
      if (linear == nullptr && conv == nullptr) continue;
      bool chosen = patterns.empty();
      for (std::size_t p = 0; p < patterns.size(); ++p) {
        if (selects(patterns[p], ref.path)) chosen = pattern_used[p] = true;
      }
      if (!chosen) continue;
      if (is_skipped(ref.path, options["skip"])) {
        report.skipped.push_back(fmt::format("{}: listed in 'skip'", ref.path));
        continue;
      }
      Target target{ref, index, std::move(linear), std::move(conv), {}};
      if (target.conv) {
        try {
          target.geometry = nn::Conv2dGeometry::of(*target.conv, "sketch");
        } catch (const Error& error) {
          report.skipped.push_back(fmt::format("{}: left dense: {}", ref.path, error.what()));
          continue;
        }
        if (target.geometry.groups != 1) {
          report.skipped.push_back(
              fmt::format("{}: left dense: only groups = 1 convolutions can be sketched, got groups = {}", ref.path,
                          target.geometry.groups));
          continue;
        }
      }
      targets.push_back(std::move(target));
    }
    for (std::size_t p = 0; p < patterns.size(); ++p) {
      if (!pattern_used[p]) {
        report.skipped.push_back(fmt::format("'layers' entry '{}' matches no Linear or Conv2d layer", patterns[p]));
      }
    }
    return targets;
  }

  static std::uint64_t seed_of(const Target& target, const nlohmann::json& options) {
    return layer_seed(options["seed"].get<std::uint64_t>(), target.index);
  }

  static void sketch_fixed(const Target& target, std::int64_t terms, std::int64_t rank, const nlohmann::json& options,
                           PassContext& context, PassReport& report) {
    const auto& path = target.ref.path;
    const auto sketched_macs = target.sketched_macs(terms, rank);
    if (sketched_macs >= target.dense_macs()) {
      report.skipped.push_back(fmt::format("{}: L={}, k={} would not reduce multiply-adds of {} ({} >= {})", path,
                                           terms, rank, target.shape(), sketched_macs, target.dense_macs()));
      return;
    }
    const auto seed = seed_of(target, options);
    auto sketched = target.sketch(terms, rank, seed, target.weight().device());
    context.editor->replace(path, sketched.spec, std::move(sketched.layer));
    report.changed.push_back(fmt::format("{}: {} -> sketched L={}, k={} ({} -> {} multiply-adds per output)", path,
                                         target.shape(), terms, rank, target.dense_macs(), sketched_macs));
    report.details["layers"].push_back({{"path", path},
                                        {"shape", target.weight().sizes().vec()},
                                        {"terms", terms},
                                        {"rank", rank},
                                        {"seed", seed},
                                        {"macs_dense", target.dense_macs()},
                                        {"macs_sketched", sketched_macs}});
  }

  static std::vector<std::int64_t> grid(const nlohmann::json& options, const char* fixed, const char* list) {
    const auto value = options[fixed].get<std::int64_t>();
    if (value > 0) return {value};
    auto values = options[list].get<std::vector<std::int64_t>>();
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());
    return values;
  }

  static void auto_tune(models::Model& model, const std::vector<Target>& targets, const nlohmann::json& options,
                        PassContext& context, PassReport& report) {
    const char* fixed_hint = "or give both 'terms' and 'rank' to sketch every chosen layer without measuring";
    if (!context.validation_score) {
      fail("sketch: auto-tuning weighs accuracy and needs a validation score (a run directory with a dataset); {}",
           fixed_hint);
    }
    std::vector<torch::Tensor> batches;
    if (context.calibration_batches) batches = context.calibration_batches(1);
    if (batches.empty()) {
      fail("sketch: auto-tuning needs a calibration batch to record each layer's input shape, and there is none; {}",
           fixed_hint);
    }
    const auto shapes = record_input_shapes(model, targets, batches.front().to(targets.front().weight().device()));
    const ScoreScale scale{context.validation_score(model)};
    const auto terms_grid = grid(options, "terms", "terms_grid");
    const auto rank_grid = grid(options, "rank", "rank_grid");
    double score = scale.before;
    for (std::size_t i = 0; i < targets.size(); ++i) {
      if (shapes[i].empty()) {
        report.skipped.push_back(
            fmt::format("{}: left dense: the calibration batch never reached it", targets[i].ref.path));
        continue;
      }
      tune_layer(model, targets[i], shapes[i], terms_grid, rank_grid, scale, score, options, context, report);
    }
    report.details["score_before"] = scale.before;
    report.details["score_after"] = score;
    report.details["drop"] = scale.drop(score);
    report.details["drop_unit"] = scale.unit_name();
    const TimingPlan plan;
    report.details["timing"] =
        fmt::format("random inputs (timing only) on {}, {} warm-up calls, median of {} interleaved rounds",
                    context.device.str(), plan.warmup_calls, plan.rounds);
  }

  /// Times the dense layer and the cheaper candidates, tries the fast ones fastest first, keeps the
  /// first within the budget (updating `score`) or puts the dense layer back.
  static void tune_layer(models::Model& model, const Target& target, const std::vector<std::int64_t>& input_shape,
                         const std::vector<std::int64_t>& terms_grid, const std::vector<std::int64_t>& rank_grid,
                         const ScoreScale& scale, double& score, const nlohmann::json& options, PassContext& context,
                         PassReport& report) {
    const auto& path = target.ref.path;
    nlohmann::json row = {{"path", path},
                          {"shape", target.weight().sizes().vec()},
                          {"input_shape", input_shape},
                          {"macs_dense", target.dense_macs()},
                          {"candidates", nlohmann::json::array()},
                          {"choice", nullptr}};
    std::vector<Candidate> candidates;
    const auto finish = [&](const std::string& reason, bool dense) {
      for (const auto& candidate : candidates) row["candidates"].push_back(candidate.row);
      row["reason"] = reason;
      report.details["layers"].push_back(row);
      if (dense) report.skipped.push_back(fmt::format("{}: left dense: {}", path, reason));
    };
    for (const auto terms : terms_grid) {
      for (const auto rank : rank_grid) {
        if (target.sketched_macs(terms, rank) < target.dense_macs()) candidates.push_back({terms, rank, {}, 0, 0, {}});
      }
    }
    if (candidates.empty()) {
      finish(fmt::format("no (L,k) in the grids has fewer multiply-adds than {} ({} per output)", target.shape(),
                         target.dense_macs()),
             true);
      return;
    }

    // Timing: the dense layer and every candidate on the same random input (timing only).
    const auto seed = seed_of(target, options);
    const auto& device = context.device;
    const auto timing_shape = target.timing_shape(input_shape, options["batch"].get<std::int64_t>());
    auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
    const auto input = at::randn(timing_shape, generator, at::TensorOptions().dtype(at::kFloat))
                           .to(device, target.weight().scalar_type());
    const auto dense = target.dense_layer_on(device);
    std::vector<std::function<void()>> runs = {[&] { dense.call(input); }};
    for (auto& candidate : candidates) {
      candidate.sketched = target.sketch(candidate.terms, candidate.rank, seed, device);
      runs.emplace_back([&candidate, &input] { candidate.sketched.layer.call(input); });
    }
    const auto ms = median_ms(runs, device);
    const double dense_ms = ms.front();
    row["timing_shape"] = timing_shape;
    row["dense_ms"] = dense_ms;
    for (std::size_t c = 0; c < candidates.size(); ++c) {
      auto& candidate = candidates[c];
      candidate.ms = ms[c + 1];
      candidate.speedup = dense_ms / std::max(candidate.ms, 1e-9);
      candidate.row = {{"terms", candidate.terms},
                       {"rank", candidate.rank},
                       {"macs", target.sketched_macs(candidate.terms, candidate.rank)},
                       {"ms", candidate.ms},
                       {"speedup", candidate.speedup},
                       {"score", nullptr},
                       {"result", "slower than min_speedup"}};
    }
    std::sort(candidates.begin(), candidates.end(), [](const auto& a, const auto& b) { return a.ms < b.ms; });
    const auto min_speedup = options["min_speedup"].get<double>();
    const auto fast_count = std::count_if(candidates.begin(), candidates.end(),
                                          [&](const auto& candidate) { return candidate.speedup >= min_speedup; });
    if (fast_count == 0) {
      const auto& best = candidates.front();
      finish(fmt::format("no (L,k) faster than dense: best {:.2f}× at L={},k={} (min_speedup {})", best.speedup,
                         best.terms, best.rank, min_speedup),
             true);
      return;
    }

    // Accuracy: fastest first; the first within the budget stays.
    const auto budget = options["accuracy_budget"].get<double>();
    const auto model_device = target.weight().device();
    const Candidate* least_bad = nullptr;
    for (auto& candidate : candidates) {
      if (candidate.speedup < min_speedup) continue;
      candidate.sketched.layer.module->to(model_device);
      target.ref.parent->replace_layer(target.ref.name, candidate.sketched.layer);
      double trial_score = 0;
      try {
        trial_score = context.validation_score(model);
      } catch (...) {
        target.ref.parent->replace_layer(target.ref.name, target.dense_layer());
        throw;
      }
      const double drop = scale.drop(trial_score);
      candidate.row["score"] = trial_score;
      candidate.row["drop"] = drop;
      if (drop > budget) {
        candidate.row["result"] = "over the accuracy budget";
        if (least_bad == nullptr || drop < least_bad->row["drop"].get<double>()) least_bad = &candidate;
        continue;
      }
      candidate.row["result"] = "chosen";
      context.editor->replace(path, candidate.sketched.spec, candidate.sketched.layer);
      score = trial_score;
      row["choice"] = {{"terms", candidate.terms},     {"rank", candidate.rank}, {"seed", seed}, {"ms", candidate.ms},
                       {"speedup", candidate.speedup}, {"score", trial_score},   {"drop", drop}};
      report.changed.push_back(fmt::format(
          "{}: {} -> sketched L={}, k={}: {:.3f} ms vs {:.3f} ms dense ({:.2f}×), score drop {:.3g}{} (budget {}{})",
          path, target.shape(), candidate.terms, candidate.rank, candidate.ms, dense_ms, candidate.speedup, drop,
          scale.unit(), budget, scale.unit()));
      for (auto& rest : candidates) {
        if (rest.speedup >= min_speedup && rest.row["score"].is_null()) rest.row["result"] = "not tried";
      }
      finish("the fastest candidate within the accuracy budget", false);
      return;
    }
    target.ref.parent->replace_layer(target.ref.name, target.dense_layer());
    finish(fmt::format("all {} faster candidates exceed the accuracy budget: best drop {:.3g}{} at L={},k={} (budget "
                       "{}{})",
                       fast_count, least_bad->row["drop"].get<double>(), scale.unit(), least_bad->terms,
                       least_bad->rank, budget, scale.unit()),
           true);
  }
};

}  // namespace

PassEntry sketch_entry() {
  return {"sketch",
          "replace Linear and Conv2d layers by sketched ones (L terms of rank k); auto-tunes (L, k) per layer by "
          "measured latency and validation score, keeps a layer dense where sketching does not pay",
          {{"layers",
            OptionSpec::Type::StringList,
            nlohmann::json::array(),
            {},
            -1e300,
            1e300,
            "slot paths or patterns ('*' matches any characters, e.g. 'layers.*.feed_forward.*') to consider; "
            "empty: every Linear and Conv2d"},
           {"terms", OptionSpec::Type::Integer, 0, {}, 0, 1024, "L, the number of sketch terms; 0: auto-tune"},
           {"rank", OptionSpec::Type::Integer, 0, {}, 0, 65536, "k, the rank of each term; 0: auto-tune"},
           {"terms_grid",
            OptionSpec::Type::IntegerList,
            nlohmann::json::array({1, 2, 4, 8}),
            {},
            1,
            1024,
            "values of L the auto-tuner tries"},
           {"rank_grid",
            OptionSpec::Type::IntegerList,
            nlohmann::json::array({16, 32, 64, 128}),
            {},
            1,
            65536,
            "values of k the auto-tuner tries"},
           {"accuracy_budget",
            OptionSpec::Type::Number,
            1.0,
            {},
            0.0,
            1e300,
            "largest allowed drop of the validation score over the whole pass: accuracy points for classifiers, "
            "percent of |score| (-RMSE) for forecasters"},
           {"min_speedup",
            OptionSpec::Type::Number,
            1.1,
            {},
            0.0,
            1e300,
            "a candidate must be at least this many times faster than the dense layer (measured)"},
           {"batch", OptionSpec::Type::Integer, 64, {}, 1, 1 << 20, "rows of the random input latency is measured on"},
           {"seed", OptionSpec::Type::Integer, 0, {}, 0, 9.0e15, "seeds the sign sketches (each layer gets its own)"},
           skip_option("slot paths (or path prefixes, e.g. 'layers.0') to leave alone")},
          [] { return std::make_unique<Sketch>(); }};
}

}  // namespace hone::compress
