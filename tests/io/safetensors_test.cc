// SafetensorsFile on real fixtures, the writer round trip, Release, and a mutation fuzz loop.
#include "model/io/safetensors.h"

#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/io/io_test_util.h"

namespace triad::io {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using testing::ModelsDir;
using testing::ReadBytes;
using testing::TempDir;
using testing::ViewBytes;
using testing::WriteBytes;

// llama-tiny/config.json: hidden 64, intermediate 176, vocab 1000, 4 heads and 2 KV heads of
// head_dim 16, 2 layers, untied lm_head.
std::map<std::string, std::vector<int64_t>> LlamaTinyShapes() {
  std::map<std::string, std::vector<int64_t>> shapes = {
      {"model.embed_tokens.weight", {1000, 64}},
      {"lm_head.weight", {1000, 64}},
      {"model.norm.weight", {64}},
  };
  for (const std::string layer : {"model.layers.0.", "model.layers.1."}) {
    shapes[layer + "input_layernorm.weight"] = {64};
    shapes[layer + "post_attention_layernorm.weight"] = {64};
    shapes[layer + "self_attn.q_proj.weight"] = {64, 64};
    shapes[layer + "self_attn.k_proj.weight"] = {32, 64};
    shapes[layer + "self_attn.v_proj.weight"] = {32, 64};
    shapes[layer + "self_attn.o_proj.weight"] = {64, 64};
    shapes[layer + "mlp.gate_proj.weight"] = {176, 64};
    shapes[layer + "mlp.up_proj.weight"] = {176, 64};
    shapes[layer + "mlp.down_proj.weight"] = {64, 176};
  }
  return shapes;
}

TEST(SafetensorsFileTest, ReadsLlamaTiny) {
  const std::string path = ModelsDir() + "/llama-tiny/model.safetensors";
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->path(), path);
  EXPECT_THAT((*file)->metadata(),
              ElementsAre(std::pair<const std::string, std::string>("format", "pt")));
  const auto shapes = LlamaTinyShapes();
  ASSERT_EQ((*file)->names().size(), shapes.size());
  size_t total_bytes = 0;
  const char* previous_end = nullptr;
  for (const std::string& name : (*file)->names()) {
    SCOPED_TRACE(name);
    const TensorView* view = (*file)->Find(name);
    ASSERT_NE(view, nullptr);
    EXPECT_EQ(view->name, name);
    EXPECT_EQ(view->dtype, DType::kF32);
    ASSERT_EQ(shapes.count(name), 1u);
    EXPECT_EQ(view->shape, shapes.at(name));
    EXPECT_EQ(view->num_bytes, static_cast<size_t>(view->num_elements()) * 4);
    // names() is storage order: each tensor starts where the previous one ended.
    if (previous_end != nullptr) {
      EXPECT_EQ(view->data, previous_end);
    }
    previous_end = static_cast<const char*>(view->data) + view->num_bytes;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(view->data) % 4, 0u);
    total_bytes += view->num_bytes;
  }
  EXPECT_EQ(total_bytes, 881920u);  // total_size in llama-tiny-sharded's index
  EXPECT_EQ((*file)->Find("model.embed_tokens.weight")->num_elements(), 64000);
  EXPECT_EQ((*file)->Find("no.such.tensor"), nullptr);
}

TEST(DTypeTest, NamesSizesAndParsingAgree) {
  const std::vector<std::pair<DType, size_t>> all = {
      {DType::kF64, 8}, {DType::kF32, 4}, {DType::kF16, 2}, {DType::kBF16, 2}, {DType::kI64, 8},
      {DType::kI32, 4}, {DType::kI16, 2}, {DType::kI8, 1},  {DType::kU8, 1},   {DType::kBool, 1}};
  for (const auto& [dtype, size] : all) {
    EXPECT_EQ(DTypeSize(dtype), size) << DTypeName(dtype);
    EXPECT_EQ(DTypeFromName(DTypeName(dtype)), dtype);
  }
  EXPECT_EQ(DTypeName(DType::kBool), "BOOL");
  EXPECT_EQ(DTypeFromName("F8_E4M3"), std::nullopt);
  EXPECT_EQ(DTypeFromName("f32"), std::nullopt);
}

// Tensors of every dtype (plus a scalar and an empty one) with distinct byte patterns.
struct Sample {
  std::vector<TensorToWrite> tensors;
  std::vector<std::string> storage;  // backs tensors[i].data
};

Sample MakeSample() {
  const std::vector<std::pair<DType, std::vector<int64_t>>> specs = {
      {DType::kF64, {3}},   {DType::kF32, {2, 3}}, {DType::kF16, {5}},    {DType::kBF16, {1, 7}},
      {DType::kI64, {2}},   {DType::kI32, {}},     {DType::kI16, {3, 1}}, {DType::kI8, {9}},
      {DType::kU8, {0, 3}}, {DType::kBool, {4}}};
  Sample sample;
  sample.storage.reserve(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    size_t bytes = DTypeSize(specs[i].first);
    for (int64_t dim : specs[i].second) bytes *= static_cast<size_t>(dim);
    std::string data(bytes, '\0');
    for (size_t b = 0; b < bytes; ++b) data[b] = static_cast<char>(i * 31 + b * 7);
    if (specs[i].first == DType::kBool) {
      for (char& c : data) c = static_cast<char>(c & 1);
    }
    sample.storage.push_back(std::move(data));
    sample.tensors.push_back(
        {"t" + std::to_string(i) + "." + std::string(DTypeName(specs[i].first)), specs[i].first,
         specs[i].second, bytes == 0 ? nullptr : sample.storage.back().data()});
  }
  return sample;
}

TEST(SafetensorsWriteTest, RoundTripsEveryDType) {
  TempDir dir;
  const std::string path = dir.File("round.safetensors");
  const Sample sample = MakeSample();
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "round trip"}};
  ASSERT_TRUE(WriteSafetensors(path, sample.tensors, metadata).ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->metadata(), metadata);
  std::vector<std::string> expected_names;
  for (size_t i = 0; i < sample.tensors.size(); ++i) {
    const TensorToWrite& tensor = sample.tensors[i];
    SCOPED_TRACE(tensor.name);
    const TensorView* view = (*file)->Find(tensor.name);
    ASSERT_NE(view, nullptr);
    EXPECT_EQ(view->dtype, tensor.dtype);
    EXPECT_EQ(view->shape, tensor.shape);
    EXPECT_EQ(ViewBytes(*view), sample.storage[i]);
    expected_names.push_back(tensor.name);
  }
  // Data is written in the given order, which is the file's storage order.
  EXPECT_THAT((*file)->names(), ElementsAreArray(expected_names));
  EXPECT_EQ((*file)->Find("t5.I32")->num_elements(), 1);  // scalar
  EXPECT_EQ((*file)->Find("t8.U8")->num_elements(), 0);
  EXPECT_EQ((*file)->Find("t8.U8")->num_bytes, 0u);
  // The header is padded so that data starts 8-byte aligned.
  EXPECT_EQ(reinterpret_cast<uintptr_t>((*file)->Find("t0.F64")->data) % 8, 0u);
}

TEST(SafetensorsWriteTest, EmptyFileRoundTrips) {
  TempDir dir;
  ASSERT_TRUE(WriteSafetensors(dir.File("empty.safetensors"), {}).ok());
  auto file = SafetensorsFile::Open(dir.File("empty.safetensors"));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE((*file)->names().empty());
  EXPECT_TRUE((*file)->metadata().empty());
}

TEST(SafetensorsWriteTest, RejectsBadTensors) {
  TempDir dir;
  const std::string path = dir.File("bad.safetensors");
  const float value = 1.0f;
  const std::vector<std::vector<TensorToWrite>> bad = {
      {{"w", DType::kF32, {1}, &value}, {"w", DType::kF32, {1}, &value}},
      {{"w", DType::kF32, {-1}, &value}},
      {{"", DType::kF32, {1}, &value}},
      {{"__metadata__", DType::kF32, {1}, &value}},
      {{"w", DType::kF32, {1}, nullptr}},
  };
  for (const auto& tensors : bad) {
    absl::Status status = WriteSafetensors(path, tensors);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(status.message(), ::testing::HasSubstr(path));
  }
  EXPECT_EQ(WriteSafetensors(dir.File("no/such/dir.safetensors"), {}).code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace triad::io
