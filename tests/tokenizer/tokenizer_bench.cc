// tokenizer-bench: single-thread encode and decode throughput of triad_tokenizer, printed as
// JSON. Not a test (timings depend on the machine).
//
// Inputs: 1 MB of English (Debian's license and copyright texts, in a fixed order) and 1 MB
// of mixed CJK/emoji/non-Latin text (the fixture texts that contain characters above U+2E80
// or emoji, repeated). Usage:
//   tokenizer-bench [--fixtures DIR] [--tokenizers llama3,llama2,t5-tiny] [--repeat N]
//                   [--write-inputs DIR]   (also writes english.txt and mixed.txt there, to
//                                           time other tokenizers on the same bytes)
#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "model/tokenizer/tokenizer.h"
#include "tests/tokenizer/fixture_cases.h"

namespace triad::tokenizer {
namespace {

constexpr size_t kInputBytes = 1 << 20;

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Cuts `text` to at most `bytes` at a character boundary.
std::string Truncate(std::string text, size_t bytes) {
  if (text.size() <= bytes) return text;
  size_t end = bytes;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  text.resize(end);
  return text;
}

std::string EnglishText() {
  std::vector<std::filesystem::path> files;
  for (const char* dir : {"/usr/share/common-licenses", "/usr/share/doc"}) {
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
         it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      const auto name = it->path().filename().string();
      if (it->is_regular_file() && (std::string(dir) != "/usr/share/doc" || name == "copyright")) {
        files.push_back(it->path());
      }
    }
  }
  std::sort(files.begin(), files.end());
  std::string text;
  for (size_t i = 0; text.size() < kInputBytes && !files.empty(); ++i) {
    std::ifstream in(files[i % files.size()]);
    std::ostringstream s;
    s << in.rdbuf();
    text += s.str();
  }
  return Truncate(std::move(text), kInputBytes);
}

std::string MixedText() {
  std::string unit;
  for (const auto& c : testing::LoadCases("llama3")) {
    const bool wide = std::any_of(c.text.begin(), c.text.end(), [](char ch) {
      return static_cast<unsigned char>(ch) >= 0xE2;  // lead bytes of U+2000 and above
    });
    if (wide) unit += c.text + "\n";
  }
  std::string text;
  while (!unit.empty() && text.size() < kInputBytes) text += unit;
  return Truncate(std::move(text), kInputBytes);
}

// Best-of-`repeat` throughput of `fn` over `bytes` bytes, in MB/s (1 MB = 2^20 bytes).
template <typename Fn>
double BestMbps(int repeat, size_t bytes, Fn fn) {
  double best = 1e30;
  for (int i = 0; i < repeat; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, Seconds(start));
  }
  return static_cast<double>(bytes) / (1 << 20) / best;
}

nlohmann::json BenchOne(const std::string& folder, const std::string& english,
                        const std::string& mixed, int repeat) {
  nlohmann::json out;
  const auto load_start = std::chrono::steady_clock::now();
  auto t = Tokenizer::FromDir(testing::TokenizerDir(folder));
  out["load_ms"] = Seconds(load_start) * 1000;
  if (!t.ok()) {
    out["error"] = std::string(t.status().message());
    return out;
  }
  const Tokenizer& tokenizer = **t;
  for (const auto& [name, text] : {std::pair<const char*, const std::string*>{"english", &english},
                                   {"mixed_cjk_emoji", &mixed}}) {
    std::vector<int32_t> ids;
    const double encode =
        BestMbps(repeat, text->size(), [&] { ids = *tokenizer.EncodeIds(*text, false); });
    const double encode_full =
        BestMbps(repeat, text->size(), [&] { (void)*tokenizer.Encode(*text, false); });
    std::string decoded;
    const double decode =
        BestMbps(repeat, text->size(), [&] { decoded = *tokenizer.Decode(ids, false); });
    out[name] = {{"bytes", text->size()},     {"tokens", ids.size()},
                 {"encode_ids_MBps", encode}, {"encode_with_tokens_MBps", encode_full},
                 {"decode_MBps", decode},     {"roundtrip_exact", decoded == *text}};
  }
  return out;
}

}  // namespace
}  // namespace triad::tokenizer

int main(int argc, char** argv) {
  std::string names = "llama3,llama2,t5-tiny";
  int repeat = 5;
  std::string inputs_dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--fixtures") == 0) setenv("TRIAD_TOKENIZER_FIXTURES", argv[i + 1], 1);
    if (std::strcmp(argv[i], "--tokenizers") == 0) names = argv[i + 1];
    if (std::strcmp(argv[i], "--repeat") == 0) repeat = std::max(1, std::atoi(argv[i + 1]));
    if (std::strcmp(argv[i], "--write-inputs") == 0) inputs_dir = argv[i + 1];
  }
  const std::string english = triad::tokenizer::EnglishText();
  const std::string mixed = triad::tokenizer::MixedText();
  if (!inputs_dir.empty()) {
    std::ofstream(inputs_dir + "/english.txt", std::ios::binary) << english;
    std::ofstream(inputs_dir + "/mixed.txt", std::ios::binary) << mixed;
  }
  nlohmann::json report = {{"threads", 1}, {"repeat", repeat}};
  for (const std::string& folder : std::vector<std::string>(absl::StrSplit(names, ','))) {
    report["tokenizers"][folder] = triad::tokenizer::BenchOne(folder, english, mixed, repeat);
  }
  std::cout << report.dump(2) << std::endl;
  return 0;
}
