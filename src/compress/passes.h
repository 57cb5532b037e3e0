#pragma once
/// @file Every pass's entry function, one line each; src/compress/registry.cpp orders them.
#include "hone/compress/pass.h"

namespace hone::compress {

PassEntry fuse_conv_bn_entry();
PassEntry fuse_relu_entry();
// quantization passes
PassEntry quant_float_entry();
PassEntry quant_int8_static_entry();
PassEntry quant_int8_dynamic_entry();
PassEntry quant_weight_only_entry();
// pruning and low-rank passes
PassEntry prune_structured_entry();
PassEntry lowrank_svd_entry();
PassEntry prune_magnitude_entry();
PassEntry prune_semi_structured_entry();
// passes that train
PassEntry distill_entry();
PassEntry prune_gradual_entry();
PassEntry qat_entry();
PassEntry lottery_ticket_entry();
// sketched layers
PassEntry sketch_entry();

}  // namespace hone::compress
