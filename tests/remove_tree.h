// RemoveTree: deletes a folder and everything under it (nothing when it does not exist), for the
// tests' temporary folders.
//
// Not std::filesystem's remove-all: PyTorch's own LibTorch builds (2.5 and later: the pip wheels,
// the libtorch archives) export the copy of std::filesystem they link statically
// (pytorch/pytorch#133437), the dynamic linker binds a test binary's calls to that copy, and its
// remove-all jumps to address 0. On the GPU machine every triadd test died of SIGSEGV there,
// removing its folder. tests/CMakeLists.txt checks that no source calls it.
#pragma once

#include <ftw.h>

#include <cstdio>
#include <string>

namespace triad::testing {

inline void RemoveTree(const std::string& path) {
  // Depth first (files, then their folder), not following symbolic links; a failure to remove
  // one entry does not stop the walk.
  nftw(
      path.c_str(),
      [](const char* entry, const struct stat*, int, struct FTW*) {
        std::remove(entry);
        return 0;
      },
      16, FTW_DEPTH | FTW_PHYS);
}

}  // namespace triad::testing
