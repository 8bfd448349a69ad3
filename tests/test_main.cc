// The tests' main: GoogleTest's, plus absl's failure signal handler, so a test binary that
// crashes (SIGSEGV, SIGABRT, ...) prints the faulting thread's symbolized stack to stderr before
// it dies with the same signal. A crash seen only on another machine (the GPU check's
// triadd_test) then says where it happened.
//
// For SIGSEGV and SIGBUS a second report comes first: the faulting address and a backtrace from
// glibc's backtrace(), whose unwinder reads the DWARF call-frame information and so also walks
// code built without frame pointers, where absl's unwinder can stop (or fault) at the first such
// frame. Each frame is printed as object(symbol+offset) or object(+offset), which addr2line
// resolves on the machine that has the object.
#include <dlfcn.h>
#include <execinfo.h>
#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

#include <gtest/gtest.h>

#include "absl/debugging/failure_signal_handler.h"
#include "absl/debugging/symbolize.h"

namespace {

struct sigaction previous_segv, previous_bus;

void Write(const char* text) {
  const ssize_t ignored = write(STDERR_FILENO, text, std::strlen(text));
  (void)ignored;
}

void BacktraceHandler(int signo, siginfo_t* info, void* context) {
  char line[128];
  std::snprintf(line, sizeof line, "*** %s at address %p\n",
                signo == SIGSEGV ? "SIGSEGV" : "SIGBUS", info != nullptr ? info->si_addr : nullptr);
  Write(line);
#if defined(__x86_64__) && defined(REG_RIP)
  // A jump through a null (or stale) function pointer faults at that address with nothing to
  // unwind from: the words at the stack pointer, named by their object, hold the caller.
  const auto* uc = static_cast<const ucontext_t*>(context);
  const auto rip = static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
  const auto* rsp = reinterpret_cast<void* const*>(uc->uc_mcontext.gregs[REG_RSP]);
  std::snprintf(line, sizeof line, "thread %ld of process %d, pc %#lx; words at the stack pointer:\n",
                static_cast<long>(syscall(SYS_gettid)), static_cast<int>(getpid()),
                static_cast<unsigned long>(rip));
  Write(line);
  for (int i = 0; i < 12; ++i) {
    Dl_info where{};
    if (dladdr(rsp[i], &where) != 0 && where.dli_fname != nullptr) {
      std::snprintf(line, sizeof line, "  sp[%d] %s(+%#lx)\n", i, where.dli_fname,
                    static_cast<unsigned long>(reinterpret_cast<uintptr_t>(rsp[i]) -
                                               reinterpret_cast<uintptr_t>(where.dli_fbase)));
      Write(line);
    }
  }
#endif
  Write("glibc backtrace:\n");
  void* frames[64];
  const int depth = backtrace(frames, 64);
  backtrace_symbols_fd(frames, depth, STDERR_FILENO);
  Write("*** end of glibc backtrace\n");
  // Then absl's report, which re-raises the signal with its default action.
  const struct sigaction& previous = signo == SIGSEGV ? previous_segv : previous_bus;
  if ((previous.sa_flags & SA_SIGINFO) != 0 && previous.sa_sigaction != nullptr) {
    previous.sa_sigaction(signo, info, context);
  }
  signal(signo, SIG_DFL);
  raise(signo);
}

void InstallBacktraceHandler() {
  void* warm[1];
  backtrace(warm, 1);  // loads libgcc's unwinder now, not inside the handler
  struct sigaction action {};
  action.sa_sigaction = BacktraceHandler;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;  // absl installed an alternate stack
  sigaction(SIGSEGV, &action, &previous_segv);
  sigaction(SIGBUS, &action, &previous_bus);
}

}  // namespace

int main(int argc, char** argv) {
  absl::InitializeSymbolizer(argv[0]);
  absl::InstallFailureSignalHandler(absl::FailureSignalHandlerOptions());
  InstallBacktraceHandler();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
