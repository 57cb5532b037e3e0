#pragma once
/// @file safetensors (https://github.com/huggingface/safetensors): 8-byte little-endian header
/// length N, N bytes of JSON {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}},
/// then the data. hone's reader bounds N, checks every dtype, shape and offset against the file,
/// rejects overlaps and holes, and maps the file instead of reading it.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hone::io {

/// Largest JSON header accepted (the format's own readers use 100 MB).
inline constexpr std::uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;
using Metadata = std::map<std::string, std::string>;

struct SafetensorsContents {
  NamedTensors tensors;  ///< in the order of their data offsets
  Metadata metadata;

  /// The tensor with this name; throws naming the file's tensors when it is missing.
  const at::Tensor& at(const std::string& name) const;
  bool contains(const std::string& name) const;
};

/// Serializes tensors (any device, contiguous or not; copied to CPU) into safetensors bytes.
/// Names must be unique and non-empty; supported dtypes: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL,
/// and U64 U32 U16 F8_E4M3 (float8_e4m3fn) F8_E5M2, which LibTorch holds with fewer ops.
/// The header lists "__metadata__" first, then the tensors in the given order, and is padded with
/// spaces so the data starts 8-aligned (the reference writer's layout).
std::string encode_safetensors(const NamedTensors& tensors, const Metadata& metadata = {});

/// Parses safetensors bytes, copying the data out.
SafetensorsContents decode_safetensors(std::string_view bytes, const std::string& source);

/// Writes a file atomically (temp + rename).
void save_safetensors(const std::filesystem::path& path, const NamedTensors& tensors, const Metadata& metadata = {});

/// Loads a file through a memory map: the tensors alias the (copy-on-write) mapping, which stays
/// alive as long as any of them does. Misaligned data is copied.
SafetensorsContents load_safetensors(const std::filesystem::path& path);

/// Reads only the header: the tensors are on the meta device (dtype and shape, no data).
SafetensorsContents load_safetensors_header(const std::filesystem::path& path);

}  // namespace hone::io
