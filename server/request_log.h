// RequestLog: one line per finished RPC on stderr, for the pod's log: which calls failed and
// why, or (level "all") every call with its timings, as TGI and vLLM log their requests. Lines
// are logfmt (`key=value`, a value with spaces, quotes or control bytes quoted and escaped), so
// log pipelines (Loki, Cloud Logging, `grep`) can parse them:
//
//   triadd: request rpc=Generate model=llama code=OK ms=84.2 peer=ipv4:127.0.0.1:53126
//       prompt_tokens=5 cached_prompt_tokens=0 generated_tokens=16 queue_ms=0.3 ttft_ms=21.7
//       finish=length
//   triadd: request rpc=Generate model=llama code=INVALID_ARGUMENT ms=0.1 peer=...
//       error="sampling.temperature: must be >= 0"
//
// (one line each). Which calls are written is ServerConfig::request_log. No gRPC, no LibTorch.
//
// Thread contract: a RequestLog is immutable; Record may be called from any thread, and writes
// each line with one fwrite, which stdio locks against the other threads' lines.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include "absl/status/status.h"

namespace triad {

enum class RequestLogLevel {
  kNone,    // nothing
  kErrors,  // calls that end with a status other than OK (bad input, cancel, deadline, ...)
  kAll,     // every call
};

// "none", "errors" or "all"; nullopt for anything else. Inline so that the config's
// validation (triad_config, which does not link this library) reads the same names.
inline std::optional<RequestLogLevel> ParseRequestLogLevel(const std::string& name) {
  if (name == "none") return RequestLogLevel::kNone;
  if (name == "errors") return RequestLogLevel::kErrors;
  if (name == "all") return RequestLogLevel::kAll;
  return std::nullopt;
}

// What a generation call adds to its line (from its Completion).
struct GenerationLogFields {
  int64_t prompt_tokens = 0;
  int64_t cached_prompt_tokens = 0;  // of prompt_tokens, from the prefix cache
  int64_t generated_tokens = 0;
  double queue_seconds = 0;          // accepted -> admitted
  double first_token_seconds = 0;    // accepted -> first token; 0 = none
  std::string finish_reason;         // "length", "eos", "stop", "cancelled", "deadline", "error"
};

struct RequestLogEntry {
  std::string rpc;     // "Generate", "GenerateStream", "Classify", ...
  std::string model;   // the served model the call named; "" when none or not served
  std::string peer;    // gRPC's peer, e.g. "ipv4:127.0.0.1:53126"
  absl::StatusCode code = absl::StatusCode::kOk;
  std::string message;  // the status message; empty for OK
  double seconds = 0;   // the call's start -> its final status
  std::optional<GenerationLogFields> generation;
};

// Error messages longer than this are cut (at a UTF-8 boundary) and end in "...": a message
// may quote what the client sent.
inline constexpr size_t kMaxLoggedMessageBytes = 512;

// The entry's line, without the newline.
std::string FormatRequestLine(const RequestLogEntry& entry);

class RequestLog {
 public:
  // Lines go to `out` (not owned; stderr by default).
  explicit RequestLog(RequestLogLevel level, std::FILE* out = stderr)
      : level_(level), out_(out) {}

  // Whether a call ending with `code` is written (callers skip building the entry otherwise).
  bool Wants(absl::StatusCode code) const {
    return level_ == RequestLogLevel::kAll ||
           (level_ == RequestLogLevel::kErrors && code != absl::StatusCode::kOk);
  }
  // Writes the entry's line when Wants(entry.code).
  void Record(const RequestLogEntry& entry) const;

 private:
  RequestLogLevel level_;
  std::FILE* out_;
};

}  // namespace triad
