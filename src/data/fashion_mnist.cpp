#include <ATen/ATen.h>

#include "hone/core/error.h"
#include "hone/data/datasets.h"
#include "hone/data/paths.h"
#include "hone/io/idx.h"

namespace hone::data {
namespace {

constexpr const char* kHowToGet = "install the Debian package dataset-fashion-mnist (`make setup` does)";

at::Tensor read_part(const std::string& file) {
  return io::read_idx(require_file(fashion_mnist_dir() / file, "Fashion-MNIST file", kHowToGet));
}

void check_pair(const at::Tensor& images, const at::Tensor& labels, const std::string& what) {
  HONE_CHECK(images.scalar_type() == at::kByte && images.dim() == 3 && images.size(1) == 28 && images.size(2) == 28,
             "Fashion-MNIST {} images: expected uint8 [N,28,28], got {} {}", what, images.scalar_type(),
             images.sizes());
  HONE_CHECK(labels.scalar_type() == at::kByte && labels.dim() == 1 && labels.size(0) == images.size(0),
             "Fashion-MNIST {} labels: expected uint8 [{}], got {} {}", what, images.size(0), labels.scalar_type(),
             labels.sizes());
  HONE_CHECK(labels.max().item<int>() < 10, "Fashion-MNIST {} labels: a label is >= 10", what);
}

std::int64_t capped(std::int64_t n, std::int64_t limit) { return limit > 0 ? std::min(n, limit) : n; }

}  // namespace

DatasetInfo fashion_mnist_info(const DataOptions&) {
  DatasetInfo info;
  info.name = "fashion-mnist";
  info.task = TaskKind::kClassification;
  info.input_shape = {1, 28, 28};
  info.num_classes = 10;
  info.class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return info;
}

LoadedData load_fashion_mnist(const DataOptions& options) {
  at::Tensor train_images = read_part("train-images-idx3-ubyte.gz");
  at::Tensor train_labels = read_part("train-labels-idx1-ubyte.gz");
  at::Tensor test_images = read_part("t10k-images-idx3-ubyte.gz");
  at::Tensor test_labels = read_part("t10k-labels-idx1-ubyte.gz");
  check_pair(train_images, train_labels, "train");
  check_pair(test_images, test_labels, "test");

  // The official train set is already shuffled; its last tenth is our validation split.
  const std::int64_t n = train_images.size(0);
  const std::int64_t n_val = n / 10;
  const std::int64_t n_train = n - n_val;
  auto to_float = [](const at::Tensor& images) { return images.to(at::kFloat).div_(255.0f).unsqueeze(1); };
  at::Tensor x_all = to_float(train_images);
  at::Tensor x_train_full = x_all.narrow(0, 0, n_train);
  // Normalization constants come from the training split only.
  const double mean = x_train_full.mean().item<double>();
  const double stddev = x_train_full.std().item<double>();
  auto normalize = [&](at::Tensor x) { return x.sub_(mean).div_(stddev); };
  x_all = normalize(x_all);
  at::Tensor x_test = normalize(to_float(test_images));
  at::Tensor y_all = train_labels.to(at::kLong);
  at::Tensor y_test = test_labels.to(at::kLong);

  const std::int64_t k_train = capped(n_train, options.limit);
  const std::int64_t k_val = capped(n_val, options.limit);
  const std::int64_t k_test = capped(x_test.size(0), options.limit);

  LoadedData data;
  data.info = fashion_mnist_info(options);
  data.train.dataset = TensorDataset(x_all.narrow(0, 0, k_train), y_all.narrow(0, 0, k_train));
  data.val.dataset = TensorDataset(x_all.narrow(0, n_train, k_val), y_all.narrow(0, n_train, k_val));
  data.test.dataset = TensorDataset(x_test.narrow(0, 0, k_test), y_test.narrow(0, 0, k_test));
  data.provenance = {{"source", fashion_mnist_dir().string()},
                     {"package", "dataset-fashion-mnist"},
                     {"split", {{"train", k_train}, {"val", k_val}, {"test", k_test}}},
                     {"normalization", {{"mean", mean}, {"std", stddev}}}};
  return data;
}

}  // namespace hone::data
