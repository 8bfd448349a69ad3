// The read-bandwidth probe: like STREAM's sum kernel, but load-bound by construction (eight
// independent vector accumulators) so the figure is memory's limit, not the adder's.
#include "model/kernels/bandwidth.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "model/kernels/kernels_internal.h"

namespace triad::kernels {
namespace {

constexpr size_t kSliceAlign = 64;  // bytes; one cache line, so slices never share a line

// Portable fallback: 64-bit integer adds, four chains.
uint64_t SumScalar(const uint64_t* data, size_t count) {
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= count; i += 4) {
    s0 += data[i];
    s1 += data[i + 1];
    s2 += data[i + 2];
    s3 += data[i + 3];
  }
  for (; i < count; ++i) s0 += data[i];
  return s0 + s1 + s2 + s3;
}

#if defined(__x86_64__) || defined(__i386__)
// 256 bytes per iteration into eight accumulators: adder latency never limits the loads.
__attribute__((target("avx2"))) uint64_t SumAvx2(const uint64_t* data, size_t count) {
  __m256i acc[8];
  for (__m256i& a : acc) a = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 32 <= count; i += 32) {
    for (int k = 0; k < 8; ++k) {
      const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(data + i + 4 * k));
      acc[k] = _mm256_add_epi64(acc[k], v);
    }
  }
  for (int k = 1; k < 8; ++k) acc[0] = _mm256_add_epi64(acc[0], acc[k]);
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc[0]);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3] + SumScalar(data + i, count - i);
}
#endif

uint64_t Sum(const uint64_t* data, size_t count, bool use_avx2) {
#if defined(__x86_64__) || defined(__i386__)
  if (use_avx2) return SumAvx2(data, count);
#endif
  return SumScalar(data, count);
}

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// Runs body(thread_index) on num_threads threads released together; returns the seconds
// from release to the last join, so thread start-up is outside the timed span.
template <typename Body>
double RunTimed(int num_threads, const Body& body) {
  std::atomic<int> num_ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  threads.reserve(num_threads);
  for (int t = 0; t < num_threads; ++t) {
    threads.emplace_back([&, t] {
      num_ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
      }
      body(t);
    });
  }
  while (num_ready.load() < num_threads) std::this_thread::yield();
  const auto start = std::chrono::steady_clock::now();
  go.store(true, std::memory_order_release);
  for (std::thread& thread : threads) thread.join();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

double MeasureReadBandwidthGBs(size_t bytes, int num_threads, int repeats) {
  if (num_threads <= 0) num_threads = std::max(1u, std::thread::hardware_concurrency());
  repeats = std::max(repeats, 1);
  const size_t slice_bytes = bytes / num_threads / kSliceAlign * kSliceAlign;
  const size_t total_bytes = slice_bytes * num_threads;
  if (slice_bytes == 0) return 0.0;
  std::unique_ptr<uint64_t[], FreeDeleter> buffer(
      static_cast<uint64_t*>(std::aligned_alloc(kSliceAlign, total_bytes)));
  if (buffer == nullptr) return 0.0;
  const size_t slice_words = slice_bytes / sizeof(uint64_t);
  const bool use_avx2 = internal::CpuSupports(internal::Isa::kAvx2);

  // Each thread first-touches the slice it will read, so on NUMA machines pages land near it.
  RunTimed(num_threads, [&](int t) {
    std::fill_n(buffer.get() + t * slice_words, slice_words, static_cast<uint64_t>(t + 1));
  });
  std::vector<uint64_t> sums(num_threads);
  double best_seconds = 0.0;
  for (int r = 0; r < repeats; ++r) {
    const double seconds = RunTimed(num_threads, [&](int t) {
      sums[t] = Sum(buffer.get() + t * slice_words, slice_words, use_avx2);
    });
    if (r == 0 || seconds < best_seconds) best_seconds = seconds;
  }
  // The sums are checked so the reads cannot be optimised away.
  for (int t = 0; t < num_threads; ++t) {
    if (sums[t] != slice_words * static_cast<uint64_t>(t + 1)) return 0.0;
  }
  return static_cast<double>(total_bytes) / best_seconds / 1e9;
}

}  // namespace triad::kernels
