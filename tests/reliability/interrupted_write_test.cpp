// Interrupted writes (issue 20): a process writing versions of a file or run directory in a loop is
// killed with SIGKILL at random points (HONE_KILL_POINTS per writer, default 50); after every kill
// what is left must be a whole version, no older than the last one complete before that process
// started — never a mix, a truncated file taken for a good one, or nothing. A full disk and a
// read-only directory (tmpfs in a private mount namespace) must give a clear error and leave the
// previous version whole.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>

#include "support/run_command.h"
#include "support/temp_dir.h"
#include "versioned_writers.h"

extern char** environ;

namespace hone {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

/// The writer loop as a child process whose standard output we read line by line.
class WriterProcess {
 public:
  WriterProcess(const std::string& writer, const std::filesystem::path& dir) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    const std::string dir_string = dir.string();
    char* argv[] = {const_cast<char*>(HONE_INTERRUPTED_WRITER), const_cast<char*>(writer.c_str()),
                    const_cast<char*>(dir_string.c_str()), nullptr};
    const int spawned = ::posix_spawn(&pid_, HONE_INTERRUPTED_WRITER, &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    out_ = fds[0];
    if (spawned != 0) throw std::runtime_error("cannot start " + std::string(HONE_INTERRUPTED_WRITER));
  }
  ~WriterProcess() {
    kill();
    ::close(out_);
  }

  /// The next line the writer prints, or "" when it printed none within `timeout` (or exited).
  std::string next_line(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      const auto newline = buffer_.find('\n');
      if (newline != std::string::npos) {
        std::string line = buffer_.substr(0, newline);
        buffer_.erase(0, newline + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return "";
      pollfd fd{out_, POLLIN, 0};
      if (::poll(&fd, 1, static_cast<int>(left)) <= 0) return "";
      char chunk[256];
      const ssize_t n = ::read(out_, chunk, sizeof chunk);
      if (n <= 0) return "";
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string buffer_;
};

int kill_points() {
  const char* value = std::getenv("HONE_KILL_POINTS");
  return value != nullptr ? std::max(1, std::atoi(value)) : 50;
}

std::size_t hidden_entries(const std::filesystem::path& dir) {
  std::size_t count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    count += entry.path().filename().string().starts_with(".") ? 1 : 0;
  return count;
}

class InterruptedWriteTest : public ::testing::TestWithParam<std::string> {};

TEST_P(InterruptedWriteTest, KilledAtRandomPointsTheLastWholeVersionSurvives) {
  const auto& writer = testing::find_versioned_writer(GetParam());
  testing::TempDir dir("hone-kill-" + writer.name);
  writer.write(dir.path(), 1);
  ASSERT_EQ(writer.check(dir.path()), 1);

  // How long one version takes to write, so that the kills spread over whole writes.
  double seconds_per_version = 0;
  {
    WriterProcess process(writer.name, dir.path());
    ASSERT_THAT(process.next_line(std::chrono::seconds(60)), HasSubstr("start"));
    const auto started = Clock::now();
    for (int i = 0; i < 3; ++i) ASSERT_THAT(process.next_line(std::chrono::seconds(60)), HasSubstr("wrote"));
    seconds_per_version = std::chrono::duration<double>(Clock::now() - started).count() / 3;
  }
  int version = writer.check(dir.path());
  ASSERT_GE(version, 4) << "the calibration run wrote versions 2..4 (at least)";

  std::mt19937 random(20);
  std::uniform_real_distribution<double> when(0.0, 2.5 * seconds_per_version);
  int advanced = 0;
  const int points = kill_points();
  for (int point = 0; point < points; ++point) {
    WriterProcess process(writer.name, dir.path());
    ASSERT_THAT(process.next_line(std::chrono::seconds(60)), HasSubstr("start " + std::to_string(version + 1)));
    std::this_thread::sleep_for(std::chrono::duration<double>(when(random)));
    process.kill();
    int found = 0;
    try {
      found = writer.check(dir.path());
    } catch (const std::exception& e) {
      FAIL() << "kill point " << point << ": the previous version " << version << " was lost: " << e.what();
    }
    EXPECT_GE(found, version) << "kill point " << point << " went back to an older version";
    EXPECT_THAT(testing::unexpected_entries(dir.path(), writer.entries), ::testing::IsEmpty())
        << "kill point " << point << " left a file a reader could take for a good one";
    // Each write first removes the temporaries of killed writers, so only the last one or two
    // processes' remain (two when a process was killed before its first write began).
    EXPECT_LE(hidden_entries(dir.path()), 2 * writer.entries.size()) << "kill point " << point << ": leftovers pile up";
    advanced += found > version ? 1 : 0;
    version = found;
  }
  // Both kinds of kill point were hit: inside a write (version unchanged) and after one.
  std::printf("%s: %d kill points over %.3f s per version; %d after a whole write, %d inside one\n",
              writer.name.c_str(), points, seconds_per_version, advanced, points - advanced);
  if (points >= 20) {
    EXPECT_GT(points - advanced, 0) << "no kill landed inside a write: the test would not see a torn file";
  }
}

INSTANTIATE_TEST_SUITE_P(Writers, InterruptedWriteTest,
                         ::testing::Values("weights", "checkpoint", "compressed-run", "export"), [](const auto& info) {
                           std::string name = info.param;
                           for (auto& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

/// A tmpfs mounted in a private mount namespace (`unshare -m`, root only), holding version 1;
/// `break_it` makes the next write fail; then version 2 is attempted and the directory checked.
struct FailedWrite {
  bool ran = false;
  testing::CommandResult result;
};

FailedWrite write_on_broken_tmpfs(const std::string& writer, const std::string& break_it) {
  testing::TempDir scratch("hone-tmpfs");
  const auto mount_point = scratch / "mnt";
  std::filesystem::create_directories(mount_point);
  const std::string program = HONE_INTERRUPTED_WRITER;
  const std::string script =
      "set -e; D=" + mount_point.string() + "; mount -t tmpfs -o size=64m hone-test \"$D\"; W=" + program +
      "; \"$W\" " + writer + " \"$D\" --once 1; " + break_it + "; if \"$W\" " + writer +
      " \"$D\" --once 2 2>&1; then echo WRITE-SUCCEEDED; fi; \"$W\" " + writer + " \"$D\" --check";
  FailedWrite failed;
  const auto probe = testing::run_command("unshare -m true", scratch / "probe.txt");
  if (probe.code != 0) return failed;
  failed.ran = true;
  failed.result = testing::run_command("unshare -m sh -c '" + script + "'", scratch / "stderr.txt");
  return failed;
}

class BrokenDiskTest : public ::testing::TestWithParam<std::string> {};

TEST_P(BrokenDiskTest, AFullDiskGivesAClearErrorAndKeepsThePreviousVersion) {
  // dd fills what the first version left free; the second version's temporaries cannot be written.
  const auto failed = write_on_broken_tmpfs(GetParam(), "dd if=/dev/zero of=\"$D/.filler\" bs=64k 2>/dev/null || true");
  if (!failed.ran) GTEST_SKIP() << "needs a private mount namespace (unshare -m, root) for a small tmpfs";
  const auto& r = failed.result;
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("WRITE-SUCCEEDED")));
  EXPECT_THAT(r.out, ::testing::AnyOf(HasSubstr("No space left"), HasSubstr("disk full"))) << r.out;
  EXPECT_THAT(r.out, HasSubstr("/mnt/")) << "the error names the file it could not write: " << r.out;
  EXPECT_THAT(r.out, HasSubstr("version 1\n")) << r.out;
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("unexpected:"))) << r.out;
}

TEST_P(BrokenDiskTest, AReadOnlyDirectoryGivesAClearErrorAndKeepsThePreviousVersion) {
  const auto failed = write_on_broken_tmpfs(GetParam(), "mount -o remount,ro \"$D\"");
  if (!failed.ran) GTEST_SKIP() << "needs a private mount namespace (unshare -m, root) for a read-only tmpfs";
  const auto& r = failed.result;
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("WRITE-SUCCEEDED")));
  EXPECT_THAT(r.out, HasSubstr("Read-only file system")) << r.out;
  EXPECT_THAT(r.out, HasSubstr("/mnt")) << "the error names the path: " << r.out;
  EXPECT_THAT(r.out, HasSubstr("version 1\n")) << r.out;
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("unexpected:"))) << r.out;
}

INSTANTIATE_TEST_SUITE_P(Writers, BrokenDiskTest,
                         ::testing::Values("weights", "checkpoint", "compressed-run", "export"), [](const auto& info) {
                           std::string name = info.param;
                           for (auto& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

}  // namespace
}  // namespace hone
