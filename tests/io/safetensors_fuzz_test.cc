// Mutation fuzzing: corrupted and truncated versions of a valid file must give a status from
// Open (or a file whose every tensor is readable), never a crash or an exception.
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/io/safetensors.h"
#include "tests/io/io_test_util.h"

namespace triad::io {
namespace {

using testing::ReadBytes;
using testing::TempDir;
using testing::WriteBytes;

constexpr int kIterations = 1500;
constexpr unsigned kSeed = 20240611;

std::string ValidFile(const TempDir& dir) {
  const std::vector<float> weights = {1, 2, 3, 4, 5, 6};
  const std::vector<int16_t> halves = {7, 8, 9};
  const uint8_t flags[2] = {1, 0};
  const std::string path = dir.File("valid.safetensors");
  EXPECT_TRUE(WriteSafetensors(path,
                               {{"layer.weight", DType::kF32, {2, 3}, weights.data()},
                                {"layer.bias", DType::kBF16, {3}, halves.data()},
                                {"empty", DType::kI64, {0}, nullptr},
                                {"mask", DType::kBool, {2}, flags}},
                               {{"format", "pt"}})
                  .ok());
  return ReadBytes(path);
}

// One random corruption: flip a bit, overwrite a byte with a JSON-significant character, or
// truncate. The sample file is mostly header, so most mutations exercise the parser.
std::string Mutate(std::string bytes, std::mt19937& rng) {
  const std::string json_chars = "{}[]\":,-.0123456789e \\";
  std::uniform_int_distribution<size_t> any_byte(0, bytes.size() - 1);
  switch (rng() % 3) {
    case 0:
      bytes[any_byte(rng)] ^= static_cast<char>(1u << (rng() % 8));
      break;
    case 1:
      bytes[any_byte(rng)] = json_chars[rng() % json_chars.size()];
      break;
    default:
      bytes.resize(any_byte(rng));
      break;
  }
  return bytes;
}

TEST(SafetensorsFuzzTest, CorruptFilesGiveStatusNotCrash) {
  TempDir dir;
  const std::string valid = ValidFile(dir);
  ASSERT_GT(valid.size(), 16u);
  std::mt19937 rng(kSeed);
  int num_rejected = 0;
  for (int i = 0; i < kIterations; ++i) {
    std::string mutant = Mutate(valid, rng);
    if (rng() % 4 == 0) mutant = Mutate(std::move(mutant), rng);
    // A fresh name each time: rewriting one file in place makes ext4 flush it on every
    // truncate (auto_da_alloc), which costs milliseconds per iteration.
    const std::string path = dir.File("mutant" + std::to_string(i) + ".safetensors");
    WriteBytes(path, mutant);
    auto file = SafetensorsFile::Open(path);
    std::remove(path.c_str());
    if (!file.ok()) {
      ++num_rejected;
      EXPECT_NE(file.status().message().find(path), std::string::npos) << file.status();
      continue;
    }
    // Accepted (e.g. a flipped data byte): every tensor must lie inside the file.
    size_t total = 0;
    for (const std::string& name : (*file)->names()) {
      const TensorView* view = (*file)->Find(name);
      ASSERT_NE(view, nullptr);
      unsigned checksum = 0;
      for (size_t b = 0; b < view->num_bytes; ++b) {
        checksum += static_cast<const unsigned char*>(view->data)[b];
      }
      (void)checksum;
      total += view->num_bytes;
    }
    EXPECT_LE(total, mutant.size());
  }
  // Most mutations hit the header; make sure the loop really exercised the error paths.
  EXPECT_GT(num_rejected, kIterations / 2);
}

}  // namespace
}  // namespace triad::io
