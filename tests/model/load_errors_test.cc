// LoadModel failures: every broken checkpoint gives a Status naming the file and, where it
// applies, the tensor or config key; never a crash.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "model/io/safetensors.h"
#include "model/model.h"
#include "tests/remove_tree.h"

namespace triad {
namespace {

namespace fs = std::filesystem;

const fs::path kLlama = fs::path(TRIAD_TEST_DATA_DIR) / "models" / "llama-tiny";

// A scratch copy of llama-tiny whose files a test can break.
class BrokenCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("triad_load_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    triad::testing::RemoveTree(dir_);
    fs::create_directories(dir_);
    for (const char* f : {"config.json", "generation_config.json", "model.safetensors"}) {
      fs::copy_file(kLlama / f, dir_ / f);
    }
  }
  void TearDown() override { triad::testing::RemoveTree(dir_); }

  // Rewrites model.safetensors from llama-tiny's tensors after `edit` may change them.
  template <typename Edit>
  void RewriteWeights(Edit edit) {
    auto source = io::SafetensorsFile::Open((kLlama / "model.safetensors").string());
    ASSERT_TRUE(source.ok()) << source.status();
    std::vector<io::TensorToWrite> tensors;
    for (const std::string& name : (*source)->names()) {
      const io::TensorView* v = (*source)->Find(name);
      tensors.push_back({name, v->dtype, v->shape, v->data});
    }
    edit(tensors);
    ASSERT_TRUE(io::WriteSafetensors((dir_ / "model.safetensors").string(), tensors).ok());
  }

  absl::Status Load(const std::string& dtype = "float32") {
    LoadOptions options;
    options.dtype = dtype;
    return LoadModel(dir_.string(), options).status();
  }

  void ExpectError(const absl::Status& status, absl::StatusCode code,
                   std::initializer_list<std::string> mentions) {
    EXPECT_EQ(status.code(), code) << status;
    for (const std::string& m : mentions) {
      EXPECT_NE(status.message().find(m), std::string::npos) << status << " lacks " << m;
    }
  }

  fs::path dir_;
};

TEST_F(BrokenCheckpoint, IntactCopyLoads) { EXPECT_TRUE(Load().ok()); }

TEST_F(BrokenCheckpoint, MissingConfig) {
  fs::remove(dir_ / "config.json");
  ExpectError(Load(), absl::StatusCode::kNotFound, {"config.json"});
}

TEST_F(BrokenCheckpoint, MissingWeightsFile) {
  fs::remove(dir_ / "model.safetensors");
  ExpectError(Load(), absl::StatusCode::kNotFound, {dir_.string()});
}

TEST_F(BrokenCheckpoint, TruncatedWeights) {
  fs::resize_file(dir_ / "model.safetensors", fs::file_size(dir_ / "model.safetensors") / 2);
  const absl::Status status = Load();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("model.safetensors"), std::string::npos) << status;
}

TEST_F(BrokenCheckpoint, LyingHeaderSize) {
  std::fstream f(dir_ / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
  const uint64_t huge = uint64_t{1} << 40;
  f.write(reinterpret_cast<const char*>(&huge), sizeof(huge));
  f.close();
  const absl::Status status = Load();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("model.safetensors"), std::string::npos) << status;
}

TEST_F(BrokenCheckpoint, UnknownModelType) {
  std::ofstream(dir_ / "config.json") << R"({"model_type": "mamba"})";
  ExpectError(Load(), absl::StatusCode::kInvalidArgument, {"config.json", "model_type", "mamba"});
}

TEST_F(BrokenCheckpoint, MissingTensor) {
  RewriteWeights([](std::vector<io::TensorToWrite>& t) {
    t.erase(std::remove_if(t.begin(), t.end(),
                           [](const auto& x) { return x.name == "model.layers.1.mlp.up_proj.weight"; }),
            t.end());
  });
  ExpectError(Load(), absl::StatusCode::kNotFound, {"model.layers.1.mlp.up_proj.weight"});
}

TEST_F(BrokenCheckpoint, ShapeDisagreesWithConfig) {
  std::vector<float> small(64 * 8, 0.5f);
  RewriteWeights([&](std::vector<io::TensorToWrite>& t) {
    for (auto& x : t) {
      if (x.name == "model.layers.0.self_attn.k_proj.weight") {
        x.shape = {8, 64};
        x.data = small.data();
      }
    }
  });
  ExpectError(Load(), absl::StatusCode::kInvalidArgument,
              {"model.safetensors", "model.layers.0.self_attn.k_proj.weight", "[8, 64]", "[32, 64]"});
}

TEST_F(BrokenCheckpoint, UnsupportedDtype) {
  std::vector<int8_t> bytes(64, 1);
  RewriteWeights([&](std::vector<io::TensorToWrite>& t) {
    for (auto& x : t) {
      if (x.name == "model.norm.weight") {
        x.dtype = io::DType::kI8;
        x.data = bytes.data();
      }
    }
  });
  ExpectError(Load(), absl::StatusCode::kInvalidArgument,
              {"model.safetensors", "model.norm.weight", "I8"});
}

TEST_F(BrokenCheckpoint, Bf16AndF16StoredWeightsConvert) {
  // Half-precision checkpoints load into every serving dtype.
  std::vector<std::vector<uint16_t>> store;
  auto source = io::SafetensorsFile::Open((kLlama / "model.safetensors").string());
  ASSERT_TRUE(source.ok());
  RewriteWeights([&](std::vector<io::TensorToWrite>& t) {
    store.reserve(t.size());
    for (auto& x : t) {
      const float* f = static_cast<const float*>(x.data);
      std::vector<uint16_t> half(static_cast<size_t>((*source)->Find(x.name)->num_elements()));
      for (size_t i = 0; i < half.size(); ++i) {
        uint32_t bits;
        std::memcpy(&bits, &f[i], 4);
        half[i] = static_cast<uint16_t>(bits >> 16);  // truncation is fine for a load test
      }
      store.push_back(std::move(half));
      x.dtype = io::DType::kBF16;
      x.data = store.back().data();
    }
  });
  EXPECT_TRUE(Load("float32").ok());
  EXPECT_TRUE(Load("bfloat16").ok());
  EXPECT_TRUE(Load("float16").ok());
}

TEST(LoadOptionsTest, BadDeviceAndDtypeNameTheField) {
  LoadOptions options;
  options.dtype = "int4";
  auto status = LoadModel(kLlama.string(), options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("dtype"), std::string::npos) << status;
  options = LoadOptions();
  options.device = "tpu";
  status = LoadModel(kLlama.string(), options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("device"), std::string::npos) << status;
  options.device = "cuda:7";  // absent on CPU machines, and on most GPU machines
  status = LoadModel(kLlama.string(), options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
}

}  // namespace
}  // namespace triad
