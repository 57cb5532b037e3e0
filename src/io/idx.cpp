#include "hone/io/idx.h"

#include <ATen/ATen.h>
#include <fmt/ranges.h>

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <vector>

#include "hone/core/error.h"
#include "hone/core/fs.h"
#include "hone/io/gzip.h"

namespace hone::io {
namespace {

static_assert(std::endian::native == std::endian::little, "hone's IDX code assumes a little-endian host");

constexpr std::size_t kMagicBytes = 4;
constexpr std::size_t kMaxRank = 8;

struct IdxType {
  std::uint8_t code;
  at::ScalarType dtype;
  std::size_t itemsize;
  const char* name;
};

constexpr std::array<IdxType, 6> kIdxTypes{{
    {0x08, at::kByte, 1, "uint8"},
    {0x09, at::kChar, 1, "int8"},
    {0x0B, at::kShort, 2, "int16"},
    {0x0C, at::kInt, 4, "int32"},
    {0x0D, at::kFloat, 4, "float32"},
    {0x0E, at::kDouble, 8, "float64"},
}};

std::optional<IdxType> type_from_code(std::uint8_t code) {
  for (const auto& type : kIdxTypes) {
    if (type.code == code) return type;
  }
  return std::nullopt;
}

std::optional<IdxType> type_from_dtype(at::ScalarType dtype) {
  for (const auto& type : kIdxTypes) {
    if (type.dtype == dtype) return type;
  }
  return std::nullopt;
}

std::uint32_t read_big_endian_u32(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return std::uint32_t{b[0]} << 24 | std::uint32_t{b[1]} << 16 | std::uint32_t{b[2]} << 8 | std::uint32_t{b[3]};
}

void append_big_endian_u32(std::string& out, std::uint32_t value) {
  out.push_back(static_cast<char>(value >> 24));
  out.push_back(static_cast<char>(value >> 16));
  out.push_back(static_cast<char>(value >> 8));
  out.push_back(static_cast<char>(value));
}

// IDX data is big-endian and hone's hosts are little-endian: reverse each element's bytes.
void swap_bytes_in_place(char* data, std::size_t count, std::size_t itemsize) {
  if (itemsize == 1) return;
  for (std::size_t i = 0; i < count; ++i) {
    char* element = data + i * itemsize;
    for (std::size_t a = 0, b = itemsize - 1; a < b; ++a, --b) std::swap(element[a], element[b]);
  }
}

bool ends_with_gz(const std::filesystem::path& path) {
  std::string name = path.filename().string();
  return name.size() >= 3 && name.compare(name.size() - 3, 3, ".gz") == 0;
}

}  // namespace

at::Tensor parse_idx(std::string_view bytes, const std::string& source) {
  if (bytes.size() < kMagicBytes) {
    fail("{}: truncated: expected at least {} bytes for the IDX magic, got {}", source, kMagicBytes, bytes.size());
  }
  const auto* magic = reinterpret_cast<const unsigned char*>(bytes.data());
  if (magic[0] != 0 || magic[1] != 0) {
    fail("{}: bad IDX magic {:02x} {:02x} {:02x} {:02x} (the first two bytes must be 0)", source, magic[0], magic[1],
         magic[2], magic[3]);
  }
  std::optional<IdxType> type = type_from_code(magic[2]);
  if (!type) {
    fail(
        "{}: unknown IDX type code 0x{:02x} (known: 08 uint8, 09 int8, 0b int16, 0c int32, 0d float32, "
        "0e float64)",
        source, magic[2]);
  }
  std::size_t rank = magic[3];
  if (rank < 1 || rank > kMaxRank) fail("{}: IDX rank {} is outside 1..{}", source, rank, kMaxRank);

  std::size_t header_bytes = kMagicBytes + 4 * rank;
  if (bytes.size() < header_bytes) {
    fail("{}: truncated: expected at least {} bytes for the header of a rank-{} IDX file, got {}", source, header_bytes,
         rank, bytes.size());
  }
  std::vector<std::int64_t> dims(rank);
  bool any_zero = false;
  for (std::size_t d = 0; d < rank; ++d) {
    dims[d] = read_big_endian_u32(bytes.data() + kMagicBytes + 4 * d);
    any_zero = any_zero || dims[d] == 0;
  }
  // A zero dim makes the tensor empty whatever the others say, but LibTorch still multiplies the
  // non-zero dims into strides, so their product must fit int64 either way; checking it also stops
  // a wrapped-around product from matching a small file.
  constexpr auto kMaxInt64 = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  std::uint64_t nonzero_product = 1;
  for (std::int64_t dim : dims) {
    if (dim == 0) continue;
    if (static_cast<std::uint64_t>(dim) > kMaxInt64 / nonzero_product) {
      fail("{}: IDX dims {} overflow: no file can hold that many elements", source, fmt::join(dims, "x"));
    }
    nonzero_product *= static_cast<std::uint64_t>(dim);
  }
  std::uint64_t numel = any_zero ? 0 : nonzero_product;
  if (numel > (kMaxInt64 - header_bytes) / type->itemsize) {
    fail("{}: IDX dims {} overflow: no file can hold that many bytes", source, fmt::join(dims, "x"));
  }
  std::uint64_t expected = header_bytes + numel * type->itemsize;
  if (bytes.size() < expected) {
    fail("{}: truncated: expected {} bytes, got {} ({} of shape [{}])", source, expected, bytes.size(), type->name,
         fmt::join(dims, ", "));
  }
  if (bytes.size() > expected) {
    fail("{}: {} trailing bytes: expected {} bytes, got {} ({} of shape [{}])", source, bytes.size() - expected,
         expected, bytes.size(), type->name, fmt::join(dims, ", "));
  }

  at::Tensor tensor = at::empty(dims, at::TensorOptions().dtype(type->dtype));
  if (numel > 0) {
    auto* data = static_cast<char*>(tensor.data_ptr());
    std::memcpy(data, bytes.data() + header_bytes, numel * type->itemsize);
    swap_bytes_in_place(data, numel, type->itemsize);
  }
  return tensor;
}

at::Tensor read_idx(const std::filesystem::path& path) { return parse_idx(read_maybe_gzipped(path), path.string()); }

std::string encode_idx(const at::Tensor& tensor) {
  HONE_CHECK(tensor.defined(), "encode_idx: the tensor is undefined");
  std::optional<IdxType> type = type_from_dtype(tensor.scalar_type());
  if (!type) {
    fail("encode_idx: dtype {} cannot be stored in IDX (uint8, int8, int16, int32, float32, float64)",
         c10::toString(tensor.scalar_type()));
  }
  std::size_t rank = static_cast<std::size_t>(tensor.dim());
  if (rank < 1 || rank > kMaxRank) {
    fail("encode_idx: IDX holds rank 1..{}, got a {}-dim tensor of shape {}", kMaxRank, rank,
         fmt::join(tensor.sizes(), "x"));
  }
  for (std::int64_t dim : tensor.sizes()) {
    if (static_cast<std::uint64_t>(dim) > std::numeric_limits<std::uint32_t>::max()) {
      fail("encode_idx: dim {} of shape [{}] does not fit IDX's uint32 dims", dim, fmt::join(tensor.sizes(), ", "));
    }
  }
  at::Tensor cpu = tensor.to(at::kCPU).contiguous();
  std::size_t numel = static_cast<std::size_t>(cpu.numel());
  std::size_t header_bytes = kMagicBytes + 4 * rank;

  std::string out;
  out.reserve(header_bytes + numel * type->itemsize);
  out.push_back(0);
  out.push_back(0);
  out.push_back(static_cast<char>(type->code));
  out.push_back(static_cast<char>(rank));
  for (std::int64_t dim : cpu.sizes()) append_big_endian_u32(out, static_cast<std::uint32_t>(dim));
  if (numel > 0) out.append(static_cast<const char*>(cpu.const_data_ptr()), numel * type->itemsize);
  swap_bytes_in_place(out.data() + header_bytes, numel, type->itemsize);
  return out;
}

void write_idx(const std::filesystem::path& path, const at::Tensor& tensor) {
  std::string bytes = encode_idx(tensor);
  if (ends_with_gz(path)) bytes = gzip(bytes);
  write_file_atomic(path, bytes);
}

}  // namespace hone::io
