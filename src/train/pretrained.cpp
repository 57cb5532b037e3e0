#include "hone/train/pretrained.h"

#include "hone/core/error.h"
#include "hone/data/paths.h"
#include "hone/models/bert_encoder.h"
#include "hone/text/sentence_encoder.h"

namespace hone::train {

std::optional<PretrainedWeights> initialize_weights(models::Model& model, const std::string& init) {
  if (init != "auto" && init != "pretrained" && init != "random")
    fail_usage_option("init", "unknown initialization '{}'; valid: auto, pretrained, random", init);
  if (init == "random") return std::nullopt;
  if (auto* bert = dynamic_cast<models::BertEncoder*>(&model)) {
    const auto dir = data::minilm_dir();
    text::load_pretrained_bert(*bert, dir);
    return PretrainedWeights{dir.string(), {"embeddings.", "layers."}};
  }
  if (init == "pretrained")
    fail_usage_option("init", "hone has no pretrained weights for '{}' (only for minilm); use --init random",
                      model.architecture());
  return std::nullopt;
}

}  // namespace hone::train
