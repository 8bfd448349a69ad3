#include "tests/model/fixture_util.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "gtest/gtest.h"
#include "model/io/safetensors.h"
#include "model/model.h"

namespace triad::testing {

std::string ModelFixtureRoot() {
  const char* env = std::getenv("TRIAD_MODEL_FIXTURES");
  if (env != nullptr && *env != '\0') return env;
  return std::string(TRIAD_TEST_DATA_DIR) + "/models";
}

std::vector<std::string> ModelFixtureFolders(const std::string& root) {
  std::vector<std::string> folders;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
    if (std::filesystem::exists(entry.path() / "reference.json")) {
      folders.push_back(entry.path().string());
    }
  }
  std::sort(folders.begin(), folders.end());
  return folders;
}

void ForEachFixtureModel(const LoadOptions& load, const std::function<void(const Model&)>& body) {
  for (const std::string& folder : ModelFixtureFolders(ModelFixtureRoot())) {
    SCOPED_TRACE(folder);
    auto model = LoadModel(folder, load);
    EXPECT_TRUE(model.ok()) << model.status();
    if (model.ok()) body(**model);
  }
}

nlohmann::json ReadJsonFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return nlohmann::json::parse(in);
}

namespace {

void Flatten(const nlohmann::json& v, std::vector<double>& values, std::vector<int64_t>& shape,
             size_t depth) {
  if (!v.is_array()) {
    values.push_back(v.get<double>());
    return;
  }
  if (shape.size() == depth) shape.push_back(static_cast<int64_t>(v.size()));
  for (const auto& e : v) Flatten(e, values, shape, depth + 1);
}

at::Tensor FromJson(const nlohmann::json& value) {
  std::vector<double> values;
  std::vector<int64_t> shape;
  Flatten(value, values, shape, 0);
  return at::tensor(values, at::kDouble).view(shape);
}

}  // namespace

at::Tensor IntTensor(const nlohmann::json& value) {
  if (value.is_null()) return at::Tensor();
  return FromJson(value).to(at::kLong);
}

at::Tensor FloatTensor(const nlohmann::json& value) {
  if (value.is_null()) return at::Tensor();
  return FromJson(value).to(at::kFloat);
}

at::Tensor ExpectedTensor(const std::string& folder, const nlohmann::json& value) {
  if (!value.is_string()) return FloatTensor(value);
  const std::string path = folder + "/expected.safetensors";
  auto file = io::SafetensorsFile::Open(path);
  if (!file.ok()) throw std::runtime_error(std::string(file.status().message()));
  const io::TensorView* view = (*file)->Find(value.get<std::string>());
  if (view == nullptr || view->dtype != io::DType::kF32) {
    throw std::runtime_error(path + ": no F32 tensor " + value.get<std::string>());
  }
  return at::from_blob(const_cast<void*>(view->data), view->shape, at::kFloat).clone();
}

double MaxAbsDiff(const at::Tensor& actual, const at::Tensor& expected, const at::Tensor& mask) {
  at::Tensor diff =
      (actual.to(at::kCPU).to(at::kDouble) - expected.to(at::kCPU).to(at::kDouble)).abs();
  if (mask.defined()) diff = diff.index({mask.to(at::kCPU).ne(0)});
  return diff.numel() == 0 ? 0.0 : diff.max().item<double>();
}

at::Tensor RandomTokenIds(at::IntArrayRef shape, int64_t vocab, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return at::randint(3, vocab, shape, gen, at::kLong);
}

double FixtureTolerance(const at::Tensor& expected) {
  return 1e-4 * std::max(1.0, expected.abs().max().item<double>());
}

}  // namespace triad::testing
