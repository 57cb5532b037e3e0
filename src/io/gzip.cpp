#include "hone/io/gzip.h"

#include <zlib.h>

#include <algorithm>
#include <cstdint>

#include "hone/core/error.h"
#include "hone/core/fs.h"

namespace hone::io {
namespace {

// zlib counts in uInt (32 bits); larger buffers are fed in slices of this size.
constexpr std::size_t kZlibSlice = std::size_t{1} << 30;
// deflate cannot expand better than ~1032:1, so a trailer claiming more is lying.
constexpr std::size_t kMaxDeflateRatio = 1032;

std::size_t size_hint(std::string_view compressed, std::size_t max_bytes) {
  // The trailer's ISIZE is the last member's size mod 2^32: only a hint for the first allocation.
  if (compressed.size() < 18) return 0;
  const auto* tail = reinterpret_cast<const unsigned char*>(compressed.data() + compressed.size() - 4);
  std::size_t isize =
      std::size_t{tail[0]} | std::size_t{tail[1]} << 8 | std::size_t{tail[2]} << 16 | std::size_t{tail[3]} << 24;
  std::size_t plausible =
      compressed.size() > SIZE_MAX / kMaxDeflateRatio ? SIZE_MAX : compressed.size() * kMaxDeflateRatio;
  return std::min({isize, max_bytes, plausible});
}

class Inflater {
 public:
  explicit Inflater(const std::string& source) : source_(source) {
    if (inflateInit2(&stream_, 16 + MAX_WBITS) != Z_OK) fail("{}: cannot initialise zlib", source_);
  }
  ~Inflater() { inflateEnd(&stream_); }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  z_stream& stream() { return stream_; }
  void reset() {
    if (inflateReset(&stream_) != Z_OK) fail("{}: cannot reset zlib", source_);
  }

 private:
  const std::string& source_;
  z_stream stream_{};
};

}  // namespace

bool is_gzip(std::string_view bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

// Concatenated members (what `cat a.gz b.gz` produces) are accepted and their contents joined, as
// RFC 1952 and gzip(1) do. Anything after a member that is not another member is an error.
std::string gunzip(std::string_view compressed, const std::string& source, std::size_t max_bytes) {
  if (!is_gzip(compressed)) fail("{}: not a gzip stream (missing the 1f 8b magic)", source);
  Inflater inflater(source);
  z_stream& stream = inflater.stream();

  std::string out;
  out.resize(std::max<std::size_t>(size_hint(compressed, max_bytes), 1 << 16));
  std::size_t produced = 0;
  std::size_t consumed = 0;
  std::size_t member = 0;
  bool member_done = false;

  while (true) {
    if (member_done) {
      if (consumed == compressed.size()) break;
      if (!is_gzip(compressed.substr(consumed))) {
        fail("{}: {} bytes of trailing garbage after gzip member {} (at byte {})", source, compressed.size() - consumed,
             member, consumed);
      }
      inflater.reset();
      member_done = false;
    }
    if (produced == out.size()) {
      if (produced > max_bytes) break;
      // Grow geometrically, but never past the cap (+1 to detect an overflowing stream).
      std::size_t cap = max_bytes == SIZE_MAX ? SIZE_MAX : max_bytes + 1;
      std::size_t grown = out.size() > cap / 2 ? cap : out.size() * 2;
      out.resize(std::max(grown, produced + 1));
    }
    std::size_t in_slice = std::min(compressed.size() - consumed, kZlibSlice);
    std::size_t out_slice = std::min(out.size() - produced, kZlibSlice);
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data() + consumed));
    stream.avail_in = static_cast<uInt>(in_slice);
    stream.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    stream.avail_out = static_cast<uInt>(out_slice);

    int rc = inflate(&stream, Z_NO_FLUSH);
    consumed += in_slice - stream.avail_in;
    produced += out_slice - stream.avail_out;
    if (produced > max_bytes) break;

    switch (rc) {
      case Z_OK:
        break;
      case Z_STREAM_END:
        ++member;
        member_done = true;
        break;
      case Z_BUF_ERROR:
        // No progress although both input and output space were offered: the input ended early.
        fail("{}: truncated gzip stream (ended after {} compressed bytes, {} decompressed)", source, consumed,
             produced);
      case Z_NEED_DICT:
        fail("{}: corrupt gzip stream (asks for a preset dictionary)", source);
      case Z_MEM_ERROR:
        fail("{}: out of memory while decompressing", source);
      default:  // Z_DATA_ERROR, Z_STREAM_ERROR
        fail("{}: corrupt gzip stream ({}) at compressed byte {}", source,
             stream.msg != nullptr ? stream.msg : "unknown zlib error", consumed);
    }
    if (!member_done && rc == Z_OK && consumed == compressed.size() && stream.avail_out != 0) {
      fail("{}: truncated gzip stream (ended after {} compressed bytes, {} decompressed)", source, consumed, produced);
    }
  }
  if (produced > max_bytes) {
    fail("{}: decompressed data exceeds the limit of {} bytes", source, max_bytes);
  }
  out.resize(produced);
  return out;
}

std::string gzip(std::string_view bytes) {
  struct Deflater {
    z_stream stream{};
    ~Deflater() { deflateEnd(&stream); }
  } deflater;
  z_stream& stream = deflater.stream;
  if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    fail("gzip: cannot initialise zlib");
  }
  std::string out(deflateBound(&stream, static_cast<uLong>(bytes.size())), '\0');
  std::size_t consumed = 0;
  std::size_t produced = 0;
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    std::size_t in_slice = std::min(bytes.size() - consumed, kZlibSlice);
    bool last = consumed + in_slice == bytes.size();
    if (produced == out.size()) out.resize(out.size() * 2);
    std::size_t out_slice = std::min(out.size() - produced, kZlibSlice);
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data() + consumed));
    stream.avail_in = static_cast<uInt>(in_slice);
    stream.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    stream.avail_out = static_cast<uInt>(out_slice);
    rc = deflate(&stream, last ? Z_FINISH : Z_NO_FLUSH);
    consumed += in_slice - stream.avail_in;
    produced += out_slice - stream.avail_out;
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) fail("gzip: zlib deflate failed with code {}", rc);
  }
  out.resize(produced);
  return out;
}

std::string read_maybe_gzipped(const std::filesystem::path& path) {
  std::string bytes = read_file(path);
  if (!is_gzip(bytes)) return bytes;
  return gunzip(bytes, path.string());
}

}  // namespace hone::io
