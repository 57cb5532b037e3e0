// IDX (Fashion-MNIST): arbitrary bytes, plain or gzip'd, through the reader; an accepted file must
// re-encode to the same bytes (the format has one encoding).
#include <ATen/ATen.h>

#include "fuzz_target.h"
#include "hone/io/gzip.h"
#include "hone/io/idx.h"

HONE_FUZZ_TARGET(idx) {
  hone::fuzz::expect_rejection_only([&] {
    std::string bytes(hone::fuzz::as_view(data, size));
    if (hone::io::is_gzip(bytes)) bytes = hone::io::gunzip(bytes, "fuzz.idx.gz", std::size_t{64} << 20);
    const at::Tensor tensor = hone::io::parse_idx(bytes, "fuzz.idx");
    if (hone::io::encode_idx(tensor) != bytes) std::abort();
  });
  return 0;
}
