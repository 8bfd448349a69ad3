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

// $TRIAD_TEST_CUDA_GRAPHS set (and not "0"): the triadd tests serve their models with
// "cuda_graphs": true, so that scripts/gpu-check.sh can rerun them with decode graphs.
inline bool TestCudaGraphs() {
  const char* graphs = std::getenv("TRIAD_TEST_CUDA_GRAPHS");
  return graphs != nullptr && *graphs != '\0' && std::string(graphs) != "0";
}

}  // namespace triad::testing
