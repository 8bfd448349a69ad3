// Reading tokenizer golden fixtures (tests/data/tokenizers/<folder>/cases.jsonl, format in
// tests/data/tokenizers/README.md). The directory is TRIAD_TOKENIZER_FIXTURES when set, else
// TRIAD_TOKENIZER_DATA_DIR (the build tree's unpacked copy of tests/data/tokenizers).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace triad::tokenizer::testing {

struct FixtureCase {
  int line = 0;  // 1-based line in cases.jsonl
  std::string text;
  std::optional<std::string> pair;
  bool add_special_tokens = false;
  std::vector<int32_t> ids;
  std::vector<std::string> tokens;
  std::optional<std::vector<int32_t>> type_ids;
  std::string decoded;
  std::string decoded_skip_special;
};

std::string FixtureDir();
// Where the tokenizer files for `folder` are: FixtureDir()/folder when it has a
// tokenizer.json or .model, else the shared copy under TRIAD_TOKENIZER_DATA_DIR (so a directory of
// other cases.jsonl files for the same tokenizers needs no tokenizer files of its own).
std::string TokenizerDir(const std::string& folder);
// Sub-folders of FixtureDir() that hold a cases.jsonl, sorted.
std::vector<std::string> FixtureFolders();
// All cases of `folder` (a name under FixtureDir()); aborts the test run on a malformed line
// rather than skipping it.
std::vector<FixtureCase> LoadCases(const std::string& folder);
// The same for any file in the cases.jsonl format.
std::vector<FixtureCase> LoadCasesFile(const std::string& path);
// Our own HF-generated regression cases: tests/tokenizer/data/hf_regression/<folder>.jsonl,
// for the tokenizer in FixtureDir()/<folder> (generator: tests/tokenizer/tools/).
std::string RegressionDir();
std::vector<std::string> RegressionFolders();
// `text` shortened for failure messages.
std::string Abbreviate(const std::string& text);

}  // namespace triad::tokenizer::testing
