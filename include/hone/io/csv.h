#pragma once
/// @file Strict CSV: RFC 4180 quoting, every row must have the header's number of fields, numeric
/// conversion reports "<file>:<line>: column '<name>': '<text>' is not a number".
#include <ATen/core/Tensor.h>

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace hone::io {

struct CsvOptions {
  char delimiter = ',';
  bool header = true;          ///< first (non-skipped) line names the columns
  std::size_t skip_lines = 0;  ///< lines to ignore before the header/data (e.g. sklearn's count line)
};

struct CsvTable {
  std::string source;                          ///< file name, for errors
  std::vector<std::string> header;             ///< column names; "c0", "c1"... when there is no header
  std::vector<std::vector<std::string>> rows;  ///< every row has header.size() fields
  std::vector<std::size_t> line_numbers;       ///< 1-based line where each row starts

  /// Index of a named column; throws naming the file and the columns that exist.
  std::size_t column_index(const std::string& name) const;
  /// float64 tensor [rows, columns.size()] of the given columns; throws on any non-numeric field.
  at::Tensor to_tensor(const std::vector<std::size_t>& columns) const;
  /// All columns.
  at::Tensor to_tensor() const;
};

/// Parses CSV text. Blank lines at the end are ignored; a blank line inside the data is an error.
/// Lines end in \n or \r\n (a lone \r is an error); a leading UTF-8 BOM is dropped; a quote may only
/// open a field, and "" inside a quoted field is one quote.
CsvTable parse_csv(std::string_view text, const std::string& source, const CsvOptions& options = {});

/// Reads a CSV file, plain or gzip'd.
CsvTable read_csv(const std::filesystem::path& path, const CsvOptions& options = {});

/// Parses one number strictly (whole field, finite or nan/inf spelled out); false if it is not one.
/// Spaces and tabs around the number are tolerated ("1, 2"); empty or blank fields, partial parses
/// ("12abc"), hex and values beyond double's range are not. `value` is untouched on failure.
bool parse_number(std::string_view text, double& value);

}  // namespace hone::io
