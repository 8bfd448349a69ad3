// The one place where LibTorch version differences live. Triad builds against Debian's
// LibTorch 1.13 (CPU) and LibTorch 2.x (CUDA); everything else includes this header instead of
// testing versions itself.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <torch/cuda.h>
#include <c10/util/Exception.h>
#include <torch/version.h>

#include <string>

#define TRIAD_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||        \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace triad::compat {

// True when this LibTorch was built with CUDA and a device is visible.
inline bool HasCuda() { return torch::cuda::is_available(); }

// Number of visible CUDA devices (0 without CUDA).
inline int CudaDeviceCount() {
  return static_cast<int>(torch::cuda::device_count());
}

// The message of a LibTorch error without the C++ backtrace LibTorch appends.
inline std::string ErrorMessage(const c10::Error& e) { return e.what_without_backtrace(); }

// Version string, e.g. "1.13.1" (what the benchmark and build info report).
inline std::string TorchVersion() { return TORCH_VERSION; }

}  // namespace triad::compat
