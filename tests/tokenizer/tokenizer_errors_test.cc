// Bad input: invalid UTF-8, malformed or unsupported tokenizer files (the error must name the
// component and JSON path), and very large inputs (no quadratic behaviour).
#include <chrono>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "model/tokenizer/tokenizer.h"
#include "tests/tokenizer/fixture_cases.h"

namespace triad::tokenizer {
namespace {

using Json = nlohmann::json;

std::unique_ptr<Tokenizer> Load(const std::string& folder) {
  auto t = Tokenizer::FromDir(testing::TokenizerDir(folder));
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

TEST(TokenizerBadInput, InvalidUtf8IsAnErrorNotDifferentIds) {
  auto tokenizer = Load("llama3");
  ASSERT_NE(tokenizer, nullptr);
  for (const std::string& bad :
       {std::string("abc\xFF"), std::string("\xE4\xB8"), std::string("x\xED\xA0\x80y"),
        std::string("\xC0\xAF"), std::string("\xF4\x90\x80\x80"), std::string("a\x80")}) {
    const auto encoded = tokenizer->Encode(bad, true);
    ASSERT_FALSE(encoded.ok()) << testing::Abbreviate(bad);
    EXPECT_EQ(encoded.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(encoded.status().message(), "UTF-8")) << encoded.status();
    EXPECT_FALSE(tokenizer->EncodeIds(bad, false).ok());
    EXPECT_FALSE(tokenizer->EncodePair("ok", bad, true).ok());
    EXPECT_FALSE(tokenizer->EncodePair(bad, "ok", true).ok());
  }
  // The same bytes made valid encode fine: the error is about the bytes, not the content.
  EXPECT_TRUE(tokenizer->Encode("abc\xC3\xBF", true).ok());
}

// A minimal valid tokenizer.json (WordPiece) that the cases below break one field at a time.
Json MinimalJson() {
  return Json::parse(R"({
    "version": "1.0", "added_tokens": [], "normalizer": null, "post_processor": null,
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "WhitespaceSplit"},
        {"type": "Split", "pattern": {"Regex": "\\d"}, "behavior": "Isolated", "invert": false}]},
    "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
              "max_input_chars_per_word": 100,
              "vocab": {"[UNK]": 0, "un": 1, "##aff": 2, "##able": 3, "1": 4}}})");
}

// Loads `json` and expects failure with `code` and a message naming every `fragments` item.
void ExpectLoadError(const Json& json, absl::StatusCode code,
                     std::initializer_list<const char*> fragments) {
  const auto t = Tokenizer::FromJsonString(json.dump());
  ASSERT_FALSE(t.ok()) << json.dump().substr(0, 200);
  EXPECT_EQ(t.status().code(), code) << t.status();
  for (const char* f : fragments) {
    EXPECT_TRUE(absl::StrContains(t.status().message(), f)) << t.status() << " lacks " << f;
  }
}

TEST(TokenizerBadFile, MinimalJsonLoadsAndWorks) {
  const auto t = Tokenizer::FromJsonString(MinimalJson().dump());
  ASSERT_TRUE(t.ok()) << t.status();
  const auto e = (*t)->Encode("unaffable 1x", false);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->ids, (std::vector<int32_t>{1, 2, 3, 4, 0}));
  EXPECT_EQ(*(*t)->Decode(e->ids, false), "unaffable 1 [UNK]");
}

TEST(TokenizerBadFile, ErrorsNameComponentAndJsonPath) {
  Json j = MinimalJson();
  j["normalizer"] = {{"type", "Fancy"}};
  ExpectLoadError(j, absl::StatusCode::kUnimplemented, {"/normalizer/type", "Fancy"});

  j = MinimalJson();
  j["pre_tokenizer"]["pretokenizers"][1]["pattern"]["Regex"] = "(unclosed";
  ExpectLoadError(j, absl::StatusCode::kInvalidArgument,
                  {"/pre_tokenizer/pretokenizers/1/pattern/Regex", "(unclosed"});

  j = MinimalJson();
  j["decoder"] = {{"type", "Sequence"}, {"decoders", {{{"type", "CTC"}}}}};
  ExpectLoadError(j, absl::StatusCode::kUnimplemented, {"/decoder/decoders/0/type", "CTC"});

  j = MinimalJson();
  j["model"]["vocab"]["un"] = "one";
  ExpectLoadError(j, absl::StatusCode::kInvalidArgument, {"/model/vocab/un", "integer"});

  j = MinimalJson();
  j["model"]["unk_token"] = "<missing>";
  ExpectLoadError(j, absl::StatusCode::kInvalidArgument, {"/model", "<missing>"});

  j = MinimalJson();
  j["added_tokens"] = {{{"id", 9}, {"content", "<x>"}, {"lstrip", true}}};
  ExpectLoadError(j, absl::StatusCode::kUnimplemented, {"/added_tokens/0/lstrip"});

  j = MinimalJson();
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", {{{"SpecialToken", {{"id", "[CLS]"}, {"type_id", 0}}}}}},
                         {"pair", Json::array()},
                         {"special_tokens", Json::object()}};
  ExpectLoadError(j, absl::StatusCode::kInvalidArgument,
                  {"/post_processor/special_tokens", "[CLS]"});

  j = MinimalJson();
  j.erase("model");
  ExpectLoadError(j, absl::StatusCode::kInvalidArgument, {"/model"});
}

// Ids index dense tables: one far beyond the vocabulary would make the load allocate for it
// (fuzzing found 148M, 4.7 GB), and ids beyond int32 used to wrap to other ids.
TEST(TokenizerBadFile, TokenIdsOutOfRangeAreErrorsNamingThePath) {
  for (const Json& id : {Json(147977905), Json(-1), Json(int64_t{1} << 32), Json(uint64_t{1} << 63),
                         Json(4194304)}) {
    Json j = MinimalJson();
    j["model"]["vocab"]["un"] = id;
    ExpectLoadError(j, absl::StatusCode::kInvalidArgument,
                    {"/model/vocab/un", "token id", id.dump().c_str()});

    j = MinimalJson();
    j["added_tokens"] = {{{"id", id}, {"content", "<x>"}}};
    ExpectLoadError(j, absl::StatusCode::kInvalidArgument, {"/added_tokens/0/id", "token id"});

    j = MinimalJson();
    j["post_processor"] = {{"type", "BertProcessing"},
                           {"cls", {"[UNK]", 0}},
                           {"sep", {"un", id}}};
    ExpectLoadError(j, absl::StatusCode::kInvalidArgument, {"/post_processor/sep/1", "token id"});

    j = MinimalJson();
    Json special = Json::object();
    special["id"] = "[CLS]";
    special["ids"] = Json::array({id});
    special["tokens"] = Json::array({"[CLS]"});
    j["post_processor"] = {{"type", "TemplateProcessing"},
                           {"single", {{{"SpecialToken", {{"id", "[CLS]"}, {"type_id", 0}}}}}},
                           {"pair", Json::array()},
                           {"special_tokens", Json::object()}};
    j["post_processor"]["special_tokens"]["[CLS]"] = special;
    ExpectLoadError(j, absl::StatusCode::kInvalidArgument,
                    {"/post_processor/special_tokens/[CLS]/ids/0", "token id"});
  }
  // The largest id allowed loads (a hole below it has no token).
  Json j = MinimalJson();
  j["model"]["vocab"]["un"] = 4194303;
  const auto t = Tokenizer::FromJsonString(j.dump());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->vocab_size(), 4194304);
  EXPECT_EQ(*(*t)->EncodeIds("un", false), std::vector<int32_t>{4194303});
}

TEST(TokenizerBadFile, BpeMergeErrorsNameTheMerge) {
  const Json bpe = Json::parse(R"({"normalizer": null, "pre_tokenizer": null,
      "post_processor": null, "decoder": null, "added_tokens": [],
      "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2},
                "merges": ["a b", "b c"]}})");
  ExpectLoadError(bpe, absl::StatusCode::kInvalidArgument, {"/model", "merge 1", "\"c\""});
  Json bad_shape = bpe;
  bad_shape["model"]["merges"] = Json::array({Json::array({"a"})});
  ExpectLoadError(bad_shape, absl::StatusCode::kInvalidArgument, {"/model/merges/0"});
}

TEST(TokenizerBadFile, NotJsonOrNotAModel) {
  const auto not_json = Tokenizer::FromJsonString("{\"model\": [1, 2");
  ASSERT_FALSE(not_json.ok());
  EXPECT_TRUE(absl::StrContains(not_json.status().message(), "invalid JSON"));
  // Found by fuzzing: a number too large for a double used to escape as an exception.
  const auto overflow = Tokenizer::FromJsonString("{\"model\": {\"dropout\": 1e999}}");
  ASSERT_FALSE(overflow.ok());
  EXPECT_EQ(overflow.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(overflow.status().message(), "invalid JSON"));

  const auto not_spm = Tokenizer::FromSentencePieceString("definitely not a proto", {});
  ASSERT_FALSE(not_spm.ok());
  EXPECT_EQ(not_spm.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(not_spm.status().message(), "SentencePiece"));

  const auto dir = std::filesystem::path(::testing::TempDir()) / "empty_tokenizer_dir";
  std::filesystem::create_directories(dir);
  const auto none = Tokenizer::FromDir(dir.string());
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Tokenizer::FromJsonFile("/nonexistent/tokenizer.json").status().code(),
            absl::StatusCode::kNotFound);
}

// Seconds to encode `text` (ids only), and the number of ids.
std::pair<double, size_t> TimeEncode(const Tokenizer& t, const std::string& text) {
  const auto start = std::chrono::steady_clock::now();
  const auto ids = t.EncodeIds(text, false);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(ids.ok()) << ids.status();
  return {seconds, ids.ok() ? ids->size() : 0};
}

std::string Repeat(const std::string& unit, size_t bytes) {
  std::string out;
  out.reserve(bytes + unit.size());
  while (out.size() < bytes) out += unit;
  return out;
}

// Ten times the input may cost at most ~25x the time (quadratic merging would be ~100x).
// Realistic text at 1 MB and 10 MB; then the worst case for BPE, a run of spaces, which
// becomes a single word of millions of symbols (256 KB vs 2.5 MB keeps the test short).
// Both sizes are timed with memory the process already holds: the large input is encoded
// once first, and glibc is told to keep freed memory rather than return it to the system.
// Otherwise the large run alone pays first-touch page faults on its ~250 MB of temporaries,
// which on a paravirtualised VM made the same linear work measure 58x (0.022 s vs 1.29 s,
// t5-tiny; 10x with the memory kept).
TEST(TokenizerLargeInput, TenTimesTheInputCostsAboutTenTimesTheTime) {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
  const std::string unit =
      "The quick brown fox jumps over the lazy dog; 12345 \xE4\xB8\xAD\xE6\x96\x87. ";
  for (const char* folder : {"llama2", "llama3", "t5-tiny"}) {
    auto t = Load(folder);
    ASSERT_NE(t, nullptr);
    for (const auto& [base, small_bytes] :
         {std::pair<std::string, size_t>{unit, 1 << 20}, {std::string(" "), 1 << 18}}) {
      const std::string large = Repeat(base, 10 * small_bytes);
      TimeEncode(*t, large);  // warm-up: the heap grows to what the large input needs
      const auto [small_s, small_n] = TimeEncode(*t, Repeat(base, small_bytes));
      const auto [large_s, large_n] = TimeEncode(*t, large);
      EXPECT_GE(large_n, 5 * small_n) << folder;
      EXPECT_LT(large_s, 25 * small_s + 0.5) << folder << ": " << small_bytes << " B took "
                                             << small_s << " s, ten times that " << large_s << " s";
    }
  }
}

}  // namespace
}  // namespace triad::tokenizer
