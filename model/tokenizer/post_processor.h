// Post-processors of the HF pipeline: TemplateProcessing (adds special tokens and sets type
// ids for single and pair inputs) and the pass-through ones (ByteLevel, none), which only
// concatenate a pair.
// Thread contract: immutable after construction; Process is const and thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/tokenizer/encoding.h"

namespace triad::tokenizer {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Combines `a` and (if not null) `b`. Special tokens are added only when
  // `add_special_tokens`; the template's type ids apply either way (as in HF).
  virtual Encoding Process(Encoding a, Encoding* b, bool add_special_tokens) const = 0;
};

// One element of a template: a sequence ("A" or "B") or a special token name.
struct TemplatePiece {
  bool is_sequence = false;
  bool is_b = false;    // for sequences: $B rather than $A
  std::string special;  // for special tokens: key into TemplateSpecial
  int32_t type_id = 0;
};
struct TemplateSpecial {
  std::string name;
  std::vector<int32_t> ids;
  std::vector<std::string> tokens;
};
std::unique_ptr<PostProcessor> MakeTemplateProcessing(std::vector<TemplatePiece> single,
                                                      std::vector<TemplatePiece> pair,
                                                      std::vector<TemplateSpecial> specials);
// Concatenates a pair unchanged (HF's default, also ByteLevel's when offsets are not tracked).
std::unique_ptr<PostProcessor> MakeConcatPostProcessor();

}  // namespace triad::tokenizer
