#include "hone/core/fs.h"

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>  // renameat2, RENAME_EXCHANGE (glibc >= 2.28)
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>

#include "hone/core/error.h"

namespace hone {
namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open '{}': {}", path.string(), std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) fail("error while reading '{}'", path.string());
  return bytes;
}

namespace {

// ".NAME.tmp.PID.COUNTER.RANDOM": hidden, so no reader lists it as a model, and named by its
// writer's process, so the next write can tell a dead writer's leftover from a live one's.
fs::path temp_path_for(const fs::path& path) {
  static std::atomic<unsigned> counter{0};
  std::random_device rd;
  return path.parent_path() /
         fmt::format(".{}.tmp.{}.{}.{}", path.filename().string(), ::getpid(), counter++, rd() % 100000);
}

// Removes the temporaries of `path` left by writers that were killed (their process is gone), so
// interrupted saves do not pile up beside a model. A live process's temporaries are left alone.
void remove_dead_writers_temporaries(const fs::path& path) {
  const std::string prefix = "." + path.filename().string() + ".tmp.";
  std::error_code ec;
  for (fs::directory_iterator it(path.parent_path().empty() ? fs::path(".") : path.parent_path(), ec), end;
       !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.starts_with(prefix)) continue;
    char* rest = nullptr;
    const long pid = std::strtol(name.c_str() + prefix.size(), &rest, 10);
    if (pid <= 0 || rest == nullptr || *rest != '.' || pid == ::getpid()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) remove_tree(it->path());
  }
}

// Directories: best effort (some file systems refuse to fsync one).
void fsync_path(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// A written file: its data must reach the disk before it is renamed into place; a file system that
// reports a late write error (delayed allocation on a full disk) fails the write here.
void fsync_file(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail("cannot open '{}' to flush it: {}", path.string(), std::strerror(errno));
  const int synced = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (synced != 0) fail("cannot flush '{}' to disk: {}", path.string(), std::strerror(error));
}

}  // namespace

void write_file_atomic(const fs::path& path, const std::function<void(const fs::path&)>& writer) {
  fs::path parent = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) fail("cannot create directory '{}': {}", parent.string(), ec.message());
  fs::path temp = temp_path_for(path.parent_path().empty() ? fs::path(".") / path : path);
  remove_dead_writers_temporaries(path);
  try {
    writer(temp);
    fsync_file(temp);
    fs::rename(temp, path, ec);
    if (ec) fail("cannot rename '{}' to '{}': {}", temp.string(), path.string(), ec.message());
  } catch (...) {
    fs::remove(temp, ec);
    throw;
  }
  fsync_path(parent);
}

void write_directory_atomic(const fs::path& path, const std::function<void(const fs::path&)>& writer) {
  const fs::path target = path.parent_path().empty() ? fs::path(".") / path : path;
  const fs::path parent = target.parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) fail("cannot create directory '{}': {}", parent.string(), ec.message());
  if (fs::exists(target, ec) && !fs::is_directory(target, ec))
    fail("cannot write directory '{}': a file of that name is in the way", target.string());
  const fs::path temp = temp_path_for(target);
  remove_dead_writers_temporaries(target);
  try {
    fs::create_directory(temp, ec);
    if (ec) fail("cannot create directory '{}': {}", temp.string(), ec.message());
    writer(temp);
    fsync_path(temp);
    if (!fs::exists(target, ec)) {
      fs::rename(temp, target, ec);
      if (ec) fail("cannot rename '{}' to '{}': {}", temp.string(), target.string(), ec.message());
    } else if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) {
      remove_tree(temp);  // now the previous contents
    } else if (errno == EINVAL || errno == ENOSYS) {
      const fs::path old = parent / fmt::format(".{}.old", temp.filename().string());
      fs::rename(target, old, ec);
      if (ec) fail("cannot move '{}' aside: {}", target.string(), ec.message());
      fs::rename(temp, target, ec);
      if (ec) {
        std::error_code restore;
        fs::rename(old, target, restore);
        fail("cannot rename '{}' to '{}': {}", temp.string(), target.string(), ec.message());
      }
      remove_tree(old);
    } else {
      fail("cannot replace '{}' with '{}': {}", target.string(), temp.string(), std::strerror(errno));
    }
  } catch (...) {
    remove_tree(temp);
    throw;
  }
  fsync_path(parent);
}

void write_file_atomic(const fs::path& path, std::string_view bytes) {
  write_file_atomic(path, [&](const fs::path& temp) {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) fail("cannot write '{}': {}", temp.string(), std::strerror(errno));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) fail("error while writing '{}': {} (disk full?)", temp.string(), std::strerror(errno));
  });
}

MappedFile::MappedFile(const fs::path& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail("cannot open '{}': {}", path.string(), std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail("cannot stat '{}': {}", path.string(), std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("'{}' is not a regular file", path.string());
  }
  size_ = static_cast<std::size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      fail("cannot map '{}': {}", path.string(), std::strerror(err));
    }
    data_ = static_cast<const std::byte*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() { release(); }

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)), data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

void MappedFile::release() {
  if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
}

bool remove_tree(const std::filesystem::path& path) noexcept {
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0) return errno == ENOENT;
  // Depth first, not crossing into symbolic links: each entry after its children.
  static thread_local bool all_removed;
  all_removed = true;
  const auto remove_entry = [](const char* name, const struct stat*, int, struct FTW*) {
    if (::remove(name) != 0) all_removed = false;
    return 0;  // keep going: remove what can be removed
  };
  if (::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) return false;
  return all_removed;
}

}  // namespace hone
