#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "model/status_macros.h"
#include "model/tokenizer/unicode.h"
#include "server/classify_internal.h"
#include "server/classify_tasks.h"

namespace triad {
namespace {

using classify_internal::FieldNames;
using classify_internal::Info;
using classify_internal::Invalid;
using classify_internal::IsMultipleChoice;
using classify_internal::kAllTasks;
using classify_internal::TextField;

using Ids = std::vector<int64_t>;

// --- Work ---------------------------------------------------------------------------------

std::string Render(const std::string& prompt_template, const ItemTexts& item,
                   ClassifyTaskKind task) {
  std::vector<std::pair<std::string, absl::string_view>> replacements;
  for (const TextField& field : Info(task).fields) {
    replacements.emplace_back(absl::StrCat("{", field.name, "}"), item.*field.member);
  }
  if (IsMultipleChoice(task)) {
    replacements.emplace_back("{question}", item.question);
    for (size_t i = 0; i < item.choices.size(); ++i) {
      replacements.emplace_back(absl::StrCat("{choice", i + 1, "}"), item.choices[i]);
    }
  }
  return absl::StrReplaceAll(prompt_template, replacements);
}

// The item's pieces as token ids, with the names errors use for them.
struct Pieces {
  bool ids_form = false;
  std::vector<Ids> segments;  // in the task's order (text form: tokenized only for a head)
  std::vector<Ids> choices;   // multiple choice (likewise)
  std::string segment_names;  // "item.premise, item.hypothesis" or "item.segment_ids"
};

absl::StatusOr<Ids> Encode(const tokenizer::Tokenizer& tokenizer, const std::string& text,
                           bool add_special_tokens, absl::string_view name) {
  absl::StatusOr<std::vector<int32_t>> ids = tokenizer.EncodeIds(text, add_special_tokens);
  if (!ids.ok()) return Invalid(name, ": ", ids.status().message());
  return Ids(ids->begin(), ids->end());
}

// Text fields of other tasks, and choices for a task without them.
absl::Status CheckUnreadFields(ClassifyTaskKind task, const ItemTexts& item,
                               const std::string& where) {
  std::vector<std::string> unread;
  for (ClassifyTaskKind other : kAllTasks) {
    for (const TextField& field : Info(other).fields) {
      if (other != task && !(item.*field.member).empty()) unread.push_back(field.name);
    }
  }
  if (!IsMultipleChoice(task) && !item.choices.empty()) unread.push_back("choices");
  if (!IsMultipleChoice(task) && !item.choice_ids.empty()) unread.push_back("choice_ids");
  if (!IsMultipleChoice(task) && !item.question.empty()) unread.push_back("question");
  if (unread.empty()) return absl::OkStatus();
  std::vector<std::string> read = FieldNames(task);
  if (IsMultipleChoice(task)) read.push_back("choices");
  return Invalid(where, unread[0], ": not read by ", Info(task).upper_name, " (it reads ",
                 absl::StrJoin(read, ", "), ")");
}

absl::Status CheckChoiceCount(size_t count, const std::string& where, const char* field) {
  if (count >= kMinChoices && count <= kMaxChoices) return absl::OkStatus();
  return Invalid(where, field, ": ", count, " choices; needs ", kMinChoices, "..", kMaxChoices);
}

// What a MULTIPLE_CHOICE template asks beyond the context and choices: the question when it
// reads {question} (and none when it does not, nor in the ids form, which applies no
// template), and with fixed targets the text form with one choice per target (the template
// shows them).
absl::Status CheckChoiceTemplate(const TaskSpec& spec, const ItemTexts& item,
                                 const std::string& where) {
  if (!IsMultipleChoice(spec.task)) return absl::OkStatus();
  const bool fixed_targets = spec.method == ClassifyMethod::kTextToText && !spec.targets.empty();
  const bool ids_form = !item.segment_ids.empty();
  if (fixed_targets && (ids_form || !item.choice_ids.empty())) {
    return Invalid(where, ids_form ? "segment_ids" : "choice_ids",
                   ": this model's MULTIPLE_CHOICE template shows the choices' texts; send "
                   "context and choices as text");
  }
  const std::string question = absl::StrCat(where, "question");
  if (ids_form && !item.question.empty()) {
    return Invalid(question, ": the ids form applies no template; put the question's tokens in "
                   "segment_ids");
  }
  if (!spec.reads_question && !item.question.empty()) {
    return Invalid(question, ": not read by this model's MULTIPLE_CHOICE",
                   spec.method == ClassifyMethod::kHead ? " head" : " template");
  }
  if (spec.reads_question && !ids_form) {
    if (item.question.empty()) {
      return Invalid(question, ": empty (this model's MULTIPLE_CHOICE template reads {question})");
    }
    TRIAD_RETURN_IF_ERROR(tokenizer::ValidateUtf8(item.question, question));
  }
  if (fixed_targets && item.choices.size() != spec.targets.size()) {
    return Invalid(where, "choices: ", item.choices.size(), " choices; this model's "
                   "MULTIPLE_CHOICE template takes exactly ", spec.targets.size());
  }
  return absl::OkStatus();
}

// Non-empty ids inside the model's vocabulary, widened.
absl::StatusOr<Ids> CheckedIds(const std::vector<int32_t>& ids, int64_t vocab_size,
                               const std::string& name) {
  if (ids.empty()) return Invalid(name, ": empty");
  Ids wide(ids.begin(), ids.end());
  TRIAD_RETURN_IF_ERROR(CheckTokenIds(wide, vocab_size, name));
  return wide;
}

// The ids form: segments and choices as given.
absl::StatusOr<Pieces> IdsPieces(ClassifyTaskKind task, const ItemTexts& item, int64_t vocab_size,
                                 const std::string& where) {
  for (const TextField& field : Info(task).fields) {
    if (!(item.*field.member).empty()) {
      return Invalid(where, field.name, ": set together with segment_ids (use one form)");
    }
  }
  if (!item.choices.empty()) {
    return Invalid(where, "choices: set together with segment_ids (use choice_ids)");
  }
  const std::vector<std::string> names = FieldNames(task);
  if (item.segment_ids.size() != names.size()) {
    return Invalid(where, "segment_ids: ", Info(task).upper_name, " takes ", names.size(),
                   " segments (", absl::StrJoin(names, ", "), "), got ", item.segment_ids.size());
  }
  Pieces pieces;
  pieces.ids_form = true;
  pieces.segment_names = absl::StrCat(where, "segment_ids");
  for (size_t i = 0; i < names.size(); ++i) {
    TRIAD_ASSIGN_OR_RETURN(
        pieces.segments.emplace_back(),
        CheckedIds(item.segment_ids[i], vocab_size, absl::StrCat(where, "segment_ids[", i, "]")));
  }
  if (!IsMultipleChoice(task)) return pieces;
  TRIAD_RETURN_IF_ERROR(CheckChoiceCount(item.choice_ids.size(), where, "choice_ids"));
  for (size_t i = 0; i < item.choice_ids.size(); ++i) {
    TRIAD_ASSIGN_OR_RETURN(
        pieces.choices.emplace_back(),
        CheckedIds(item.choice_ids[i], vocab_size, absl::StrCat(where, "choice_ids[", i, "]")));
  }
  return pieces;
}

// A text: non-empty, valid UTF-8, and tokenized without special tokens when `encode`.
absl::Status AddText(const tokenizer::Tokenizer& tokenizer, const std::string& text,
                     const std::string& name, bool encode, std::vector<Ids>* out) {
  if (text.empty()) return Invalid(name, ": empty");
  TRIAD_RETURN_IF_ERROR(tokenizer::ValidateUtf8(text, name));
  if (!encode) return absl::OkStatus();
  TRIAD_ASSIGN_OR_RETURN(out->emplace_back(), Encode(tokenizer, text, false, name));
  return absl::OkStatus();
}

// The text form; `encode` = tokenize each text (a head's segments).
absl::StatusOr<Pieces> TextPieces(ClassifyTaskKind task, const ItemTexts& item,
                                  const tokenizer::Tokenizer& tokenizer, bool encode,
                                  const std::string& where) {
  if (!item.choice_ids.empty()) {
    return Invalid(where, "choice_ids: set without segment_ids (use choices)");
  }
  Pieces pieces;
  std::vector<std::string> names;
  for (const TextField& field : Info(task).fields) {
    names.push_back(absl::StrCat(where, field.name));
    TRIAD_RETURN_IF_ERROR(
        AddText(tokenizer, item.*field.member, names.back(), encode, &pieces.segments));
  }
  pieces.segment_names = absl::StrJoin(names, ", ");
  if (!IsMultipleChoice(task)) return pieces;
  TRIAD_RETURN_IF_ERROR(CheckChoiceCount(item.choices.size(), where, "choices"));
  for (size_t i = 0; i < item.choices.size(); ++i) {
    TRIAD_RETURN_IF_ERROR(AddText(tokenizer, item.choices[i],
                                  absl::StrCat(where, "choices[", i, "]"), encode,
                                  &pieces.choices));
  }
  return pieces;
}

Ids Concat(std::initializer_list<const Ids*> parts) {
  Ids out;
  for (const Ids* part : parts) out.insert(out.end(), part->begin(), part->end());
  return out;
}

std::string ChoiceName(bool ids_form, size_t i, const std::string& where) {
  return absl::StrCat(where, ids_form ? "choice_ids[" : "choices[", i, "]");
}

// A choice's field, or "the target of label \"x\"".
std::string CandidateName(const TaskSpec& spec, bool ids_form, size_t i, const std::string& where) {
  if (IsMultipleChoice(spec.task) && !spec.targets.empty()) {
    return absl::StrCat("the target of ", ChoiceName(ids_form, i, where), " \"",
                        absl::CEscape(spec.targets[i]), "\"");
  }
  if (IsMultipleChoice(spec.task)) return ChoiceName(ids_form, i, where);
  return absl::StrCat("the target of label \"", absl::CEscape(spec.labels[i]), "\"");
}

// GPT-1's input transformation: [start] a [delim] b [extract] per sequence the task reads.
absl::StatusOr<ItemWork> HeadWork(ClassifyTaskKind task, const Pieces& pieces,
                                  const Ids& special_ids, int64_t max_positions,
                                  const std::string& where) {
  const Ids start = {special_ids[0]}, delimiter = {special_ids[1]}, extract = {special_ids[2]};
  const std::vector<Ids>& s = pieces.segments;
  ItemWork work;
  if (task == ClassifyTaskKind::kSingle) {
    work.head_sequences.push_back(Concat({&start, &s[0], &extract}));
  } else if (task == ClassifyTaskKind::kMultipleChoice) {
    for (const Ids& choice : pieces.choices) {
      work.head_sequences.push_back(Concat({&start, &s[0], &delimiter, &choice, &extract}));
    }
  } else {
    work.head_sequences.push_back(Concat({&start, &s[0], &delimiter, &s[1], &extract}));
  }
  if (task == ClassifyTaskKind::kSimilarity) {
    work.head_sequences.push_back(Concat({&start, &s[1], &delimiter, &s[0], &extract}));
  }
  for (size_t i = 0; i < work.head_sequences.size(); ++i) {
    const int64_t length = static_cast<int64_t>(work.head_sequences[i].size());
    work.num_tokens += length;
    if (max_positions <= 0 || length <= max_positions) continue;
    return Invalid(pieces.segment_names,
                   IsMultipleChoice(task) ? ", " + ChoiceName(pieces.ids_form, i, where) : "", ": ",
                   length,
                   " tokens with the start, delimiter and extract tokens, more than "
                   "the model's ",
                   max_positions, " positions");
  }
  return work;
}

// lm-evaluation-harness: the continuation is what tokenizing prompt + target adds beyond the
// prompt's tokens, so a merge across the boundary is scored as the model would see it.
absl::StatusOr<Ids> SplitContinuation(const tokenizer::Tokenizer& tokenizer,
                                      const std::string& prompt, const Ids& context,
                                      const std::string& target, const std::string& name) {
  TRIAD_ASSIGN_OR_RETURN(const Ids whole, Encode(tokenizer, prompt + target, true, name));
  if (whole.size() > context.size() && std::equal(context.begin(), context.end(), whole.begin())) {
    return Ids(whole.begin() + static_cast<ptrdiff_t>(context.size()), whole.end());
  }
  return Encode(tokenizer, target, false, name);
}

// One candidate per label / choice of a prompt-based task.
absl::StatusOr<std::vector<Ids>> Candidates(const TaskSpec& spec, const ItemTexts& item,
                                            const Pieces& pieces,
                                            const tokenizer::Tokenizer& tokenizer,
                                            const std::string& prompt, const Ids& context,
                                            const std::string& where) {
  // MULTIPLE_CHOICE scores each choice, unless the task has fixed targets (T5 copa).
  const bool choice = IsMultipleChoice(spec.task) && spec.targets.empty();
  if (choice && pieces.ids_form) return pieces.choices;
  const bool lm = spec.method == ClassifyMethod::kLmScoring;
  std::vector<Ids> candidates;
  for (size_t i = 0; i < (choice ? item.choices.size() : spec.targets.size()); ++i) {
    const std::string name = CandidateName(spec, pieces.ids_form, i, where);
    std::string target = choice ? item.choices[i] : spec.targets[i];
    if (choice && lm) {
      target = absl::StrReplaceAll(spec.choice_template, {{"{choice}", item.choices[i]}});
    }
    TRIAD_ASSIGN_OR_RETURN(candidates.emplace_back(),
                           !lm ? Encode(tokenizer, target, true, name)
                           : pieces.ids_form
                               ? Encode(tokenizer, target, false, name)
                               : SplitContinuation(tokenizer, prompt, context, target, name));
  }
  return candidates;
}

// Each candidate non-empty and fitting the positions (decoder-only: after the prompt).
absl::Status CheckCandidates(const TaskSpec& spec, const Pieces& pieces, const ItemWork& work,
                             const ModelConfig& model, const std::string& where) {
  const int64_t context = static_cast<int64_t>(work.context.size());
  const int64_t max = model.max_positions;
  if (context == 0) return Invalid(pieces.segment_names, ": the prompt has no tokens");
  if (max > 0 && model.is_encoder_decoder() && context > max) {
    return Invalid(pieces.segment_names, ": ", context, " tokens, more than the model's ", max,
                   " positions");
  }
  for (size_t i = 0; i < work.candidates.size(); ++i) {
    const int64_t length = static_cast<int64_t>(work.candidates[i].size());
    const std::string name = CandidateName(spec, pieces.ids_form, i, where);
    if (length == 0) return Invalid(name, ": tokenizes to no tokens");
    const int64_t needed = model.is_encoder_decoder() ? length : context + length - 1;
    if (max > 0 && needed > max) {
      return Invalid(pieces.segment_names, ", ", name, ": the prompt (", context,
                     " tokens) and the candidate (", length, " tokens) need ", needed,
                     " positions, more than the model's ", max);
    }
  }
  return absl::OkStatus();
}

// A prompt (T5: encoder input) and one candidate per label / choice.
absl::StatusOr<ItemWork> ScoringWork(const TaskSpec& spec, const ItemTexts& item,
                                     const Pieces& pieces, const tokenizer::Tokenizer& tokenizer,
                                     const ModelConfig& model, const std::string& where) {
  ItemWork work;
  std::string prompt;
  if (pieces.ids_form) {
    for (const Ids& segment : pieces.segments) {
      work.context.insert(work.context.end(), segment.begin(), segment.end());
    }
  } else {
    prompt = Render(spec.prompt_template, item, spec.task);
    TRIAD_ASSIGN_OR_RETURN(work.context, Encode(tokenizer, prompt, true, pieces.segment_names));
  }
  TRIAD_ASSIGN_OR_RETURN(work.candidates,
                         Candidates(spec, item, pieces, tokenizer, prompt, work.context, where));
  TRIAD_RETURN_IF_ERROR(CheckCandidates(spec, pieces, work, model, where));
  work.num_tokens = static_cast<int64_t>(work.context.size());
  for (const Ids& candidate : work.candidates) {
    work.num_tokens += static_cast<int64_t>(candidate.size());
  }
  return work;
}

// --- Interpret ----------------------------------------------------------------------------

// One logit per label / choice (outputs shorter than asked give fewer).
std::vector<double> Logits(const TaskSpec& spec, const ItemOutputs& outputs, bool normalize) {
  std::vector<double> logits;
  if (spec.method != ClassifyMethod::kHead) {
    for (size_t i = 0; i < outputs.candidate_logprob_sums.size(); ++i) {
      const bool divide =
          normalize && i < outputs.candidate_tokens.size() && outputs.candidate_tokens[i] > 0;
      logits.push_back(outputs.candidate_logprob_sums[i] /
                       (divide ? static_cast<double>(outputs.candidate_tokens[i]) : 1.0));
    }
    return logits;
  }
  const std::vector<std::vector<float>>& head = outputs.head_logits;
  if (IsMultipleChoice(spec.task)) {
    for (const std::vector<float>& choice : head) logits.push_back(choice.empty() ? 0 : choice[0]);
    return logits;
  }
  if (head.empty()) return logits;
  logits.assign(head[0].begin(), head[0].end());
  // Similarity: the paper adds both orderings' representations before the bias-free linear
  // head, which equals adding their logits.
  if (spec.task == ClassifyTaskKind::kSimilarity && head.size() > 1) {
    for (size_t i = 0; i < logits.size() && i < head[1].size(); ++i) logits[i] += head[1][i];
  }
  return logits;
}

std::vector<double> Softmax(const std::vector<double>& logits) {
  if (logits.empty()) return {};
  const double max = *std::max_element(logits.begin(), logits.end());
  std::vector<double> probabilities;
  double sum = 0;
  for (double logit : logits) sum += probabilities.emplace_back(std::exp(logit - max));
  for (double& p : probabilities) p /= sum;
  return probabilities;
}

std::string LabelName(const TaskSpec& spec, const ItemTexts& item, size_t i) {
  if (IsMultipleChoice(spec.task)) {
    if (item.segment_ids.empty() && i < item.choices.size()) return item.choices[i];
    return absl::StrCat("choice_", i);
  }
  return i < spec.labels.size() ? spec.labels[i] : absl::StrCat("LABEL_", i);
}

// value: the top label as a number; expected_value: the probability-weighted mean.
void SetRegression(ItemResult* result) {
  double value = 0;
  if (result->labels.empty() || !absl::SimpleAtod(result->labels[0].label, &value)) return;
  result->value = value;
  double expected = 0;
  for (const LabelResult& label : result->labels) {
    if (absl::SimpleAtod(label.label, &value)) expected += label.probability * value;
  }
  result->expected_value = expected;
}

}  // namespace

absl::StatusOr<const TaskSpec*> ModelTasks::Served(ClassifyTaskKind task,
                                                  const std::string& where) const {
  const TaskSpec* spec = Find(task);
  if (spec == nullptr) {
    return Invalid(where, "task: ", Info(task).upper_name,
                   " is not supported by this model (it supports: ", SupportedNames(), ")");
  }
  return spec;
}

absl::StatusOr<ItemWork> ModelTasks::BuildWork(ClassifyTaskKind task, const ItemTexts& item,
                                               const std::string& where) const {
  TRIAD_ASSIGN_OR_RETURN(const TaskSpec* spec, Served(task, where));
  TRIAD_RETURN_IF_ERROR(CheckUnreadFields(task, item, where));
  TRIAD_RETURN_IF_ERROR(CheckChoiceTemplate(*spec, item, where));
  const bool head = spec->method == ClassifyMethod::kHead;
  TRIAD_ASSIGN_OR_RETURN(const Pieces pieces,
                         item.segment_ids.empty()
                             ? TextPieces(task, item, *tokenizer_, head, where)
                             : IdsPieces(task, item, model_.vocab_size, where));
  if (!head) return ScoringWork(*spec, item, pieces, *tokenizer_, model_, where);
  return HeadWork(task, pieces, {start_id_, delimiter_id_, extract_id_}, model_.max_positions,
                  where);
}

absl::StatusOr<std::string> ModelTasks::RenderPrompt(ClassifyTaskKind task, const ItemTexts& item,
                                                     const std::string& where) const {
  TRIAD_ASSIGN_OR_RETURN(const TaskSpec* spec, Served(task, where));
  if (spec->method == ClassifyMethod::kHead) {
    return Invalid(where, "task: ", Info(task).upper_name,
                   " is served by this model's classification head, which has no prompt");
  }
  if (IsMultipleChoice(task) && (spec->targets.empty() || spec->method != ClassifyMethod::kTextToText)) {
    return Invalid(where,
                   "task: this model's MULTIPLE_CHOICE has one prompt per choice, none to "
                   "generate from");
  }
  if (!item.segment_ids.empty()) return Invalid(where, "segment_ids: give the texts");
  TRIAD_RETURN_IF_ERROR(CheckUnreadFields(task, item, where));
  TRIAD_RETURN_IF_ERROR(CheckChoiceTemplate(*spec, item, where));
  TRIAD_RETURN_IF_ERROR(TextPieces(task, item, *tokenizer_, false, where).status());
  return Render(spec->prompt_template, item, task);
}

ItemResult ModelTasks::Interpret(ClassifyTaskKind task, const ItemTexts& item,
                                 const ItemOutputs& outputs,
                                 std::optional<bool> length_normalize) const {
  ItemResult result;
  const TaskSpec* spec = Find(task);
  if (spec == nullptr) return result;
  const std::vector<double> logits =
      Logits(*spec, outputs, length_normalize.value_or(spec->length_normalize));
  const std::vector<double> probabilities = Softmax(logits);
  for (size_t i = 0; i < logits.size(); ++i) {
    LabelResult& label = result.labels.emplace_back();
    label.label = LabelName(*spec, item, i);
    label.index = static_cast<int>(i);
    label.probability = probabilities[i];
    label.logit = logits[i];
    const bool scored = spec->method != ClassifyMethod::kHead;
    if (scored && i < outputs.candidate_tokens.size())
      label.num_tokens = outputs.candidate_tokens[i];
  }
  std::stable_sort(
      result.labels.begin(), result.labels.end(),
      [](const LabelResult& a, const LabelResult& b) { return a.probability > b.probability; });
  if (spec->regression) SetRegression(&result);
  return result;
}

}  // namespace triad
