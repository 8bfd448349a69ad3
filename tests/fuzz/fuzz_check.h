// FUZZ_CHECK: the property checks of the fuzz targets. A failed check prints what broke and
// aborts, which libFuzzer reports as a crash (saving the input) and the replay test as a
// failure. FUZZ_ACCEPTED() counts an input the parser accepted: the replay test fails when
// none of a corpus was, so a parser that starts refusing everything cannot pass unnoticed.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace triad_fuzz {
inline int accepted = 0;
}  // namespace triad_fuzz

#define FUZZ_ACCEPTED() (++triad_fuzz::accepted)

#define FUZZ_CHECK(cond, ...)                                                  \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: ", __FILE__, __LINE__, \
                   #cond);                                                     \
      std::fprintf(stderr, __VA_ARGS__);                                       \
      std::fprintf(stderr, "\n");                                              \
      std::abort();                                                            \
    }                                                                          \
  } while (0)
