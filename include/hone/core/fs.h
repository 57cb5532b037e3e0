#pragma once
/// @file File helpers: atomic writes (temp file + rename, so nothing is ever half-written),
/// whole-file reads and read-only memory maps.
#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace hone {

/// Reads a whole file; throws hone::Error naming the path when it cannot.
std::string read_file(const std::filesystem::path& path);

/// Writes `bytes` to `path` atomically: a temp file in the same directory, fsync, then rename.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

/// Calls `writer(temp_path)` to produce the file, then renames it onto `path`. If `writer`
/// throws, the temp file is removed and `path` is left as it was.
void write_file_atomic(const std::filesystem::path& path,
                       const std::function<void(const std::filesystem::path&)>& writer);

/// Produces a whole directory at `path` so that a reader (or a process killed at any instant) sees
/// either the previous directory or the new one, never a mix or neither: `writer(temp_dir)` fills a
/// hidden sibling, which then swaps with `path` in one renameat2(RENAME_EXCHANGE), and the old
/// contents are removed. On a file system without the exchange (EINVAL) the old directory is moved
/// aside first — a window of two renames in which `path` is missing — and removed after. If `writer`
/// throws, the sibling is removed and `path` is left as it was. Used for compressed runs and
/// checkpoints (docs/reliability.md):
///
///   write_directory_atomic("runs/cnn/checkpoint", [&](const fs::path& dir) {
///     save_weights(dir / "weights.safetensors", model);
///     write_file_atomic(dir / "state.json", state);
///   });
void write_directory_atomic(const std::filesystem::path& path,
                            const std::function<void(const std::filesystem::path&)>& writer);

/// Removes `path` and everything under it, without following symbolic links; a missing path is
/// not an error. Returns false when something could not be removed; never throws. hone uses it
/// instead of std::filesystem::remove_all, which the torch wheel's libtorch also exports (a copy
/// that crashes when it wins symbol binding, as it did on the GPU machine; pytorch/pytorch#133437).
bool remove_tree(const std::filesystem::path& path) noexcept;

/// A private (copy-on-write) memory map of a whole file (RAII): writes through it never reach the
/// file. Empty files map to size() == 0.
class MappedFile {
 public:
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;

  const std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  void release();
  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace hone
