#pragma once
/// @file A run's resume checkpoint: the files, their order and their consistency checks.
///
///   run/checkpoint/weights.safetensors   model parameters and buffers, tagged with the epoch
///   run/checkpoint/optimizer.safetensors the optimizer's state tensors, tagged with the epoch
///   run/checkpoint/state.json            the trainer's state (whatever it needs), written last
///
/// A checkpoint exists only once its state.json does, and its three files must carry the same
/// epoch. A save writes all three into a hidden sibling directory that then replaces checkpoint/
/// in one rename (write_directory_atomic), so a process killed at any point of a save leaves the
/// previous checkpoint whole (tests/reliability/interrupted_write_test.cpp kills it at random points).
/// What the state holds is the trainer's business (hone/train/train_state.h); this file knows
/// only that it has an integer "epochs_done".
#include <torch/nn/module.h>

#include <nlohmann/json.hpp>

#include <filesystem>

#include "hone/io/safetensors.h"

namespace hone::run {

/// Writes the checkpoint; `state` must hold an integer "epochs_done" (the tag of all three files).
void save_checkpoint(const std::filesystem::path& run_dir, const torch::nn::Module& model,
                     const io::NamedTensors& optimizer_state, const nlohmann::json& state);
/// Restores the model, fills `optimizer_state` with the saved tensors and returns the state;
/// throws hone::Error if the files are missing, corrupt, or from different epochs.
nlohmann::json load_checkpoint(const std::filesystem::path& run_dir, torch::nn::Module& model,
                               io::NamedTensors& optimizer_state);
bool has_checkpoint(const std::filesystem::path& run_dir);

}  // namespace hone::run
