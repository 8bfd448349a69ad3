// Replays fuzz inputs through one target's LLVMFuzzerTestOneInput without libFuzzer, so the
// normal (GCC) build runs every committed corpus file and crash reproducer as a test:
//
//   fuzz_<target>_replay PATH...   (files, or folders read recursively)
//
// Fails when a PATH holds no file at all or when the target accepted none of the inputs (an
// empty or all-invalid corpus tests only the refusals), and a property check that fails
// inside the target aborts the process.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) __attribute__((weak));

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    const size_t before = files.size();
    const fs::path root(argv[i]);
    if (fs::is_regular_file(root)) {
      files.push_back(root);
    } else if (fs::is_directory(root)) {
      for (const auto& entry : fs::recursive_directory_iterator(root)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
    }
    if (files.size() == before) {
      std::fprintf(stderr, "%s: no input files under %s\n", argv[0], argv[i]);
      return 1;
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: %s PATH...\n", argv[0]);
    return 2;
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& path : files) {
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("%zu inputs replayed, %d accepted\n", files.size(), triad_fuzz::accepted);
  return triad_fuzz::accepted > 0 ? 0 : 1;
}
