// Classification tasks: what each model family computes for ENTAILMENT, SIMILARITY,
// MULTIPLE_CHOICE and SINGLE, and the two ends of a Classify call around the model: turning an
// item's texts into token sequences (GPT-1's start/delimiter/extract transformation, prompt
// templates with label continuations, T5 text-to-text inputs with label targets) and turning
// the model's raw outputs (head logits or candidate log-likelihoods) into label probabilities.
// No LibTorch, no gRPC: the service converts protos to ItemTexts and runs ItemWork through the
// scheduler.
//
// Thread contract: a ModelTasks is immutable after Build and may be shared by any threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/config.h"
#include "model/tokenizer/tokenizer.h"
#include "server/config.h"

namespace triad {

enum class ClassifyTaskKind { kEntailment, kSimilarity, kMultipleChoice, kSingle };
// "entailment", "similarity", "multiple_choice", "single" (the config keys).
const char* ClassifyTaskName(ClassifyTaskKind task);
// The proto spelling for messages: "ENTAILMENT", "SIMILARITY", "MULTIPLE_CHOICE", "SINGLE".
const char* ClassifyTaskUpperName(ClassifyTaskKind task);

enum class ClassifyMethod {
  kHead,        // a fine-tuned GPT-1 head over <start> a <delim> b <extract>
  kLmScoring,   // decoder-only: label / choice continuations after a prompt template
  kTextToText,  // T5: templated encoder input, label strings scored as decoder targets
};

// One task as a model serves it, after defaults, presets and the config are applied.
struct TaskSpec {
  ClassifyTaskKind task = ClassifyTaskKind::kEntailment;
  ClassifyMethod method = ClassifyMethod::kHead;
  // kLmScoring / kTextToText: the prompt (encoder input) with placeholders {premise},
  // {hypothesis}, {text_a}, {text_b}, {context}, {text}; MULTIPLE_CHOICE may also read
  // {question}, and with fixed targets must read {choice1}..{choiceN}. "" for kHead.
  std::string prompt_template;
  // Label names in output order (kHead: the checkpoint's id2label). Empty for MULTIPLE_CHOICE,
  // whose labels are the request's choices.
  std::vector<std::string> labels;
  // kLmScoring / kTextToText: the string scored for each label (same size as labels).
  // kTextToText MULTIPLE_CHOICE: empty (each choice's text is its decoder target), or fixed
  // targets, one per choice position (T5's copa: "choice1", "choice2"); the item must then have
  // exactly that many choices, which the template shows as {choice1}..{choiceN}.
  std::vector<std::string> targets;
  bool reads_question = false;  // MULTIPLE_CHOICE: the template has {question}
  // kLmScoring MULTIPLE_CHOICE: how a choice continues the prompt ({choice} placeholder).
  std::string choice_template;
  bool length_normalize = false;  // default when the request does not say
  bool regression = false;        // labels are numbers: results carry value / expected_value
};

// An item as the service received it (one of the two forms; see ClassifyItem in the proto).
struct ItemTexts {
  std::string premise, hypothesis, text_a, text_b, context, text;
  std::string question;  // MULTIPLE_CHOICE, when the task's template reads {question}
  std::vector<std::string> choices;
  std::vector<std::vector<int32_t>> segment_ids;  // pre-tokenized pieces, in the task's order
  std::vector<std::vector<int32_t>> choice_ids;   // pre-tokenized choices
};

// What the model runs for one item.
struct ItemWork {
  // kHead: sequences read at their last token (entailment/single: 1; similarity: 2, both
  // orderings; multiple choice: one per choice).
  std::vector<std::vector<int64_t>> head_sequences;
  // kLmScoring / kTextToText: the prompt (T5: encoder input) and one candidate per label
  // (MULTIPLE_CHOICE: per choice), the context computed once for all of them.
  std::vector<int64_t> context;
  std::vector<std::vector<int64_t>> candidates;
  int64_t num_tokens = 0;  // every token the model runs over for this item (usage)
};

// What the model returned for one item (the shape ItemWork asked for).
struct ItemOutputs {
  std::vector<std::vector<float>> head_logits;  // per head sequence
  std::vector<double> candidate_logprob_sums;   // per candidate
  std::vector<int64_t> candidate_tokens;        // per candidate
};

struct LabelResult {
  std::string label;   // name; MULTIPLE_CHOICE: the choice text, or "choice_<i>" for ids
  int index = 0;       // position in TaskSpec::labels / the request's choices
  double probability = 0;
  double logit = 0;    // head logit, or the (length-normalized) log-likelihood
  int64_t num_tokens = 0;  // candidate tokens scored (0 for kHead)
};

struct ItemResult {
  std::vector<LabelResult> labels;  // most probable first (ties: lower index first)
  std::optional<double> value;           // regression: the top label as a number
  std::optional<double> expected_value;  // regression: sum of probability * label value
};

// Limits on a MULTIPLE_CHOICE item.
inline constexpr int kMinChoices = 2;
inline constexpr int kMaxChoices = 64;

class ModelTasks {
 public:
  // The tasks `model` serves: defaults from its family and head (see the .cc), then `config`
  // (presets, templates, labels, disabled tasks, GPT-1 special tokens). Every token a task
  // needs must exist in `tokenizer` (kept by reference: it must outlive this object).
  // INVALID_ARGUMENT prefixed with `where` (e.g. "models[2].classify") naming the key.
  static absl::StatusOr<ModelTasks> Build(const ModelConfig& model,
                                          const tokenizer::Tokenizer& tokenizer,
                                          const ClassifyConfig& config, const std::string& where);

  // nullptr when the model does not serve `task`.
  const TaskSpec* Find(ClassifyTaskKind task) const;
  const std::vector<TaskSpec>& tasks() const { return tasks_; }
  // "ENTAILMENT, SIMILARITY" (or "none") for error messages.
  std::string SupportedNames() const;

  // Tokenizes and transforms one item. INVALID_ARGUMENT prefixed with `where` (e.g. "item." or
  // "items[3].") naming the field: an unsupported task (naming what the model supports), an
  // empty or missing text, a field the task does not read, invalid UTF-8, a token id outside
  // the vocabulary, fewer than kMinChoices or more than kMaxChoices choices (with fixed
  // targets: other than one per target, text form only), a question the template does not
  // read or a missing one it does, mixed text and id forms, or a sequence longer than the
  // model's context length.
  absl::StatusOr<ItemWork> BuildWork(ClassifyTaskKind task, const ItemTexts& item,
                                     const std::string& where) const;

  // The prompt (T5: encoder input) text of `task` for `item` (text form), for Generate: the
  // task's template with the item's texts. INVALID_ARGUMENT as BuildWork, and for the ids
  // form, tasks served by a head (no prompt) and MULTIPLE_CHOICE without fixed targets (one
  // prompt per choice).
  absl::StatusOr<std::string> RenderPrompt(ClassifyTaskKind task, const ItemTexts& item,
                                           const std::string& where) const;

  // Label probabilities (softmax over the logits) from the model's outputs for that item.
  // `length_normalize` unset = the task's default.
  ItemResult Interpret(ClassifyTaskKind task, const ItemTexts& item, const ItemOutputs& outputs,
                       std::optional<bool> length_normalize) const;

 private:
  // Find(task), or INVALID_ARGUMENT (prefixed with `where`) naming the tasks it supports.
  absl::StatusOr<const TaskSpec*> Served(ClassifyTaskKind task, const std::string& where) const;

  ModelConfig model_;
  const tokenizer::Tokenizer* tokenizer_ = nullptr;
  std::vector<TaskSpec> tasks_;
  int64_t start_id_ = -1, delimiter_id_ = -1, extract_id_ = -1;  // kHead
};

}  // namespace triad
