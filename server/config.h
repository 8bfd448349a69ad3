// The triadd configuration: what the daemon serves and how (ServerConfig), read from a JSON
// file (ParseServerConfig / LoadServerConfig) and merged with command-line flags
// (ConfigFromFlags). Owns only parsing and validation: it checks that each model folder exists
// and holds config.json, but loads nothing and does not check that a CUDA device exists (the
// model loader's job). No LibTorch, no gRPC.
//
// Thread contract: plain values with no shared state; the functions are thread-safe and read
// only the files they are given (and the model folders they check).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace triad {

// Overrides of one Classify task of a model (JSON object under classify.tasks.<task>, task one
// of "entailment", "similarity", "multiple_choice", "single"). Unset / empty = the default
// for the model's family (see server/classify_tasks.cc).
struct TaskConfig {
  bool enabled = true;               // false: the model does not serve this task
  std::string preset;                // T5 published task: "mnli", "rte", "cb" (entailment),
                                     // "stsb", "mrpc", "qqp" (similarity), "sst2", "cola"
                                     // (single), "copa" (multiple_choice); "" = the default
  std::string prompt_template;       // JSON key "template"; placeholders {premise} {hypothesis}
                                     // {text_a} {text_b} {context} {text}, each the task reads
                                     // required; multiple_choice may add {question}, and with
                                     // fixed targets needs {choice1}..{choiceN};
                                     // "" = the preset's / default
  std::vector<std::string> labels;   // label names; empty = default
  std::vector<std::string> targets;  // strings scored per label, same size as labels;
                                     // empty = default (T5: the labels themselves). T5
                                     // multiple_choice: fixed targets, one per choice position
                                     // (copa: "choice1", "choice2"), no labels
  std::string choice_template;       // multiple_choice with LM scoring: how a choice follows
                                     // the prompt, with {choice}; "" = " {choice}"
  std::optional<bool> length_normalize;  // unset = false
  std::optional<bool> regression;        // labels are numbers; unset = the preset's (stsb: true)
};

// How a model serves Classify (JSON object "classify" of a model; every key optional).
struct ClassifyConfig {
  std::map<std::string, TaskConfig> tasks;  // key: task name (see TaskConfig)
  // GPT-1 heads' input transformation tokens (vocabulary strings); "" = looked up in the
  // tokenizer by the usual names (<start>/_start_, <delim>/_delimiter_, <extract>/_classify_).
  std::string start_token, delimiter_token, extract_token;
};

// One served model. JSON keys are the field names.
struct ModelServingConfig {
  std::string name;       // name clients address the model by: [A-Za-z0-9._-]+, unique; required
  std::string path;       // HF model folder (config.json + safetensors); required. The loaders
                          // resolve a relative path against the config file's folder (flags: the
                          // working directory) and store it absolute
  std::string tokenizer;  // tokenizer folder; "" = same as path (the loaders fill it in)
  std::string device = "cpu";          // "cpu", "cuda" or "cuda:N" (N a non-negative integer)
  std::string dtype = "float32";       // "float32", "bfloat16", "float16"
  int64_t max_batch_size = 8;          // sequences decoding together, >= 1
  int64_t max_context = 0;             // positions per sequence (prompt + generated), >= 0;
                                       // 0 = the model's own limit
  int64_t kv_budget_mb = 0;            // KV-cache pool in MiB, >= 0: paged blocks shared by the
                                       // model's sequences (T5: encoder keys too); 0 = room for
                                       // max_batch_size sequences at the full context (2048
                                       // positions where the model has no limit); zeroed
                                       // (committed) when the model loads
  int64_t kv_block_size = 16;          // positions per KV-cache block, 1..1024
  bool prefix_caching = true;          // GPT-1/Llama: reuse cached KV blocks of shared prefixes
  bool cuda_graphs = true;             // on cuda: replay decode-only steps from CUDA graphs
                                       // (no effect elsewhere; README "CUDA graphs")
  int64_t max_queue = 64;              // requests that may wait for a free row (beyond those the
                                       // next step starts) before RESOURCE_EXHAUSTED, >= 0
                                       // (0 = no waiting: a request that cannot start is refused)
  int64_t batch_window_ms = 2;         // ms classification requests wait to form a batch, >= 0;
                                       // 0 = batch only what is already waiting
  int64_t admission_window_ms = 0;     // ms a generation arriving at an idle model waits for
                                       // others to start in the same step (a burst prefilled
                                       // together; ends once they fill a step), >= 0; 0 = none
  int64_t refill_window_ms = 10;       // ms the step after generations finished (others still
                                       // running) waits for as many new ones, a closed-loop
                                       // client's next request, >= 0; 0 = none (README
                                       // "Continuous batching")
  int64_t prefill_chunk_tokens = 256;  // prompt tokens per scheduler step over all sequences, >= 1
                                       // (T5: encoder tokens per admission). About one typical
                                       // prompt keeps arrivals spread over steps (lower p99 TTFT
                                       // in steady state on a CPU); larger batches a burst's
                                       // prefill (README "triad (client)")
  int64_t max_classify_batch = 32;     // Classify items run together in one batch, >= 1
  ClassifyConfig classify;             // JSON "classify"; see ClassifyConfig
};

struct ServerConfig {
  std::string listen = "0.0.0.0:50051";    // gRPC address host:port (IPv6 hosts in brackets),
                                           // port 1..65535
  int metrics_port = 9090;                 // Prometheus /metrics HTTP port, 0..65535, not the gRPC
                                           // port; 0 = disabled
  int threads = 0;                         // LibTorch intra-op threads, 0..kMaxThreads;
                                           // 0 = hardware_concurrency
  int64_t shutdown_grace_ms = 30000;       // ms in-flight requests get after SIGTERM, >= 0;
                                           // 0 = cancel them at once
  std::string request_log = "errors";      // a line per finished call on stderr: "none",
                                           // "errors" (calls ending with a status other than
                                           // OK) or "all" (server/request_log.h)
  std::vector<ModelServingConfig> models;  // at least one; names unique

  // Where the values came from ("deploy/triad.json", "deploy/triad.json + flags", "flags");
  // prefixes every Validate() error. Not a JSON key; "" = no prefix.
  std::string source;

  // Re-checks every field and cross-field rule (used again after flags override the file).
  // INVALID_ARGUMENT naming source and the JSON path of the key, e.g.
  // `deploy/triad.json: models[1].dtype: unsupported "int8" (float32, bfloat16, float16)`.
  absl::Status Validate() const;

  static constexpr int kMaxThreads = 1024;  // a larger value is taken for a typo
};

// Parses JSON text. `source` (the file path) names the file in errors and its folder is the base
// for relative model paths. Unknown keys, wrong types and every rule Validate() checks are
// INVALID_ARGUMENT naming `source` and the key path.
absl::StatusOr<ServerConfig> ParseServerConfig(const std::string& json_text,
                                               const std::string& source);

// Reads and parses the file at `path`: NOT_FOUND when it does not exist, otherwise as
// ParseServerConfig.
absl::StatusOr<ServerConfig> LoadServerConfig(const std::string& path);

// Applies argv-style flags (argv[0] is the program name; `--flag VALUE` or `--flag=VALUE`):
//   --config FILE       the JSON config (required unless --model is given)
//   --listen ADDR       overrides "listen"
//   --metrics-port N    overrides "metrics_port"
//   --threads N         overrides "threads"
//   --request-log L     overrides "request_log"
//   --model NAME=PATH   repeatable; adds a model with defaults after the file's (a relative PATH
//                       resolves against the working directory)
//   --device DEV        every model's "device" (cpu, cuda, cuda:N): one config for CPU and GPU
//                       nodes
//   --dtype DTYPE       every model's "dtype" (float32, bfloat16, float16)
// Returns the merged, validated config. An unknown flag, a missing or malformed value, or a
// positional argument is INVALID_ARGUMENT naming it.
absl::StatusOr<ServerConfig> ConfigFromFlags(int argc, const char* const* argv);

}  // namespace triad
