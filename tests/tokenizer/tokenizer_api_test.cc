// The public API beyond the golden cases: special ids from model folders, vocabulary lookups,
// streaming detokenization holding incomplete characters, sharing across threads.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "model/tokenizer/tokenizer.h"
#include "model/tokenizer/unicode.h"
#include "tests/remove_tree.h"
#include "tests/tokenizer/fixture_cases.h"

namespace triad::tokenizer {
namespace {

std::unique_ptr<Tokenizer> LoadDir(const std::string& dir) {
  auto t = Tokenizer::FromDir(dir);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

std::unique_ptr<Tokenizer> Load(const std::string& folder) {
  return LoadDir(testing::TokenizerDir(folder));
}

// A copy of `folder` holding only the given files.
std::string CopyOnly(const std::string& folder, std::initializer_list<const char*> files) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / ("only_" + folder);
  triad::testing::RemoveTree(dir);
  std::filesystem::create_directories(dir);
  for (const char* f : files) {
    std::filesystem::copy_file(testing::TokenizerDir(folder) + "/" + f, dir / f);
  }
  return dir.string();
}

struct SpecialIds {
  int32_t bos, eos, pad, unk, vocab_size;
};

void ExpectSpecialIds(const Tokenizer& t, const SpecialIds& want, const std::string& what) {
  EXPECT_EQ(t.bos_id(), want.bos) << what;
  EXPECT_EQ(t.eos_id(), want.eos) << what;
  EXPECT_EQ(t.pad_id(), want.pad) << what;
  EXPECT_EQ(t.unk_id(), want.unk) << what;
  EXPECT_EQ(t.vocab_size(), want.vocab_size) << what;
}

TEST(TokenizerApi, SpecialIdsComeFromTheFolder) {
  ExpectSpecialIds(*Load("llama2"), {1, 2, -1, 0, 32000}, "llama2");
  ExpectSpecialIds(*Load("llama3"), {128000, 128001, -1, -1, 128256}, "llama3");
  ExpectSpecialIds(*Load("t5-tiny"), {-1, 1, 0, 2, 1100}, "t5-tiny");
  ExpectSpecialIds(*Load("gpt1-tiny"), {-1, -1, -1, 0, 1000}, "gpt1-tiny");
  // Folders with only the SentencePiece model and its config.
  ExpectSpecialIds(*LoadDir(CopyOnly("t5-tiny", {"spiece.model", "tokenizer_config.json"})),
                   {-1, 1, 0, 2, 1100}, "t5-tiny .model");
  ExpectSpecialIds(*LoadDir(CopyOnly("llama-tiny", {"tokenizer.model"})), {1, 2, -1, 0, 1000},
                   "llama-tiny .model without config");
}

TEST(TokenizerApi, ConfigDefaultsComeFromTokenizerConfig) {
  const TokenizerConfig t5 = Load("t5-tiny")->config();
  EXPECT_EQ(t5.model_max_length, 512);
  EXPECT_TRUE(t5.clean_up_tokenization_spaces);
  const TokenizerConfig llama2 = Load("llama2")->config();
  EXPECT_EQ(llama2.model_max_length, 0);  // transformers' 1e30 placeholder
  EXPECT_TRUE(llama2.add_bos_token);
  EXPECT_FALSE(llama2.add_eos_token);
  EXPECT_FALSE(llama2.clean_up_tokenization_spaces);
  EXPECT_EQ(CleanUpTokenizationSpaces("Hello , world ! It 's , is n't ?"),
            "Hello, world! It's, isn't?");
}

// An old-style T5 checkpoint: spiece.model and config.json only. transformers then takes the
// layout from the model type and gives T5 its 100 <extra_id_N> special tokens.
TEST(TokenizerApi, T5FolderWithOnlySpieceModelAndModelConfig) {
  const std::string dir = CopyOnly("t5-tiny", {"spiece.model"});
  std::ofstream(dir + "/config.json") << R"({"model_type": "t5"})";
  auto t = LoadDir(dir);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->vocab_size(), 1100);
  EXPECT_EQ(t->source(), dir + "/spiece.model");
  EXPECT_EQ(Load("t5-tiny")->source(), testing::TokenizerDir("t5-tiny") + "/tokenizer.json");
  EXPECT_EQ(t->TokenToId("<extra_id_0>"), 1099);
  EXPECT_TRUE(t->IsSpecial(1099));
  int mismatches = 0;
  for (const auto& c : testing::LoadCases("t5-tiny")) {
    if (c.pair) continue;
    const auto ids = t->EncodeIds(c.text, c.add_special_tokens);
    if (!ids.ok() || *ids != c.ids) ++mismatches;
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(TokenizerApi, TokenLookups) {
  auto t = Load("llama3");
  EXPECT_EQ(t->TokenToId("<|eot_id|>"), 128009);
  EXPECT_EQ(t->IdToToken(128009), "<|eot_id|>");
  EXPECT_EQ(t->TokenToId("Hello"), 9906);
  EXPECT_EQ(t->IdToToken(9906), "Hello");
  EXPECT_TRUE(t->IsSpecial(128000));
  EXPECT_FALSE(t->IsSpecial(9906));
  EXPECT_EQ(t->IdToToken(-1), std::nullopt);
  EXPECT_EQ(t->IdToToken(t->vocab_size()), std::nullopt);
  EXPECT_EQ(t->TokenToId("no such token"), std::nullopt);
  // Ids outside the vocabulary are skipped, as HF does (padded embeddings can produce them).
  EXPECT_EQ(*t->Decode({9906, 999999, -5}, false), "Hello");
}

// Pushes `ids` and returns every piece (Flush last).
std::vector<std::string> Stream(const Tokenizer& t, const std::vector<int32_t>& ids, bool skip) {
  IncrementalDecoder decoder(t, skip);
  std::vector<std::string> pieces;
  for (const int32_t id : ids) pieces.push_back(*decoder.Push(id));
  pieces.push_back(*decoder.Flush());
  return pieces;
}

TEST(IncrementalDecoder, HoldsByteRunsUntilTheyEnd) {
  // llama-tiny has no piece for 中, so it falls back to three byte tokens after "▁". The run
  // is held until "b" ends it: a fourth byte token would have turned it into 4 U+FFFD.
  auto t = Load("llama-tiny");
  const auto ids = t->EncodeIds("a中b", false);
  ASSERT_TRUE(ids.ok());
  ASSERT_EQ(t->IdToToken((*ids)[ids->size() - 4]), "<0xE4>");
  const std::vector<std::string> pieces = Stream(*t, *ids, false);
  ASSERT_EQ(pieces.size(), ids->size() + 1);
  const size_t n = ids->size();
  EXPECT_EQ(pieces[n - 4], "");  // <0xE4>
  EXPECT_EQ(pieces[n - 3], "");  // <0xB8>
  EXPECT_EQ(pieces[n - 2], "");  // <0xAD>: valid so far, but the run has not ended
  EXPECT_EQ(pieces[n - 1], "\xE4\xB8\xAD" "b");
  std::string all;
  for (const std::string& p : pieces) all += p;
  EXPECT_EQ(all, "a中b");
}

// Found by fuzzing (tests/fuzz/corpus/tokenizer_encode/byte-run-across-skipped-special): HF
// decodes <0x01><0xFD> as one invalid run, two U+FFFD; emitting "\x01" at once broke
// "pieces concatenate to Decode", also with a skipped special token between the two.
TEST(IncrementalDecoder, AByteRunThatTurnsInvalidIsNotEmittedEarly) {
  auto t = Load("llama-tiny");
  const int32_t b01 = *t->TokenToId("<0x01>"), bfd = *t->TokenToId("<0xFD>");
  const int32_t unk = *t->TokenToId("<unk>"), a = *t->TokenToId("au");
  for (const auto& ids : {std::vector<int32_t>{a, b01, bfd, a}, std::vector<int32_t>{a, b01, unk, bfd}}) {
    for (bool skip : {false, true}) {
      const auto whole = t->Decode(ids, skip);
      ASSERT_TRUE(whole.ok());
      std::string all;
      for (const std::string& piece : Stream(*t, ids, skip)) all += piece;
      EXPECT_EQ(all, *whole) << "skip=" << skip;
    }
  }
  EXPECT_EQ(*t->Decode({a, b01, unk, bfd}, true), "au\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(IncrementalDecoder, ByteLevelCharacterSplitAcrossTokens) {
  auto t = Load("llama3");
  const std::string text = "x \xF0\x92\x80\x80 y";  // cuneiform sign A: several byte tokens
  const auto ids = t->EncodeIds(text, false);
  ASSERT_TRUE(ids.ok());
  std::string all;
  for (const std::string& piece : Stream(*t, *ids, true)) {
    EXPECT_TRUE(ValidateUtf8(piece, "piece").ok());
    EXPECT_EQ(piece.find("\xEF\xBF\xBD"), std::string::npos) << "emitted U+FFFD";
    all += piece;
  }
  EXPECT_EQ(all, text);
}

TEST(IncrementalDecoder, FlushEmitsAnIncompleteTailAsTheFullDecodeDoes) {
  auto t = Load("llama-tiny");
  const std::vector<int32_t> ids = {*t->TokenToId("<0xE4>"), *t->TokenToId("<0xB8>")};
  const std::vector<std::string> pieces = Stream(*t, ids, false);
  EXPECT_EQ(pieces[0] + pieces[1], "");
  EXPECT_EQ(pieces[2], *t->Decode(ids, false));
  EXPECT_EQ(pieces[2], "\xEF\xBF\xBD\xEF\xBF\xBD");
}

// A Tokenizer is shared by request threads; results must not depend on interleaving (the
// BPE word memo is per thread).
TEST(TokenizerApi, SharedAcrossThreads) {
  for (const char* folder : {"llama3", "llama2", "t5-tiny"}) {
    auto t = Load(folder);
    const std::vector<testing::FixtureCase> cases = testing::LoadCases(folder);
    std::vector<std::thread> threads;
    std::vector<int> mismatches(4, 0);
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&, i] {
        for (int round = 0; round < 3; ++round) {
          for (size_t k = 0; k < cases.size(); ++k) {
            const auto& c = cases[(k + static_cast<size_t>(i) * 17) % cases.size()];
            if (c.pair) continue;
            const auto ids = t->EncodeIds(c.text, c.add_special_tokens);
            if (!ids.ok() || *ids != c.ids) ++mismatches[i];
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(mismatches, std::vector<int>(4, 0)) << folder;
  }
}

// Added tokens marked "normalized" match in the normalized text (after Lowercase here).
TEST(TokenizerApi, NormalizedAddedTokensMatchAfterNormalization) {
  const auto t = Tokenizer::FromJsonString(R"({
    "added_tokens": [{"id": 2, "content": "Hello", "normalized": true, "special": false},
                     {"id": 3, "content": "[X]", "normalized": false, "special": true}],
    "normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "WhitespaceSplit"},
    "post_processor": null, "decoder": null,
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0, "world": 1}}})");
  ASSERT_TRUE(t.ok()) << t.status();
  const auto e = (*t)->Encode("HELLO World[X]", false);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->ids, (std::vector<int32_t>{2, 1, 3}));
  EXPECT_EQ(e->tokens, (std::vector<std::string>{"Hello", "world", "[X]"}));
  EXPECT_EQ(*(*t)->Decode(e->ids, true), "Hello world");
}

}  // namespace
}  // namespace triad::tokenizer
