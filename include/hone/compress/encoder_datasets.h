#pragma once
/// @file Datasets whose features come from a compressed encoder: what a compression pass costs
/// downstream. `fine-foods-int8` is the fine-food reviews embedded by MiniLM after
/// quant_int8_dynamic, `fine-foods-2of4` after prune_semi_structured (2:4 sparse Linears, no
/// fine-tuning). A probe trained on `fine-foods` and evaluated on them measures the cost. They are
/// registered from here, above compress, because text sits below compress.
namespace hone::compress {

/// Registers fine-foods (through text) and fine-foods-int8 / -2of4 (once; later calls do nothing).
void register_encoder_datasets();

}  // namespace hone::compress
