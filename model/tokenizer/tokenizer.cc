// Encoding and decoding through the Pipeline. Loading lives in tokenizer_loader.cc, the
// streaming decoder in incremental_decoder.cc.
#include "model/tokenizer/tokenizer.h"

#include <utility>

#include "model/status_macros.h"
#include "model/tokenizer/pipeline.h"
#include "model/tokenizer/unicode.h"

namespace triad::tokenizer {

Tokenizer::Tokenizer(std::unique_ptr<Pipeline> pipeline) : pipeline_(std::move(pipeline)) {}
Tokenizer::~Tokenizer() = default;

absl::Status Tokenizer::EncodeSequence(std::string_view text, int32_t type_id, Encoding* out,
                                       bool with_tokens) const {
  // Never tokenize invalid UTF-8: a lossy repair would silently give different ids.
  TRIAD_RETURN_IF_ERROR(ValidateUtf8(text, "input text"));
  for (const Segment& seg : pipeline_->added.Split(text, /*normalized=*/false)) {
    if (seg.id >= 0) {
      out->ids.push_back(seg.id);
      if (with_tokens) out->tokens.push_back(*pipeline_->added.Token(seg.id));
      out->type_ids.push_back(type_id);
      continue;
    }
    EncodeSegment(std::string(text.substr(seg.begin, seg.end - seg.begin)), seg.begin == 0, type_id,
                  out, with_tokens);
  }
  return absl::OkStatus();
}

void Tokenizer::EncodeSegment(std::string text, bool at_origin, int32_t type_id, Encoding* out,
                              bool with_tokens) const {
  if (pipeline_->normalizer != nullptr) pipeline_->normalizer->Normalize(&text);
  if (text.empty()) return;
  if (!pipeline_->added.HasNormalized()) {
    EncodeWords(std::move(text), at_origin, type_id, out, with_tokens);
    return;
  }
  for (const Segment& seg : pipeline_->added.Split(text, /*normalized=*/true)) {
    if (seg.id >= 0) {
      out->ids.push_back(seg.id);
      if (with_tokens) out->tokens.push_back(*pipeline_->added.Token(seg.id));
      out->type_ids.push_back(type_id);
      continue;
    }
    EncodeWords(text.substr(seg.begin, seg.end - seg.begin), at_origin && seg.begin == 0, type_id,
                out, with_tokens);
  }
}

void Tokenizer::EncodeWords(std::string text, bool at_origin, int32_t type_id, Encoding* out,
                            bool with_tokens) const {
  PreTokenized pre;
  pre.pieces.push_back(std::move(text));
  pre.first_at_origin = at_origin;
  if (pipeline_->pre_tokenizer != nullptr) pipeline_->pre_tokenizer->PreTokenize(&pre);
  for (const std::string& piece : pre.pieces) {
    if (piece.empty()) continue;
    pipeline_->model->Tokenize(piece, &out->ids, with_tokens ? &out->tokens : nullptr);
  }
  out->type_ids.resize(out->ids.size(), type_id);
}

absl::StatusOr<Encoding> Tokenizer::Encode(std::string_view text, bool add_special_tokens) const {
  Encoding a;
  TRIAD_RETURN_IF_ERROR(EncodeSequence(text, 0, &a, /*with_tokens=*/true));
  return pipeline_->post_processor->Process(std::move(a), nullptr, add_special_tokens);
}

absl::StatusOr<Encoding> Tokenizer::EncodePair(std::string_view a, std::string_view b,
                                               bool add_special_tokens) const {
  Encoding first, second;
  TRIAD_RETURN_IF_ERROR(EncodeSequence(a, 0, &first, /*with_tokens=*/true));
  TRIAD_RETURN_IF_ERROR(EncodeSequence(b, 1, &second, /*with_tokens=*/true));
  return pipeline_->post_processor->Process(std::move(first), &second, add_special_tokens);
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::EncodeIds(std::string_view text,
                                                          bool add_special_tokens) const {
  Encoding a;
  TRIAD_RETURN_IF_ERROR(EncodeSequence(text, 0, &a, /*with_tokens=*/false));
  return pipeline_->post_processor->Process(std::move(a), nullptr, add_special_tokens).ids;
}

std::string Tokenizer::DecodeTokens(absl::Span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const int32_t id : ids) {
    if (const std::string* added = pipeline_->added.Token(id)) {
      if (!(skip_special_tokens && pipeline_->added.IsSpecial(id))) tokens.push_back(*added);
    } else if (const std::string* token = pipeline_->model->vocab().Token(id)) {
      tokens.push_back(*token);
    }
  }
  std::string text;
  if (pipeline_->decoder == nullptr) {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) text.push_back(' ');
      text += tokens[i];
    }
    return text;
  }
  pipeline_->decoder->DecodeChain(&tokens);
  for (const std::string& t : tokens) text += t;
  return text;
}

absl::StatusOr<std::string> Tokenizer::Decode(absl::Span<const int32_t> ids,
                                              bool skip_special_tokens) const {
  return DecodeTokens(ids, skip_special_tokens);
}

std::optional<std::string> Tokenizer::IdToToken(int32_t id) const {
  if (const std::string* added = pipeline_->added.Token(id)) return *added;
  if (const std::string* token = pipeline_->model->vocab().Token(id)) return *token;
  return std::nullopt;
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  if (const auto id = pipeline_->added.Find(token)) return id;
  return pipeline_->model->vocab().Find(token);
}

bool Tokenizer::IsSpecial(int32_t id) const { return pipeline_->added.IsSpecial(id); }

int32_t Tokenizer::vocab_size() const {
  return std::max(pipeline_->model->vocab().size(), pipeline_->added.max_id() + 1);
}

void Tokenizer::SetSpecialIds(int32_t bos, int32_t eos, int32_t pad,
                              std::vector<int32_t> extra_eos) {
  bos_id_ = bos;
  eos_id_ = eos;
  pad_id_ = pad;
  eos_ids_.clear();
  if (eos >= 0) eos_ids_.push_back(eos);
  for (const int32_t id : extra_eos) {
    if (id >= 0 && std::find(eos_ids_.begin(), eos_ids_.end(), id) == eos_ids_.end()) {
      eos_ids_.push_back(id);
    }
  }
  if (eos_id_ < 0 && !eos_ids_.empty()) eos_id_ = eos_ids_.front();
}

}  // namespace triad::tokenizer
