// A compression recipe (hone compress --recipe): every pass name, option and value validated.
// Seeds: the repository's recipes (docs/recipes) and the recipes hone optimize writes.
#include <nlohmann/json.hpp>

#include "fuzz_target.h"
#include "hone/compress/compress.h"

HONE_FUZZ_TARGET(recipe) {
  const nlohmann::json document =
      nlohmann::json::parse(hone::fuzz::as_view(data, size), nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded()) return 0;
  hone::fuzz::expect_rejection_only([&] {
    const hone::compress::Recipe recipe = hone::compress::parse_recipe(document, "fuzz/recipe.json");
    // What parses must parse again to itself (defaults filled in once).
    if (hone::compress::parse_recipe(recipe.to_json(), "fuzz/again.json").to_json() != recipe.to_json()) std::abort();
    hone::compress::sort_by_registry(recipe);
  });
  return 0;
}
