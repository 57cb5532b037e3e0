#pragma once
/// @file fmt formatters for the torch types that error messages name: shapes (c10::IntArrayRef),
/// dtypes (c10::ScalarType) and devices. fmt itself is the copy bundled with the torch wheel, used
/// header-only (FMT_HEADER_ONLY), so hone and LibTorch never disagree on its version.
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <c10/util/ArrayRef.h>
#include <fmt/format.h>

#include <cstdint>
#include <string>

template <>
struct fmt::formatter<c10::ArrayRef<std::int64_t>> : fmt::formatter<std::string> {
  auto format(c10::ArrayRef<std::int64_t> shape, fmt::format_context& ctx) const {
    std::string out = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) {
      if (i > 0) out += ',';
      out += std::to_string(shape[i]);
    }
    return fmt::formatter<std::string>::format(out + "]", ctx);
  }
};

template <>
struct fmt::formatter<c10::ScalarType> : fmt::formatter<std::string> {
  auto format(c10::ScalarType dtype, fmt::format_context& ctx) const {
    return fmt::formatter<std::string>::format(std::string(c10::toString(dtype)), ctx);
  }
};

template <>
struct fmt::formatter<c10::Device> : fmt::formatter<std::string> {
  auto format(const c10::Device& device, fmt::format_context& ctx) const {
    return fmt::formatter<std::string>::format(device.str(), ctx);
  }
};
