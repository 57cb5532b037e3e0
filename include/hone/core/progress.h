#pragma once
/// @file A progress bar for long work: count, percentage, rate, ETA and a free-form suffix
/// (e.g. the running loss). Draws in place on a terminal; on a pipe it prints a line every 10%.
#include <chrono>
#include <cstdint>
#include <string>

namespace hone {

class ProgressBar {
 public:
  /// `total` steps of work named `label`. `enabled=false` draws nothing (e.g. with --json).
  ProgressBar(std::int64_t total, std::string label, bool enabled = true);
  ~ProgressBar();
  /// Advances by `steps` and redraws (at most ~10 times a second).
  void advance(std::int64_t steps = 1, const std::string& suffix = "");
  /// Draws the final state and ends the line.
  void finish(const std::string& suffix = "");

  std::int64_t done() const { return done_; }

 private:
  void draw(bool final_draw);
  std::int64_t total_;
  std::int64_t done_ = 0;
  std::string label_;
  std::string suffix_;
  bool enabled_;
  bool tty_;
  bool finished_ = false;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

/// "1m 05s", "3.2s", "2h 01m".
std::string format_duration(double seconds);

}  // namespace hone
