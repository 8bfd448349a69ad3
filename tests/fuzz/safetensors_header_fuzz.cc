// Fuzz target: ParseSafetensorsHeader, the validator every checkpoint goes through before its
// data is touched. Input: 2 bytes of data-section size (0..65535), then the JSON header. A
// header must be accepted or refused with a status naming the file, never crash; an accepted
// one must satisfy what the loader relies on: each tensor's span is its element count times
// its dtype size, and the spans, in order, tile [0, data size) with no gap or overlap.
#include <cstdint>
#include <string>
#include <string_view>

#include "model/io/safetensors_header.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint64_t data_size = data[0] | data[1] << 8;
  const std::string_view json(reinterpret_cast<const char*>(data + 2), size - 2);
  auto header = triad::io::ParseSafetensorsHeader("fuzz.safetensors", json, data_size);
  if (!header.ok()) {
    FUZZ_CHECK(header.status().message().find("fuzz.safetensors") != std::string_view::npos,
               "error does not name the file: %s", std::string(header.status().message()).c_str());
    return 0;
  }
  FUZZ_ACCEPTED();
  uint64_t at = 0;
  for (const auto& t : header->tensors) {
    uint64_t elements = 1;
    for (int64_t d : t.shape) {
      FUZZ_CHECK(d >= 0, "%s: negative dimension", t.name.c_str());
      elements *= static_cast<uint64_t>(d);
    }
    FUZZ_CHECK(t.begin == at, "%s: begins at %llu, previous ends at %llu", t.name.c_str(),
               static_cast<unsigned long long>(t.begin), static_cast<unsigned long long>(at));
    FUZZ_CHECK(t.end - t.begin == elements * triad::io::DTypeSize(t.dtype),
               "%s: span disagrees with shape x dtype", t.name.c_str());
    at = t.end;
  }
  FUZZ_CHECK(at == data_size, "spans end at %llu, data is %llu bytes",
             static_cast<unsigned long long>(at), static_cast<unsigned long long>(data_size));
  return 0;
}
