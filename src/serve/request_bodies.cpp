#include "hone/serve/request_bodies.h"

#include <nlohmann/json.hpp>

#include "hone/core/error.h"
#include "hone/text/fine_foods.h"

namespace hone::serve {

RequestBodies make_request_bodies(const ModelService& service, const RequestBodyOptions& options) {
  if (options.count < 1) fail_option("count", "request bodies to make must be >= 1, got {}", options.count);
  RequestBodies out;
  const text::SentenceEncoder* encoder = service.text_encoder();
  if (encoder == nullptr) {
    out.path = "/v2/models/" + service.metadata().name + "/infer";
    out.bodies = make_infer_bodies(service.target(), service.metadata(), options.count);
    out.source = "test inputs of the model's dataset, one per body";
    return out;
  }
  if (options.texts_per_request < 1) {
    fail_option("texts_per_request", "texts per request must be >= 1, got {}", options.texts_per_request);
  }
  if (options.max_tokens < 2 || options.max_tokens > encoder->max_length()) {
    fail_option("max_tokens", "token limit must be in [2, {}] (the encoder's), got {}", encoder->max_length(),
                options.max_tokens);
  }
  const std::size_t per_body = static_cast<std::size_t>(options.texts_per_request);
  const std::size_t wanted = static_cast<std::size_t>(options.count) * per_body;
  std::vector<std::string> texts;
  std::int64_t skipped = 0;
  for (const char* split : {"test", "train"}) {
    for (std::string& text : text::load_fine_foods_texts(split)) {
      if (texts.size() == wanted) break;
      bool longer = false;
      encoder->tokenizer().encode(text, options.max_tokens, &longer);
      if (longer) {
        ++skipped;
        continue;
      }
      texts.push_back(std::move(text));
    }
  }
  HONE_CHECK(texts.size() >= per_body, "no fine-food review has at most {} tokens", options.max_tokens);
  out.path = "/embed";
  out.items_per_body = options.texts_per_request;
  for (std::size_t start = 0; start + per_body <= texts.size(); start += per_body) {
    nlohmann::json body;
    if (per_body == 1) {
      body["inputs"] = texts[start];
    } else {
      body["inputs"] = std::vector<std::string>(texts.begin() + static_cast<std::ptrdiff_t>(start),
                                                texts.begin() + static_cast<std::ptrdiff_t>(start + per_body));
    }
    out.bodies.push_back(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  out.source = fmt::format(
      "fine-food reviews (r-cran-modeldata, test split then train) of at most {} tokens ({} longer ones skipped), "
      "{} per body",
      options.max_tokens, skipped, per_body);
  return out;
}

}  // namespace hone::serve
