#include "hone/compress/editor.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/utils.h>

#include "hone/nn/edits.h"

namespace hone::compress {

void ModelEditor::replace(const std::string& path, const nlohmann::json& spec, nn::Layer layer) {
  const auto ref = nn::find_slot(model_, path);
  ref.parent->replace_layer(ref.name, std::move(layer));
  edits_.push_back({{"op", "replace"}, {"path", path}, {"layer", spec}});
}

void ModelEditor::resize(const std::string& name, const torch::Tensor& value) {
  auto tensor = nn::find_tensor(model_, name);
  torch::NoGradGuard no_grad;
  tensor.set_data(value.detach().to(tensor.options()).clone());
  edits_.push_back({{"op", "resize"}, {"tensor", name}, {"shape", value.sizes().vec()}});
}

}  // namespace hone::compress
