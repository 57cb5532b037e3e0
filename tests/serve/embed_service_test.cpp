// TEI's POST /embed on the real pretrained all-MiniLM-L6-v2 (`hone serve minilm`), on loopback only:
// served embeddings of real fine-food reviews equal `hone embed`'s computation (SentenceEncoder::
// encode, loaded separately) whatever batch they landed in; bad bodies get 400 naming the field
// and bodies over the limits 413; request bodies for loadgen are real reviews within a token limit.
// GCC 12 -Wextra flags designated initializers that leave members at their defaults (GCC 13 does not).
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "hone/core/error.h"
#include "hone/data/paths.h"
#include "hone/serve/http_server.h"
#include "hone/serve/model_service.h"
#include "hone/serve/request_bodies.h"
#include "hone/serve/serve_target.h"
#include "hone/text/fine_foods.h"
#include "support/relative_error.h"
#include "support/tolerances.h"

namespace hone::serve {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

void require_minilm() {
  ASSERT_TRUE(fs::is_regular_file(data::minilm_dir() / "model.safetensors"))
      << "all-MiniLM-L6-v2 not found at " << data::minilm_dir().string() << ": run `make setup`";
}

/// `hone serve minilm` in-process on an ephemeral loopback port, verified and ready.
struct ServedEncoder {
  explicit ServedEncoder(ModelServiceOptions options, const std::string& dtype = "fp32")
      : service(load_serve_target("minilm", {.dtype = dtype}), with_dtype(std::move(options), dtype)),
        server(server_options(), service.handlers()) {
    service.observe_with(server.metrics(), server.metrics_registry());
    port = server.start();
    report = service.warm_up_and_verify();
    server.set_ready(true);
  }
  ~ServedEncoder() {
    server.stop();
    service.drain();
  }
  static ModelServiceOptions with_dtype(ModelServiceOptions o, const std::string& dtype) {
    o.dtype = dtype;
    return o;
  }
  static HttpServerOptions server_options() {
    HttpServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.threads = 16;
    return o;
  }
  httplib::Result post(const json& body) const {
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(60, 0);
    return client.Post("/embed", body.dump(), "application/json");
  }

  ModelService service;
  HttpServer server;
  VerifyReport report;
  int port = 0;
};

ModelServiceOptions options_with(std::size_t max_batch, std::chrono::microseconds delay = 0us) {
  ModelServiceOptions o;
  o.max_batch_size = max_batch;
  o.max_queue_delay = delay;
  o.verify_samples = 12;
  o.max_texts_per_request = 8;
  o.timeout = 60s;  // a loaded test machine must not turn a correctness test into a 504
  return o;
}

/// Embeddings [n, 384] from a JSON answer.
at::Tensor to_tensor(const json& answer) {
  std::vector<float> values;
  for (const auto& row : answer) {
    const auto v = row.get<std::vector<float>>();
    values.insert(values.end(), v.begin(), v.end());
  }
  return at::tensor(values).reshape({static_cast<std::int64_t>(answer.size()), -1});
}

TEST(EmbedService, ServedEmbeddingsOfRealReviewsEqualHoneEmbedsWhateverBatchTheyLandedIn) {
  require_minilm();
  ServedEncoder served(options_with(8, 3ms));
  EXPECT_NE(served.report.inputs.find("fine-foods"), std::string::npos) << served.report.inputs;
  EXPECT_EQ(served.report.samples, 12);
  std::vector<std::string> reviews = text::load_fine_foods_texts("test");
  reviews.resize(60);
  // Bodies of 1, 2 or 3 reviews, sent at once: texts of one body and of different bodies share batches.
  struct Sent {
    std::vector<std::string> texts;
    int status = 0;
    json answer;
  };
  std::vector<Sent> sent;
  for (std::size_t start = 0, i = 0; start + 3 <= reviews.size(); start += 1 + i % 3, ++i) {
    sent.push_back({std::vector<std::string>(reviews.begin() + static_cast<std::ptrdiff_t>(start),
                                             reviews.begin() + static_cast<std::ptrdiff_t>(start + 1 + i % 3))});
  }
  const BatcherStats before = served.service.stats();
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < sent.size(); ++i) {
    threads.emplace_back([&, i] {
      json body = sent[i].texts.size() == 1 ? json{{"inputs", sent[i].texts[0]}} : json{{"inputs", sent[i].texts}};
      body["truncate"] = true;  // some reviews are over the model's 256 tokens: cut as `hone embed` cuts them
      auto response = served.post(body);
      if (!response) return;
      sent[i].status = response->status;
      sent[i].answer = json::parse(response->body);
    });
  }
  for (auto& t : threads) t.join();
  // The direct computation: `hone embed`'s encoder, loaded on its own.
  const text::SentenceEncoder direct_encoder = text::SentenceEncoder::load(data::minilm_dir());
  std::size_t texts = 0;
  for (std::size_t i = 0; i < sent.size(); ++i) {
    ASSERT_EQ(sent[i].status, 200) << sent[i].answer.dump();
    ASSERT_TRUE(sent[i].answer.is_array());
    ASSERT_EQ(sent[i].answer.size(), sent[i].texts.size());
    const at::Tensor served_out = to_tensor(sent[i].answer);
    EXPECT_EQ(served_out.size(1), 384);
    const at::Tensor direct = direct_encoder.encode(sent[i].texts).vectors;
    EXPECT_LE(testing::relative_error(served_out, direct), testing::kFp32Reordered.relative) << "body " << i;
    texts += sent[i].texts.size();
  }
  const BatcherStats after = served.service.stats();
  EXPECT_EQ(after.completed - before.completed, texts) << "each text is one batcher request";
  EXPECT_LT(after.batches - before.batches, texts) << "no batch held more than one text";
}

TEST(EmbedService, BadBodiesAre400NamingTheFieldAndOversizeOnes413) {
  require_minilm();
  ServedEncoder served(options_with(4));
  const auto expect = [&](const json& body, int status, const std::string& field) {
    auto response = served.post(body);
    ASSERT_TRUE(response) << body.dump().substr(0, 80);
    EXPECT_EQ(response->status, status) << response->body;
    const json error = json::parse(response->body);
    EXPECT_EQ(error["error"].get<std::string>().rfind(field + ":", 0), 0u) << error.dump();
  };
  expect({{"inputs", 7}}, 400, "inputs");
  expect({{"inputs", json::array()}}, 400, "inputs");
  expect({{"inputs", {"fine", 3}}}, 400, "inputs[1]");
  expect({{"text", "hello"}}, 400, "body");
  expect({{"inputs", "good coffee"}, {"normalize", false}}, 400, "normalize");
  expect({{"inputs", "good coffee"}, {"normalize", "yes"}}, 400, "normalize");
  expect({{"inputs", std::vector<std::string>(9, "too many texts")}}, 413, "inputs");
  std::string long_text;
  for (int i = 0; i < 300; ++i) long_text += "coffee ";
  expect({{"inputs", {"short", long_text}}}, 413, "inputs[1]");
  // Not UTF-8: nlohmann's parser already refuses it as JSON, so the body is what is wrong.
  {
    httplib::Client client("127.0.0.1", served.port);
    auto response = client.Post("/embed", std::string("{\"inputs\": \"caf\xe9\"}"), "application/json");
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 400) << response->body;
  }
  // truncate: true cuts the long text instead; the answer equals hone embed's (which truncates too).
  auto response = served.post({{"inputs", {long_text}}, {"truncate", true}});
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200) << response->body;
  const text::SentenceEncoder direct_encoder = text::SentenceEncoder::load(data::minilm_dir());
  const at::Tensor direct = direct_encoder.encode({long_text}).vectors;
  EXPECT_LE(testing::relative_error(to_tensor(json::parse(response->body)), direct), testing::kFp32Reordered.relative);
}

TEST(EmbedService, RequestBodiesAreRealReviewsWithinTheTokenLimit) {
  require_minilm();
  ModelService service(load_serve_target("minilm"), options_with(4));
  const RequestBodies bodies = make_request_bodies(service, {.count = 20, .texts_per_request = 3, .max_tokens = 64});
  EXPECT_EQ(bodies.path, "/embed");
  EXPECT_EQ(bodies.items_per_body, 3);
  ASSERT_EQ(bodies.bodies.size(), 20u);
  const std::vector<std::string> reviews = text::load_fine_foods_texts("test");
  for (const std::string& body : bodies.bodies) {
    const json parsed = json::parse(body);
    ASSERT_EQ(parsed["inputs"].size(), 3u);
    for (const auto& t : parsed["inputs"]) {
      const std::string text = t.get<std::string>();
      EXPECT_LE(service.text_encoder()->tokenizer().encode(text, 256).size(), 64u);
      EXPECT_NE(std::find(reviews.begin(), reviews.end(), text), reviews.end()) << "not a test review: " << text;
    }
  }
  EXPECT_THROW(make_request_bodies(service, {.count = 1, .max_tokens = 1000}), Error);
}

TEST(EmbedService, Bf16ServingVerifiesAtTheTablesBf16Row) {
  require_minilm();
  ServedEncoder served(options_with(4), "bf16");
  EXPECT_LE(served.report.max_relative_error, testing::kBf16.relative);
  std::vector<std::string> reviews = text::load_fine_foods_texts("test");
  reviews.erase(reviews.begin(), reviews.begin() + 100);  // others than verification's
  reviews.resize(3);
  auto response = served.post({{"inputs", reviews}, {"truncate", true}});  // one of them is over 256 tokens
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200) << response->body;
  const text::SentenceEncoder direct_encoder =
      text::SentenceEncoder::load(data::minilm_dir(), {.dtype = c10::kBFloat16});
  const at::Tensor direct = direct_encoder.encode(reviews).vectors;
  EXPECT_LE(testing::relative_error(to_tensor(json::parse(response->body)), direct), testing::kBf16.relative);
}

}  // namespace
}  // namespace hone::serve
