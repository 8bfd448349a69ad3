#include "model/huge_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

namespace triad {

bool AdviseHugePages(void* data, size_t bytes) {
  constexpr size_t kHugePage = size_t{2} << 20;
  if (data == nullptr || bytes < kHugePage) return false;
#if defined(MADV_HUGEPAGE)
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes + page - 1) / page * page;
  return madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE) == 0;
#else
  return false;
#endif
}

at::Tensor EmptyHugePaged(at::IntArrayRef shape, const at::TensorOptions& options) {
  at::Tensor tensor = at::empty(shape, options);
  if (tensor.device().is_cpu()) AdviseHugePages(tensor.data_ptr(), tensor.nbytes());
  return tensor;
}

}  // namespace triad
