#include "model/tokenizer/component_json.h"

#include <functional>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "model/status_macros.h"
#include "model/tokenizer/precompiled.h"

namespace triad::tokenizer {
namespace {

using json_fields::Child;
using json_fields::Json;
using json_fields::Member;

// Loads the array member `key` element by element with `load`.
template <typename T, typename LoadFn>
absl::StatusOr<std::vector<std::unique_ptr<T>>> LoadList(const Json& j, absl::string_view path,
                                                         absl::string_view key, LoadFn load) {
  const std::string list_path = Child(path, key);
  const Json* list = Member(j, key);
  if (list == nullptr || !list->is_array()) {
    return json_fields::Invalid(list_path, "expected an array");
  }
  std::vector<std::unique_ptr<T>> out;
  for (size_t i = 0; i < list->size(); ++i) {
    TRIAD_ASSIGN_OR_RETURN(auto item, load((*list)[i], Child(list_path, i)));
    if (item != nullptr) out.push_back(std::move(item));
  }
  return out;
}

absl::StatusOr<PrependScheme> LoadPrependScheme(const Json& j, absl::string_view path) {
  TRIAD_ASSIGN_OR_RETURN(const bool add_prefix_space,
                         json_fields::Bool(j, path, "add_prefix_space", true));
  TRIAD_ASSIGN_OR_RETURN(
      const std::string scheme,
      json_fields::String(j, path, "prepend_scheme", add_prefix_space ? "always" : "never"));
  if (scheme == "always") return PrependScheme::kAlways;
  if (scheme == "first") return PrependScheme::kFirst;
  if (scheme == "never") return PrependScheme::kNever;
  return json_fields::Invalid(Child(path, "prepend_scheme"),
                              absl::StrCat("unknown prepend scheme \"", scheme, "\""));
}

absl::StatusOr<std::unique_ptr<Normalizer>> LoadBertNormalizer(const Json& j,
                                                               absl::string_view path) {
  BertNormalizerOptions o;
  TRIAD_ASSIGN_OR_RETURN(o.clean_text, json_fields::Bool(j, path, "clean_text", true));
  TRIAD_ASSIGN_OR_RETURN(o.handle_chinese_chars,
                         json_fields::Bool(j, path, "handle_chinese_chars", true));
  TRIAD_ASSIGN_OR_RETURN(o.lowercase, json_fields::Bool(j, path, "lowercase", true));
  // strip_accents: null follows lowercase.
  TRIAD_ASSIGN_OR_RETURN(o.strip_accents, json_fields::Bool(j, path, "strip_accents", o.lowercase));
  return MakeBertNormalizer(o);
}

absl::StatusOr<std::unique_ptr<Normalizer>> LoadPrecompiled(const Json& j, absl::string_view path) {
  TRIAD_ASSIGN_OR_RETURN(const std::string b64,
                         json_fields::String(j, path, "precompiled_charsmap", ""));
  std::string blob;
  if (!absl::Base64Unescape(b64, &blob)) {
    return json_fields::Invalid(Child(path, "precompiled_charsmap"), "invalid base64");
  }
  // An empty charsmap is HF's identity normalizer.
  if (blob.empty()) return MakeNormalizerSequence({});
  auto normalizer = MakePrecompiled(std::move(blob));
  if (!normalizer.ok()) {
    return json_fields::Invalid(Child(path, "precompiled_charsmap"), normalizer.status().message());
  }
  return normalizer;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Normalizer>> LoadNormalizer(const Json& j, absl::string_view path) {
  if (j.is_null()) return std::unique_ptr<Normalizer>();
  TRIAD_ASSIGN_OR_RETURN(const std::string type, json_fields::Type(j, path));
  if (type == "Sequence") {
    TRIAD_ASSIGN_OR_RETURN(auto list, LoadList<Normalizer>(j, path, "normalizers", LoadNormalizer));
    return MakeNormalizerSequence(std::move(list));
  }
  if (type == "BertNormalizer") return LoadBertNormalizer(j, path);
  if (type == "Precompiled") return LoadPrecompiled(j, path);
  if (type == "Lowercase") return MakeLowercase();
  if (type == "StripAccents") return MakeStripAccents();
  if (type == "NFC") return MakeUnicodeNormalizer(NormalForm::kNfc);
  if (type == "NFD") return MakeUnicodeNormalizer(NormalForm::kNfd);
  if (type == "NFKC") return MakeUnicodeNormalizer(NormalForm::kNfkc);
  if (type == "NFKD") return MakeUnicodeNormalizer(NormalForm::kNfkd);
  if (type == "Strip") {
    TRIAD_ASSIGN_OR_RETURN(const bool left, json_fields::Bool(j, path, "strip_left", true));
    TRIAD_ASSIGN_OR_RETURN(const bool right, json_fields::Bool(j, path, "strip_right", true));
    return MakeStrip(left, right);
  }
  if (type == "Prepend") {
    TRIAD_ASSIGN_OR_RETURN(std::string prepend, json_fields::String(j, path, "prepend"));
    return MakePrepend(std::move(prepend));
  }
  if (type == "Replace") {
    std::string literal;
    std::unique_ptr<Regex> regex;
    TRIAD_RETURN_IF_ERROR(json_fields::Pattern(j, path, &literal, &regex));
    TRIAD_ASSIGN_OR_RETURN(std::string content, json_fields::String(j, path, "content"));
    return MakeReplace(std::move(literal), std::move(regex), std::move(content));
  }
  return json_fields::Unsupported(Child(path, "type"),
                                  absl::StrCat("unsupported normalizer \"", type, "\""));
}

namespace {

absl::StatusOr<std::unique_ptr<PreTokenizer>> LoadSplit(const Json& j, absl::string_view path) {
  std::string literal;
  std::unique_ptr<Regex> regex;
  TRIAD_RETURN_IF_ERROR(json_fields::Pattern(j, path, &literal, &regex));
  TRIAD_ASSIGN_OR_RETURN(const std::string behavior,
                         json_fields::String(j, path, "behavior", "Isolated"));
  TRIAD_ASSIGN_OR_RETURN(const bool invert, json_fields::Bool(j, path, "invert", false));
  SplitBehavior b;
  if (behavior == "Removed") {
    b = SplitBehavior::kRemoved;
  } else if (behavior == "Isolated") {
    b = SplitBehavior::kIsolated;
  } else if (behavior == "MergedWithPrevious") {
    b = SplitBehavior::kMergedWithPrevious;
  } else if (behavior == "MergedWithNext") {
    b = SplitBehavior::kMergedWithNext;
  } else if (behavior == "Contiguous") {
    b = SplitBehavior::kContiguous;
  } else {
    return json_fields::Invalid(Child(path, "behavior"),
                                absl::StrCat("unknown split behavior \"", behavior, "\""));
  }
  return MakeSplit(std::move(literal), std::move(regex), b, invert);
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> LoadByteLevel(const Json& j, absl::string_view path) {
  TRIAD_ASSIGN_OR_RETURN(const bool add_prefix_space,
                         json_fields::Bool(j, path, "add_prefix_space", true));
  TRIAD_ASSIGN_OR_RETURN(const bool use_regex, json_fields::Bool(j, path, "use_regex", true));
  std::unique_ptr<Regex> regex;
  if (use_regex) {
    TRIAD_ASSIGN_OR_RETURN(regex, Regex::Compile(kGpt2Pattern));
  }
  return MakeByteLevelPreTokenizer(add_prefix_space, use_regex, std::move(regex));
}

}  // namespace

absl::StatusOr<std::unique_ptr<PreTokenizer>> LoadPreTokenizer(const Json& j,
                                                               absl::string_view path) {
  if (j.is_null()) return std::unique_ptr<PreTokenizer>();
  TRIAD_ASSIGN_OR_RETURN(const std::string type, json_fields::Type(j, path));
  if (type == "Sequence") {
    TRIAD_ASSIGN_OR_RETURN(auto list,
                           LoadList<PreTokenizer>(j, path, "pretokenizers", LoadPreTokenizer));
    return MakePreTokenizerSequence(std::move(list));
  }
  if (type == "Split") return LoadSplit(j, path);
  if (type == "ByteLevel") return LoadByteLevel(j, path);
  if (type == "BertPreTokenizer") return MakeBertPreTokenizer();
  if (type == "WhitespaceSplit") return MakeWhitespaceSplit();
  if (type == "Whitespace") {
    TRIAD_ASSIGN_OR_RETURN(auto regex, Regex::Compile(kWhitespacePattern));
    return MakeSplit("", std::move(regex), SplitBehavior::kRemoved, /*invert=*/true);
  }
  if (type == "Metaspace") {
    TRIAD_ASSIGN_OR_RETURN(std::string replacement,
                           json_fields::String(j, path, "replacement", "\xE2\x96\x81"));
    TRIAD_ASSIGN_OR_RETURN(const PrependScheme scheme, LoadPrependScheme(j, path));
    TRIAD_ASSIGN_OR_RETURN(const bool split, json_fields::Bool(j, path, "split", true));
    return MakeMetaspace(std::move(replacement), scheme, split);
  }
  return json_fields::Unsupported(Child(path, "type"),
                                  absl::StrCat("unsupported pre_tokenizer \"", type, "\""));
}

namespace {

absl::StatusOr<std::unique_ptr<Decoder>> LoadStripDecoder(const Json& j, absl::string_view path) {
  TRIAD_ASSIGN_OR_RETURN(std::string content, json_fields::String(j, path, "content", " "));
  TRIAD_ASSIGN_OR_RETURN(const int64_t start, json_fields::Int(j, path, "start", 0));
  TRIAD_ASSIGN_OR_RETURN(const int64_t stop, json_fields::Int(j, path, "stop", 0));
  return MakeStripDecoder(std::move(content), static_cast<int>(start), static_cast<int>(stop));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Decoder>> LoadDecoder(const Json& j, absl::string_view path) {
  if (j.is_null()) return std::unique_ptr<Decoder>();
  TRIAD_ASSIGN_OR_RETURN(const std::string type, json_fields::Type(j, path));
  if (type == "Sequence") {
    TRIAD_ASSIGN_OR_RETURN(auto list, LoadList<Decoder>(j, path, "decoders", LoadDecoder));
    return MakeDecoderSequence(std::move(list));
  }
  if (type == "ByteLevel") return MakeByteLevelDecoder();
  if (type == "ByteFallback") return MakeByteFallbackDecoder();
  if (type == "Fuse") return MakeFuseDecoder();
  if (type == "Metaspace") {
    TRIAD_ASSIGN_OR_RETURN(std::string replacement,
                           json_fields::String(j, path, "replacement", "\xE2\x96\x81"));
    TRIAD_ASSIGN_OR_RETURN(const PrependScheme scheme, LoadPrependScheme(j, path));
    return MakeMetaspaceDecoder(std::move(replacement), scheme);
  }
  if (type == "Strip") return LoadStripDecoder(j, path);
  if (type == "Replace") {
    std::string literal;
    std::unique_ptr<Regex> regex;
    TRIAD_RETURN_IF_ERROR(json_fields::Pattern(j, path, &literal, &regex));
    TRIAD_ASSIGN_OR_RETURN(std::string content, json_fields::String(j, path, "content"));
    return MakeReplaceDecoder(std::move(literal), std::move(regex), std::move(content));
  }
  if (type == "BPEDecoder") {
    TRIAD_ASSIGN_OR_RETURN(std::string suffix, json_fields::String(j, path, "suffix", "</w>"));
    return MakeBpeDecoder(std::move(suffix));
  }
  if (type == "WordPiece") {
    TRIAD_ASSIGN_OR_RETURN(std::string prefix, json_fields::String(j, path, "prefix", "##"));
    TRIAD_ASSIGN_OR_RETURN(const bool cleanup, json_fields::Bool(j, path, "cleanup", true));
    return MakeWordPieceDecoder(std::move(prefix), cleanup);
  }
  return json_fields::Unsupported(Child(path, "type"),
                                  absl::StrCat("unsupported decoder \"", type, "\""));
}

}  // namespace triad::tokenizer
