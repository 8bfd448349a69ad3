#include "model/tokenizer/post_processor.h"

#include <utility>

namespace triad::tokenizer {
namespace {

void Append(const Encoding& from, Encoding* to) {
  to->ids.insert(to->ids.end(), from.ids.begin(), from.ids.end());
  to->tokens.insert(to->tokens.end(), from.tokens.begin(), from.tokens.end());
  to->type_ids.insert(to->type_ids.end(), from.type_ids.begin(), from.type_ids.end());
}

class TemplateProcessing : public PostProcessor {
 public:
  TemplateProcessing(std::vector<TemplatePiece> single, std::vector<TemplatePiece> pair,
                     std::vector<TemplateSpecial> specials)
      : single_(std::move(single)), pair_(std::move(pair)), specials_(std::move(specials)) {}

  Encoding Process(Encoding a, Encoding* b, bool add_special_tokens) const override {
    Encoding out;
    const bool with_tokens = !a.tokens.empty() || a.ids.empty();
    for (const TemplatePiece& piece : b != nullptr ? pair_ : single_) {
      if (piece.is_sequence) {
        Encoding& seq = piece.is_b && b != nullptr ? *b : a;
        seq.type_ids.assign(seq.ids.size(), piece.type_id);
        Append(seq, &out);
        continue;
      }
      if (!add_special_tokens) continue;
      const TemplateSpecial* special = Find(piece.special);
      if (special == nullptr) continue;  // validated at load; unreachable
      out.ids.insert(out.ids.end(), special->ids.begin(), special->ids.end());
      if (with_tokens) {
        out.tokens.insert(out.tokens.end(), special->tokens.begin(), special->tokens.end());
      }
      out.type_ids.insert(out.type_ids.end(), special->ids.size(), piece.type_id);
    }
    return out;
  }

 private:
  const TemplateSpecial* Find(const std::string& name) const {
    for (const TemplateSpecial& s : specials_) {
      if (s.name == name) return &s;
    }
    return nullptr;
  }

  std::vector<TemplatePiece> single_, pair_;
  std::vector<TemplateSpecial> specials_;
};

class ConcatPostProcessor : public PostProcessor {
 public:
  Encoding Process(Encoding a, Encoding* b, bool add_special_tokens) const override {
    if (b != nullptr) Append(*b, &a);
    return a;
  }
};

}  // namespace

std::unique_ptr<PostProcessor> MakeTemplateProcessing(std::vector<TemplatePiece> single,
                                                      std::vector<TemplatePiece> pair,
                                                      std::vector<TemplateSpecial> specials) {
  return std::make_unique<TemplateProcessing>(std::move(single), std::move(pair),
                                              std::move(specials));
}

std::unique_ptr<PostProcessor> MakeConcatPostProcessor() {
  return std::make_unique<ConcatPostProcessor>();
}

}  // namespace triad::tokenizer
