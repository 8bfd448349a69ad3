// Transparent huge pages for weights and the KV pool (model/huge_pages.h): the advice reaches
// the kernel (the mapping's VmFlags in /proc/self/smaps carry "hg") for a CPU buffer of at
// least 2 MiB, for a KV pool's storage and for fused weights. Skipped where the kernel has no
// THP or it is set to "never".
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

#include "model/huge_pages.h"
#include "model/kv_pool.h"
#include "model/layers.h"

namespace triad {
namespace {

std::string ThpMode() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  std::getline(in, line);
  const size_t open = line.find('['), close = line.find(']');
  return open == std::string::npos || close == std::string::npos
             ? ""
             : line.substr(open + 1, close - open - 1);
}

// The VmFlags of the mapping that holds `address` ("" when none does).
std::string VmFlagsAt(const void* address) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(address);
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    uintptr_t begin = 0, end = 0;
    char dash = 0;
    std::istringstream header(line);
    if (line.find(':') > line.find(' ') && header >> std::hex >> begin >> dash >> end &&
        dash == '-') {
      inside = begin <= a && a < end;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line.substr(8) + " ";
    }
  }
  return "";
}

bool Advised(const void* address) { return VmFlagsAt(address).find(" hg ") != std::string::npos; }

class HugePagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string mode = ThpMode();
    if (mode.empty() || mode == "never") GTEST_SKIP() << "no transparent huge pages here";
  }
};

TEST_F(HugePagesTest, AdvisesCpuBuffersOfTwoMiBOrMore) {
  EXPECT_FALSE(AdviseHugePages(nullptr, size_t{8} << 20));
  const at::Tensor small = at::empty({256 * 1024}, at::kFloat);  // 1 MiB
  EXPECT_FALSE(AdviseHugePages(small.data_ptr(), small.nbytes()));
  const at::Tensor big = EmptyHugePaged({4 << 20}, at::TensorOptions().dtype(at::kFloat));
  ASSERT_EQ(big.nbytes(), size_t{16} << 20);
  EXPECT_TRUE(Advised(big.data_ptr())) << VmFlagsAt(big.data_ptr());
  // A fresh mapping of its own: not advised until AdviseHugePages says so.
  const size_t bytes = size_t{4} << 20;
  void* fresh = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(fresh, MAP_FAILED);
  EXPECT_FALSE(Advised(fresh)) << VmFlagsAt(fresh);
  EXPECT_TRUE(AdviseHugePages(fresh, bytes));
  EXPECT_TRUE(Advised(fresh)) << VmFlagsAt(fresh);
  munmap(fresh, bytes);
}

TEST_F(HugePagesTest, KvPoolAndFusedWeightsAreAdvised) {
  KvPoolShape shape;
  shape.num_layers = 2;
  shape.num_kv_heads = 4;
  shape.head_dim = 64;
  shape.block_size = 16;
  KvPool pool(shape, 512, at::kFloat, at::kCPU);  // 16 MiB of keys
  EXPECT_TRUE(Advised(pool.keys(0).data_ptr())) << VmFlagsAt(pool.keys(0).data_ptr());
  EXPECT_EQ(pool.keys(1).abs().max().item<float>(), 0.0f);  // zeroed as before
  Linear q{at::randn({1024, 512}), at::randn({1024})}, k{at::randn({1024, 512}), at::randn({1024})};
  const Linear fused = ConcatLinears({q, k});
  EXPECT_TRUE(Advised(fused.weight.data_ptr())) << VmFlagsAt(fused.weight.data_ptr());
  EXPECT_TRUE(at::equal(fused.weight, at::cat({q.weight, k.weight}, 0)));
  EXPECT_TRUE(at::equal(fused.bias, at::cat({q.bias, k.bias}, 0)));
}

}  // namespace
}  // namespace triad
