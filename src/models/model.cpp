#include "hone/models/model.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "config_fields.h"
#include "hone/core/error.h"

namespace hone::models {

torch::Tensor Model::run_chain(const nn::ChainImpl& chain, torch::Tensor x, std::size_t first_block) const {
  const auto& layers = chain.layers();
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const nn::LayerSlot& slot = *layers[i].second;
    x = i < first_block ? slot(x) : run_block([&slot](const torch::Tensor& t) { return slot(t); }, x);
  }
  return x;
}

std::int64_t count_parameters(const torch::nn::Module& module) {
  std::int64_t total = 0;
  for (const auto& parameter : module.parameters(/*recurse=*/true)) total += parameter.numel();
  return total;
}

std::int64_t count_buffer_elements(const torch::nn::Module& module) {
  std::int64_t total = 0;
  for (const auto& buffer : module.buffers(/*recurse=*/true)) total += buffer.numel();
  return total;
}

void check_config_keys(const nlohmann::json& config, const std::string& what,
                       std::initializer_list<const char*> allowed) {
  if (!config.is_object()) fail("{} must be a JSON object, got {}: {}", what, config.type_name(), config.dump());
  for (const auto& item : config.items()) {
    const bool known = std::any_of(allowed.begin(), allowed.end(), [&](const char* key) { return item.key() == key; });
    if (!known) fail("{}: unknown key '{}'; allowed keys: {}", what, item.key(), fmt::join(allowed, ", "));
  }
}

namespace detail {
namespace {

[[noreturn]] void fail_type(const nlohmann::json& value, const std::string& what, const char* key,
                            const char* expected) {
  fail("{}: '{}' must be {}, got {} {}", what, key, expected, value.type_name(), value.dump());
}

}  // namespace

void read_field(const nlohmann::json& j, const std::string& what, const char* key, std::int64_t& value) {
  const auto it = j.find(key);
  if (it == j.end()) return;
  if (!it->is_number_integer()) fail_type(*it, what, key, "an integer");
  value = it->get<std::int64_t>();
}

void read_field(const nlohmann::json& j, const std::string& what, const char* key, double& value) {
  const auto it = j.find(key);
  if (it == j.end()) return;
  if (!it->is_number()) fail_type(*it, what, key, "a number");
  value = it->get<double>();
}

void read_field(const nlohmann::json& j, const std::string& what, const char* key, bool& value) {
  const auto it = j.find(key);
  if (it == j.end()) return;
  if (!it->is_boolean()) fail_type(*it, what, key, "true or false");
  value = it->get<bool>();
}

void read_field(const nlohmann::json& j, const std::string& what, const char* key, std::string& value) {
  const auto it = j.find(key);
  if (it == j.end()) return;
  if (!it->is_string()) fail_type(*it, what, key, "a string");
  value = it->get<std::string>();
}

void read_field(const nlohmann::json& j, const std::string& what, const char* key, std::vector<std::int64_t>& value) {
  const auto it = j.find(key);
  if (it == j.end()) return;
  const bool integers = it->is_array() && std::all_of(it->begin(), it->end(), [](const nlohmann::json& entry) {
                          return entry.is_number_integer();
                        });
  if (!integers) fail_type(*it, what, key, "an array of integers");
  value = it->get<std::vector<std::int64_t>>();
}

void check_positive(const std::string& what, const char* key, std::int64_t value) {
  HONE_CHECK(value > 0, "{}: '{}' must be positive, got {}", what, key, value);
}

void check_positive_list(const std::string& what, const char* key, const std::vector<std::int64_t>& values,
                         bool allow_empty) {
  HONE_CHECK(allow_empty || !values.empty(), "{}: '{}' must not be empty", what, key);
  for (const auto value : values) {
    HONE_CHECK(value > 0, "{}: every entry of '{}' must be positive, got [{}]", what, key, fmt::join(values, ", "));
  }
}

void check_dropout(const std::string& what, const char* key, double value) {
  HONE_CHECK(value >= 0.0 && value < 1.0, "{}: '{}' must be in [0, 1), got {}", what, key, value);
}

void check_heads_divide(const std::string& what, const char* heads_key, std::int64_t heads, const char* size_key,
                        std::int64_t size) {
  check_positive(what, heads_key, heads);
  HONE_CHECK(size % heads == 0, "{}: '{}' ({}) must divide '{}' ({})", what, heads_key, heads, size_key, size);
}

}  // namespace detail
}  // namespace hone::models
