// End-to-end on the loopback interface only: a toy model (sums each row of x[N, 4]) behind the
// batcher and the HTTP server, driven by httplib clients and a short, bounded loadgen run.
// GCC 12 -Wextra flags designated initializers that leave members at their defaults (GCC 13 does not).
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include "hone/serve/http_server.h"
#include "hone/serve/dynamic_batcher.h"
#include "hone/serve/load_generator.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

namespace hone::serve {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

ModelMetadata sum_model() {
  return {.name = "sum",
          .versions = {"1"},
          .inputs = {{"x", DataType::fp32, {-1, 4}}},
          .outputs = {{"sum", DataType::fp32, {-1}}}};
}

// The toy model: one batcher request per HTTP request, each summing its rows.
struct SumService {
  explicit SumService(BatcherOptions batcher_options, HttpServerOptions server_options = {})
      : batcher(std::move(batcher_options),
                [this](std::vector<InferTensor>& inputs) {
                  std::this_thread::sleep_for(std::chrono::milliseconds(compute_delay_ms.load()));
                  ComputeResult<InferTensor> out;
                  for (const InferTensor& x : inputs) {
                    InferTensor sum{.name = "sum", .shape = {x.shape[0]}, .datatype = DataType::fp32};
                    for (std::int64_t row = 0; row < x.shape[0]; ++row) {
                      double total = 0;
                      for (std::int64_t col = 0; col < 4; ++col) total += x.float_data[row * 4 + col];
                      sum.float_data.push_back(total);
                    }
                    out.results.push_back(std::move(sum));
                  }
                  return out;
                }),
        server(std::move(server_options), {.find_model = [](const std::string& name) -> std::optional<ModelMetadata> {
                                             if (name == "sum") return sum_model();
                                             return std::nullopt;
                                           },
                                           .infer =
                                               [this](const ModelMetadata& model, InferRequest request) {
                                                 BatchOutcome<InferTensor> outcome = batcher.run(
                                                     std::move(request.inputs[0]), {.deadline = Clock::now() + 5s});
                                                 return reply_from(outcome, [&](InferTensor& sum) {
                                                   return make_infer_response(model.name, request.id, {sum});
                                                 });
                                               },
                                           .verdict =
                                               [] {
                                                 return json{{"verdict", "pays"}};
                                               }}) {
    port = server.start();
    server.set_ready(true);
  }
  ~SumService() {
    server.stop();
    batcher.drain();
  }

  std::atomic<int> compute_delay_ms{0};
  DynamicBatcher<InferTensor, InferTensor> batcher;
  HttpServer server;
  int port = 0;
};

std::string infer_body(int rows, int cols = 4) {
  json data = json::array();
  for (int i = 0; i < rows * cols; ++i) data.push_back(i);
  return json{{"id", "t"}, {"inputs", {{{"name", "x"}, {"shape", {rows, cols}}, {"datatype", "FP32"}, {"data", data}}}}}
      .dump();
}

httplib::Result post(int port, const std::string& path, const std::string& body) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(10, 0);
  return client.Post(path.c_str(), body, "application/json");
}

httplib::Result get(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  return client.Get(path.c_str());
}

TEST(HttpServer, ServesHealthMetadataAndInference) {
  SumService service({.max_batch_size = 8});
  auto live = get(service.port, "/v2/health/live");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 200);
  EXPECT_EQ(get(service.port, "/v2/health/ready")->status, 200);
  service.server.set_ready(false);
  EXPECT_EQ(get(service.port, "/v2/health/ready")->status, 503);
  EXPECT_EQ(post(service.port, "/v2/models/sum/infer", infer_body(1))->status, 503);
  service.server.set_ready(true);

  auto metadata = get(service.port, "/v2/models/sum");
  ASSERT_TRUE(metadata);
  EXPECT_EQ(metadata->status, 200);
  EXPECT_EQ(json::parse(metadata->body)["inputs"][0]["shape"], json::array({-1, 4}));

  auto infer = post(service.port, "/v2/models/sum/infer", infer_body(2));
  ASSERT_TRUE(infer);
  ASSERT_EQ(infer->status, 200) << infer->body;
  const json response = json::parse(infer->body);
  EXPECT_EQ(response["model_name"], "sum");
  EXPECT_EQ(response["id"], "t");
  EXPECT_EQ(response["outputs"][0]["data"], json::array({6.0, 22.0}));  // 0+1+2+3, 4+5+6+7
  ASSERT_TRUE(infer->has_header("x-queue-time"));
  ASSERT_TRUE(infer->has_header("x-inference-time"));
  EXPECT_GE(std::stoll(infer->get_header_value("x-queue-time")), 0);
  EXPECT_EQ(post(service.port, "/v2/models/sum/versions/1/infer", infer_body(1))->status, 200);
  EXPECT_EQ(json::parse(get(service.port, "/hone/verdict")->body)["verdict"], "pays");
}

TEST(HttpServer, AnswersBadRequestsWithTheRightCodeAndAMessage) {
  SumService service({}, {.max_body_bytes = 2048});
  auto malformed = post(service.port, "/v2/models/sum/infer", R"({"inputs": [)");
  ASSERT_TRUE(malformed);
  EXPECT_EQ(malformed->status, 400);
  EXPECT_EQ(json::parse(malformed->body)["error"].get<std::string>().rfind("body: malformed JSON", 0), 0u)
      << malformed->body;

  auto oversize = post(service.port, "/v2/models/sum/infer", infer_body(200));
  ASSERT_TRUE(oversize);
  EXPECT_EQ(oversize->status, 413);
  EXPECT_NE(oversize->body.find("larger than the limit of 2048 bytes"), std::string::npos) << oversize->body;

  auto unknown_model = post(service.port, "/v2/models/nope/infer", infer_body(1));
  ASSERT_TRUE(unknown_model);
  EXPECT_EQ(unknown_model->status, 404);
  EXPECT_NE(unknown_model->body.find("model 'nope' not found"), std::string::npos);
  EXPECT_EQ(get(service.port, "/v2/models/nope")->status, 404);

  auto wrong_shape = post(service.port, "/v2/models/sum/infer", infer_body(2, 3));
  ASSERT_TRUE(wrong_shape);
  EXPECT_EQ(wrong_shape->status, 400);
  EXPECT_NE(wrong_shape->body.find("inputs[0].shape: dimension 1 is 3"), std::string::npos) << wrong_shape->body;

  auto no_route = get(service.port, "/v3/whatever");
  ASSERT_TRUE(no_route);
  EXPECT_EQ(no_route->status, 404);
  EXPECT_NE(no_route->body.find("no route for GET /v3/whatever"), std::string::npos);
  EXPECT_EQ(post(service.port, "/embed", R"({"inputs": "a"})")->status, 404);  // not served by this model

  // Every answer, httplib's own 404/413 included, is counted by route pattern and code.
  const std::string metrics = get(service.port, "/metrics")->body;
  EXPECT_NE(metrics.find("hone_http_requests_total{endpoint=\"/v2/models/{name}/infer\",code=\"400\"} 2"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("hone_http_requests_total{endpoint=\"/v2/models/{name}/infer\",code=\"413\"} 1"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("hone_http_requests_total{endpoint=\"other\",code=\"404\"} 1"), std::string::npos);
}

TEST(HttpServer, ATinyQueueAnswers429WithRetryAfter) {
  SumService service({.max_batch_size = 1, .max_queue_size = 1});
  service.compute_delay_ms = 100;
  std::vector<int> codes(8, 0);
  std::vector<std::string> retry_after(8);
  std::vector<std::thread> clients;
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&, i] {
      auto result = post(service.port, "/v2/models/sum/infer", infer_body(1));
      if (!result) return;
      codes[i] = result->status;
      retry_after[i] = result->get_header_value("Retry-After");
    });
  }
  for (auto& client : clients) client.join();
  int ok = 0;
  int rejected = 0;
  for (int i = 0; i < 8; ++i) {
    if (codes[i] == 200) ++ok;
    if (codes[i] == 429) {
      ++rejected;
      EXPECT_EQ(retry_after[i], "1");
    }
  }
  EXPECT_GE(ok, 1);
  EXPECT_GE(rejected, 1);
  EXPECT_EQ(ok + rejected, 8);
  EXPECT_NE(get(service.port, "/metrics")->body.find("hone_rejections_total{reason=\"rejected_queue_full\"}"),
            std::string::npos);
}

TEST(HttpServer, StopFinishesAcceptedRequests) {
  SumService service({.max_batch_size = 2});
  service.compute_delay_ms = 150;
  std::vector<int> codes(4, 0);
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&, i] {
      auto result = post(service.port, "/v2/models/sum/infer", infer_body(1));
      codes[i] = result ? result->status : -1;
    });
  }
  const auto give_up = Clock::now() + 5s;
  while (service.server.in_flight() < 4 && Clock::now() < give_up) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(service.server.in_flight(), 4u);
  service.server.stop();  // returns once the four have been answered
  EXPECT_EQ(service.server.in_flight(), 0u);
  for (auto& client : clients) client.join();
  EXPECT_EQ(codes, (std::vector<int>{200, 200, 200, 200}));
  EXPECT_FALSE(get(service.port, "/v2/health/live"));  // no longer listening
}

TEST(LoadGenerator, ShortOpenLoopRunAgainstTheServer) {
  SumService service({.max_batch_size = 16});
  LoadOptions options;
  options.url = "http://127.0.0.1:" + std::to_string(service.port) + "/v2/models/sum/infer";
  options.rate = 400;
  options.connections = 4;
  options.duration = 1000ms;  // 400 requests, about a second
  options.bodies = {infer_body(1), infer_body(3)};
  const LoadResult result = run_load(options);
  EXPECT_EQ(result.scheduled, 400);
  EXPECT_EQ(result.sent + result.unsent, result.scheduled);
  EXPECT_EQ(result.errors, 0);
  EXPECT_EQ(result.status_counts.at(200), result.sent);
  EXPECT_GT(result.throughput, 100);
  EXPECT_LE(result.latency_ms.p50, result.latency_ms.p99);
  EXPECT_LE(result.latency_ms.p99, result.latency_ms.p999);
  EXPECT_LE(result.latency_ms.p999, result.latency_ms.max);
  const json report = result.to_json();
  EXPECT_EQ(report["status_counts"]["200"], result.sent);
  EXPECT_TRUE(report["latency_ms"].contains("p99.9"));
  std::cout << report.dump() << "\n";
}

TEST(LoadGenerator, CountsTransportErrorsAndRejectsBadOptions) {
  LoadOptions options;
  options.url = "http://127.0.0.1:1/";  // nothing listens on port 1
  options.rate = 20;
  options.connections = 1;
  options.duration = 100ms;
  options.timeout = 500ms;
  const LoadResult result = run_load(options);
  EXPECT_EQ(result.scheduled, 2);
  EXPECT_EQ(result.errors, 2);
  EXPECT_TRUE(result.status_counts.empty());
  options.url = "https://127.0.0.1/";
  EXPECT_THROW(run_load(options), std::invalid_argument);
  options.url = "http://127.0.0.1:99999/";
  EXPECT_THROW(run_load(options), std::invalid_argument);
  options.url = "http://127.0.0.1:8080/";
  options.rate = 0;
  EXPECT_THROW(run_load(options), std::invalid_argument);
}

}  // namespace
}  // namespace hone::serve
