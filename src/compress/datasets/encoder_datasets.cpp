#include "hone/compress/encoder_datasets.h"

#include <mutex>

#include "hone/compress/editor.h"
#include "hone/compress/pass.h"
#include "hone/text/fine_foods.h"

namespace hone::compress {
namespace {

/// The reviews embedded by MiniLM after `pass` with its defaults (as `hone compress --quant
/// int8-dynamic` / `--prune 2:4` make it).
text::FineFoodsEncoder encoder_after(const char* pass, const char* dataset, const char* cache_prefix,
                                     const char* features) {
  text::FineFoodsEncoder variant;
  variant.dataset = dataset;
  variant.cache_prefix = cache_prefix;
  variant.features = features;
  variant.tag = pass;
  variant.transform = [pass](text::SentenceEncoder& encoder) {
    ModelEditor editor(encoder.model());
    PassContext context;
    context.editor = &editor;
    const auto& entry = find_pass(pass);
    entry.make()->apply(encoder.model(), validate_options(entry, nlohmann::json::object()), context);
  };
  return variant;
}

void register_variant(const text::FineFoodsEncoder& variant, const char* summary) {
  data::register_dataset({variant.dataset, summary, data::TaskKind::kClassification,
                          [variant](const data::DataOptions& o) { return text::load_fine_foods(o, variant); },
                          [variant](const data::DataOptions&) { return text::fine_foods_info(variant); }});
}

}  // namespace

void register_encoder_datasets() {
  static std::once_flag once;
  std::call_once(once, [] {
    text::register_text_datasets();
    register_variant(encoder_after("quant_int8_dynamic", "fine-foods-int8", "minilm-int8",
                                   "all-MiniLM-L6-v2 sentence embeddings, encoder after quant_int8_dynamic (frozen, "
                                   "int8 weights, 256 tokens)"),
                     "the fine-foods reviews embedded by MiniLM after quant_int8_dynamic (int8 cost downstream)");
    register_variant(encoder_after("prune_semi_structured", "fine-foods-2of4", "minilm-2of4",
                                   "all-MiniLM-L6-v2 sentence embeddings, encoder after prune_semi_structured "
                                   "(frozen, 2:4 sparse Linears without fine-tuning, 256 tokens)"),
                     "the fine-foods reviews embedded by MiniLM after prune_semi_structured (2:4 cost downstream)");
  });
}

}  // namespace hone::compress
