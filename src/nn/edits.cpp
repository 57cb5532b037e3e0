#include "hone/nn/edits.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "hone/core/error.h"
#include "hone/nn/layer_kinds.h"

namespace hone::nn {

torch::Tensor find_tensor(torch::nn::Module& model, const std::string& name) {
  const auto parameters = model.named_parameters(/*recurse=*/true);
  if (const auto* found = parameters.find(name)) return *found;
  const auto buffers = model.named_buffers(/*recurse=*/true);
  if (const auto* found = buffers.find(name)) return *found;
  fail("the model has no parameter or buffer '{}'", name);
}

void replay_edits(Module& model, const nlohmann::json& edits) {
  HONE_CHECK(edits.is_array(), "compress.json: 'edits' must be a list, got {}", edits.type_name());
  for (std::size_t i = 0; i < edits.size(); ++i) {
    const auto& edit = edits[i];
    try {
      HONE_CHECK(edit.is_object() && edit.contains("op") && edit["op"].is_string(), "not an edit object");
      const auto op = edit["op"].get<std::string>();
      if (op == "replace") {
        HONE_CHECK(edit.contains("path") && edit["path"].is_string() && edit.contains("layer"),
                   "a replace edit needs 'path' and 'layer'");
        const auto ref = find_slot(model, edit["path"].get<std::string>());
        ref.parent->replace_layer(ref.name, build_layer(edit["layer"]));
      } else if (op == "resize") {
        HONE_CHECK(
            edit.contains("tensor") && edit["tensor"].is_string() && edit.contains("shape") && edit["shape"].is_array(),
            "a resize edit needs 'tensor' and 'shape'");
        auto tensor = find_tensor(model, edit["tensor"].get<std::string>());
        const auto shape = edit["shape"].get<std::vector<std::int64_t>>();
        for (const auto size : shape) HONE_CHECK(size >= 0, "negative size in shape");
        torch::NoGradGuard no_grad;
        tensor.set_data(at::zeros(shape, tensor.options()));
      } else {
        fail("unknown op '{}' (expected replace or resize)", op);
      }
    } catch (const Error& error) {
      fail("compress.json: edit {} ({}) does not apply: {}", i, edit.dump(), error.what());
    }
  }
}

void repack_layers(torch::nn::Module& model) {
  for (const auto& module : model.modules(/*include_self=*/true)) {
    if (auto* packed = dynamic_cast<Repackable*>(module.get())) packed->repack();
  }
}

}  // namespace hone::nn
