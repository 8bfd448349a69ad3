// The device the server tests put their models on: $TRIAD_TEST_DEVICE ("cuda", "cuda:1"), else
// "cpu". CI leaves it unset; scripts/gpu-check.sh runs the scheduler and triadd tests again with
// TRIAD_TEST_DEVICE=cuda so the serving path is checked on a GPU too.
#pragma once

#include <cstdlib>
#include <string>

namespace triad::testing {

inline std::string TestDevice() {
  const char* device = std::getenv("TRIAD_TEST_DEVICE");
  return device != nullptr && *device != '\0' ? device : "cpu";
}

}  // namespace triad::testing
