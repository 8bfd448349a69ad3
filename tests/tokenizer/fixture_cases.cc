#include "tests/tokenizer/fixture_cases.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

namespace triad::tokenizer::testing {

std::string FixtureDir() {
  const char* env = std::getenv("TRIAD_TOKENIZER_FIXTURES");
  if (env != nullptr && *env != '\0') return env;
  return TRIAD_TOKENIZER_DATA_DIR;
}

std::string TokenizerDir(const std::string& folder) {
  const std::string dir = FixtureDir() + "/" + folder;
  for (const char* file : {"tokenizer.json", "tokenizer.model", "spiece.model"}) {
    if (std::filesystem::exists(dir + "/" + file)) return dir;
  }
  return TRIAD_TOKENIZER_DATA_DIR "/" + folder;
}

std::vector<std::string> FixtureFolders() {
  std::vector<std::string> folders;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(FixtureDir(), ec)) {
    if (std::filesystem::exists(entry.path() / "cases.jsonl")) {
      folders.push_back(entry.path().filename().string());
    }
  }
  std::sort(folders.begin(), folders.end());
  return folders;
}

std::vector<FixtureCase> LoadCases(const std::string& folder) {
  return LoadCasesFile(FixtureDir() + "/" + folder + "/cases.jsonl");
}

std::string RegressionDir() { return TRIAD_TOKENIZER_TEST_DIR "/data/hf_regression"; }

std::vector<std::string> RegressionFolders() {
  std::vector<std::string> folders;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(RegressionDir(), ec)) {
    if (entry.path().extension() == ".jsonl") folders.push_back(entry.path().stem().string());
  }
  std::sort(folders.begin(), folders.end());
  return folders;
}

std::vector<FixtureCase> LoadCasesFile(const std::string& path) {
  std::ifstream in(path);
  std::vector<FixtureCase> cases;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    try {
      const nlohmann::json j = nlohmann::json::parse(line);
      FixtureCase c;
      c.line = number;
      c.text = j.at("text").get<std::string>();
      if (j.contains("pair")) c.pair = j["pair"].get<std::string>();
      c.add_special_tokens = j.at("add_special_tokens").get<bool>();
      c.ids = j.at("ids").get<std::vector<int32_t>>();
      c.tokens = j.at("tokens").get<std::vector<std::string>>();
      if (j.contains("type_ids")) c.type_ids = j["type_ids"].get<std::vector<int32_t>>();
      c.decoded = j.at("decoded").get<std::string>();
      c.decoded_skip_special = j.at("decoded_skip_special").get<std::string>();
      cases.push_back(std::move(c));
    } catch (const nlohmann::json::exception& e) {
      std::cerr << path << ":" << number << ": malformed case: " << e.what() << "\n";
      std::abort();
    }
  }
  return cases;
}

std::string Abbreviate(const std::string& text) {
  std::string out = nlohmann::json(text).dump();  // escapes controls, keeps it on one line
  if (out.size() > 120) out = out.substr(0, 100) + "...(" + std::to_string(text.size()) + " B)";
  return out;
}

}  // namespace triad::tokenizer::testing
