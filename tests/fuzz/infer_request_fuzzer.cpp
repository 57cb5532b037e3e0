// The server's request bodies: OIP v2 /infer (validated against a model's signature), TEI /embed
// and /predict. The seeds are bodies `hone serve --write-requests` made from real test inputs.
#include <nlohmann/json.hpp>

#include "fuzz_target.h"
#include "hone/serve/inference_protocol.h"

namespace serve = hone::serve;

HONE_FUZZ_TARGET(infer_request) {
  serve::ProtocolLimits limits;
  limits.max_elements = 1 << 16;  // keeps a body from asking for more than the fuzzer's memory
  hone::fuzz::expect_rejection_only<serve::ProtocolError>([&] {
    const nlohmann::json body = serve::parse_json_body(hone::fuzz::as_view(data, size), limits);
    if (body.is_object() && body.contains("inputs") && body["inputs"].is_array()) {
      hone::fuzz::expect_rejection_only<serve::ProtocolError>([&] {
        const serve::InferRequest request = serve::parse_infer_request(body, limits);
        for (const auto& tensor : request.inputs) {
          std::int64_t elements = 1;
          for (const auto dim : tensor.shape)
            if (dim < 0 || __builtin_mul_overflow(elements, dim, &elements)) std::abort();
          if (elements != static_cast<std::int64_t>(tensor.data_size())) std::abort();  // the parser's promise
        }
        serve::ModelMetadata model;
        model.name = "digits";
        model.inputs = {{"input", serve::DataType::fp32, {-1, 64}}};
        model.outputs = {{"logits", serve::DataType::fp32, {-1, 10}}};
        serve::validate_infer_request(request, model);
        serve::make_infer_response(model.name, request.id, request.inputs).dump();
      });
    }
    hone::fuzz::expect_rejection_only<serve::ProtocolError>([&] { serve::parse_embed_request(body, limits); });
    hone::fuzz::expect_rejection_only<serve::ProtocolError>([&] { serve::parse_predict_request(body, limits); });
  });
  return 0;
}
