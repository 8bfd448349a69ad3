// A memory read-bandwidth probe: the roofline that batch-1 decode figures are compared with.
// Decode streams every weight once per token, so tokens/s can be at most
// (read bandwidth) / (weight bytes); the benchmarks print this probe beside their results
// because the figure drifts run to run on shared machines.
//
// Thread contract: safe to call from any thread; it starts and joins its own threads (not
// the intra-op pool, so the caller's at::set_num_threads setting is left alone).
#ifndef TRIAD_MODEL_KERNELS_BANDWIDTH_H_
#define TRIAD_MODEL_KERNELS_BANDWIDTH_H_

#include <cstddef>

namespace triad::kernels {

// Sums a buffer of `bytes` (rounded down to a multiple of 64 bytes per thread) with
// `num_threads` threads, each streaming its own contiguous slice with vector loads (AVX2
// where the CPU has it), and returns the best of `repeats` timed passes in GB/s (1e9
// bytes/s). The buffer is written once before timing so page faults are not counted; make
// `bytes` much larger than the last-level cache (e.g. 512 MiB) or the result measures cache.
// num_threads <= 0 means std::thread::hardware_concurrency(); repeats < 1 means 1. Returns 0
// if the buffer cannot be allocated or is empty after rounding.
double MeasureReadBandwidthGBs(size_t bytes, int num_threads, int repeats);

}  // namespace triad::kernels

#endif  // TRIAD_MODEL_KERNELS_BANDWIDTH_H_
