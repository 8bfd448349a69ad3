// The tests' own main (test_main.cc) installs absl's failure signal handler: a crashing test
// reports the signal and its stack before dying of it.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <csignal>
#include <fstream>
#include <string>

#include "tests/remove_tree.h"

namespace {

TEST(TestMain, ACrashReportsItsSignalAndStack) {
  // POSIX extended regex: '.' matches newlines too; "@ " starts each frame of the stack.
  EXPECT_DEATH(std::raise(SIGSEGV), "\\*\\*\\* SIGSEGV received at time=.*@ ");
}

// Before it, the glibc backtrace: the faulting address and frames as object(symbol+offset).
TEST(TestMain, ASegfaultAlsoPrintsAGlibcBacktrace) {
  EXPECT_DEATH(std::raise(SIGSEGV),
               "\\*\\*\\* SIGSEGV at address .*test_main_test\\(.*\\+0x[0-9a-f]+\\).*"
               "end of glibc backtrace.*SIGSEGV received at time=");
}

// The tests' folder removal (tests/remove_tree.h): nested folders and files all go, and a path
// that does not exist is left alone.
TEST(RemoveTree, RemovesNestedFoldersAndFiles) {
  const std::string root = ::testing::TempDir() + "remove_tree_test";
  triad::testing::RemoveTree(root);
  ASSERT_EQ(mkdir(root.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((root + "/a").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((root + "/a/b").c_str(), 0755), 0);
  std::ofstream(root + "/top.txt") << "x";
  std::ofstream(root + "/a/b/deep.txt") << "y";
  struct stat info {};
  ASSERT_EQ(stat((root + "/a/b/deep.txt").c_str(), &info), 0);
  triad::testing::RemoveTree(root);
  EXPECT_NE(stat(root.c_str(), &info), 0);
  triad::testing::RemoveTree(root);  // absent: nothing to do
  EXPECT_NE(stat(root.c_str(), &info), 0);
}

}  // namespace
