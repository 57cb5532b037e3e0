// Linked into test executables that run on the lent GPU machine, which has no debugger: a crash
// prints the native backtrace (library + offset per frame) before the process dies, so a segfault
// in a CUDA test says where it happened.
#include <execinfo.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>

namespace {

void print_backtrace_and_die(int signal_number) {
  void* frames[64];
  const int count = ::backtrace(frames, 64);
  constexpr char kHeader[] = "\n*** fatal signal; native backtrace:\n";
  (void)!::write(STDERR_FILENO, kHeader, sizeof kHeader - 1);
  ::backtrace_symbols_fd(frames, count, STDERR_FILENO);
  ::signal(signal_number, SIG_DFL);
  ::raise(signal_number);
}

const bool kInstalled = [] {
  ::signal(SIGSEGV, print_backtrace_and_die);
  ::signal(SIGBUS, print_backtrace_and_die);
  ::signal(SIGABRT, print_backtrace_and_die);
  return true;
}();

}  // namespace
