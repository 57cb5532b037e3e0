// Linked into test executables that run on the lent GPU machine, which has no debugger: a crash
// prints the native backtrace (library + offset per frame) before the process dies, so a segfault
// in a CUDA test says where it happened. A jump through a null function pointer leaves no frame to
// unwind (the backtrace ends in the signal trampoline), so the handler also prints the faulting
// instruction and the words on top of the stack, resolved to library + offset: the first of them
// is the return address of the call that jumped.
#include <execinfo.h>
#include <signal.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace {

void write_text(const char* text, int length) { (void)!::write(STDERR_FILENO, text, static_cast<size_t>(length)); }

void print_backtrace_and_die(int signal_number, siginfo_t* info, void* context) {
  char line[160];
  int n = std::snprintf(line, sizeof line, "\n*** fatal signal %d at address %p; native backtrace:\n", signal_number,
                        info != nullptr ? info->si_addr : nullptr);
  write_text(line, n);
  void* frames[64];
  const int count = ::backtrace(frames, 64);
  ::backtrace_symbols_fd(frames, count, STDERR_FILENO);
#if defined(__x86_64__)
  if (context != nullptr) {
    const auto* uc = static_cast<const ucontext_t*>(context);
    void* const pc = reinterpret_cast<void*>(uc->uc_mcontext.gregs[REG_RIP]);
    void* const* const sp = reinterpret_cast<void* const*>(uc->uc_mcontext.gregs[REG_RSP]);
    n = std::snprintf(line, sizeof line, "*** faulting instruction %p; top of the stack (return addresses?):\n", pc);
    write_text(line, n);
    void* words[12];
    for (int i = 0; i < 12; ++i) words[i] = sp[i];
    ::backtrace_symbols_fd(words, 12, STDERR_FILENO);
  }
#endif
  ::signal(signal_number, SIG_DFL);
  ::raise(signal_number);
}

const bool kInstalled = [] {
  struct sigaction action {};
  action.sa_sigaction = print_backtrace_and_die;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  for (const int signal_number : {SIGSEGV, SIGBUS, SIGABRT}) ::sigaction(signal_number, &action, nullptr);
  return true;
}();

}  // namespace
