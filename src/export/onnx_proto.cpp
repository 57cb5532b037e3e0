#include "hone/export/onnx_proto.h"

#include <bit>
#include <cstring>
#include <limits>

#include "hone/core/error.h"

namespace hone::onnx {
namespace {

static_assert(std::numeric_limits<float>::is_iec559, "ONNX floats are IEEE-754 binary32");

enum class WireType : std::uint32_t {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5,
};

constexpr std::uint32_t kMaxFieldNumber = (1U << 29) - 1;
constexpr int kMaxVarintBytes = 10;

// ---------------------------------------------------------------------------------------------
// Writing. Every message is written twice through the same code: once into a ByteCounter to learn
// its length prefix, once into the output. This keeps a single copy of large raw_data in memory
// (no per-level temporary strings) at the cost of re-walking the small message tree.

class ByteCounter {
 public:
  void push(char) { ++size_; }
  void append(std::string_view bytes) { size_ += bytes.size(); }
  std::size_t size() const { return size_; }

 private:
  std::size_t size_ = 0;
};

class ByteAppender {
 public:
  explicit ByteAppender(std::string& out) : out_(out) {}
  void push(char byte) { out_.push_back(byte); }
  void append(std::string_view bytes) { out_.append(bytes); }

 private:
  std::string& out_;
};

template <typename Sink>
void put_varint(Sink& sink, std::uint64_t value) {
  while (value >= 0x80) {
    sink.push(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  sink.push(static_cast<char>(value));
}

template <typename Sink>
void put_tag(Sink& sink, std::uint32_t field, WireType wire) {
  put_varint(sink, (static_cast<std::uint64_t>(field) << 3) | static_cast<std::uint32_t>(wire));
}

// int64 and int32 fields alike: a negative value is sign-extended to 64 bits (10 bytes), as
// protobuf does for int32.
template <typename Sink>
void put_int(Sink& sink, std::uint32_t field, std::int64_t value) {
  put_tag(sink, field, WireType::kVarint);
  put_varint(sink, static_cast<std::uint64_t>(value));
}

template <typename Sink>
void put_fixed32(Sink& sink, float value) {
  const auto bits = std::bit_cast<std::uint32_t>(value);
  for (int shift = 0; shift < 32; shift += 8) sink.push(static_cast<char>((bits >> shift) & 0xff));
}

template <typename Sink>
void put_float(Sink& sink, std::uint32_t field, float value) {
  put_tag(sink, field, WireType::kFixed32);
  put_fixed32(sink, value);
}

template <typename Sink>
void put_bytes(Sink& sink, std::uint32_t field, std::string_view bytes) {
  put_tag(sink, field, WireType::kLengthDelimited);
  put_varint(sink, bytes.size());
  sink.append(bytes);
}

template <typename Sink>
void put_bytes_if_set(Sink& sink, std::uint32_t field, std::string_view bytes) {
  if (!bytes.empty()) put_bytes(sink, field, bytes);
}

template <typename Sink>
void put_packed_ints(Sink& sink, std::uint32_t field, const std::vector<std::int64_t>& values) {
  if (values.empty()) return;
  ByteCounter counter;
  for (std::int64_t value : values) put_varint(counter, static_cast<std::uint64_t>(value));
  put_tag(sink, field, WireType::kLengthDelimited);
  put_varint(sink, counter.size());
  for (std::int64_t value : values) put_varint(sink, static_cast<std::uint64_t>(value));
}

template <typename Sink>
void put_packed_floats(Sink& sink, std::uint32_t field, const std::vector<float>& values) {
  if (values.empty()) return;
  put_tag(sink, field, WireType::kLengthDelimited);
  put_varint(sink, values.size() * 4);
  for (float value : values) put_fixed32(sink, value);
}

template <typename Sink, typename Message>
void put_message(Sink& sink, std::uint32_t field, const Message& message);

template <typename Sink>
void write(Sink& sink, const TensorProto& m) {
  put_packed_ints(sink, 1, m.dims);
  put_int(sink, 2, static_cast<std::int32_t>(m.data_type));
  put_bytes_if_set(sink, 8, m.name);
  put_bytes_if_set(sink, 9, m.raw_data);
}

// clang-format off
template <typename Sink>
void write(Sink& sink, const AttributeProto& m) {
  put_bytes_if_set(sink, 1, m.name);
  switch (m.type) {
    case AttributeType::kFloat: put_float(sink, 2, m.f); break;
    case AttributeType::kInt: put_int(sink, 3, m.i); break;
    case AttributeType::kString: put_bytes(sink, 4, m.s); break;
    case AttributeType::kTensor:
      if (!m.t) fail("ONNX attribute '{}' has type TENSOR but no tensor", m.name);
      put_message(sink, 5, *m.t);
      break;
    case AttributeType::kFloats: put_packed_floats(sink, 7, m.floats); break;
    case AttributeType::kInts: put_packed_ints(sink, 8, m.ints); break;
    case AttributeType::kStrings:
      for (const std::string& value : m.strings) put_bytes(sink, 9, value);
      break;
    case AttributeType::kUndefined: fail("ONNX attribute '{}' has no type", m.name);
  }
  put_int(sink, 20, static_cast<std::int32_t>(m.type));
}

// clang-format on

template <typename Sink>
void write(Sink& sink, const NodeProto& m) {
  for (const std::string& name : m.input) put_bytes(sink, 1, name);
  for (const std::string& name : m.output) put_bytes(sink, 2, name);
  put_bytes_if_set(sink, 3, m.name);
  put_bytes_if_set(sink, 4, m.op_type);
  for (const AttributeProto& attribute : m.attribute) put_message(sink, 5, attribute);
  put_bytes_if_set(sink, 7, m.domain);
}

template <typename Sink>
void write(Sink& sink, const Dimension& m) {
  if (m.value) {
    put_int(sink, 1, *m.value);
  } else {
    put_bytes_if_set(sink, 2, m.param);
  }
}

// TensorShapeProto{repeated Dimension dim = 1}.
struct ShapeView {
  const std::vector<Dimension>& dims;
};

template <typename Sink>
void write(Sink& sink, const ShapeView& m) {
  for (const Dimension& dim : m.dims) put_message(sink, 1, dim);
}

template <typename Sink>
void write(Sink& sink, const TensorTypeProto& m) {
  put_int(sink, 1, static_cast<std::int32_t>(m.elem_type));
  if (m.shape) put_message(sink, 2, ShapeView{*m.shape});
}

// TypeProto{oneof value {Tensor tensor_type = 1; ...}}.
struct TypeView {
  const TensorTypeProto& tensor_type;
};

template <typename Sink>
void write(Sink& sink, const TypeView& m) {
  put_message(sink, 1, m.tensor_type);
}

template <typename Sink>
void write(Sink& sink, const ValueInfoProto& m) {
  put_bytes_if_set(sink, 1, m.name);
  if (m.type) put_message(sink, 2, TypeView{*m.type});
}

template <typename Sink>
void write(Sink& sink, const GraphProto& m) {
  for (const NodeProto& node : m.node) put_message(sink, 1, node);
  put_bytes_if_set(sink, 2, m.name);
  for (const TensorProto& tensor : m.initializer) put_message(sink, 5, tensor);
  for (const ValueInfoProto& value : m.input) put_message(sink, 11, value);
  for (const ValueInfoProto& value : m.output) put_message(sink, 12, value);
  for (const ValueInfoProto& value : m.value_info) put_message(sink, 13, value);
}

template <typename Sink>
void write(Sink& sink, const OperatorSetIdProto& m) {
  put_bytes_if_set(sink, 1, m.domain);
  put_int(sink, 2, m.version);
}

template <typename Sink>
void write(Sink& sink, const StringStringEntryProto& m) {
  put_bytes_if_set(sink, 1, m.key);
  put_bytes_if_set(sink, 2, m.value);
}

template <typename Sink>
void write(Sink& sink, const ModelProto& m) {
  if (m.ir_version != 0) put_int(sink, 1, m.ir_version);
  put_bytes_if_set(sink, 2, m.producer_name);
  put_bytes_if_set(sink, 3, m.producer_version);
  put_message(sink, 7, m.graph);
  for (const OperatorSetIdProto& opset : m.opset_import) put_message(sink, 8, opset);
  for (const StringStringEntryProto& entry : m.metadata_props) put_message(sink, 14, entry);
}

template <typename Sink, typename Message>
void put_message(Sink& sink, std::uint32_t field, const Message& message) {
  ByteCounter counter;
  write(counter, message);
  put_tag(sink, field, WireType::kLengthDelimited);
  put_varint(sink, counter.size());
  write(sink, message);
}

template <typename Message>
std::string serialize_message(const Message& message) {
  ByteCounter counter;
  write(counter, message);
  std::string out;
  out.reserve(counter.size());
  ByteAppender appender(out);
  write(appender, message);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading. A Reader covers one message's bytes; nested messages get a Reader over their own
// length-checked slice, so no read can pass the end of the enclosing message or of the input.

class Reader;
void read(Reader& r, TensorProto& m);
void read(Reader& r, AttributeProto& m);
void read(Reader& r, NodeProto& m);
void read(Reader& r, Dimension& m);
void read(Reader& r, std::vector<Dimension>& shape);
void read(Reader& r, TensorTypeProto& m);
void read(Reader& r, std::optional<TensorTypeProto>& m);
void read(Reader& r, ValueInfoProto& m);
void read(Reader& r, GraphProto& m);
void read(Reader& r, OperatorSetIdProto& m);
void read(Reader& r, StringStringEntryProto& m);
void read(Reader& r, ModelProto& m);

struct Field {
  std::uint32_t number = 0;
  WireType wire = WireType::kVarint;
  std::size_t offset = 0;  // of the tag, from the start of the input
};

class Reader {
 public:
  Reader(std::string_view bytes, std::size_t base, std::string_view source, std::string path)
      : bytes_(bytes), base_(base), source_(source), path_(std::move(path)) {}

  bool at_end() const { return position_ == bytes_.size(); }
  std::size_t start() const { return base_; }
  const std::string& path() const { return path_; }

  [[noreturn]] void fail_at(std::size_t offset, std::string_view what) const {
    fail("{}: {} at byte {}: {}", source_, path_, offset, what);
  }

  Field read_tag() {
    const std::size_t offset = base_ + position_;
    const std::uint64_t tag = read_varint();
    const auto wire = static_cast<std::uint32_t>(tag & 7);
    const std::uint64_t number = tag >> 3;
    if (number == 0 || number > kMaxFieldNumber) {
      fail_at(offset, fmt::format("invalid field number {}", number));
    }
    if (wire == 3 || wire == 4) fail_at(offset, fmt::format("field {} is a group (not used by ONNX)", number));
    if (wire > 5) fail_at(offset, fmt::format("field {} has invalid wire type {}", number, wire));
    return {static_cast<std::uint32_t>(number), static_cast<WireType>(wire), offset};
  }

  std::uint64_t read_varint() {
    const std::size_t start = base_ + position_;
    std::uint64_t value = 0;
    for (int index = 0; index < kMaxVarintBytes; ++index) {
      if (at_end()) fail_at(start, "truncated varint");
      const auto byte = static_cast<std::uint8_t>(bytes_[position_++]);
      if (index == kMaxVarintBytes - 1 && byte > 1) fail_at(start, "varint overflows 64 bits");
      value |= static_cast<std::uint64_t>(byte & 0x7f) << (7 * index);
      if ((byte & 0x80) == 0) return value;
    }
    fail_at(start, "varint longer than 10 bytes");
  }

  std::uint32_t read_fixed32() {
    if (bytes_.size() - position_ < 4) fail_at(base_ + position_, "truncated 4-byte value");
    std::uint32_t bits = 0;
    for (int index = 0; index < 4; ++index) {
      bits |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(bytes_[position_++])) << (8 * index);
    }
    return bits;
  }

  // Returns the payload and the input offset where it starts.
  std::pair<std::string_view, std::size_t> read_length_delimited() {
    const std::size_t start = base_ + position_;
    const std::uint64_t length = read_varint();
    const std::size_t left = bytes_.size() - position_;
    if (length > left) {
      fail_at(start, fmt::format("length {} runs past the end ({} bytes left)", length, left));
    }
    const std::size_t payload = base_ + position_;
    const std::string_view slice = bytes_.substr(position_, static_cast<std::size_t>(length));
    position_ += static_cast<std::size_t>(length);
    return {slice, payload};
  }

  void skip(const Field& field) {
    if (field.wire == WireType::kVarint) {
      read_varint();
    } else if (field.wire == WireType::kFixed32) {
      read_fixed32();
    } else if (field.wire == WireType::kLengthDelimited) {
      read_length_delimited();
    } else {  // kFixed64: read_tag() lets no other wire type through
      if (bytes_.size() - position_ < 8) fail_at(base_ + position_, "truncated 8-byte value");
      position_ += 8;
    }
  }

  void expect(const Field& field, WireType wire, std::string_view name) const {
    if (field.wire != wire) {
      fail_at(field.offset, fmt::format("field {} ({}) has wire type {}, expected {}", field.number, name,
                                        static_cast<std::uint32_t>(field.wire), static_cast<std::uint32_t>(wire)));
    }
  }

  [[noreturn]] void reject(const Field& field, std::string_view what) const {
    fail_at(field.offset, fmt::format("field {} ({}) is not supported by hone's ONNX reader", field.number, what));
  }

  std::int64_t read_int64(const Field& field, std::string_view name) {
    expect(field, WireType::kVarint, name);
    return static_cast<std::int64_t>(read_varint());
  }

  std::int32_t read_int32(const Field& field, std::string_view name) {
    const std::int64_t value = read_int64(field, name);
    if (value < std::numeric_limits<std::int32_t>::min() || value > std::numeric_limits<std::int32_t>::max()) {
      fail_at(field.offset, fmt::format("field {} ({}) = {} does not fit in int32", field.number, name, value));
    }
    return static_cast<std::int32_t>(value);
  }

  float read_float(const Field& field, std::string_view name) {
    expect(field, WireType::kFixed32, name);
    return std::bit_cast<float>(read_fixed32());
  }

  std::string read_string(const Field& field, std::string_view name) {
    expect(field, WireType::kLengthDelimited, name);
    return std::string(read_length_delimited().first);
  }

  // A repeated int64 field, packed (one length-delimited run) or not (one varint per tag).
  void read_ints(const Field& field, std::string_view name, std::vector<std::int64_t>& out) {
    if (field.wire == WireType::kVarint) {
      out.push_back(static_cast<std::int64_t>(read_varint()));
      return;
    }
    expect(field, WireType::kLengthDelimited, name);
    auto [slice, offset] = read_length_delimited();
    Reader packed(slice, offset, source_, path_ + "." + std::string(name));
    while (!packed.at_end()) out.push_back(static_cast<std::int64_t>(packed.read_varint()));
  }

  void read_floats(const Field& field, std::string_view name, std::vector<float>& out) {
    if (field.wire == WireType::kFixed32) {
      out.push_back(std::bit_cast<float>(read_fixed32()));
      return;
    }
    expect(field, WireType::kLengthDelimited, name);
    auto [slice, offset] = read_length_delimited();
    if (slice.size() % 4 != 0) {
      fail_at(offset, fmt::format("packed floats ({}) of {} bytes, not a multiple of 4", name, slice.size()));
    }
    Reader packed(slice, offset, source_, path_);
    while (!packed.at_end()) out.push_back(std::bit_cast<float>(packed.read_fixed32()));
  }

  // Reads a nested message into `message` (merging, as protobuf does when a field repeats).
  template <typename Message>
  void read_message(const Field& field, std::string child_path, Message& message) {
    expect(field, WireType::kLengthDelimited, child_path);
    auto [slice, offset] = read_length_delimited();
    Reader child(slice, offset, source_, path_ + "." + child_path);
    read(child, message);
  }

  template <typename Message>
  void read_repeated(const Field& field, std::string_view name, std::vector<Message>& out) {
    out.emplace_back();
    read_message(field, fmt::format("{}[{}]", name, out.size() - 1), out.back());
  }

 private:
  std::string_view bytes_;
  std::size_t base_ = 0;
  std::size_t position_ = 0;
  std::string_view source_;
  std::string path_;
};

// The readers below are field tables, one case per onnx.proto field, kept one line each.
// clang-format off
void read(Reader& r, TensorProto& m) {
  while (!r.at_end()) {
    const Field f = r.read_tag();
    switch (f.number) {
      case 1: r.read_ints(f, "dims", m.dims); break;
      case 2: m.data_type = static_cast<DataType>(r.read_int32(f, "data_type")); break;
      case 8: m.name = r.read_string(f, "name"); break;
      case 9: m.raw_data = r.read_string(f, "raw_data"); break;
      case 3: r.reject(f, "segment");
      case 4: r.reject(f, "float_data; hone reads raw_data only");
      case 5: r.reject(f, "int32_data; hone reads raw_data only");
      case 6: r.reject(f, "string_data");
      case 7: r.reject(f, "int64_data; hone reads raw_data only");
      case 10: r.reject(f, "double_data; hone reads raw_data only");
      case 11: r.reject(f, "uint64_data; hone reads raw_data only");
      case 13: r.reject(f, "external_data");
      case 14:
        if (r.read_int32(f, "data_location") != 0) r.reject(f, "data_location EXTERNAL");
        break;
      default: r.skip(f);
    }
  }
}

void read(Reader& r, AttributeProto& m) {
  std::int32_t type = 0;
  while (!r.at_end()) {
    const Field f = r.read_tag();
    switch (f.number) {
      case 1: m.name = r.read_string(f, "name"); break;
      case 2: m.f = r.read_float(f, "f"); break;
      case 3: m.i = r.read_int64(f, "i"); break;
      case 4: m.s = r.read_string(f, "s"); break;
      case 5:
        if (!m.t) m.t.emplace();
        r.read_message(f, "t", *m.t);
        break;
      case 7: r.read_floats(f, "floats", m.floats); break;
      case 8: r.read_ints(f, "ints", m.ints); break;
      case 9: m.strings.push_back(r.read_string(f, "strings")); break;
      case 20: type = r.read_int32(f, "type"); break;
      case 6: r.reject(f, "g (graph attribute)");
      case 10: r.reject(f, "tensors");
      case 11: r.reject(f, "graphs");
      case 14: r.reject(f, "tp (type attribute)");
      case 15: r.reject(f, "type_protos");
      case 21: r.reject(f, "ref_attr_name");
      case 22: r.reject(f, "sparse_tensor");
      case 23: r.reject(f, "sparse_tensors");
      default: r.skip(f);
    }
  }
  switch (type) {
    case 1: case 2: case 3: case 4: case 6: case 7: case 8: m.type = static_cast<AttributeType>(type); break;
    default:
      r.fail_at(r.start(),
                fmt::format("attribute '{}' has type {}, which hone's reader does not support", m.name, type));
  }
}

void read(Reader& r, NodeProto& m) {
  while (!r.at_end()) {
    const Field f = r.read_tag();
    switch (f.number) {
      case 1: m.input.push_back(r.read_string(f, "input")); break;
      case 2: m.output.push_back(r.read_string(f, "output")); break;
      case 3: m.name = r.read_string(f, "name"); break;
      case 4: m.op_type = r.read_string(f, "op_type"); break;
      case 5: r.read_repeated(f, "attribute", m.attribute); break;
      case 7: m.domain = r.read_string(f, "domain"); break;
      default: r.skip(f);
    }
  }
}

void read(Reader& r, Dimension& m) {
  while (!r.at_end()) {
    const Field f = r.read_tag();
    switch (f.number) {  // a oneof: the last one set wins
      case 1:
        m.value = r.read_int64(f, "dim_value");
        m.param.clear();
        break;
      case 2:
        m.param = r.read_string(f, "dim_param");
        m.value.reset();
        break;
      default: r.skip(f);
    }
  }
}

void read(Reader& r, std::vector<Dimension>& shape) {
  while (!r.at_end()) {
    const Field f = r.read_tag();
    if (f.number == 1) {
      r.read_repeated(f, "dim", shape);
    } else {
      r.skip(f);
    }
  }
}

void read(Reader& r, TensorTypeProto& m) {
  while (!r.at_end()) {
    const Field f = r.read_tag();
    switch (f.number) {
      case 1: m.elem_type = static_cast<DataType>(r.read_int32(f, "elem_type")); break;
      case 2:
        if (!m.shape) m.shape.emplace();
        r.read_message(f, "shape", *m.shape);
        break;
      default: r.skip(f);
    }
  }
}

// TypeProto: only tensor_type is supported.
void read(Reader& r, std::optional<TensorTypeProto>& m) {
  while (!r.at_end()) {
    const Field f = r.read_tag();
    switch (f.number) {
      case 1:
        if (!m) m.emplace();
        r.read_message(f, "tensor_type", *m);
        break;
      case 4: r.reject(f, "sequence_type");
      case 5: r.reject(f, "map_type");
      case 7: r.reject(f, "opaque_type");
      case 8: r.reject(f, "sparse_tensor_type");
      case 9: r.reject(f, "optional_type");
      default: r.skip(f);
    }
  }
  if (!m) r.fail_at(r.start(), "TypeProto without tensor_type");
}

void read(Reader& r, ValueInfoProto& m) {
  while (!r.at_end()) {
    const Field f = r.read_tag();
    switch (f.number) {
      case 1: m.name = r.read_string(f, "name"); break;
      case 2: r.read_message(f, "type", m.type); break;
      default: r.skip(f);
    }
  }
}

void read(Reader& r, GraphProto& m) {
  while (!r.at_end()) {
    const Field f = r.read_tag();
    switch (f.number) {
      case 1: r.read_repeated(f, "node", m.node); break;
      case 2: m.name = r.read_string(f, "name"); break;
      case 5: r.read_repeated(f, "initializer", m.initializer); break;
      case 11: r.read_repeated(f, "input", m.input); break;
      case 12: r.read_repeated(f, "output", m.output); break;
      case 13: r.read_repeated(f, "value_info", m.value_info); break;
      case 15: r.reject(f, "sparse_initializer");
      default: r.skip(f);
    }
  }
}

void read(Reader& r, OperatorSetIdProto& m) {
  while (!r.at_end()) {
    const Field f = r.read_tag();
    switch (f.number) {
      case 1: m.domain = r.read_string(f, "domain"); break;
      case 2: m.version = r.read_int64(f, "version"); break;
      default: r.skip(f);
    }
  }
}

void read(Reader& r, StringStringEntryProto& m) {
  while (!r.at_end()) {
    const Field f = r.read_tag();
    switch (f.number) {
      case 1: m.key = r.read_string(f, "key"); break;
      case 2: m.value = r.read_string(f, "value"); break;
      default: r.skip(f);
    }
  }
}

void read(Reader& r, ModelProto& m) {
  while (!r.at_end()) {
    const Field f = r.read_tag();
    switch (f.number) {
      case 1: m.ir_version = r.read_int64(f, "ir_version"); break;
      case 2: m.producer_name = r.read_string(f, "producer_name"); break;
      case 3: m.producer_version = r.read_string(f, "producer_version"); break;
      case 7: r.read_message(f, "graph", m.graph); break;
      case 8: r.read_repeated(f, "opset_import", m.opset_import); break;
      case 14: r.read_repeated(f, "metadata_props", m.metadata_props); break;
      case 25: r.reject(f, "functions");
      default: r.skip(f);
    }
  }
}

// clang-format on

std::string_view message_name(const ModelProto&) { return "ModelProto"; }
std::string_view message_name(const GraphProto&) { return "GraphProto"; }
std::string_view message_name(const NodeProto&) { return "NodeProto"; }
std::string_view message_name(const AttributeProto&) { return "AttributeProto"; }
std::string_view message_name(const TensorProto&) { return "TensorProto"; }
std::string_view message_name(const ValueInfoProto&) { return "ValueInfoProto"; }
std::string_view message_name(const OperatorSetIdProto&) { return "OperatorSetIdProto"; }
std::string_view message_name(const StringStringEntryProto&) { return "StringStringEntryProto"; }

}  // namespace

std::string serialize(const ModelProto& message) { return serialize_message(message); }
std::string serialize(const GraphProto& message) { return serialize_message(message); }
std::string serialize(const NodeProto& message) { return serialize_message(message); }
std::string serialize(const AttributeProto& message) { return serialize_message(message); }
std::string serialize(const TensorProto& message) { return serialize_message(message); }
std::string serialize(const ValueInfoProto& message) { return serialize_message(message); }
std::string serialize(const OperatorSetIdProto& message) { return serialize_message(message); }
std::string serialize(const StringStringEntryProto& message) { return serialize_message(message); }

template <typename Message>
Message parse(std::string_view bytes, std::string_view source) {
  Message message;
  Reader reader(bytes, 0, source, std::string(message_name(message)));
  read(reader, message);
  return message;
}

template ModelProto parse<ModelProto>(std::string_view, std::string_view);
template GraphProto parse<GraphProto>(std::string_view, std::string_view);
template NodeProto parse<NodeProto>(std::string_view, std::string_view);
template AttributeProto parse<AttributeProto>(std::string_view, std::string_view);
template TensorProto parse<TensorProto>(std::string_view, std::string_view);
template ValueInfoProto parse<ValueInfoProto>(std::string_view, std::string_view);
template OperatorSetIdProto parse<OperatorSetIdProto>(std::string_view, std::string_view);
template StringStringEntryProto parse<StringStringEntryProto>(std::string_view, std::string_view);

}  // namespace hone::onnx
