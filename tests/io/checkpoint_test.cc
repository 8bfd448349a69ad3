// Checkpoint: single-file and sharded model folders, and every cross-file error.
#include <algorithm>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/io/safetensors.h"
#include "tests/io/io_test_util.h"

namespace triad::io {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::ModelsDir;
using testing::TempDir;
using ::testing::UnorderedElementsAreArray;
using testing::ViewBytes;
using testing::WriteBytes;

TEST(CheckpointTest, OpensSingleFile) {
  const std::string dir = ModelsDir() + "/llama-tiny";
  auto checkpoint = Checkpoint::Open(dir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_EQ((*checkpoint)->names().size(), 21u);
  const TensorView* embed = (*checkpoint)->Find("model.embed_tokens.weight");
  ASSERT_NE(embed, nullptr);
  EXPECT_EQ(embed->shape, (std::vector<int64_t>{1000, 64}));
  EXPECT_EQ((*checkpoint)->FileOf("model.embed_tokens.weight"), dir + "/model.safetensors");
  EXPECT_EQ((*checkpoint)->FileOf("absent"), "");
  EXPECT_EQ((*checkpoint)->Find("absent"), nullptr);
  EXPECT_EQ((*checkpoint)->metadata().at("format"), "pt");
}

TEST(CheckpointTest, ShardedMatchesSingleFile) {
  auto single = Checkpoint::Open(ModelsDir() + "/llama-tiny");
  auto sharded = Checkpoint::Open(ModelsDir() + "/llama-tiny-sharded");
  ASSERT_TRUE(single.ok()) << single.status();
  ASSERT_TRUE(sharded.ok()) << sharded.status();
  EXPECT_THAT((*sharded)->names(), UnorderedElementsAreArray((*single)->names()));
  for (const std::string& name : (*single)->names()) {
    SCOPED_TRACE(name);
    const TensorView* a = (*single)->Find(name);
    const TensorView* b = (*sharded)->Find(name);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(a->dtype, b->dtype);
    EXPECT_EQ(a->shape, b->shape);
    EXPECT_EQ(ViewBytes(*a), ViewBytes(*b));
    (*sharded)->Release(name);
    EXPECT_EQ(ViewBytes(*a), ViewBytes(*b));  // still readable after Release
  }
  EXPECT_THAT((*sharded)->FileOf("model.norm.weight"),
              HasSubstr("llama-tiny-sharded/model-00003-of-00003.safetensors"));
  EXPECT_EQ((*sharded)->metadata().at("total_size"), "881920");
}

// A scratch model folder with small shards written by WriteSafetensors.
class ShardedFolderTest : public ::testing::Test {
 protected:
  void WriteShard(const std::string& file, const std::vector<std::string>& tensors) {
    std::vector<TensorToWrite> to_write;
    for (const std::string& name : tensors) to_write.push_back({name, DType::kF32, {2}, data_});
    ASSERT_TRUE(WriteSafetensors(dir_.File(file), to_write).ok());
  }
  void WriteIndex(const std::string& json) {
    WriteBytes(dir_.File("model.safetensors.index.json"), json);
  }
  absl::Status OpenStatus() { return Checkpoint::Open(dir_.path()).status(); }
  std::string IndexPath() { return dir_.File("model.safetensors.index.json"); }

  TempDir dir_;
  const float data_[2] = {1.0f, 2.0f};
};

TEST_F(ShardedFolderTest, OpensValidShards) {
  WriteShard("a.safetensors", {"x", "y"});
  WriteShard("b.safetensors", {"z"});
  WriteIndex(R"({"metadata":{"total_size":24,"note":"n"},
                 "weight_map":{"x":"a.safetensors","y":"a.safetensors","z":"b.safetensors"}})");
  auto checkpoint = Checkpoint::Open(dir_.path());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_EQ((*checkpoint)->names(), (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_EQ((*checkpoint)->FileOf("z"), dir_.File("b.safetensors"));
  EXPECT_EQ((*checkpoint)->metadata().at("note"), "n");
}

TEST_F(ShardedFolderTest, MissingShard) {
  WriteShard("a.safetensors", {"x"});
  WriteIndex(R"({"weight_map":{"x":"a.safetensors","y":"gone.safetensors"}})");
  absl::Status status = OpenStatus();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr(IndexPath()), HasSubstr("gone.safetensors"), HasSubstr("'y'")));
}

TEST_F(ShardedFolderTest, TensorAbsentFromItsShard) {
  WriteShard("a.safetensors", {"x"});
  WriteShard("b.safetensors", {"z"});
  WriteIndex(R"({"weight_map":{"x":"a.safetensors","y":"b.safetensors","z":"b.safetensors"}})");
  absl::Status status = OpenStatus();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), AllOf(HasSubstr(IndexPath()), HasSubstr("'y'"),
                                      HasSubstr(dir_.File("b.safetensors"))));
}

TEST_F(ShardedFolderTest, TensorInTwoShards) {
  WriteShard("a.safetensors", {"x", "y"});
  WriteShard("b.safetensors", {"y", "z"});
  WriteIndex(R"({"weight_map":{"x":"a.safetensors","y":"a.safetensors","z":"b.safetensors"}})");
  absl::Status status = OpenStatus();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), AllOf(HasSubstr("'y'"), HasSubstr(dir_.File("a.safetensors")),
                                      HasSubstr(dir_.File("b.safetensors"))));
}

TEST_F(ShardedFolderTest, ShardTensorMissingFromWeightMap) {
  WriteShard("a.safetensors", {"x", "stray"});
  WriteIndex(R"({"weight_map":{"x":"a.safetensors"}})");
  absl::Status status = OpenStatus();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), AllOf(HasSubstr("'stray'"), HasSubstr(dir_.File("a.safetensors")),
                                      HasSubstr("weight_map")));
}

TEST_F(ShardedFolderTest, CorruptShardNamesTheShard) {
  WriteBytes(dir_.File("a.safetensors"), "garbage!!");
  WriteIndex(R"({"weight_map":{"x":"a.safetensors"}})");
  EXPECT_THAT(OpenStatus().message(), HasSubstr(dir_.File("a.safetensors")));
}

TEST_F(ShardedFolderTest, BadIndexes) {
  WriteShard("a.safetensors", {"x"});
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"weight_map\":", "not valid JSON"},
      {"[]", "must be a JSON object"},
      {"{}", "'weight_map'"},
      {R"({"weight_map":[]})", "'weight_map'"},
      {R"({"weight_map":{"x":1}})", "'x'"},
      {R"({"weight_map":{"x":"../a.safetensors"}})", "../a.safetensors"},
      {R"({"metadata":[],"weight_map":{"x":"a.safetensors"}})", "'metadata'"},
      {R"({"weight_map":{"x":"a.safetensors","x":"a.safetensors"}})", "twice"},
  };
  for (const auto& [json, expected] : cases) {
    SCOPED_TRACE(json);
    WriteIndex(json);
    absl::Status status = OpenStatus();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(status.message(), AllOf(HasSubstr(IndexPath()), HasSubstr(expected)));
  }
}

TEST(CheckpointFolderTest, FolderWithNeitherFile) {
  TempDir dir;
  absl::Status status = Checkpoint::Open(dir.path()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), AllOf(HasSubstr(dir.path()), HasSubstr("model.safetensors"),
                                      HasSubstr("model.safetensors.index.json")));
  EXPECT_THAT(status.message(), ::testing::Not(HasSubstr("pickle")));

  WriteBytes(dir.File("pytorch_model.bin"), "PK");
  status = Checkpoint::Open(dir.path()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), AllOf(HasSubstr(dir.path()), HasSubstr("pytorch_model.bin"),
                                      HasSubstr("not supported")));
}

TEST(CheckpointFolderTest, MissingFolder) {
  TempDir dir;
  const std::string missing = dir.File("nope");
  absl::Status status = Checkpoint::Open(missing).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr(missing));
}

TEST(CheckpointFolderTest, SingleFileWinsOverIndex) {
  TempDir dir;
  const float value = 3.0f;
  ASSERT_TRUE(
      WriteSafetensors(dir.File("model.safetensors"), {{"w", DType::kF32, {1}, &value}}).ok());
  WriteBytes(dir.File("model.safetensors.index.json"), "not even json");
  auto checkpoint = Checkpoint::Open(dir.path());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_EQ((*checkpoint)->names(), std::vector<std::string>{"w"});
}

}  // namespace
}  // namespace triad::io
