#include "hone/io/safetensors.h"

#include <ATen/ATen.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "hone/core/error.h"
#include "hone/core/fs.h"

namespace hone::io {
namespace {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian, as is the host");

using Json = nlohmann::json;
constexpr std::size_t kLengthBytes = 8;
constexpr std::string_view kMetadataKey = "__metadata__";

struct DtypeInfo {
  std::string_view name;
  at::ScalarType dtype;
  std::size_t itemsize;
};

// The format's dtypes that LibTorch can hold. The F8 names map to the "fn" variants, as the
// reference's torch bindings do. F8_E8M0, F6_*, F4 and C64 have no LibTorch equivalent here.
constexpr std::array<DtypeInfo, 15> kDtypes{{
    {"F64", at::kDouble, 8},
    {"F32", at::kFloat, 4},
    {"F16", at::kHalf, 2},
    {"BF16", at::kBFloat16, 2},
    {"I64", at::kLong, 8},
    {"I32", at::kInt, 4},
    {"I16", at::kShort, 2},
    {"I8", at::kChar, 1},
    {"U64", at::kUInt64, 8},
    {"U32", at::kUInt32, 4},
    {"U16", at::kUInt16, 2},
    {"U8", at::kByte, 1},
    {"BOOL", at::kBool, 1},
    {"F8_E4M3", at::kFloat8_e4m3fn, 1},
    {"F8_E5M2", at::kFloat8_e5m2, 1},
}};

std::optional<DtypeInfo> dtype_from_name(std::string_view name) {
  for (const auto& info : kDtypes) {
    if (info.name == name) return info;
  }
  return std::nullopt;
}

std::optional<DtypeInfo> dtype_from_scalar_type(at::ScalarType dtype) {
  for (const auto& info : kDtypes) {
    if (info.dtype == dtype) return info;
  }
  return std::nullopt;
}

std::string supported_dtype_names() {
  std::vector<std::string_view> names;
  for (const auto& info : kDtypes) names.push_back(info.name);
  return fmt::format("{}", fmt::join(names, " "));
}

// One tensor as the header describes it.
struct Entry {
  std::string name;
  DtypeInfo dtype;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  std::uint64_t numel = 0;
};

struct Header {
  std::vector<Entry> entries;  // sorted by data offsets
  Metadata metadata;
};

// The header length N from the first 8 bytes, checked against the limit and the file size.
std::uint64_t read_header_length(const char* first_bytes, std::uint64_t file_size, const std::string& source) {
  if (file_size < kLengthBytes) {
    fail("{}: too small for a safetensors file: {} bytes, need at least {} for the header length", source, file_size,
         kLengthBytes);
  }
  std::uint64_t length = 0;
  std::memcpy(&length, first_bytes, kLengthBytes);
  if (length > kMaxSafetensorsHeaderBytes) {
    fail("{}: header length {} exceeds the limit of {} bytes", source, length, kMaxSafetensorsHeaderBytes);
  }
  if (kLengthBytes + length > file_size) {
    fail("{}: header length {} runs past the end of the file ({} bytes)", source, length, file_size);
  }
  return length;
}

Json parse_json_rejecting_duplicates(std::string_view text, const std::string& source) {
  // nlohmann keeps the last of duplicate keys silently; a repeated tensor name is a defect.
  std::vector<std::set<std::string>> open_objects;
  std::optional<std::string> duplicate;
  auto callback = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == Json::parse_event_t::object_end) {
      open_objects.pop_back();
    } else if (event == Json::parse_event_t::key && !open_objects.empty()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second && !duplicate) duplicate = key;
    }
    return true;
  };
  Json json;
  try {
    json = Json::parse(text.begin(), text.end(), callback);
  } catch (const Json::exception& e) {
    fail("{}: header is not valid JSON: {}", source, e.what());
  }
  if (duplicate) fail("{}: header has the key '{}' more than once", source, *duplicate);
  if (!json.is_object()) fail("{}: header is not a JSON object but {}", source, json.type_name());
  return json;
}

Metadata parse_metadata(const Json& json, const std::string& source) {
  if (!json.is_object()) fail("{}: __metadata__ is not an object of strings but {}", source, json.type_name());
  Metadata metadata;
  for (const auto& [key, value] : json.items()) {
    if (!value.is_string()) {
      fail("{}: __metadata__ value for '{}' is not a string but {}", source, key, value.type_name());
    }
    metadata[key] = value.get<std::string>();
  }
  return metadata;
}

std::uint64_t parse_offset(const Json& json, const std::string& source, const std::string& name) {
  if (!json.is_number_unsigned()) {
    fail("{}: tensor '{}': data_offsets entry {} is not a non-negative integer", source, name, json.dump());
  }
  return json.get<std::uint64_t>();
}

Entry parse_entry(const std::string& name, const Json& json, const std::string& source) {
  if (!json.is_object()) fail("{}: tensor '{}': entry is not a JSON object but {}", source, name, json.type_name());
  for (const auto& [key, value] : json.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets") {
      fail("{}: tensor '{}': unexpected key '{}' (expected dtype, shape, data_offsets)", source, name, key);
    }
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!json.contains(key)) fail("{}: tensor '{}': missing key '{}'", source, name, key);
  }
  Entry entry;
  entry.name = name;

  const Json& dtype = json.at("dtype");
  if (!dtype.is_string()) fail("{}: tensor '{}': dtype is not a string but {}", source, name, dtype.type_name());
  std::optional<DtypeInfo> info = dtype_from_name(dtype.get_ref<const std::string&>());
  if (!info) {
    fail("{}: tensor '{}': unknown or unsupported dtype '{}' (supported: {})", source, name,
         dtype.get_ref<const std::string&>(), supported_dtype_names());
  }
  entry.dtype = *info;

  const Json& shape = json.at("shape");
  if (!shape.is_array()) fail("{}: tensor '{}': shape is not an array but {}", source, name, shape.type_name());
  // The product of the non-zero dims bounds the strides LibTorch computes, so it must fit int64.
  constexpr auto kMaxInt64 = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  std::uint64_t nonzero_product = 1;
  bool any_zero = false;
  for (const Json& dim : shape) {
    if (!dim.is_number_unsigned()) {
      fail("{}: tensor '{}': shape entry {} is not a non-negative integer", source, name, dim.dump());
    }
    auto value = dim.get<std::uint64_t>();
    if (value == 0) {
      any_zero = true;
    } else if (value > kMaxInt64 / nonzero_product) {
      fail("{}: tensor '{}': shape {} overflows the element count", source, name, shape.dump());
    } else {
      nonzero_product *= value;
    }
    entry.shape.push_back(static_cast<std::int64_t>(value));
  }
  entry.numel = any_zero ? 0 : nonzero_product;

  const Json& offsets = json.at("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2) {
    fail("{}: tensor '{}': data_offsets must be an array [begin, end], got {}", source, name, offsets.dump());
  }
  entry.begin = parse_offset(offsets[0], source, name);
  entry.end = parse_offset(offsets[1], source, name);
  if (entry.end < entry.begin) {
    fail("{}: tensor '{}': data_offsets [{}, {}] end before they begin", source, name, entry.begin, entry.end);
  }
  if (entry.numel > std::numeric_limits<std::uint64_t>::max() / entry.dtype.itemsize) {
    fail("{}: tensor '{}': shape {} of {} overflows the byte count", source, name, shape.dump(), info->name);
  }
  std::uint64_t nbytes = entry.numel * entry.dtype.itemsize;
  if (entry.end - entry.begin != nbytes) {
    fail("{}: tensor '{}': data_offsets [{}, {}] span {} bytes, but shape {} of {} needs {}", source, name, entry.begin,
         entry.end, entry.end - entry.begin, shape.dump(), info->name, nbytes);
  }
  return entry;
}

// Parses and validates the JSON header against a data section of `data_size` bytes.
Header parse_header(std::string_view text, std::uint64_t data_size, const std::string& source) {
  Json json = parse_json_rejecting_duplicates(text, source);
  Header header;
  for (const auto& [key, value] : json.items()) {
    if (key == kMetadataKey) {
      header.metadata = parse_metadata(value, source);
    } else {
      header.entries.push_back(parse_entry(key, value, source));
    }
  }
  for (const Entry& entry : header.entries) {
    if (entry.end > data_size) {
      fail("{}: tensor '{}': data_offsets [{}, {}] run past the end of the data section ({} bytes)", source, entry.name,
           entry.begin, entry.end, data_size);
    }
  }
  std::stable_sort(header.entries.begin(), header.entries.end(),
                   [](const Entry& a, const Entry& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
  // As the reference reader demands: sorted by offset, the tensors tile the data section exactly.
  std::uint64_t covered = 0;
  const Entry* previous = nullptr;
  for (const Entry& entry : header.entries) {
    if (entry.begin < covered) {
      fail("{}: tensor '{}': data_offsets [{}, {}] overlap tensor '{}' at [{}, {}]", source, entry.name, entry.begin,
           entry.end, previous->name, previous->begin, previous->end);
    }
    if (entry.begin > covered) {
      fail("{}: tensor '{}': hole of {} unused bytes before its data_offsets [{}, {}]", source, entry.name,
           entry.begin - covered, entry.begin, entry.end);
    }
    covered = entry.end;
    previous = &entry;
  }
  if (covered != data_size) {
    fail("{}: {} unused bytes after the last tensor (the data section has {} bytes, the tensors cover {})", source,
         data_size - covered, data_size, covered);
  }
  return header;
}

// Splits whole-file bytes into the parsed header and the data section.
std::pair<Header, std::string_view> parse_file_bytes(std::string_view bytes, const std::string& source) {
  std::uint64_t length = read_header_length(bytes.data(), bytes.size(), source);
  std::string_view data = bytes.substr(kLengthBytes + length);
  return {parse_header(bytes.substr(kLengthBytes, length), data.size(), source), data};
}

at::TensorOptions options_for(const Entry& entry) { return at::TensorOptions().dtype(entry.dtype.dtype); }

at::Tensor copy_tensor(const Entry& entry, std::string_view data) {
  at::Tensor tensor = at::empty(entry.shape, options_for(entry));
  if (entry.numel > 0) std::memcpy(tensor.data_ptr(), data.data() + entry.begin, entry.end - entry.begin);
  return tensor;
}

// The header JSON, padded with spaces so that the data starts 8-aligned, and the CPU copies to write.
struct Prepared {
  std::string header;
  std::vector<at::Tensor> tensors;
};

Prepared prepare(const NamedTensors& tensors, const Metadata& metadata) {
  nlohmann::ordered_json json = nlohmann::ordered_json::object();
  if (!metadata.empty()) json[std::string(kMetadataKey)] = metadata;
  Prepared prepared;
  std::set<std::string> names;
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name.empty()) fail("safetensors: a tensor has an empty name");
    if (name == kMetadataKey) fail("safetensors: '{}' is reserved and cannot name a tensor", kMetadataKey);
    if (!names.insert(name).second) fail("safetensors: the tensor name '{}' appears more than once", name);
    if (!tensor.defined()) fail("safetensors: tensor '{}' is undefined", name);
    if (tensor.layout() != at::kStrided) fail("safetensors: tensor '{}' is not dense (strided)", name);
    std::optional<DtypeInfo> info = dtype_from_scalar_type(tensor.scalar_type());
    if (!info) {
      fail("safetensors: tensor '{}' has dtype {}, which safetensors cannot hold (supported: {})", name,
           c10::toString(tensor.scalar_type()), supported_dtype_names());
    }
    at::Tensor cpu = tensor.detach().to(at::kCPU).contiguous();
    std::uint64_t nbytes = static_cast<std::uint64_t>(cpu.numel()) * info->itemsize;
    json[name] = {{"dtype", info->name}, {"shape", cpu.sizes().vec()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    prepared.tensors.push_back(std::move(cpu));
  }
  prepared.header = json.dump();
  prepared.header.append((8 - prepared.header.size() % 8) % 8, ' ');
  return prepared;
}

std::string length_prefix(const std::string& header) {
  std::uint64_t length = header.size();
  std::string bytes(kLengthBytes, '\0');
  std::memcpy(bytes.data(), &length, kLengthBytes);
  return bytes;
}

std::string_view tensor_bytes(const at::Tensor& cpu) {
  std::size_t nbytes = static_cast<std::size_t>(cpu.numel()) * cpu.element_size();
  if (nbytes == 0) return {};
  return {static_cast<const char*>(cpu.const_data_ptr()), nbytes};
}

}  // namespace

const at::Tensor& SafetensorsContents::at(const std::string& name) const {
  for (const auto& [tensor_name, tensor] : tensors) {
    if (tensor_name == name) return tensor;
  }
  std::vector<std::string_view> names;
  for (const auto& entry : tensors) names.push_back(entry.first);
  fail("safetensors: no tensor '{}' (tensors: {})", name, fmt::join(names, ", "));
}

bool SafetensorsContents::contains(const std::string& name) const {
  return std::any_of(tensors.begin(), tensors.end(), [&](const auto& entry) { return entry.first == name; });
}

std::string encode_safetensors(const NamedTensors& tensors, const Metadata& metadata) {
  Prepared prepared = prepare(tensors, metadata);
  std::string out = length_prefix(prepared.header) + prepared.header;
  for (const at::Tensor& cpu : prepared.tensors) out.append(tensor_bytes(cpu));
  return out;
}

SafetensorsContents decode_safetensors(std::string_view bytes, const std::string& source) {
  auto [header, data] = parse_file_bytes(bytes, source);
  SafetensorsContents contents;
  contents.metadata = std::move(header.metadata);
  for (const Entry& entry : header.entries) contents.tensors.emplace_back(entry.name, copy_tensor(entry, data));
  return contents;
}

void save_safetensors(const std::filesystem::path& path, const NamedTensors& tensors, const Metadata& metadata) {
  Prepared prepared = prepare(tensors, metadata);
  // Streamed tensor by tensor, so a large model is not assembled in memory a second time.
  write_file_atomic(path, [&](const std::filesystem::path& temp) {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) fail("cannot write '{}': {}", temp.string(), std::strerror(errno));
    out << length_prefix(prepared.header) << prepared.header;
    for (const at::Tensor& cpu : prepared.tensors) {
      std::string_view bytes = tensor_bytes(cpu);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    out.flush();
    if (!out) fail("error while writing '{}': {} (disk full?)", temp.string(), std::strerror(errno));
  });
}

SafetensorsContents load_safetensors(const std::filesystem::path& path) {
  auto mapping = std::make_shared<MappedFile>(path);
  std::string source = path.string();
  std::string_view bytes(reinterpret_cast<const char*>(mapping->data()), mapping->size());
  auto [header, data] = parse_file_bytes(bytes, source);

  SafetensorsContents contents;
  contents.metadata = std::move(header.metadata);
  for (const Entry& entry : header.entries) {
    const char* address = data.data() + entry.begin;
    at::Tensor tensor;
    if (entry.numel == 0 || reinterpret_cast<std::uintptr_t>(address) % entry.dtype.itemsize != 0) {
      tensor = copy_tensor(entry, data);  // LibTorch kernels assume aligned elements
    } else {
      // The mapping is private (copy-on-write), so writes through the tensor never reach the file;
      // the deleter's copy of `mapping` keeps it alive as long as the tensor's storage is.
      tensor = at::from_blob(
          const_cast<char*>(address), entry.shape, [mapping](void*) {}, options_for(entry));
    }
    contents.tensors.emplace_back(entry.name, std::move(tensor));
  }
  return contents;
}

SafetensorsContents load_safetensors_header(const std::filesystem::path& path) {
  std::string source = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open '{}': {}", source, std::strerror(errno));
  std::error_code ec;
  std::uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) fail("cannot stat '{}': {}", source, ec.message());

  char first_bytes[kLengthBytes] = {};
  in.read(first_bytes, static_cast<std::streamsize>(std::min<std::uint64_t>(file_size, kLengthBytes)));
  std::uint64_t length = read_header_length(first_bytes, file_size, source);
  std::string text(length, '\0');
  in.read(text.data(), static_cast<std::streamsize>(length));
  if (!in) fail("error while reading the header of '{}'", source);
  Header header = parse_header(text, file_size - kLengthBytes - length, source);

  SafetensorsContents contents;
  contents.metadata = std::move(header.metadata);
  for (const Entry& entry : header.entries) {
    contents.tensors.emplace_back(entry.name, at::empty(entry.shape, options_for(entry).device(at::kMeta)));
  }
  return contents;
}

}  // namespace hone::io
