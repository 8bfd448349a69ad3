#include "model/tokenizer/sentencepiece_converter.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "model/tokenizer/sentencepiece_model.pb.h"
#include "model/tokenizer/unicode.h"

namespace triad::tokenizer {
namespace {

using Json = nlohmann::json;
using spm::ModelProto;

constexpr char kSpace[] = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

Json Metaspace(const char* scheme, bool split) {
  return {
      {"type", "Metaspace"}, {"replacement", kSpace}, {"prepend_scheme", scheme}, {"split", split}};
}

Json SpecialPiece(const std::string& name, int32_t type_id) {
  return {{"SpecialToken", {{"id", name}, {"type_id", type_id}}}};
}
Json SequencePiece(const char* id, int32_t type_id) {
  return {{"Sequence", {{"id", id}, {"type_id", type_id}}}};
}

// transformers' SentencePieceExtractor: every split of a piece (at character boundaries)
// into two pieces of the vocabulary, ordered by (left id, right id) within the piece, then
// stably sorted by the piece's score, highest first.
Json GenerateMerges(const ModelProto& proto) {
  absl::flat_hash_map<std::string, int32_t> ids;
  for (int i = 0; i < proto.pieces_size(); ++i) ids.emplace(proto.pieces(i).piece(), i);
  struct Merge {
    int32_t left, right;
    float score;
  };
  std::vector<Merge> merges;
  for (int i = 0; i < proto.pieces_size(); ++i) {
    const std::string& piece = proto.pieces(i).piece();
    std::vector<Merge> local;
    for (size_t cut = Utf8Length(static_cast<unsigned char>(piece[0])); cut < piece.size();
         cut += Utf8Length(static_cast<unsigned char>(piece[cut]))) {
      const auto l = ids.find(piece.substr(0, cut));
      const auto r = ids.find(piece.substr(cut));
      if (l != ids.end() && r != ids.end()) {
        local.push_back({l->second, r->second, proto.pieces(i).score()});
      }
    }
    std::sort(local.begin(), local.end(), [](const Merge& a, const Merge& b) {
      return std::tie(a.left, a.right) < std::tie(b.left, b.right);
    });
    merges.insert(merges.end(), local.begin(), local.end());
  }
  std::stable_sort(merges.begin(), merges.end(),
                   [](const Merge& a, const Merge& b) { return a.score > b.score; });
  Json out = Json::array();
  for (const Merge& m : merges) {
    out.push_back(Json::array({proto.pieces(m.left).piece(), proto.pieces(m.right).piece()}));
  }
  return out;
}

// The template transformers' LlamaTokenizerFast builds from add_bos_token/add_eos_token.
Json LlamaTemplate(const spm::TrainerSpec& spec, const SentencePieceOptions& options) {
  Json single = Json::array(), pair = Json::array(), specials = Json::object();
  for (int type_id = 0; type_id < 2; ++type_id) {
    Json& t = type_id == 0 ? single : pair;
    if (type_id == 1) t = single;
    if (options.add_bos_token) t.push_back(SpecialPiece(spec.bos_piece(), type_id));
    t.push_back(SequencePiece(type_id == 0 ? "A" : "B", type_id));
    if (options.add_eos_token) t.push_back(SpecialPiece(spec.eos_piece(), type_id));
  }
  const auto add_special = [&](const std::string& piece, int32_t id) {
    specials[piece] = {{"id", piece}, {"ids", {id}}, {"tokens", {piece}}};
  };
  if (options.add_bos_token) add_special(spec.bos_piece(), spec.bos_id());
  if (options.add_eos_token) add_special(spec.eos_piece(), spec.eos_id());
  return {{"type", "TemplateProcessing"},
          {"single", single},
          {"pair", pair},
          {"special_tokens", specials}};
}

Json LlamaLayout(const ModelProto& proto, const SentencePieceOptions& options, Json* root) {
  Json vocab = Json::object();
  for (int i = 0; i < proto.pieces_size(); ++i) vocab[proto.pieces(i).piece()] = i;
  const int unk = proto.trainer_spec().unk_id();
  (*root)["model"] = {
      {"type", "BPE"},
      {"vocab", std::move(vocab)},
      {"merges", GenerateMerges(proto)},
      {"unk_token",
       unk >= 0 && unk < proto.pieces_size() ? Json(proto.pieces(unk).piece()) : Json()},
      {"fuse_unk", true},
      {"byte_fallback", true},
      {"ignore_merges", false}};
  if (options.legacy) {
    (*root)["normalizer"] = {
        {"type", "Sequence"},
        {"normalizers",
         Json::array(
             {{{"type", "Prepend"}, {"prepend", kSpace}},
              {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}}})}};
  } else {
    (*root)["pre_tokenizer"] = Metaspace("first", false);
  }
  (*root)["decoder"] = {
      {"type", "Sequence"},
      {"decoders",
       Json::array({{{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}},
                    {{"type", "ByteFallback"}},
                    {{"type", "Fuse"}},
                    {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}};
  return LlamaTemplate(proto.trainer_spec(), options);
}

Json T5Layout(const ModelProto& proto, const SentencePieceOptions& options, Json* root) {
  Json vocab = Json::array();
  for (const auto& p : proto.pieces()) vocab.push_back(Json::array({p.piece(), p.score()}));
  for (int i = options.extra_ids - 1; i >= 0; --i) {
    vocab.push_back(Json::array({absl::StrCat("<extra_id_", i, ">"), 0.0}));
  }
  const auto& spec = proto.trainer_spec();
  (*root)["model"] = {{"type", "Unigram"},
                      {"vocab", std::move(vocab)},
                      {"unk_id", spec.unk_id()},
                      {"byte_fallback", spec.byte_fallback()}};
  Json normalizers = Json::array();
  const std::string& charsmap = proto.normalizer_spec().precompiled_charsmap();
  if (!charsmap.empty()) {
    normalizers.push_back(
        {{"type", "Precompiled"}, {"precompiled_charsmap", absl::Base64Escape(charsmap)}});
  }
  normalizers.push_back({{"type", "Strip"}, {"strip_left", false}, {"strip_right", true}});
  normalizers.push_back(
      {{"type", "Replace"}, {"pattern", {{"Regex", " {2,}"}}}, {"content", kSpace}});
  (*root)["normalizer"] = {{"type", "Sequence"}, {"normalizers", std::move(normalizers)}};
  const char* scheme = options.legacy ? "always" : "first";
  (*root)["pre_tokenizer"] = Metaspace(scheme, true);
  (*root)["decoder"] = Metaspace(scheme, true);
  const std::string& eos = spec.eos_piece();
  return {{"type", "TemplateProcessing"},
          {"single", Json::array({SequencePiece("A", 0), SpecialPiece(eos, 0)})},
          {"pair", Json::array({SequencePiece("A", 0), SpecialPiece(eos, 0), SequencePiece("B", 0),
                                SpecialPiece(eos, 0)})},
          {"special_tokens", {{eos, {{"id", eos}, {"ids", {spec.eos_id()}}, {"tokens", {eos}}}}}}};
}

// Control and unknown pieces become special added tokens, user-defined pieces plain ones;
// tokenizer_config.json's added_tokens_decoder adds the rest (e.g. T5's <extra_id_N>).
// tokenizer_config.json's "added_tokens_decoder": {"<id>": {"content": ..., "special": ...}}.
void AppendConfigAddedTokens(const Json& added_tokens_decoder,
                             std::vector<std::pair<int32_t, Json>>* tokens) {
  if (!added_tokens_decoder.is_object()) return;
  for (const auto& [key, value] : added_tokens_decoder.items()) {
    const Json* content =
        value.is_object() && value.contains("content") ? &value["content"] : nullptr;
    if (content == nullptr || !content->is_string()) continue;
    const int32_t id = std::atoi(key.c_str());
    tokens->emplace_back(id, Json{{"id", id},
                                  {"content", *content},
                                  {"special", value.value("special", true)},
                                  {"normalized", false}});
  }
}

// T5's <extra_id_N> (appended to the vocabulary, highest N first) are special added tokens.
Json AddedTokens(const ModelProto& proto, int extra_ids, const Json& added_tokens_decoder) {
  std::vector<std::pair<int32_t, Json>> tokens;
  for (int i = extra_ids - 1; i >= 0; --i) {
    const int32_t id = proto.pieces_size() + (extra_ids - 1 - i);
    tokens.emplace_back(id, Json{{"id", id},
                                 {"content", absl::StrCat("<extra_id_", i, ">")},
                                 {"special", true},
                                 {"normalized", false}});
  }
  for (int i = 0; i < proto.pieces_size(); ++i) {
    const auto type = proto.pieces(i).type();
    if (type != ModelProto::SentencePiece::CONTROL && type != ModelProto::SentencePiece::UNKNOWN &&
        type != ModelProto::SentencePiece::USER_DEFINED) {
      continue;
    }
    const bool special = type != ModelProto::SentencePiece::USER_DEFINED;
    tokens.emplace_back(i, Json{{"id", i},
                                {"content", proto.pieces(i).piece()},
                                {"special", special},
                                {"normalized", false}});
  }
  AppendConfigAddedTokens(added_tokens_decoder, &tokens);
  std::stable_sort(tokens.begin(), tokens.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  Json out = Json::array();
  for (auto& [id, token] : tokens) {
    if (!out.empty() && out.back()["id"] == id) continue;  // the first entry for an id wins
    out.push_back(std::move(token));
  }
  return out;
}

}  // namespace

absl::StatusOr<SentencePieceConversion> ConvertSentencePiece(std::string_view serialized,
                                                             const SentencePieceOptions& options,
                                                             const Json& added_tokens_decoder) {
  ModelProto proto;
  if (!proto.ParseFromArray(serialized.data(), static_cast<int>(serialized.size())) ||
      proto.pieces_size() == 0) {
    return absl::InvalidArgumentError("SentencePiece model: not a ModelProto, or it has no pieces");
  }
  for (int i = 0; i < proto.pieces_size(); ++i) {
    if (proto.pieces(i).piece().empty() || !ValidateUtf8(proto.pieces(i).piece(), "").ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("SentencePiece model: pieces[", i, "] is empty or not UTF-8"));
    }
  }
  const auto type = proto.trainer_spec().model_type();
  std::string layout = options.layout;
  if (layout.empty()) layout = type == spm::TrainerSpec::BPE ? "llama" : "t5";
  if ((layout == "llama" && type != spm::TrainerSpec::BPE) ||
      (layout == "t5" && type != spm::TrainerSpec::UNIGRAM) ||
      (layout != "llama" && layout != "t5")) {
    return absl::UnimplementedError(absl::StrCat("SentencePiece model: trainer_spec.model_type ",
                                                 type, " is not supported with layout \"", layout,
                                                 "\""));
  }
  SentencePieceConversion out;
  Json& root = out.tokenizer_json;
  root = {{"version", "1.0"}, {"normalizer", nullptr}, {"pre_tokenizer", nullptr}};
  root["post_processor"] =
      layout == "llama" ? LlamaLayout(proto, options, &root) : T5Layout(proto, options, &root);
  root["added_tokens"] =
      AddedTokens(proto, layout == "t5" ? options.extra_ids : 0, added_tokens_decoder);
  const auto in_range = [&](int32_t id) { return id >= 0 && id < proto.pieces_size() ? id : -1; };
  const auto& spec = proto.trainer_spec();
  out.bos_id = in_range(spec.bos_id());
  out.eos_id = in_range(spec.eos_id());
  out.pad_id = in_range(spec.pad_id());
  out.unk_id = in_range(spec.unk_id());
  return out;
}

}  // namespace triad::tokenizer
