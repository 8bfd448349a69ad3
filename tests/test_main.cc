// The tests' main: GoogleTest's, plus absl's failure signal handler, so a test binary that
// crashes (SIGSEGV, SIGABRT, ...) prints the faulting thread's symbolized stack to stderr before
// it dies with the same signal. A crash seen only on another machine (the GPU check's
// triadd_test) then says where it happened.
#include <gtest/gtest.h>

#include "absl/debugging/failure_signal_handler.h"
#include "absl/debugging/symbolize.h"

int main(int argc, char** argv) {
  absl::InitializeSymbolizer(argv[0]);
  absl::InstallFailureSignalHandler(absl::FailureSignalHandlerOptions());
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
