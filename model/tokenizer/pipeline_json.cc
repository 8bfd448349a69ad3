// LoadPipeline: tokenizer.json -> Pipeline (models, added tokens, post-processors; the other
// components come from component_json.cc).
#include <utility>
#include <vector>

#include "model/status_macros.h"
#include "model/tokenizer/component_json.h"
#include "model/tokenizer/pipeline.h"

namespace triad::tokenizer {
namespace {

using json_fields::Child;
using json_fields::Json;
using json_fields::Member;

absl::StatusOr<Vocab> LoadVocabDict(const Json& model, absl::string_view path) {
  const std::string vocab_path = Child(path, "vocab");
  const Json* vocab = Member(model, "vocab");
  if (vocab == nullptr || !vocab->is_object()) {
    return json_fields::Invalid(vocab_path, "expected an object of token: id");
  }
  Vocab out;
  for (const auto& [token, value] : vocab->items()) {
    TRIAD_ASSIGN_OR_RETURN(const int32_t id, json_fields::TokenId(value, Child(vocab_path, token)));
    const absl::Status status = out.Add(token, id);
    if (!status.ok()) return json_fields::Invalid(Child(vocab_path, token), status.message());
  }
  return out;
}

// Merges as "a b" strings (older files) or ["a", "b"] pairs (newer ones).
absl::StatusOr<MergeList> LoadMerges(const Json& model, absl::string_view path) {
  const std::string merges_path = Child(path, "merges");
  const Json* merges = Member(model, "merges");
  if (merges == nullptr || !merges->is_array()) {
    return json_fields::Invalid(merges_path, "expected an array");
  }
  MergeList out;
  out.reserve(merges->size());
  for (size_t i = 0; i < merges->size(); ++i) {
    const Json& m = (*merges)[i];
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        return json_fields::Invalid(Child(merges_path, i), "expected \"left right\"");
      }
      out.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      out.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      return json_fields::Invalid(Child(merges_path, i), "expected \"a b\" or [\"a\", \"b\"]");
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Model>> LoadBpe(const Json& model, absl::string_view path) {
  TRIAD_ASSIGN_OR_RETURN(Vocab vocab, LoadVocabDict(model, path));
  TRIAD_ASSIGN_OR_RETURN(const MergeList merges, LoadMerges(model, path));
  if (const Json* dropout = Member(model, "dropout");
      dropout != nullptr && dropout->is_number() && dropout->get<double>() != 0.0) {
    return json_fields::Unsupported(Child(path, "dropout"), "BPE dropout is not supported");
  }
  BpeOptions o;
  TRIAD_ASSIGN_OR_RETURN(o.unk_token, json_fields::OptionalString(model, path, "unk_token"));
  TRIAD_ASSIGN_OR_RETURN(o.continuing_subword_prefix,
                         json_fields::String(model, path, "continuing_subword_prefix", ""));
  TRIAD_ASSIGN_OR_RETURN(o.end_of_word_suffix,
                         json_fields::String(model, path, "end_of_word_suffix", ""));
  TRIAD_ASSIGN_OR_RETURN(o.fuse_unk, json_fields::Bool(model, path, "fuse_unk", false));
  TRIAD_ASSIGN_OR_RETURN(o.byte_fallback, json_fields::Bool(model, path, "byte_fallback", false));
  TRIAD_ASSIGN_OR_RETURN(o.ignore_merges, json_fields::Bool(model, path, "ignore_merges", false));
  auto bpe = MakeBpe(std::move(vocab), merges, std::move(o));
  if (!bpe.ok()) return json_fields::Invalid(path, bpe.status().message());
  return bpe;
}

absl::StatusOr<std::unique_ptr<Model>> LoadUnigram(const Json& model, absl::string_view path) {
  const std::string vocab_path = Child(path, "vocab");
  const Json* vocab = Member(model, "vocab");
  if (vocab == nullptr || !vocab->is_array()) {
    return json_fields::Invalid(vocab_path, "expected an array of [piece, score]");
  }
  UnigramPieces pieces;
  pieces.reserve(vocab->size());
  for (size_t i = 0; i < vocab->size(); ++i) {
    const Json& p = (*vocab)[i];
    if (!p.is_array() || p.size() != 2 || !p[0].is_string() || !p[1].is_number()) {
      return json_fields::Invalid(Child(vocab_path, i), "expected [piece, score]");
    }
    pieces.emplace_back(p[0].get<std::string>(), p[1].get<double>());
  }
  std::optional<int32_t> unk_id;
  if (const Json* unk = Member(model, "unk_id"); unk != nullptr && !unk->is_null()) {
    TRIAD_ASSIGN_OR_RETURN(unk_id, json_fields::TokenId(*unk, Child(path, "unk_id")));
  }
  TRIAD_ASSIGN_OR_RETURN(const bool byte_fallback,
                         json_fields::Bool(model, path, "byte_fallback", false));
  auto unigram = MakeUnigram(std::move(pieces), unk_id, byte_fallback);
  if (!unigram.ok()) return json_fields::Invalid(path, unigram.status().message());
  return unigram;
}

absl::StatusOr<std::unique_ptr<Model>> LoadWordPiece(const Json& model, absl::string_view path) {
  TRIAD_ASSIGN_OR_RETURN(Vocab vocab, LoadVocabDict(model, path));
  TRIAD_ASSIGN_OR_RETURN(std::string unk, json_fields::String(model, path, "unk_token", "[UNK]"));
  TRIAD_ASSIGN_OR_RETURN(std::string prefix,
                         json_fields::String(model, path, "continuing_subword_prefix", "##"));
  TRIAD_ASSIGN_OR_RETURN(const int64_t max_chars,
                         json_fields::Int(model, path, "max_input_chars_per_word", 100));
  auto wp = MakeWordPiece(std::move(vocab), std::move(unk), std::move(prefix),
                          static_cast<int>(max_chars));
  if (!wp.ok()) return json_fields::Invalid(path, wp.status().message());
  return wp;
}

absl::StatusOr<std::unique_ptr<Model>> LoadModel(const Json& model, absl::string_view path) {
  if (!model.is_object()) return json_fields::Invalid(path, "expected an object");
  std::string type;
  if (Member(model, "type") != nullptr) {
    TRIAD_ASSIGN_OR_RETURN(type, json_fields::Type(model, path));
  } else if (Member(model, "merges") != nullptr) {  // HF accepts untagged models
    type = "BPE";
  } else if (const Json* v = Member(model, "vocab"); v != nullptr && v->is_array()) {
    type = "Unigram";
  } else {
    type = "WordPiece";
  }
  if (type == "BPE") return LoadBpe(model, path);
  if (type == "Unigram") return LoadUnigram(model, path);
  if (type == "WordPiece") return LoadWordPiece(model, path);
  return json_fields::Unsupported(Child(path, "type"),
                                  absl::StrCat("unsupported model \"", type, "\""));
}

absl::Status LoadAddedTokens(const Json& root, const Normalizer* normalizer, Pipeline* p) {
  const Json* list = Member(root, "added_tokens");
  if (list == nullptr || list->is_null()) return absl::OkStatus();
  if (!list->is_array()) return json_fields::Invalid("/added_tokens", "expected an array");
  for (size_t i = 0; i < list->size(); ++i) {
    const Json& t = (*list)[i];
    const std::string path = Child("/added_tokens", i);
    AddedToken token;
    TRIAD_ASSIGN_OR_RETURN(token.content, json_fields::String(t, path, "content"));
    TRIAD_ASSIGN_OR_RETURN(token.id, json_fields::TokenId(t, path, "id"));
    TRIAD_ASSIGN_OR_RETURN(token.special, json_fields::Bool(t, path, "special", false));
    TRIAD_ASSIGN_OR_RETURN(token.normalized,
                           json_fields::Bool(t, path, "normalized", !token.special));
    for (const char* key : {"single_word", "lstrip", "rstrip"}) {
      TRIAD_ASSIGN_OR_RETURN(const bool set, json_fields::Bool(t, path, key, false));
      if (set) return json_fields::Unsupported(Child(path, key), "only false is supported");
    }
    std::string normalized = token.content;
    if (token.normalized && normalizer != nullptr) normalizer->Normalize(&normalized);
    const absl::Status status = p->added.Add(token, std::move(normalized));
    if (!status.ok()) return json_fields::Invalid(path, status.message());
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Pipeline> LoadPipeline(const Json& root) {
  if (!root.is_object()) return json_fields::Invalid("", "expected a JSON object");
  const Json null_json;
  const auto member = [&](absl::string_view key) -> const Json& {
    const Json* j = Member(root, key);
    return j == nullptr ? null_json : *j;
  };
  if (member("model").is_null()) return json_fields::Invalid("/model", "required");
  Pipeline p;
  TRIAD_ASSIGN_OR_RETURN(p.normalizer, LoadNormalizer(member("normalizer"), "/normalizer"));
  TRIAD_ASSIGN_OR_RETURN(p.pre_tokenizer,
                         LoadPreTokenizer(member("pre_tokenizer"), "/pre_tokenizer"));
  TRIAD_ASSIGN_OR_RETURN(p.model, LoadModel(member("model"), "/model"));
  TRIAD_ASSIGN_OR_RETURN(p.decoder, LoadDecoder(member("decoder"), "/decoder"));
  TRIAD_RETURN_IF_ERROR(LoadAddedTokens(root, p.normalizer.get(), &p));
  TRIAD_ASSIGN_OR_RETURN(p.post_processor,
                         LoadPostProcessor(member("post_processor"), "/post_processor"));
  return p;
}

}  // namespace triad::tokenizer
