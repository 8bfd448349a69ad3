// Pipeline components in isolation, on the examples HF documents (split behaviours,
// pre-tokenizers, decoders) and on the rules that the fixtures exercise only indirectly.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/tokenizer/decoder.h"
#include "model/tokenizer/model.h"
#include "model/tokenizer/normalizer.h"
#include "model/tokenizer/pre_tokenizer.h"
#include "model/tokenizer/precompiled.h"
#include "model/tokenizer/unicode.h"

namespace triad::tokenizer {
namespace {

using Strings = std::vector<std::string>;

Strings PreTokenize(const PreTokenizer& p, const std::string& text) {
  PreTokenized pre;
  pre.pieces = {text};
  pre.first_at_origin = true;
  p.PreTokenize(&pre);
  return pre.pieces;
}

TEST(SplitPreTokenizer, BehavioursOnHfDocumentedExample) {
  const std::string text = "the-final--countdown";
  const auto split = [&](SplitBehavior b) {
    return PreTokenize(*MakeSplit("-", nullptr, b, false), text);
  };
  EXPECT_EQ(split(SplitBehavior::kRemoved), (Strings{"the", "final", "countdown"}));
  EXPECT_EQ(split(SplitBehavior::kIsolated), (Strings{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split(SplitBehavior::kMergedWithPrevious),
            (Strings{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(split(SplitBehavior::kMergedWithNext), (Strings{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(split(SplitBehavior::kContiguous), (Strings{"the", "-", "final", "--", "countdown"}));
}

TEST(SplitPreTokenizer, RegexInvertedIsTheWhitespacePreTokenizer) {
  auto regex = Regex::Compile(kWhitespacePattern);
  ASSERT_TRUE(regex.ok());
  const auto p = MakeSplit("", *std::move(regex), SplitBehavior::kRemoved, true);
  EXPECT_EQ(PreTokenize(*p, "Hey friend!  How are you?!?"),
            (Strings{"Hey", "friend", "!", "How", "are", "you", "?!?"}));
}

TEST(PreTokenizers, BertAndMetaspaceAndByteLevel) {
  EXPECT_EQ(PreTokenize(*MakeBertPreTokenizer(), "Hey friend!  How are you?!?"),
            (Strings{"Hey", "friend", "!", "How", "are", "you", "?", "!", "?"}));
  EXPECT_EQ(
      PreTokenize(*MakeMetaspace("\xE2\x96\x81", PrependScheme::kAlways, true), "Hey friend!"),
      (Strings{"\xE2\x96\x81Hey",
               "\xE2\x96\x81"
               "friend!"}));
  auto gpt2 = Regex::Compile(kGpt2Pattern);
  ASSERT_TRUE(gpt2.ok());
  EXPECT_EQ(PreTokenize(*MakeByteLevelPreTokenizer(true, true, *std::move(gpt2)),
                        "Hello my friend, how's it going?"),
            (Strings{"\xC4\xA0Hello", "\xC4\xA0my",
                     "\xC4\xA0"
                     "friend",
                     ",", "\xC4\xA0how", "'s", "\xC4\xA0it", "\xC4\xA0going", "?"}));
}

// \s in HF patterns is Unicode White_Space (Oniguruma), including U+0085 and U+3000.
TEST(RegexTest, WhitespaceClassIsUnicodeWhiteSpace) {
  auto r = Regex::Compile("\\s+|[^\\s]+");
  ASSERT_TRUE(r.ok());
  const std::string text =
      "a\xC2\x85\xE3\x80\x80"
      "b";
  const auto matches = (*r)->FindAll(text);
  ASSERT_EQ(matches.size(), 3u);
  EXPECT_EQ(matches[1], (std::pair<size_t, size_t>{1, 6}));
}

std::string Normalize(const Normalizer& n, std::string text) {
  n.Normalize(&text);
  return text;
}

TEST(Normalizers, UnicodeFormsBertStripPrepend) {
  EXPECT_EQ(Normalize(*MakeUnicodeNormalizer(NormalForm::kNfkc), "\xEF\xAC\x81"), "fi");
  EXPECT_EQ(Normalize(*MakeUnicodeNormalizer(NormalForm::kNfd), "\xC3\xA9"), "e\xCC\x81");
  EXPECT_EQ(Normalize(*MakeUnicodeNormalizer(NormalForm::kNfc), "e\xCC\x81"), "\xC3\xA9");
  EXPECT_EQ(Normalize(*MakeBertNormalizer({}), "H\xC3\xA9llo\tW\xC3\xB6rld\x01 \xE4\xB8\xAD!"),
            "hello world  \xE4\xB8\xAD !");
  BertNormalizerOptions keep_case;
  keep_case.lowercase = false;
  keep_case.strip_accents = false;
  EXPECT_EQ(Normalize(*MakeBertNormalizer(keep_case), "H\xC3\xA9"), "H\xC3\xA9");
  EXPECT_EQ(Normalize(*MakeStrip(true, true), " \t a b \xE3\x80\x80\n"), "a b");
  EXPECT_EQ(Normalize(*MakeStrip(false, true), "  a  "), "  a");
  EXPECT_EQ(Normalize(*MakePrepend("\xE2\x96\x81"), ""), "");
  EXPECT_EQ(Normalize(*MakePrepend("\xE2\x96\x81"), "x"), "\xE2\x96\x81x");
  // Per-character full lowercase: no final-sigma context, İ keeps its dot as U+0307.
  EXPECT_EQ(Normalize(*MakeLowercase(), "\xCE\xA3\xCE\xA3 \xC4\xB0"), "\xCF\x83\xCF\x83 i\xCC\x87");
}

// HF's BERT rules use a Unicode 8.0 category table; these answers were probed from HF.
TEST(Normalizers, BertUsesHfsUnicode8Categories) {
  const auto bert = MakeBertNormalizer({});
  EXPECT_EQ(Normalize(*bert, "a\xCD\xB8"), "a\xCD\xB8");          // U+0378 unassigned: kept
  EXPECT_EQ(Normalize(*bert, "a\xEE\x80\x80"), "a");              // U+E000 private use: removed
  EXPECT_EQ(Normalize(*bert, "a\xE2\x80\x8B"), "a");              // U+200B format: removed
  EXPECT_EQ(Normalize(*bert, "a\xE0\xA2\x90"), "a\xE0\xA2\x90");  // U+0890 (Cf, 14.0): kept
  EXPECT_EQ(Normalize(*bert, "a\xE0\xA3\x94"), "a\xE0\xA3\x94");  // U+08D4 (Mn, 9.0): kept
  EXPECT_EQ(Normalize(*bert, "a\xCC\x81"), "a");                  // U+0301 (Mn): stripped
  EXPECT_TRUE(IsBertPunctuation(0x166D));                         // Po in 8.0, So today
  EXPECT_FALSE(IsBertPunctuation(0x061D));                        // Po since 14.0
  EXPECT_TRUE(IsBertPunctuation('$'));  // ASCII symbols count as punctuation
}

std::string Decode(const Decoder& d, Strings tokens) {
  d.DecodeChain(&tokens);
  std::string out;
  for (const std::string& t : tokens) out += t;
  return out;
}

TEST(Decoders, HfSemantics) {
  EXPECT_EQ(Decode(*MakeWordPieceDecoder("##", true), {"un", "##aff", "##able", ".", "it", "'s"}),
            "unaffable. it's");
  EXPECT_EQ(Decode(*MakeBpeDecoder("</w>"), {"hello</w>", "wor", "ld</w>", ".</w>"}),
            "hello world .");
  EXPECT_EQ(Decode(*MakeStripDecoder(" ", 1, 1), {"  a  "}), " a ");
  // A byte run that is not valid UTF-8 becomes one U+FFFD per byte, valid bytes included.
  EXPECT_EQ(
      Decode(*MakeByteFallbackDecoder(), {"<0x61>", "<0xE4>", "b", "<0xE4>", "<0xB8>", "<0xAD>"}),
      "\xEF\xBF\xBD\xEF\xBF\xBD"
      "b\xE4\xB8\xAD");
  // Metaspace drops every replacement character of the first token only.
  EXPECT_EQ(Decode(*MakeMetaspaceDecoder("\xE2\x96\x81", PrependScheme::kAlways),
                   {"\xE2\x96\x81\xE2\x96\x81Hey",
                    "\xE2\x96\x81"
                    "friend"}),
            "Hey friend");
  EXPECT_EQ(
      Decode(*MakeMetaspaceDecoder("\xE2\x96\x81", PrependScheme::kNever), {"\xE2\x96\x81Hey"}),
      " Hey");
  // ByteLevel: alphabet back to bytes; invalid UTF-8 becomes U+FFFD (lossy).
  EXPECT_EQ(Decode(*MakeByteLevelDecoder(), {"\xC4\xA0Hi", "\xC3\xA4"}), " Hi\xEF\xBF\xBD");
}

Vocab MakeVocab(const Strings& tokens) {
  Vocab v;
  for (size_t i = 0; i < tokens.size(); ++i) EXPECT_TRUE(v.Add(tokens[i], i).ok());
  return v;
}

std::vector<int32_t> Ids(const Model& m, const std::string& word) {
  std::vector<int32_t> ids;
  m.Tokenize(word, &ids, nullptr);
  return ids;
}

TEST(BpeModel, SuffixUnkFusingAndByteFallback) {
  BpeOptions suffix;
  suffix.end_of_word_suffix = "</w>";
  suffix.unk_token = "<unk>";
  auto m = MakeBpe(MakeVocab({"<unk>", "a", "b</w>", "ab</w>"}), {{"a", "b</w>"}}, suffix);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(Ids(**m, "ab"), (std::vector<int32_t>{3}));
  EXPECT_EQ(Ids(**m, "xab"), (std::vector<int32_t>{0, 3}));

  BpeOptions unk;
  unk.unk_token = "<unk>";
  auto plain = MakeBpe(MakeVocab({"<unk>", "a"}), {}, unk);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(Ids(**plain, "xya"), (std::vector<int32_t>{0, 0, 1}));
  unk.fuse_unk = true;
  auto fused = MakeBpe(MakeVocab({"<unk>", "a"}), {}, unk);
  EXPECT_EQ(Ids(**fused, "xya"), (std::vector<int32_t>{0, 1}));
  unk.byte_fallback = true;
  auto bytes = MakeBpe(MakeVocab({"<unk>", "a", "<0x78>"}), {}, unk);
  EXPECT_EQ(Ids(**bytes, "xya"), (std::vector<int32_t>{2, 0, 1}));
}

TEST(BpeModel, ContinuingSubwordPrefix) {
  BpeOptions o;
  o.continuing_subword_prefix = "##";
  auto m = MakeBpe(MakeVocab({"a", "##b", "ab", "##c", "abc"}), {{"a", "##b"}, {"ab", "##c"}}, o);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(Ids(**m, "abc"), (std::vector<int32_t>{4}));
  EXPECT_EQ(Ids(**m, "acb"), (std::vector<int32_t>{0, 3, 1}));
}

// On exactly equal path scores HF keeps the path found first (the earlier split).
TEST(UnigramModel, TiesKeepTheEarlierSplitAndUnknownsFuse) {
  auto m = MakeUnigram({{"<unk>", 0.0}, {"0", -1.0}, {"00", -1.5}}, 0, false);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(Ids(**m, "000"), (std::vector<int32_t>{1, 2}));
  std::vector<int32_t> ids;
  Strings tokens;
  (*m)->Tokenize("xy0", &ids, &tokens);
  EXPECT_EQ(ids, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(tokens, (Strings{"xy", "0"}));
}

TEST(WordPieceModel, LongWordsAndUncoverableWordsAreUnk) {
  auto m = MakeWordPiece(MakeVocab({"[UNK]", "a", "##a"}), "[UNK]", "##", 3);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(Ids(**m, "aaa"), (std::vector<int32_t>{1, 2, 2}));
  EXPECT_EQ(Ids(**m, "aaaa"), (std::vector<int32_t>{0}));
  EXPECT_EQ(Ids(**m, "ab"), (std::vector<int32_t>{0}));
}

TEST(Unicode, GraphemeClusters) {
  const auto lengths = [](const std::string& s) { return GraphemeLengths(s); };
  using L = std::vector<size_t>;
  EXPECT_EQ(lengths("ab"), (L{1, 1}));
  EXPECT_EQ(lengths("a\r\nb"), (L{1, 2, 1}));
  EXPECT_EQ(lengths("e\xCC\x81x"), (L{3, 1}));                         // e + combining acute
  EXPECT_EQ(lengths("\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD!"), (L{8, 1}));  // thumbs up + tone
  EXPECT_EQ(lengths("\xF0\x9F\x87\xBA\xF0\x9F\x87\xB8\xF0\x9F\x87\xA9\xF0\x9F\x87\xAA"),
            (L{8, 8}));                             // two flags
  EXPECT_EQ(lengths("x\xE2\x80\x8Dy"), (L{4, 1}));  // x + ZWJ, y
  EXPECT_EQ(lengths("\xD8\x80"
                    "1a"),
            (L{3, 1}));  // Arabic prepend joins "1"
  EXPECT_EQ(lengths(""), L{});
}

// A precompiled charsmap with one rule, "a" -> the pool from `index`: a darts-clone trie of
// a root (offset 1), the unit for 'a' at 1 ^ 'a' (label, leaf bit, offset 1) and the value
// unit after it; then the pool "é\0".
std::string OneRuleCharsmap(uint32_t index) {
  std::vector<uint32_t> trie(98, 0);
  trie[0] = 1u << 10;
  trie[1 ^ 'a'] = 'a' | (1u << 8) | (1u << 10);
  trie[(1 ^ 'a') ^ 1] = index;
  std::string blob(4 + 4 * trie.size(), '\0');
  const uint32_t bytes = static_cast<uint32_t>(4 * trie.size());
  for (int b = 0; b < 4; ++b) blob[b] = static_cast<char>(bytes >> (8 * b));
  for (size_t i = 0; i < trie.size(); ++i) {
    for (int b = 0; b < 4; ++b) blob[4 + 4 * i + b] = static_cast<char>(trie[i] >> (8 * b));
  }
  return blob + std::string("\xC3\xA9\0", 3);
}

TEST(Precompiled, ARuleStartingInsideACharacterIsNoRule) {
  auto good = MakePrecompiled(OneRuleCharsmap(0));
  ASSERT_TRUE(good.ok()) << good.status();
  std::string text = "bab";
  (*good)->Normalize(&text);
  EXPECT_EQ(text, "b\xC3\xA9" "b");
  // Found by fuzzing: index 1 is the continuation byte of "é", which used to be emitted alone.
  auto corrupt = MakePrecompiled(OneRuleCharsmap(1));
  ASSERT_TRUE(corrupt.ok()) << corrupt.status();
  text = "bab";
  (*corrupt)->Normalize(&text);
  EXPECT_EQ(text, "bab");
  EXPECT_FALSE(MakePrecompiled("\x08\0\0").ok());  // shorter than the header
  EXPECT_FALSE(MakePrecompiled(std::string("\x08\0\0\0\0\0\0\0\xA9", 9)).ok());  // pool not UTF-8
}

TEST(Unicode, Utf8Validation) {
  EXPECT_TRUE(ValidateUtf8("h\xC3\xA9 \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF", "t").ok());
  EXPECT_FALSE(ValidateUtf8("\xF8\x88\x80\x80\x80", "t").ok());
  EXPECT_EQ(Utf8Lossy("a\xE4\xB8z\xFF"), "a\xEF\xBF\xBDz\xEF\xBF\xBD");
}

}  // namespace
}  // namespace triad::tokenizer
