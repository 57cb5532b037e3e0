#include "hone/data/paths.h"

#include <cstdlib>

#include "hone/core/error.h"

namespace hone::data {
namespace fs = std::filesystem;
namespace {

fs::path env_or(const char* name, const fs::path& fallback) {
  const char* value = std::getenv(name);
  return (value != nullptr && *value != '\0') ? fs::path(value) : fallback;
}

}  // namespace

fs::path fashion_mnist_dir() { return env_or("HONE_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"); }

fs::path sklearn_data_dir() {
  return env_or("HONE_SKLEARN_DATA_DIR", "/usr/lib/python3/dist-packages/sklearn/datasets/data");
}

fs::path exported_data_dir() {
  const char* home = std::getenv("HOME");
  const char* cache = std::getenv("XDG_CACHE_HOME");
  fs::path base =
      (cache != nullptr && *cache != '\0') ? fs::path(cache) : fs::path(home != nullptr ? home : "/tmp") / ".cache";
  return env_or("HONE_DATA_DIR", base / "hone" / "data");
}

fs::path minilm_dir() { return env_or("HONE_MINILM_DIR", exported_data_dir() / "all-MiniLM-L6-v2"); }

fs::path require_file(const fs::path& path, const char* what, const char* how) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) fail("{} not found at {}: {}", what, path.string(), how);
  return path;
}

}  // namespace hone::data
