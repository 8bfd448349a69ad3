#include "model/io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace triad::io {
namespace {

size_t PageSize() {
  static const size_t page_size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page_size;
}

// Closes the descriptor on every path out of Open; the mapping outlives it.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() { close(fd_); }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

 private:
  int fd_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<MappedFile>> MappedFile::Open(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    return absl::ErrnoToStatus(error, absl::StrCat(path, ": cannot open"));
  }
  FdCloser closer(fd);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int error = errno;
    return absl::ErrnoToStatus(error, absl::StrCat(path, ": cannot stat"));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) return std::unique_ptr<MappedFile>(new MappedFile(nullptr, 0));
  // MAP_PRIVATE + PROT_READ: nothing can write through the mapping, and released pages fault
  // back in from the page cache rather than reading as zeros.
  void* addr = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (addr == MAP_FAILED) {
    const int error = errno;
    return absl::ErrnoToStatus(error, absl::StrCat(path, ": cannot mmap ", size, " bytes"));
  }
  return std::unique_ptr<MappedFile>(new MappedFile(static_cast<uint8_t*>(addr), size));
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) munmap(data_, size_);
}

void MappedFile::ReleaseRange(size_t offset, size_t length) const {
  if (data_ == nullptr || offset >= size_) return;
  const size_t end = length > size_ - offset ? size_ : offset + length;
  // The mapping starts on a page boundary, so file offsets and mapping offsets align alike:
  // round the start up and the end down to stay strictly inside the range.
  const size_t page = PageSize();
  const size_t first = (offset + page - 1) / page * page;
  const size_t last = end / page * page;
  if (first >= last) return;
  // Advice only: a failure leaves the pages resident, which costs memory but not correctness.
  madvise(data_ + first, last - first, MADV_DONTNEED);
}

}  // namespace triad::io
