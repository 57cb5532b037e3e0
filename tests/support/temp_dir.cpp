#include "support/temp_dir.h"

#include "hone/core/fs.h"

#include <unistd.h>

#include <atomic>
#include <random>
#include <stdexcept>

namespace hone::testing {

TempDir::TempDir(const std::string& prefix) {
  static std::atomic<unsigned> counter{0};
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() /
          (prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" + std::to_string(rd()));
  if (!std::filesystem::create_directories(path_)) throw std::runtime_error("cannot create " + path_.string());
}

TempDir::~TempDir() { remove_tree(path_); }

}  // namespace hone::testing
