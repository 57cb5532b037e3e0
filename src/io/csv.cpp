#include "hone/io/csv.h"

#include <ATen/ATen.h>
#include <fmt/ranges.h>

#include <charconv>
#include <system_error>

#include "hone/core/error.h"
#include "hone/io/gzip.h"

namespace hone::io {
namespace {

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

bool is_blank(char c) { return c == ' ' || c == '\t'; }

// A cursor over the text that knows its 1-based line number.
class CsvReader {
 public:
  CsvReader(std::string_view text, const std::string& source, char delimiter)
      : text_(text), source_(source), delimiter_(delimiter) {}

  bool at_end() const { return pos_ == text_.size(); }
  std::size_t line() const { return line_; }

  void skip_lines(std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
      if (at_end()) fail("{}: cannot skip {} lines: the file has only {}", source_, count, i);
      std::size_t newline = text_.find('\n', pos_);
      pos_ = newline == std::string_view::npos ? text_.size() : newline + 1;
      ++line_;
    }
  }

  // True when the cursor sits on an empty line ("\n" or "\r\n").
  bool at_blank_line() const {
    return text_[pos_] == '\n' || (text_[pos_] == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n');
  }

  // True when only line breaks remain (blank lines at the end are ignored).
  bool only_line_breaks_remain() const { return text_.find_first_not_of("\r\n", pos_) == std::string_view::npos; }

  std::vector<std::string> read_record() {
    std::vector<std::string> fields;
    while (true) {
      fields.push_back(peek() == '"' ? read_quoted_field() : read_plain_field());
      if (at_end()) return fields;
      char c = text_[pos_];
      if (c == delimiter_) {
        ++pos_;  // at the end of the text, the next pass reads one more, empty, field
        continue;
      }
      consume_line_break();
      return fields;
    }
  }

 private:
  char peek() const { return at_end() ? '\0' : text_[pos_]; }

  // Consumes "\n" or "\r\n"; anything else here is a defect in the file.
  void consume_line_break() {
    if (text_[pos_] == '\n') {
      ++pos_;
    } else if (text_[pos_] == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') {
      pos_ += 2;
    } else if (text_[pos_] == '\r') {
      fail("{}:{}: stray carriage return (line breaks must be \\n or \\r\\n)", source_, line_);
    } else {
      fail("{}:{}: unexpected character '{}' after the closing quote of a field", source_, line_, text_[pos_]);
    }
    ++line_;
  }

  std::string read_plain_field() {
    std::size_t begin = pos_;
    while (!at_end()) {
      char c = text_[pos_];
      if (c == delimiter_ || c == '\n' || c == '\r') break;
      if (c == '"') {
        fail("{}:{}: quote inside an unquoted field (quote the whole field and double the inner quotes)", source_,
             line_);
      }
      ++pos_;
    }
    return std::string(text_.substr(begin, pos_ - begin));
  }

  std::string read_quoted_field() {
    std::size_t opened_at = line_;
    ++pos_;  // the opening quote
    std::string field;
    while (true) {
      if (at_end()) fail("{}:{}: unterminated quoted field (opened at line {})", source_, line_, opened_at);
      char c = text_[pos_++];
      if (c == '"') {
        if (peek() != '"') break;  // the closing quote
        ++pos_;                    // "" is an escaped quote
      } else if (c == '\n') {
        ++line_;
      }
      field.push_back(c);
    }
    if (!at_end() && text_[pos_] != delimiter_ && text_[pos_] != '\n' && text_[pos_] != '\r') {
      fail("{}:{}: unexpected character '{}' after the closing quote of a field", source_, line_, text_[pos_]);
    }
    return field;
  }

  std::string_view text_;
  const std::string& source_;
  char delimiter_;
  std::size_t pos_ = 0;
  std::size_t line_ = 1;
};

}  // namespace

std::size_t CsvTable::column_index(const std::string& name) const {
  std::size_t found = header.size();
  std::size_t matches = 0;
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (header[i] == name) {
      if (matches++ == 0) found = i;
    }
  }
  if (matches == 0) fail("{}: no column '{}' (columns: {})", source, name, fmt::join(header, ", "));
  if (matches > 1) fail("{}: column name '{}' is ambiguous: it appears {} times", source, name, matches);
  return found;
}

at::Tensor CsvTable::to_tensor(const std::vector<std::size_t>& columns) const {
  for (std::size_t column : columns) {
    if (column >= header.size()) {
      fail("{}: column index {} is out of range (the table has {} columns)", source, column, header.size());
    }
  }
  auto n_rows = static_cast<std::int64_t>(rows.size());
  auto n_columns = static_cast<std::int64_t>(columns.size());
  at::Tensor tensor = at::empty({n_rows, n_columns}, at::TensorOptions().dtype(at::kDouble));
  double* out = tensor.data_ptr<double>();
  for (std::size_t r = 0; r < rows.size(); ++r) {
    for (std::size_t c = 0; c < columns.size(); ++c) {
      const std::string& text = rows[r][columns[c]];
      if (!parse_number(text, out[r * columns.size() + c])) {
        std::size_t line = r < line_numbers.size() ? line_numbers[r] : 0;
        fail("{}:{}: column '{}': '{}' is not a number", source, line, header[columns[c]], text);
      }
    }
  }
  return tensor;
}

at::Tensor CsvTable::to_tensor() const {
  std::vector<std::size_t> all(header.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  return to_tensor(all);
}

CsvTable parse_csv(std::string_view text, const std::string& source, const CsvOptions& options) {
  char delimiter = options.delimiter;
  if (delimiter == '"' || delimiter == '\n' || delimiter == '\r' || delimiter == '\0') {
    fail("{}: invalid CSV delimiter (it cannot be a quote, a line break or NUL)", source);
  }
  if (text.substr(0, kUtf8Bom.size()) == kUtf8Bom) text.remove_prefix(kUtf8Bom.size());

  CsvTable table;
  table.source = source;
  CsvReader reader(text, source, delimiter);
  reader.skip_lines(options.skip_lines);

  bool have_header = false;
  while (!reader.at_end()) {
    if (reader.at_blank_line()) {
      if (reader.only_line_breaks_remain()) break;
      fail("{}:{}: blank line inside the data", source, reader.line());
    }
    std::size_t line = reader.line();
    std::vector<std::string> fields = reader.read_record();
    if (options.header && !have_header) {
      table.header = std::move(fields);
      have_header = true;
      continue;
    }
    if (!options.header && table.header.empty()) {
      for (std::size_t i = 0; i < fields.size(); ++i) table.header.push_back(fmt::format("c{}", i));
    }
    if (fields.size() != table.header.size()) {
      fail("{}:{}: expected {} fields, got {}", source, line, table.header.size(), fields.size());
    }
    table.rows.push_back(std::move(fields));
    table.line_numbers.push_back(line);
  }
  if (options.header && !have_header) fail("{}: empty CSV: no header line", source);
  return table;
}

CsvTable read_csv(const std::filesystem::path& path, const CsvOptions& options) {
  return parse_csv(read_maybe_gzipped(path), path.string(), options);
}

// Policy: spaces and tabs around the number are tolerated ("1, 2, 3" is common in hand-written
// files); the rest must be one whole number. Empty and blank fields, partial parses ("12abc"),
// hex, and values out of double's range are rejected. A leading '+' is accepted.
bool parse_number(std::string_view text, double& value) {
  while (!text.empty() && is_blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_blank(text.back())) text.remove_suffix(1);
  if (text.empty()) return false;
  if (text.front() == '+') {
    text.remove_prefix(1);
    if (text.empty() || text.front() == '-' || text.front() == '+') return false;
  }
  double parsed = 0.0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), parsed, std::chars_format::general);
  if (ec != std::errc{} || end != text.data() + text.size()) return false;
  value = parsed;
  return true;
}

}  // namespace hone::io
