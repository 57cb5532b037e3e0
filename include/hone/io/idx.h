#pragma once
/// @file The IDX format (MNIST / Fashion-MNIST): magic 00 00 <type> <rank>, big-endian uint32 dims,
/// then big-endian data. Reading validates the magic, the type code, the rank (1..8) and that the
/// dims' product matches the file size exactly; any defect throws hone::Error naming the file.
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <string>
#include <string_view>

namespace hone::io {

/// Parses IDX bytes. Type codes: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
/// 0x0E float64; the tensor has that dtype and the file's dims.
at::Tensor parse_idx(std::string_view bytes, const std::string& source);

/// Reads an IDX file, plain or gzip'd.
at::Tensor read_idx(const std::filesystem::path& path);

/// Serializes a tensor of one of the dtypes above (contiguous or not) as IDX bytes.
std::string encode_idx(const at::Tensor& tensor);

/// Writes an IDX file atomically (temp + rename); gzip'd when the name ends in ".gz".
void write_idx(const std::filesystem::path& path, const at::Tensor& tensor);

}  // namespace hone::io
