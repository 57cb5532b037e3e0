#pragma once
/// @file The one-flag spellings of common recipes (`hone compress --quant int8-dynamic --prune
/// structured:0.25 ...`) turned into a recipe: the parsing lives here, in the library, so every
/// front end (the CLI, the optimize pipeline) reads "structured:0.25" the same way.
///
///   compress::Shorthand s;
///   s.prune = "structured:0.25";
///   s.quant = "int8-static";
///   compress::Recipe recipe = compress::recipe_from_shorthand(s);  // passes in registry order
#include <string>

#include "hone/compress/compress.h"

namespace hone::compress {

struct Shorthand {
  /// int8-dynamic, int8-static, int8-weight-only, int4-weight-only, fp16 or bf16; "" for none.
  std::string quant;
  /// int8-static's calibration observer (minmax, percentile, entropy); "" for the pass's default.
  std::string observer;
  /// structured:FRACTION, magnitude:FRACTION, magnitude-global:FRACTION or 2:4; "" for none.
  std::string prune;
  double lowrank = 0;  ///< energy kept by lowrank_svd; 0 for none
  bool fuse = false;   ///< fuse_conv_bn
};

/// The recipe the shorthand stands for, sorted into the registry's order; empty when it names no
/// pass. Bad spellings throw hone::UsageError naming the option (prune, observer, quant).
Recipe recipe_from_shorthand(const Shorthand& shorthand);

}  // namespace hone::compress
