// Compression that trains: the distillation losses against hand computations and finite
// differences, the cubic pruning schedule, and the distill / prune_gradual passes end to end on a
// real digits run (sklearn's 8x8 digits): a damaged student recovers, pruned weights stay exactly
// zero through AdamW, the result reloads, and bad input is refused before any training.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "hone/compress/compress.h"
#include "hone/compress/distill_loss.h"
#include "hone/compress/fake_quant.h"
#include "hone/compress/prune_schedule.h"
#include "hone/core/error.h"
#include "hone/nn/quantized_weight.h"
#include "hone/run/run_dir.h"
#include "hone/train/evaluate.h"
#include "hone/train/trainer.h"
#include "support/temp_dir.h"

namespace hone::compress {
namespace {

TEST(DistillLossTest, SoftTargetLossIsKlTimesTSquaredByHand) {
  const at::Tensor student = torch::tensor({{1.0, 2.0, 0.5}, {0.0, -1.0, 3.0}}, torch::kDouble);
  const at::Tensor teacher = torch::tensor({{2.0, 1.0, 0.0}, {0.5, 0.5, 1.0}}, torch::kDouble);
  const double t = 2.0;
  const at::Tensor p = teacher_probabilities({teacher}, {1.0}, t);
  double expected = 0;
  for (int i = 0; i < 2; ++i) {
    double zs = 0, zt = 0;
    for (int c = 0; c < 3; ++c) {
      zs += std::exp(student[i][c].item<double>() / t);
      zt += std::exp(teacher[i][c].item<double>() / t);
    }
    for (int c = 0; c < 3; ++c) {
      const double pt = std::exp(teacher[i][c].item<double>() / t) / zt;
      const double qs = std::exp(student[i][c].item<double>() / t) / zs;
      expected += pt * std::log(pt / qs);
    }
  }
  expected = expected / 2 * t * t;
  EXPECT_NEAR(soft_target_loss(student, p, t).item<double>(), expected, 1e-12);
  EXPECT_NEAR(soft_target_loss(teacher, p, t).item<double>(), 0.0, 1e-12) << "a student equal to its teacher";

  const at::Tensor labels = torch::tensor({2, 1}, torch::kLong);
  const double ce = at::cross_entropy_loss(student, labels).item<double>();
  EXPECT_NEAR(distillation_loss(student, p, labels, t, 0.75).item<double>(), 0.75 * expected + 0.25 * ce, 1e-12);
  EXPECT_NEAR(distillation_loss(student, p, labels, t, 0.0).item<double>(), ce, 1e-12);
}

TEST(DistillLossTest, GradientMatchesFiniteDifferences) {
  torch::manual_seed(3);
  const at::Tensor student = torch::randn({4, 5}, torch::kDouble).requires_grad_(true);
  const at::Tensor p = teacher_probabilities({torch::randn({4, 5}, torch::kDouble)}, {1.0}, 3.0);
  const at::Tensor labels = torch::randint(0, 5, {4}, torch::kLong);
  auto loss = [&](const at::Tensor& s) { return distillation_loss(s, p, labels, 3.0, 0.6); };
  loss(student).backward();
  const at::Tensor analytic = student.grad().clone();
  const double h = 1e-6;
  for (int i = 0; i < 4; ++i)
    for (int c = 0; c < 5; ++c) {
      at::Tensor plus = student.detach().clone(), minus = student.detach().clone();
      plus[i][c] += h;
      minus[i][c] -= h;
      const double numeric = (loss(plus).item<double>() - loss(minus).item<double>()) / (2 * h);
      EXPECT_NEAR(analytic[i][c].item<double>(), numeric, 1e-7) << i << "," << c;
    }
}

TEST(DistillLossTest, TeachersAverageTheirProbabilitiesAndRegressionMixesTwoMse) {
  const at::Tensor a = torch::tensor({{0.0, 3.0}}, torch::kDouble), b = torch::tensor({{1.0, -1.0}}, torch::kDouble);
  const at::Tensor mixed = teacher_probabilities({a, b}, {3.0, 1.0}, 1.0);
  const at::Tensor expected = at::softmax(a, 1) * 0.75 + at::softmax(b, 1) * 0.25;
  EXPECT_TRUE(at::allclose(mixed, expected, 1e-12, 1e-12));
  EXPECT_NEAR(mixed.sum().item<double>(), 1.0, 1e-12);
  EXPECT_THROW(teacher_probabilities({a, b}, {0.0, 0.0}, 1.0), Error);

  const at::Tensor s = torch::tensor({{1.0, 2.0}}, torch::kDouble), t = torch::tensor({{0.0, 2.0}}, torch::kDouble),
                   y = torch::tensor({{3.0, 0.0}}, torch::kDouble);
  // MSE(s, t) = 0.5, MSE(s, y) = (4 + 4) / 2 = 4.
  EXPECT_NEAR(regression_distillation_loss(s, t, y, 0.25).item<double>(), 0.25 * 0.5 + 0.75 * 4.0, 1e-12);
}

TEST(PruneScheduleTest, CubicRampFromBeginToEndWithPeriodicUpdates) {
  const PruneSchedule s{0.1, 0.9, 100, 1100, 50};
  EXPECT_DOUBLE_EQ(s.sparsity_at(0), 0.1);
  EXPECT_DOUBLE_EQ(s.sparsity_at(100), 0.1);
  EXPECT_NEAR(s.sparsity_at(600), 0.9 - 0.8 * 0.125, 1e-12);  // half way: (1 - 1/2)^3
  EXPECT_NEAR(s.sparsity_at(350), 0.9 - 0.8 * std::pow(0.75, 3), 1e-12);
  EXPECT_DOUBLE_EQ(s.sparsity_at(1100), 0.9);
  EXPECT_DOUBLE_EQ(s.sparsity_at(5000), 0.9);
  EXPECT_TRUE(s.updates_at(100));
  EXPECT_TRUE(s.updates_at(150));
  EXPECT_FALSE(s.updates_at(151));
  EXPECT_TRUE(s.updates_at(1100)) << "the end step always updates, frequency or not";
  EXPECT_FALSE(s.updates_at(1150));
  EXPECT_FALSE(s.updates_at(50));
  for (std::int64_t step = 100; step < 1100; step += 10) EXPECT_LE(s.sparsity_at(step), s.sparsity_at(step + 10));
}

TEST(FakeQuantTest, WeightFakeQuantIsQuantizeThenDequantizeWithAStraightThroughGradient) {
  torch::manual_seed(5);
  const at::Tensor w = torch::randn({6, 3, 3, 3});
  for (const bool per_channel : {true, false}) {
    const at::Tensor expected = nn::to_qint8(nn::quantize_weight_int8(w, per_channel), per_channel).dequantize();
    const at::Tensor fq = fake_quantize_weight(w, per_channel);
    EXPECT_LT((fq - expected).abs().max().item<double>(), 1e-6) << "per_channel " << per_channel;
    EXPECT_GT((fq - w).abs().max().item<double>(), 0) << "it rounds";
  }
  const at::Tensor leaf = w.clone().requires_grad_(true);
  fake_quantize_weight(leaf, true).sum().backward();
  EXPECT_TRUE(at::equal(leaf.grad(), torch::ones_like(w))) << "symmetric max|w| scaling clips nothing: all pass";

  const nn::ActivationQParams q{0.1, 10};
  const at::Tensor x = torch::tensor({-2.0f, -0.04f, 0.26f, 30.0f}).requires_grad_(true);
  const at::Tensor y = fake_quantize_activation(x, q, 0, 255);
  // quint8: q = clamp(round(x / 0.1) + 10, 0, 255); x' = (q - 10) * 0.1.
  EXPECT_TRUE(at::allclose(y, torch::tensor({-1.0f, 0.0f, 0.3f, 24.5f}), 1e-6, 1e-6)) << y;
  y.sum().backward();
  EXPECT_TRUE(at::equal(x.grad(), torch::tensor({0.0f, 1.0f, 1.0f, 0.0f}))) << "no gradient where it clipped";
}

TEST(RegressionDistillTest, AForecasterLearnsFromItsTeachersOutputsAndTheTrueTargets) {
  // The regression variant end to end on the real GoldSilver prices: the LSTM's outputs are cached
  // beside the targets ([N, 2 * out]) and the student (the source, pruned) trains on both MSEs.
  testing::TempDir dir("hone-distill-lstm");
  train::TrainOptions o;
  o.model = "lstm";
  o.data = "goldsilver";
  o.epochs = 2;
  o.max_steps_per_epoch = 20;
  o.batch_size = 64;
  o.workers = 0;
  o.progress = false;
  o.out_dir = dir / "teacher";
  train::train(o);
  CompressOptions c;
  c.source = (dir / "teacher").string();
  c.recipe = parse_recipe(
      {{"passes",
        {{{"pass", "distill"}, {"epochs", 2}, {"alpha", 0.5}, {"batch_size", 64}, {"max_steps_per_epoch", 20}}}}},
      "test");
  c.output = dir / "student";
  c.measure = false;
  const auto report = compress_model(c);
  const auto& d = report.passes.at(0).details;
  EXPECT_NE(d["loss"].get<std::string>().find("MSE(teacher)"), std::string::npos) << d["loss"];
  const double start = d["training"]["start_val_score"].get<double>();
  EXPECT_LT(start, 0) << "a forecaster's score is -RMSE";
  EXPECT_GE(d["training"]["best_val_score"].get<double>(), start) << "never worse than the student it got";
  auto model = run::load_run_model(dir / "student");
  const auto data = data::load_dataset("goldsilver", {});
  const auto val = train::evaluate(*model, data.val, data.info.task, "val", c10::kCPU);
  ASSERT_TRUE(val.rmse.has_value());
  EXPECT_NEAR(-*val.rmse, d["training"]["best_val_score"].get<double>(), 1e-6) << "the kept epoch was saved";
}

// --- the passes on a real digits run ------------------------------------------------------------

class TrainingPassesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir("hone-distill");
    train::TrainOptions o;
    o.model = "mlp";
    o.data = "digits";
    o.model_overrides = {{"hidden", {64}}};
    o.epochs = 12;
    o.batch_size = 32;
    o.learning_rate = 3e-3;
    o.seed = 1;
    o.workers = 0;
    o.progress = false;
    o.out_dir = *dir_ / "teacher";
    train::train(o);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::filesystem::path teacher() { return *dir_ / "teacher"; }
  static std::filesystem::path out(const std::string& name) { return *dir_ / name; }

  static CompressReport run(const nlohmann::json& passes, const std::string& name) {
    CompressOptions options;
    options.source = teacher().string();
    options.recipe = parse_recipe({{"passes", passes}}, "test");
    options.output = out(name);
    options.measure = false;
    return compress_model(options);
  }
  static double val_accuracy(const std::filesystem::path& run) {
    auto model = run::load_run_model(run);
    const auto data = data::load_dataset("digits", {});
    return train::evaluate(*model, data.val, data.info.task, "val", c10::kCPU).score();
  }
  static double weight_sparsity(const std::filesystem::path& run) {
    auto model = run::load_run_model(run);
    std::int64_t n = 0, zeros = 0;
    for (const auto& p : model->parameters()) {
      if (p.dim() < 2) continue;
      n += p.numel();
      zeros += p.numel() - p.count_nonzero().item<std::int64_t>();
    }
    return static_cast<double>(zeros) / static_cast<double>(n);
  }

  static testing::TempDir* dir_;
};
testing::TempDir* TrainingPassesTest::dir_ = nullptr;

TEST_F(TrainingPassesTest, DistillationRecoversAPrunedStudentAndKeepsItsZeros) {
  const double teacher_accuracy = val_accuracy(teacher());
  ASSERT_GT(teacher_accuracy, 0.9) << "the teacher must have learned digits";
  run({{{"pass", "prune_magnitude"}, {"amount", 0.85}}}, "pruned");
  const double pruned = val_accuracy(out("pruned"));
  const auto report = run({{{"pass", "prune_magnitude"}, {"amount", 0.85}},
                           {{"pass", "distill"}, {"epochs", 6}, {"lr", 3e-3}, {"batch_size", 32}}},
                          "distilled");
  const double distilled = val_accuracy(out("distilled"));
  EXPECT_GT(distilled, pruned + 0.02) << "pruned " << pruned << ", distilled " << distilled;
  EXPECT_GT(distilled, teacher_accuracy - 0.05);
  EXPECT_GE(weight_sparsity(out("distilled")), weight_sparsity(out("pruned"))) << "the pruned weights stayed zero";
  EXPECT_GT(weight_sparsity(out("pruned")), 0.84);
  const auto& details = report.passes.at(1).details;
  EXPECT_EQ(details["teachers"][0]["teacher"], "source");
  EXPECT_NEAR(details["teachers"][0]["val_score"].get<double>(), teacher_accuracy, 1e-9);
  EXPECT_EQ(details["training"]["epochs"].size(), 6u);
  EXPECT_EQ(details["kept_zero_masks"].size(), 2u) << "both Linear weights carried zeros";
  EXPECT_NEAR(details["training"]["best_val_score"].get<double>(), distilled, 1e-9) << "the kept epoch was saved";
}

TEST_F(TrainingPassesTest, GradualPruningReachesTheTargetAndStaysAccurate) {
  const double teacher_accuracy = val_accuracy(teacher());
  const auto report = run({{{"pass", "prune_gradual"},
                            {"target_sparsity", 0.8},
                            {"epochs", 6},
                            {"frequency", 10},
                            {"batch_size", 32},
                            {"lr", 2e-3}}},
                          "gradual");
  const auto& details = report.passes.at(0).details;
  for (const auto& layer : details["layers"]) {
    const auto n = layer["parameters"].get<std::int64_t>();
    EXPECT_EQ(layer["zeros"].get<std::int64_t>(), static_cast<std::int64_t>(std::floor(0.8 * n + 1e-9)))
        << layer["path"];
  }
  EXPECT_NEAR(weight_sparsity(out("gradual")), 0.8, 0.01);
  EXPECT_GT(val_accuracy(out("gradual")), teacher_accuracy - 0.05);
  EXPECT_GE(details["training"]["best_epoch"].get<std::int64_t>(), 5) << "only epochs at the final sparsity count";
  EXPECT_GT(details["schedule"]["updates"].size(), 3u);
}

TEST_F(TrainingPassesTest, QuantizationAwareTrainingConvertsToInt8ThatMatchesItsFakeQuantModel) {
  const double teacher_accuracy = val_accuracy(teacher());
  const auto report = run({{{"pass", "qat"}, {"epochs", 2}, {"batch_size", 32}, {"lr", 5e-4}}}, "qat");
  const auto& pass = report.passes.at(0);
  EXPECT_EQ(pass.changed.size(), 2u) << "both Linear layers in int8";
  for (const auto& line : pass.changed) EXPECT_NE(line.find("int8"), std::string::npos) << line;
  EXPECT_LE(pass.details["fake_quant_vs_int8_steps"].get<double>(), 2.0)
      << "the int8 model computes what the fake-quantized model trained as, within rounding";
  EXPECT_EQ(pass.details["training"]["epochs"].size(), 2u);
  const double qat = val_accuracy(out("qat"));
  EXPECT_GT(qat, teacher_accuracy - 0.03) << "teacher " << teacher_accuracy << ", qat " << qat;
  auto model = run::load_run_model(out("qat"));
  bool has_int8 = false;
  for (const auto& b : model->buffers()) has_int8 = has_int8 || b.scalar_type() == at::kChar;
  EXPECT_TRUE(has_int8) << "the reloaded model holds int8 weights";
}

TEST_F(TrainingPassesTest, LotteryTicketRewindsToTheInitialWeightsAndReportsTheControl) {
  const auto report = run({{{"pass", "lottery_ticket"},
                            {"target_sparsity", 0.8},
                            {"rounds", 2},
                            {"epochs", 5},
                            {"batch_size", 32},
                            {"lr", 3e-3}}},
                          "ticket");
  const auto& d = report.passes.at(0).details;
  ASSERT_EQ(d["rounds"].size(), 2u);
  EXPECT_NEAR(d["rounds"][0]["sparsity"].get<double>(), 1 - std::sqrt(0.2), 0.01) << "a constant rate per round";
  EXPECT_NEAR(d["total_sparsity"].get<double>(), 0.8, 0.002);
  EXPECT_NEAR(weight_sparsity(out("ticket")), 0.8, 0.002) << "the saved model is the final ticket";
  EXPECT_GT(d["ticket_val_score"].get<double>(), d["dense_val_score"].get<double>() - 0.05);
  ASSERT_TRUE(d["random_reinit_control"].is_object());
  EXPECT_NEAR(d["random_reinit_control"]["sparsity"].get<double>(), 0.8, 0.002);
}

TEST_F(TrainingPassesTest, BadInputIsRefusedBeforeTraining) {
  auto option_of = [](auto&& fn) -> std::string {
    try {
      fn();
    } catch (const UsageError& e) {
      return e.option();
    }
    return "(no UsageError)";
  };
  EXPECT_EQ(option_of([] { run({{{"pass", "prune_gradual"}, {"target_sparsity", 1.0}}}, "bad1"); }), "target_sparsity");
  EXPECT_EQ(option_of([] {
              run({{{"pass", "distill"}, {"teachers", {"lstm"}}}}, "bad2");
            }),
            "teachers")
      << "a price forecaster cannot teach a digits classifier";
  EXPECT_EQ(option_of([] {
              run({{{"pass", "quant_int8_dynamic"}}, {{"pass", "distill"}, {"epochs", 1}}}, "bad3");
            }),
            "pass")
      << "int8 layers do not train";
  EXPECT_THROW(run({{{"pass", "distill"}, {"alpha", 1.5}}}, "bad4"), UsageError);
  for (const char* name : {"bad1", "bad2", "bad3", "bad4"}) EXPECT_FALSE(std::filesystem::exists(out(name))) << name;

  CompressOptions zoo;
  zoo.source = "mlp";
  zoo.recipe = parse_recipe({{"passes", {{{"pass", "distill"}}}}}, "test");
  zoo.output = out("bad5");
  zoo.measure = false;
  EXPECT_EQ(option_of([&] { compress_model(zoo); }), "pass") << "a zoo name has no dataset to train on";
}

}  // namespace
}  // namespace hone::compress
