// The tests' own main (test_main.cc) installs absl's failure signal handler: a crashing test
// reports the signal and its stack before dying of it.
#include <gtest/gtest.h>

#include <csignal>

namespace {

TEST(TestMain, ACrashReportsItsSignalAndStack) {
  // POSIX extended regex: '.' matches newlines too; "@ " starts each frame of the stack.
  EXPECT_DEATH(std::raise(SIGSEGV), "\\*\\*\\* SIGSEGV received at time=.*@ ");
}

}  // namespace
