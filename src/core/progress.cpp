#include "hone/core/progress.h"

#include <unistd.h>

#include <fmt/format.h>
#include <cstdio>

namespace hone {

std::string format_duration(double seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 60) return fmt::format("{:.1f}s", seconds);
  auto s = static_cast<long long>(seconds + 0.5);
  if (s < 3600) return fmt::format("{}m {:02}s", s / 60, s % 60);
  return fmt::format("{}h {:02}m", s / 3600, (s % 3600) / 60);
}

ProgressBar::ProgressBar(std::int64_t total, std::string label, bool enabled)
    : total_(total > 0 ? total : 1),
      label_(std::move(label)),
      enabled_(enabled),
      tty_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() {
  if (!finished_ && enabled_ && tty_ && done_ > 0) std::fputc('\n', stderr);
}

void ProgressBar::advance(std::int64_t steps, const std::string& suffix) {
  done_ += steps;
  if (!suffix.empty()) suffix_ = suffix;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (now - last_draw_ < std::chrono::milliseconds(100) && done_ < total_) return;
  } else {
    int decile = static_cast<int>(10 * done_ / total_);
    if (decile == last_decile_) return;
    last_decile_ = decile;
  }
  last_draw_ = now;
  draw(false);
}

void ProgressBar::finish(const std::string& suffix) {
  if (finished_) return;
  finished_ = true;
  if (!suffix.empty()) suffix_ = suffix;
  if (!enabled_) return;
  draw(true);
}

void ProgressBar::draw(bool final_draw) {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double fraction = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
  double rate = elapsed > 0 ? done_ / elapsed : 0;
  double eta = (rate > 0 && done_ < total_) ? (total_ - done_) / rate : 0;
  constexpr int kWidth = 24;
  int filled = static_cast<int>(fraction * kWidth);
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.append(static_cast<std::size_t>(kWidth - filled), '.');
  std::string timing =
      final_draw ? fmt::format("in {}", format_duration(elapsed)) : fmt::format("ETA {}", format_duration(eta));
  std::string line = fmt::format("{} [{}] {:3.0f}% {}/{} {:.1f}/s {} {}", label_, bar, 100 * fraction, done_, total_,
                                 rate, timing, suffix_);
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final_draw ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

}  // namespace hone
