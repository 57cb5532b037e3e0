#pragma once
// Private to src/models: strict reading and checking of config fields, shared by every zoo config.
// Each reader leaves the default in place when the key is absent and throws hone::Error naming the
// config and the field when the value has the wrong JSON type.
#include <c10/util/ArrayRef.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace hone::models::detail {

void read_field(const nlohmann::json& j, const std::string& what, const char* key, std::int64_t& value);
void read_field(const nlohmann::json& j, const std::string& what, const char* key, double& value);
void read_field(const nlohmann::json& j, const std::string& what, const char* key, bool& value);
void read_field(const nlohmann::json& j, const std::string& what, const char* key, std::string& value);
void read_field(const nlohmann::json& j, const std::string& what, const char* key, std::vector<std::int64_t>& value);

/// value > 0.
void check_positive(const std::string& what, const char* key, std::int64_t value);
/// Non-empty (unless allow_empty) and every entry > 0.
void check_positive_list(const std::string& what, const char* key, const std::vector<std::int64_t>& values,
                         bool allow_empty = false);
/// 0 <= value < 1.
void check_dropout(const std::string& what, const char* key, double value);
/// `heads` > 0 and it splits `size` features evenly.
void check_heads_divide(const std::string& what, const char* heads_key, std::int64_t heads, const char* size_key,
                        std::int64_t size);

}  // namespace hone::models::detail
