// gzip: arbitrary bytes through gunzip (what every .gz dataset and CSV passes through). The cap is
// small so a decompression bomb is an error, not an out-of-memory finding.
#include "fuzz_target.h"
#include "hone/io/gzip.h"

HONE_FUZZ_TARGET(gzip) {
  hone::fuzz::expect_rejection_only([&] {
    const std::string out = hone::io::gunzip(hone::fuzz::as_view(data, size), "fuzz.gz", std::size_t{64} << 20);
    // What was accepted must survive a round trip through our own writer.
    if (hone::io::gunzip(hone::io::gzip(out), "roundtrip.gz") != out) std::abort();
  });
  return 0;
}
