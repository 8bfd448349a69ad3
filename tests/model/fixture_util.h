// Helpers for the data-driven model fixture tests: locating fixture folders, reading
// reference.json and expected.safetensors, and comparing tensors with the fixture tolerance.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace triad {
class Model;
struct LoadOptions;
}  // namespace triad

namespace triad::testing {

// $TRIAD_MODEL_FIXTURES if set, else tests/data/models.
std::string ModelFixtureRoot();
// Every sub-folder of `root` holding a reference.json, sorted.
std::vector<std::string> ModelFixtureFolders(const std::string& root);

// Loads the model of every fixture folder (ModelFixtureFolders(ModelFixtureRoot())) with `load`
// and runs `body` on it under a SCOPED_TRACE naming the folder. A folder whose model does not
// load fails the test and is skipped.
void ForEachFixtureModel(const LoadOptions& load, const std::function<void(const Model&)>& body);

nlohmann::json ReadJsonFile(const std::string& path);

// A nested JSON list of integers as an int64 tensor; JSON null gives an undefined tensor.
at::Tensor IntTensor(const nlohmann::json& value);
// Same for numbers, as float32.
at::Tensor FloatTensor(const nlohmann::json& value);

// An expected tensor: `value` names a tensor in <folder>/expected.safetensors, or is inline.
at::Tensor ExpectedTensor(const std::string& folder, const nlohmann::json& value);

// max |a - b| (float64, on the CPU wherever a and b live), after broadcasting; `mask`
// (optional, [B, T]) selects positions of [B, T, ...] tensors to compare.
double MaxAbsDiff(const at::Tensor& actual, const at::Tensor& expected,
                  const at::Tensor& mask = at::Tensor());

// Deterministic random token ids in [3, vocab) of `shape` (ids 0-2 are often special).
at::Tensor RandomTokenIds(at::IntArrayRef shape, int64_t vocab, uint64_t seed);

// The fixture tolerance: 1e-4 * max(1, max|expected|).
double FixtureTolerance(const at::Tensor& expected);

}  // namespace triad::testing
