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

// $TRIAD_TEST_CUDA_GRAPHS: unset or empty leaves the models' "cuda_graphs" at its default (on;
// it acts on cuda only); "0" serves them with "cuda_graphs": false, anything else with true.
// scripts/gpu-check.sh reruns the triadd tests on cuda with 0, so both paths are checked there.
// Returns the JSON to put into every model entry ("" for none).
inline std::string TestCudaGraphsEntry() {
  const char* graphs = std::getenv("TRIAD_TEST_CUDA_GRAPHS");
  if (graphs == nullptr || *graphs == '\0') return "";
  return std::string(graphs) == "0" ? "\"cuda_graphs\": false, " : "\"cuda_graphs\": true, ";
}

}  // namespace triad::testing
