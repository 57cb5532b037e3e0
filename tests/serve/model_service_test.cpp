// A zoo model (random weights: these are protocol tests, not accuracy) behind ModelService and the
// HTTP server, on the loopback interface only, with real Fashion-MNIST test images as inputs.
// GCC 12 -Wextra flags designated initializers that leave members at their defaults (GCC 13 does not).
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include "hone/serve/model_service.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <regex>
#include <sstream>
#include <thread>

#include "hone/core/error.h"
#include "hone/data/datasets.h"
#include "hone/serve/http_server.h"
#include "support/relative_error.h"
#include "support/tolerances.h"

namespace hone::serve {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

/// A service and its server on an ephemeral loopback port; verified and ready unless asked not to.
struct Served {
  Served(runtime::ModelTarget target, ModelServiceOptions options, bool verify = true)
      : service(std::move(target), std::move(options)), server(server_options(), service.handlers()) {
    service.observe_with(server.metrics(), server.metrics_registry());
    port = server.start();
    if (verify) {
      report = service.warm_up_and_verify();
      server.set_ready(true);
    }
  }
  ~Served() {
    server.stop();
    service.drain();
  }
  static HttpServerOptions server_options() {
    HttpServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.threads = 16;
    return o;
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30, 0);
    return c;
  }
  std::string infer_path() const { return "/v2/models/" + service.metadata().name + "/infer"; }

  ModelService service;
  HttpServer server;
  VerifyReport report;
  int port = 0;
};

ModelServiceOptions options_with(std::size_t max_batch, std::chrono::microseconds delay = 0us) {
  ModelServiceOptions o;
  o.max_batch_size = max_batch;
  o.max_queue_delay = delay;
  o.verify_samples = 8;
  return o;
}

at::Tensor test_images(std::int64_t count) {
  return data::load_dataset("fashion-mnist").test.dataset.inputs().slice(0, 0, count).contiguous();
}

json infer_body(const at::Tensor& rows, const std::string& id) {
  std::vector<std::int64_t> shape(rows.sizes().begin(), rows.sizes().end());
  const at::Tensor values = rows.contiguous();
  return {{"id", id},
          {"inputs",
           {{{"name", "input"},
             {"shape", shape},
             {"datatype", "FP32"},
             {"data", std::vector<float>(values.data_ptr<float>(), values.data_ptr<float>() + values.numel())}}}}};
}

at::Tensor direct_forward(ModelService& service, const at::Tensor& rows) {
  c10::InferenceMode guard;
  return service.target().model->forward(rows).to(at::kFloat);
}

TEST(ModelService, VerificationToleranceIsTheTablesFp32ReorderedRow) {
  const ModelServiceOptions defaults;
  EXPECT_EQ(defaults.verify_relative, testing::kFp32Reordered.relative);
  EXPECT_EQ(defaults.verify_absolute, testing::kFp32Reordered.absolute);
}

TEST(ModelService, ServedOutputsEqualDirectForwardsWhateverBatchARequestLandedIn) {
  // A queue delay makes concurrent requests share batches of several sizes.
  Served served(runtime::load_target("mlp"), options_with(8, 3ms));
  EXPECT_EQ(served.report.inputs, "fashion-mnist test split");
  const at::Tensor images = test_images(40);
  struct Sent {
    at::Tensor rows;
    int status = 0;
    json body;
  };
  std::vector<Sent> sent;
  for (std::int64_t start = 0, i = 0; start + 3 <= images.size(0); start += 1 + i % 3, ++i) {
    sent.push_back({images.slice(0, start, start + 1 + i % 3)});
  }
  const BatcherStats before = served.service.stats();
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < sent.size(); ++i) {
    threads.emplace_back([&, i] {
      auto client = served.client();
      auto response =
          client.Post(served.infer_path(), infer_body(sent[i].rows, std::to_string(i)).dump(), "application/json");
      if (!response) return;
      sent[i].status = response->status;
      sent[i].body = json::parse(response->body);
    });
  }
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < sent.size(); ++i) {
    ASSERT_EQ(sent[i].status, 200) << sent[i].body.dump();
    EXPECT_EQ(sent[i].body["id"], std::to_string(i));
    const json& out = sent[i].body["outputs"][0];
    EXPECT_EQ(out["name"], "logits");
    const std::vector<float> data = out["data"].get<std::vector<float>>();
    const at::Tensor served_out = at::tensor(data).reshape(out["shape"].get<std::vector<std::int64_t>>());
    const at::Tensor expected = direct_forward(served.service, sent[i].rows);
    ASSERT_EQ(served_out.sizes(), expected.sizes());
    EXPECT_LE(testing::relative_error(served_out, expected), testing::kFp32Reordered.relative) << "request " << i;
  }
  const BatcherStats after = served.service.stats();
  const auto requests = after.completed - before.completed;
  EXPECT_EQ(requests, sent.size());
  EXPECT_LT(after.batches - before.batches, requests) << "no batch held more than one request";

  // /predict: the label is the direct forward's argmax.
  const at::Tensor two = images.slice(0, 5, 7);
  json instances = json::array();
  for (std::int64_t r = 0; r < 2; ++r) {
    const at::Tensor row = two[r].reshape({-1}).contiguous();
    instances.push_back(std::vector<float>(row.data_ptr<float>(), row.data_ptr<float>() + row.numel()));
  }
  auto response = served.client().Post("/predict", json{{"instances", instances}}.dump(), "application/json");
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200) << response->body;
  const json predictions = json::parse(response->body)["predictions"];
  const at::Tensor labels = direct_forward(served.service, two).argmax(1);
  ASSERT_EQ(predictions.size(), 2u);
  for (std::int64_t r = 0; r < 2; ++r) {
    EXPECT_EQ(predictions[r]["label"].get<std::int64_t>(), labels[r].item<std::int64_t>());
    EXPECT_EQ(predictions[r]["probabilities"].size(), 10u);
  }
}

TEST(ModelService, WrongShapeIs400NamingTheFieldAndUnknownModelIs404) {
  Served served(runtime::load_target("mlp"), options_with(4));
  auto client = served.client();
  const at::Tensor wrong = test_images(1).reshape({1, 1, 28 * 28});
  auto response = client.Post(served.infer_path(), infer_body(wrong, "w").dump(), "application/json");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 400);
  EXPECT_NE(response->body.find("inputs[0].shape"), std::string::npos) << response->body;

  response = client.Post("/v2/models/no-such-model/infer", infer_body(test_images(1), "u").dump(), "application/json");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 404);
  EXPECT_NE(response->body.find("no-such-model"), std::string::npos) << response->body;
  response = client.Get("/v2/models/no-such-model");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 404);

  response = client.Post("/predict", R"({"instances": [[1, 2, 3]]})", "application/json");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 400);
  EXPECT_NE(response->body.find("instances[0]"), std::string::npos) << response->body;

  response = client.Get("/v2/models/mlp");
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200);
  const json metadata = json::parse(response->body);
  EXPECT_EQ(metadata["inputs"][0]["shape"], json({-1, 1, 28, 28}));
  EXPECT_EQ(metadata["outputs"][0]["shape"], json({-1, 10}));
}

TEST(ModelService, ATinyQueueAnswers429WhileTheWorkerIsBusy) {
  ModelServiceOptions options = options_with(1);
  options.max_queue_size = 1;
  options.timeout = 60s;
  Served served(runtime::load_target("cnn"), options);
  // A large request computed alone keeps the worker busy (a few hundred ms on two cores).
  InferRequest big;
  big.inputs.push_back({.name = "input", .shape = {512, 1, 28, 28}, .datatype = DataType::fp32});
  big.inputs[0].float_data.assign(512 * 28 * 28, 0.5);
  std::thread busy([&] { EXPECT_EQ(served.service.infer(served.service.metadata(), big).status, RequestStatus::ok); });
  const auto wait_until = [](auto condition) {
    for (int i = 0; i < 2000 && !condition(); ++i) std::this_thread::sleep_for(1ms);
    return condition();
  };
  ASSERT_TRUE(wait_until([&] { return served.service.stats().accepted >= 1 && served.service.queue_depth() == 0; }));
  const std::string body = infer_body(test_images(1), "q").dump();
  int queued_status = 0;
  std::thread queued([&] {
    auto response = served.client().Post(served.infer_path(), body, "application/json");
    if (response) queued_status = response->status;
  });
  ASSERT_TRUE(wait_until([&] { return served.service.queue_depth() == 1; }));
  auto response = served.client().Post(served.infer_path(), body, "application/json");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 429);
  EXPECT_EQ(response->get_header_value("Retry-After"), "1");
  queued.join();
  busy.join();
  EXPECT_EQ(queued_status, 200);
  EXPECT_EQ(served.service.stats().rejected_queue_full, 1u);
}

TEST(ModelService, StopAnswersEveryAcceptedRequest) {
  // A long queue delay keeps the requests waiting in the queue when stop() begins.
  auto served = std::make_unique<Served>(runtime::load_target("mlp"), options_with(16, 300ms));
  const at::Tensor images = test_images(6);
  std::vector<int> status(6, 0);
  std::vector<std::thread> threads;
  const std::uint64_t accepted_before = served->service.stats().accepted;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      auto response = served->client().Post(served->infer_path(), infer_body(images.slice(0, i, i + 1), "s").dump(),
                                            "application/json");
      if (response) status[i] = response->status;
    });
  }
  for (int i = 0; i < 5000 && served->service.stats().accepted < accepted_before + 6; ++i)
    std::this_thread::sleep_for(1ms);
  ASSERT_EQ(served->service.stats().accepted, accepted_before + 6);
  served->server.stop();  // while all six wait in the queue
  served->service.drain();
  for (auto& t : threads) t.join();
  for (int i = 0; i < 6; ++i) EXPECT_EQ(status[i], 200) << "request " << i;
  const BatcherStats stats = served->service.stats();
  EXPECT_EQ(stats.accepted, stats.completed);
  // After stop, nothing more is accepted.
  EXPECT_EQ(
      served->service
          .infer(served->service.metadata(), InferRequest{.inputs = {{.name = "input",
                                                                      .shape = {1, 1, 28, 28},
                                                                      .datatype = DataType::fp32,
                                                                      .float_data = std::vector<double>(784, 0.1)}}})
          .status,
      RequestStatus::unavailable);
}

TEST(ModelService, MetricsParseAsPrometheusTextAndCountWhatHappened) {
  Served served(runtime::load_target("mlp"), options_with(8));
  const at::Tensor images = test_images(5);
  for (int i = 0; i < 5; ++i) {
    auto response = served.client().Post(served.infer_path(), infer_body(images.slice(0, i, i + 1), "m").dump(),
                                         "application/json");
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 200);
    EXPECT_FALSE(response->get_header_value("x-queue-time").empty());
    EXPECT_FALSE(response->get_header_value("x-inference-time").empty());
  }
  auto response = served.client().Get("/metrics");
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200);
  const std::regex comment(R"(^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$)");
  const std::regex sample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (-?[0-9.eE+-]+|\+Inf|NaN)$)");
  std::map<std::string, double> values;
  std::istringstream lines(response->body);
  int samples = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    std::smatch m;
    if (line[0] == '#') {
      EXPECT_TRUE(std::regex_match(line, comment)) << line;
      continue;
    }
    ASSERT_TRUE(std::regex_match(line, m, sample)) << line;
    values[line.substr(0, line.rfind(' '))] = std::stod(m[5].str() == "+Inf" ? "inf" : m[5].str());
    ++samples;
  }
  EXPECT_GT(samples, 10);
  const BatcherStats stats = served.service.stats();
  EXPECT_EQ(values["hone_batch_size_count"], static_cast<double>(stats.batches));
  EXPECT_EQ(values[R"(hone_http_requests_total{endpoint="/v2/models/{name}/infer",code="200"})"], 5.0);
  EXPECT_EQ(values["hone_queue_time_seconds_count"], 5.0);
  EXPECT_EQ(values["hone_queue_depth"], 0.0);
  EXPECT_EQ(values["hone_ready"], 1.0);
}

TEST(ModelService, ReadyOnlyAfterVerification) {
  Served served(runtime::load_target("mlp"), options_with(4), /*verify=*/false);
  auto client = served.client();
  auto response = client.Get("/v2/health/live");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  response = client.Get("/v2/health/ready");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 503);
  response = client.Post(served.infer_path(), infer_body(test_images(1), "r").dump(), "application/json");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 503);
  const VerifyReport report = served.service.warm_up_and_verify();
  EXPECT_EQ(report.samples, 8);
  EXPECT_EQ(report.warmed_batch_sizes, (std::vector<std::size_t>{1, 2, 4}));
  EXPECT_GT(report.batch_sizes_seen.back(), 1u) << "verification never computed a batch of several requests";
  served.server.set_ready(true);
  response = client.Get("/v2/health/ready");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
}

TEST(ModelService, ASecondServerOnAPortInUseFailsToStart) {
  Served first(runtime::load_target("mlp"), options_with(2), /*verify=*/false);
  HttpServerOptions options = Served::server_options();
  options.port = first.port;
  HttpServer second(options, first.service.handlers());
  EXPECT_THROW(second.start(), std::runtime_error);
}

/// An mlp that adds the batch's mean to every row: its outputs depend on which requests share a
/// batch, the bug verification exists to catch.
class BatchDependentModel : public models::Model {
 public:
  explicit BatchDependentModel(models::ModelPtr inner) : inner_(std::move(inner)) { register_module("inner", inner_); }
  torch::Tensor forward(torch::Tensor input) override {
    const torch::Tensor out = inner_->forward(input);
    return out + out.mean(0, true);
  }
  std::string architecture() const override { return "batch-dependent"; }
  nlohmann::json config() const override { return {}; }

 private:
  models::ModelPtr inner_;
};

TEST(ModelService, VerificationRejectsAModelWhoseOutputsDependOnTheBatch) {
  runtime::ModelTarget target = runtime::load_target("mlp");
  target.model = std::make_shared<BatchDependentModel>(target.model);
  ModelService service(std::move(target), options_with(8));
  try {
    service.warm_up_and_verify();
    FAIL() << "verification passed a batch-dependent model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("differs from its direct forward"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace hone::serve
