// Fuzz target: ParseServerConfig, triadd's config file (seeded with deploy/*.json, parsed as
// if it were deploy/fuzz.json so that the shipped configs' relative model paths resolve). A
// file must parse or give INVALID_ARGUMENT naming the file, never crash or throw; one that
// parses must pass Validate() again (the flags path re-validates) and have the limits the
// scheduler divides and allocates by.
#include <cstdint>
#include <string>

#include "server/config.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string json(reinterpret_cast<const char*>(data), size);
  static const std::string source = std::string(TRIAD_TEST_DATA_DIR) + "/../../deploy/fuzz.json";
  auto config = triad::ParseServerConfig(json, source);
  if (!config.ok()) {
    FUZZ_CHECK(config.status().code() == absl::StatusCode::kInvalidArgument,
               "%s", config.status().ToString().c_str());
    FUZZ_CHECK(config.status().message().find(source) != std::string::npos,
               "error does not name the file: %s", std::string(config.status().message()).c_str());
    return 0;
  }
  FUZZ_ACCEPTED();
  FUZZ_CHECK(config->Validate().ok(), "parsed but Validate fails: %s",
             config->Validate().ToString().c_str());
  for (const auto& m : config->models) {
    FUZZ_CHECK(!m.name.empty() && !m.path.empty(), "a model without name or path");
    FUZZ_CHECK(m.max_batch_size >= 1 && m.kv_block_size >= 1 && m.max_queue >= 0 &&
                   m.max_context >= 0 && m.kv_budget_mb >= 0,
               "model %s: a limit out of range", m.name.c_str());
  }
  return 0;
}
