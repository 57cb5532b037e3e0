// safetensors: arbitrary bytes through the in-memory decoder and through the file readers (the
// memory-mapped loader and the header-only loader), which run separate code paths.
#include <ATen/ATen.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>

#include "fuzz_target.h"
#include "hone/io/safetensors.h"

namespace {

// The bytes as a file without touching the disk: a memfd, opened by path through /proc.
class MemoryFile {
 public:
  MemoryFile(const std::uint8_t* data, std::size_t size) : fd_(memfd_create("fuzz.safetensors", 0)) {
    if (fd_ < 0) std::abort();
    for (std::size_t done = 0; done < size;) {
      const ssize_t n = write(fd_, data + done, size - done);
      if (n <= 0) std::abort();
      done += static_cast<std::size_t>(n);
    }
  }
  ~MemoryFile() { close(fd_); }
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_;
};

void touch(const hone::io::SafetensorsContents& contents) {
  for (const auto& [name, tensor] : contents.tensors) {
    if (!contents.contains(name)) std::abort();
    if (tensor.device().type() != at::kCPU || tensor.numel() == 0) continue;
    // Read every byte the tensor claims (ASan checks them): raw, since not every dtype has ops.
    const at::Tensor dense = tensor.contiguous();
    const auto* bytes = static_cast<const unsigned char*>(dense.data_ptr());
    unsigned checksum = 0;
    for (std::size_t i = 0; i < dense.nbytes(); ++i) checksum += bytes[i];
    volatile unsigned sink = checksum;
    (void)sink;
  }
}

}  // namespace

HONE_FUZZ_TARGET(safetensors) {
  hone::fuzz::expect_rejection_only(
      [&] { touch(hone::io::decode_safetensors(hone::fuzz::as_view(data, size), "fuzz")); });
  const MemoryFile file(data, size);
  hone::fuzz::expect_rejection_only([&] { touch(hone::io::load_safetensors(file.path())); });
  hone::fuzz::expect_rejection_only([&] { touch(hone::io::load_safetensors_header(file.path())); });
  return 0;
}
