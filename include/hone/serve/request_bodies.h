#pragma once
/// @file Request bodies of real inputs for `hone loadgen` and `hone serve --bench`: OIP infer
/// bodies of the run's own test inputs, or, for a model served as a text encoder, TEI /embed
/// bodies of real review sentences (r-cran-modeldata's fine-food reviews, test split first),
/// keeping only texts within a token limit so a benchmark states the lengths it measured.
///
///     RequestBodies bodies = make_request_bodies(service, {.count = 1024, .max_tokens = 128});
///     // bodies.path == "/embed", bodies.bodies[0] == R"({"inputs":"This coffee is ..."})"
#include <cstdint>
#include <string>
#include <vector>

#include "hone/serve/model_service.h"

namespace hone::serve {

struct RequestBodyOptions {
  std::int64_t count = 256;            ///< bodies to make (fewer when the data runs out)
  std::int64_t texts_per_request = 1;  ///< /embed: texts per body (1: {"inputs": "text"})
  std::int64_t max_tokens = 128;       ///< /embed: only texts of at most this many tokens, [CLS]/[SEP] included
};

struct RequestBodies {
  std::string path;                 ///< where to POST them: /embed or /v2/models/{name}/infer
  std::vector<std::string> bodies;  ///< one JSON document each, no newline inside
  std::int64_t items_per_body = 1;  ///< texts (or rows) each body carries
  std::string source;               ///< what the inputs are, for logs and reports
};

/// Throws hone::Error naming the data that is missing (and how to get it), or the option
/// (count, texts_per_request, max_tokens) that is out of range.
RequestBodies make_request_bodies(const ModelService& service, const RequestBodyOptions& options);

}  // namespace hone::serve
