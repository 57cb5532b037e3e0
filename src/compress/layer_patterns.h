#pragma once
/// @file The `layers` option of passes that take slot patterns (sketch, lowrank_svd): which slot
/// paths a pattern selects.
#include <string>
#include <string_view>
#include <vector>

namespace hone::compress {

/// '*' matches any run of characters, dots included.
inline bool glob_match(std::string_view pattern, std::string_view text) {
  std::size_t p = 0, t = 0, star = std::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

/// The pattern matches the whole path or a prefix of it ending before a '.', so "layers.0"
/// selects "layers.0.fc1" as `skip` does.
inline bool selects(const std::string& pattern, const std::string& path) {
  if (glob_match(pattern, path)) return true;
  for (auto dot = path.find('.'); dot != std::string::npos; dot = path.find('.', dot + 1)) {
    if (glob_match(pattern, std::string_view(path).substr(0, dot))) return true;
  }
  return false;
}

/// Tracks which of a `layers` option's patterns selected something, so the report can name the
/// ones that matched nothing. An empty pattern list selects every path.
class LayerPatterns {
 public:
  explicit LayerPatterns(std::vector<std::string> patterns)
      : patterns_(std::move(patterns)), used_(patterns_.size(), false) {}
  bool select(const std::string& path) {
    bool chosen = patterns_.empty();
    for (std::size_t p = 0; p < patterns_.size(); ++p) {
      if (selects(patterns_[p], path)) chosen = used_[p] = true;
    }
    return chosen;
  }
  std::vector<std::string> unused() const {
    std::vector<std::string> out;
    for (std::size_t p = 0; p < patterns_.size(); ++p) {
      if (!used_[p]) out.push_back(patterns_[p]);
    }
    return out;
  }

 private:
  std::vector<std::string> patterns_;
  std::vector<bool> used_;
};

}  // namespace hone::compress
