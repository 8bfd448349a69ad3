// Transparent huge pages for the large host buffers that live as long as a model: its weights
// and its KV pool. A CPU decode step streams every weight and reads the running sequences'
// KV blocks; backed by 4 KiB pages those are hundreds of thousands of pages, each a TLB entry
// to walk for, and each a page whose accessed bit a kernel memory monitor (DAMON, page
// reclaim) samples and clears with a TLB flush that interrupts the compute threads. 2 MiB
// pages cut both by 512 (README "Huge pages" has the measurements).
#pragma once

#include <ATen/ATen.h>

#include <cstddef>

namespace triad {

// Asks the kernel to back the pages of [data, data + bytes) with transparent huge pages
// (madvise MADV_HUGEPAGE, rounded out to whole pages). Call it before the buffer is first
// written: pages already in place stay small until khugepaged merges them. Advice only: it
// changes nothing where THP is off ("never"), unsupported or the buffer is under 2 MiB, and
// returns whether the kernel took it.
bool AdviseHugePages(void* data, size_t bytes);

// An uninitialized tensor; on the CPU, advised as above (any other device: at::empty).
at::Tensor EmptyHugePaged(at::IntArrayRef shape, const at::TensorOptions& options);

}  // namespace triad
