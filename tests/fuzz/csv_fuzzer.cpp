// CSV: the first byte picks the options (delimiter, header, skipped lines) so the fuzzer explores
// them too; the rest is the text. Accepted tables are converted to numbers, as the loaders do.
#include <ATen/ATen.h>

#include "fuzz_target.h"
#include "hone/io/csv.h"

HONE_FUZZ_TARGET(csv) {
  if (size == 0) return 0;
  hone::io::CsvOptions options;
  const std::uint8_t mode = data[0];
  options.delimiter = (mode & 1) ? '\t' : (mode & 2) ? ';' : ',';
  options.header = (mode & 4) == 0;
  options.skip_lines = (mode >> 3) & 3;
  const std::string_view text = hone::fuzz::as_view(data + 1, size - 1);
  hone::fuzz::expect_rejection_only([&] {
    const hone::io::CsvTable table = hone::io::parse_csv(text, "fuzz.csv", options);
    for (const auto& row : table.rows)
      if (row.size() != table.header.size()) std::abort();  // the header's promise
    if (table.header.empty() || table.rows.empty()) return;
    table.column_index(table.header.front());
    // The columns that look numeric in the first row, converted as the loaders convert prices.
    std::vector<std::size_t> numeric;
    double value = 0;
    for (std::size_t c = 0; c < table.header.size(); ++c)
      if (hone::io::parse_number(table.rows.front()[c], value)) numeric.push_back(c);
    if (numeric.empty()) return;
    const at::Tensor values = table.to_tensor(numeric);
    if (values.size(0) != static_cast<std::int64_t>(table.rows.size())) std::abort();
  });
  double value = 0;
  hone::io::parse_number(text.substr(0, 64), value);
  return 0;
}
