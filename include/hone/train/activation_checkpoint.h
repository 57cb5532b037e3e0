#pragma once
/// @file Activation checkpointing: each of a model's blocks (ResNet blocks, transformer/BERT
/// layers: models::Model::block_count) keeps only its input during forward and recomputes its
/// activations in backward, trading about one extra forward for the memory of every block's
/// intermediate tensors. LibTorch has none for C++ (pytorch#52744); this is PyTorch's reentrant
/// `torch.utils.checkpoint` as a torch::autograd::Function. The recomputation replays the block
/// with the forward's RNG state (so dropout masks match) and autocast state, so gradients equal
/// the non-checkpointed ones (tests/train/activation_checkpoint_test.cpp).
///
///   train::enable_activation_checkpointing(*model);   // throws naming the model if it has no blocks
///   loss(model->forward(x)).backward();               // blocks recomputed here
///   train::disable_activation_checkpointing(*model);
#include <ATen/core/Tensor.h>

#include <functional>

#include "hone/models/model.h"

namespace hone::train {

/// Runs `block` on `x` with its activations recomputed in backward (grad mode on), or directly
/// when grad mode is off (evaluation).
at::Tensor checkpointed(const models::Model::Block& block, const at::Tensor& x);

/// Routes the model's blocks through checkpointed(). A model without blocks is a hone::UsageError
/// naming the option checkpoint_activations and the model's architecture.
void enable_activation_checkpointing(models::Model& model);
void disable_activation_checkpointing(models::Model& model);

}  // namespace hone::train
