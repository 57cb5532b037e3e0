// How much `hone bench`'s harness adds to what it measures: rounds of hone's bench_model against
// a bare LibTorch loop (forward + device synchronization, steady_clock around each call) on the
// same model, input shape and device, interleaved round by round; prints the median over rounds
// of harness p50 / bare p50. Target (issue 3): <= 1.02.
//   hone_harness_overhead [MODEL] [DEVICE] [BATCH] [ITERATIONS] [ROUNDS]
//   e.g. build/bench/hone_harness_overhead mlp cuda 1 500 9
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "hone/bench/model_bench.h"
#include "hone/runtime/device_probe.h"
#include "hone/runtime/forward_runner.h"
#include "hone/runtime/settings.h"
#include "hone/runtime/statistics.h"
#include "hone/runtime/target.h"
#include "hone/runtime/units.h"

namespace {

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const auto n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string model = argc > 1 ? argv[1] : "mlp";
  const std::string device = argc > 2 ? argv[2] : "cpu";
  const std::int64_t batch = argc > 3 ? std::stoll(argv[3]) : 1;
  const int iterations = argc > 4 ? std::stoi(argv[4]) : 300;
  const int rounds = argc > 5 ? std::stoi(argv[5]) : 7;
  const int warmup = 20;

  // The bare loop: what anyone would write with LibTorch alone.
  hone::runtime::ModelTarget target = hone::runtime::load_target(model);
  hone::runtime::RunSettings settings;
  settings.device = c10::Device(device);
  hone::runtime::prepare_model(*target.model, settings);
  const torch::Tensor x = hone::runtime::make_random_input(target.info, batch, settings);
  torch::NoGradGuard no_grad;
  auto bare_p50 = [&] {
    for (int i = 0; i < warmup; ++i) target.model->forward(x);
    hone::runtime::synchronize(settings.device);
    std::vector<double> ms;
    for (int i = 0; i < iterations; ++i) {
      const auto start = std::chrono::steady_clock::now();
      target.model->forward(x);
      hone::runtime::synchronize(settings.device);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    return hone::runtime::summarize(ms).p50;
  };
  hone::bench::BenchOptions options;
  options.device = device;
  options.batches = {batch};
  options.warmup = warmup;
  options.iterations = iterations;

  std::vector<double> ratios;
  for (int r = 0; r < rounds; ++r) {
    const double bare = bare_p50();
    const double harness = hone::bench::bench_model(model, options).results.at(0).latency_ms.p50;
    ratios.push_back(harness / bare);
    std::printf("round %d: bare p50 %.4f ms, hone bench p50 %.4f ms, ratio %.4f\n", r + 1, bare, harness,
                harness / bare);
  }
  std::printf("%s on %s, batch %lld, %d iterations x %d rounds: median harness/bare = %.4f\n", model.c_str(),
              device.c_str(), static_cast<long long>(batch), iterations, rounds, median(ratios));
  return 0;
}
