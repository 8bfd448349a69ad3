// Release: dropped pages stop counting as resident, neighbours are untouched, and released
// tensors still read back the same bytes.
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/io/safetensors.h"
#include "tests/io/io_test_util.h"

namespace triad::io {
namespace {

using testing::TempDir;
using testing::ViewBytes;

std::string Pattern(size_t size, int seed) {
  std::string data(size, '\0');
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>((i * 131 + seed) % 251);
  return data;
}

// Resident set size of this process, in bytes (/proc/self/statm counts pages).
size_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t total_pages = 0;
  size_t resident_pages = 0;
  statm >> total_pages >> resident_pages;
  return resident_pages * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// Reads every page so the mapping is resident; volatile keeps the loop from being dropped.
void Touch(const TensorView& view) {
  const volatile char* bytes = static_cast<const char*>(view.data);
  for (size_t i = 0; i < view.num_bytes; i += 512) (void)bytes[i];
}

TEST(ReleaseTest, KeepsEveryTensorReadable) {
  TempDir dir;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  // "b" spans several whole pages and shares its first and last page with "a" and "c".
  const std::vector<std::string> data = {Pattern(100, 1), Pattern(3 * page + 17, 2), Pattern(50, 3),
                                         Pattern(0, 4)};
  const std::vector<std::string> names = {"a", "b", "c", "empty"};
  std::vector<TensorToWrite> tensors;
  for (size_t i = 0; i < data.size(); ++i) {
    tensors.push_back(
        {names[i], DType::kU8, {static_cast<int64_t>(data[i].size())}, data[i].data()});
  }
  const std::string path = dir.File("release.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, tensors).ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  for (const std::string& name : names) Touch(*(*file)->Find(name));

  (*file)->Release("b");
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(ViewBytes(*(*file)->Find(names[i])), data[i]);
  for (const std::string& name : names) (*file)->Release(name);
  (*file)->Release("no such tensor");
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(ViewBytes(*(*file)->Find(names[i])), data[i]);
}

TEST(ReleaseTest, DropsResidentPages) {
  TempDir dir;
  constexpr size_t kBigBytes = size_t{32} << 20;
  const std::string big = Pattern(kBigBytes, 5);
  const std::string small = Pattern(10, 6);
  const std::string path = dir.File("big.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, {{"small", DType::kU8, {10}, small.data()},
                                      {"big", DType::kF32, {int64_t{kBigBytes / 4}}, big.data()}})
                  .ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  const TensorView& view = *(*file)->Find("big");
  const size_t before_touch = ResidentBytes();
  Touch(view);
  const size_t touched = ResidentBytes();
  EXPECT_GT(touched, before_touch + kBigBytes / 2);
  (*file)->Release("big");
  const size_t released = ResidentBytes();
  EXPECT_LT(released + kBigBytes / 2, touched)
      << "before " << before_touch << " touched " << touched << " released " << released;
  EXPECT_EQ(ViewBytes(view), big);  // faults the pages back in from the file
}

}  // namespace
}  // namespace triad::io
