// Random-weight checkpoints in Hugging Face layout for the benchmark: the real shapes of
// GPT-1, T5-small, a 110M Llama and TinyLlama-1.1B, written as config.json + model.safetensors
// so that the benchmark measures the real loading path (mmap, convert, release). "gpt1-cls",
// GPT-1 with a 3-label sequence-classification head, exists to be served by triadd for the
// Classify load test (`triad bench --task`); it is not measured by default.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace triad::bench {

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  bool streamed_per_decode_step;  // read by every decode step (weights of the decode path)
  float scale;                    // uniform(-scale, scale); 0 means a norm weight of 1.0
};

struct ModelSpec {
  std::string name;         // one of BenchmarkModelNames(), or "gpt1-cls"
  std::string config_json;  // HF config.json text
  std::vector<TensorSpec> tensors;
  int64_t vocab_size = 0;
  bool encoder_decoder = false;
};

// The spec of one of the benchmark shapes (BenchmarkModelNames() or "gpt1-cls"); an empty
// name for an unknown one.
ModelSpec BenchmarkModel(const std::string& name);
// The shapes triad-bench measures by default (every name but "gpt1-cls").
std::vector<std::string> BenchmarkModelNames();

// Writes `spec` into `dir` with weights stored as bfloat16 when `dtype` is "bfloat16" and as
// float32 otherwise (a float16 run converts them at load), unless `dir` already holds a
// complete copy. Deterministic (fixed seed).
absl::Status WriteRandomCheckpoint(const ModelSpec& spec, const std::string& dtype,
                                   const std::string& dir);

// Bytes of the tensors a decode step streams, in the given element size.
int64_t StreamedBytes(const ModelSpec& spec, int64_t element_size);

}  // namespace triad::bench
