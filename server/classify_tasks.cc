#include "server/classify_tasks.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "model/status_macros.h"
#include "model/tokenizer/unicode.h"

namespace triad {
namespace {

using Ids = std::vector<int64_t>;

constexpr ClassifyTaskKind kAllTasks[] = {
    ClassifyTaskKind::kEntailment, ClassifyTaskKind::kSimilarity, ClassifyTaskKind::kMultipleChoice,
    ClassifyTaskKind::kSingle};

template <typename... Args>
absl::Status Invalid(const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat(args...));
}

// --- Tasks --------------------------------------------------------------------------------

struct TextField {
  const char* name;
  std::string ItemTexts::*member;
};

// What a task reads and how a decoder-only LM scores it by default (lm-evaluation-harness
// prompts; the targets start with a space).
struct TaskInfo {
  const char* name;
  const char* upper_name;
  std::vector<TextField> fields;  // the text fields read, in segment order
  std::string lm_template, lm_choice_template;
  std::vector<std::string> lm_labels, lm_targets;
};

const TaskInfo& Info(ClassifyTaskKind task) {
  static const auto* infos = new std::vector<TaskInfo>{
      {"entailment",
       "ENTAILMENT",
       {{"premise", &ItemTexts::premise}, {"hypothesis", &ItemTexts::hypothesis}},
       "{premise}\nQuestion: {hypothesis} True, False or Neither?\nAnswer:",
       "",
       {"entailment", "neutral", "contradiction"},
       {" True", " Neither", " False"}},
      {"similarity",
       "SIMILARITY",
       {{"text_a", &ItemTexts::text_a}, {"text_b", &ItemTexts::text_b}},
       "Sentence 1: {text_a}\nSentence 2: {text_b}\nQuestion: Do both sentences mean the same "
       "thing?\nAnswer:",
       "",
       {"not_equivalent", "equivalent"},
       {" no", " yes"}},
      {"multiple_choice",
       "MULTIPLE_CHOICE",
       {{"context", &ItemTexts::context}},
       "{context}",
       " {choice}",
       {},
       {}},
      {"single",
       "SINGLE",
       {{"text", &ItemTexts::text}},
       "{text}\nQuestion: Is this sentence positive or negative?\nAnswer:",
       "",
       {"negative", "positive"},
       {" negative", " positive"}},
  };
  return (*infos)[static_cast<size_t>(task)];
}

bool IsMultipleChoice(ClassifyTaskKind task) { return task == ClassifyTaskKind::kMultipleChoice; }

std::vector<std::string> FieldNames(ClassifyTaskKind task) {
  std::vector<std::string> names;
  for (const TextField& field : Info(task).fields) names.push_back(field.name);
  return names;
}

// --- Templates ----------------------------------------------------------------------------

// The `{name}` placeholders of `text` (name: letters, digits, '_'); other braces are literal.
std::vector<std::string> Placeholders(absl::string_view text) {
  std::vector<std::string> names;
  for (size_t open = text.find('{'); open != absl::string_view::npos;
       open = text.find('{', open + 1)) {
    const size_t close = text.find('}', open + 1);
    if (close == absl::string_view::npos) break;
    const absl::string_view name = text.substr(open + 1, close - open - 1);
    const bool identifier = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_';
    });
    if (identifier) names.emplace_back(name);
  }
  return names;
}

// `text` has every placeholder of `required` and no other.
absl::Status CheckPlaceholders(absl::string_view text, const std::vector<std::string>& required,
                               const std::string& key) {
  const std::vector<std::string> found = Placeholders(text);
  const std::string all = absl::StrCat("{", absl::StrJoin(required, "} {"), "}");
  for (const std::string& name : required) {
    if (std::find(found.begin(), found.end(), name) == found.end()) {
      return Invalid(key, ": has no {", name, "} (needs ", all, ")");
    }
  }
  for (const std::string& name : found) {
    if (std::find(required.begin(), required.end(), name) == required.end()) {
      return Invalid(key, ": unknown placeholder {", name, "} (this task has ", all, ")");
    }
  }
  return absl::OkStatus();
}

std::string Render(const std::string& prompt_template, const ItemTexts& item,
                   ClassifyTaskKind task) {
  std::vector<std::pair<std::string, absl::string_view>> replacements;
  for (const TextField& field : Info(task).fields) {
    replacements.emplace_back(absl::StrCat("{", field.name, "}"), item.*field.member);
  }
  return absl::StrReplaceAll(prompt_template, replacements);
}

// --- Build --------------------------------------------------------------------------------

// How `model` serves `task` by default; nullopt when it cannot.
std::optional<ClassifyMethod> DefaultMethod(const ModelConfig& model, ClassifyTaskKind task) {
  if (model.family == Family::kT5) return ClassifyMethod::kTextToText;
  if (model.family == Family::kGpt1 && model.head == HeadKind::kSequenceClassification) {
    if (IsMultipleChoice(task)) return std::nullopt;
    return ClassifyMethod::kHead;
  }
  if (model.family == Family::kGpt1 && model.head == HeadKind::kDoubleHeads &&
      IsMultipleChoice(task)) {
    return ClassifyMethod::kHead;
  }
  return ClassifyMethod::kLmScoring;
}

// A T5 published task: its input template and label strings (the first per task is the default).
struct Preset {
  const char* name;
  ClassifyTaskKind task;
  const char* prompt_template;
  std::vector<std::string> labels;
  bool regression;
};

std::vector<std::string> StsbLabels() {  // "0.0", "0.2", ..., "5.0"
  std::vector<std::string> labels;
  for (int i = 0; i <= 25; ++i) labels.push_back(absl::StrFormat("%.1f", i / 5.0));
  return labels;
}

const std::vector<Preset>& Presets() {
  using T = ClassifyTaskKind;
  static const auto* presets = new std::vector<Preset>{
      {"mnli",
       T::kEntailment,
       "mnli hypothesis: {hypothesis} premise: {premise}",
       {"entailment", "neutral", "contradiction"},
       false},
      {"rte",
       T::kEntailment,
       "rte sentence1: {premise} sentence2: {hypothesis}",
       {"entailment", "not_entailment"},
       false},
      {"cb",
       T::kEntailment,
       "cb hypothesis: {hypothesis} premise: {premise}",
       {"entailment", "contradiction", "neutral"},
       false},
      {"stsb", T::kSimilarity, "stsb sentence1: {text_a} sentence2: {text_b}", StsbLabels(), true},
      {"mrpc",
       T::kSimilarity,
       "mrpc sentence1: {text_a} sentence2: {text_b}",
       {"not_equivalent", "equivalent"},
       false},
      {"qqp",
       T::kSimilarity,
       "qqp question1: {text_a} question2: {text_b}",
       {"not_duplicate", "duplicate"},
       false},
      {"sst2", T::kSingle, "sst2 sentence: {text}", {"negative", "positive"}, false},
      {"cola", T::kSingle, "cola sentence: {text}", {"unacceptable", "acceptable"}, false},
  };
  return *presets;
}

// T5's defaults for `task` with preset `name` ("" = the task's default).
absl::StatusOr<TaskSpec> TextToTextDefault(TaskSpec spec, const std::string& name,
                                           const std::string& key) {
  if (IsMultipleChoice(spec.task)) {
    if (!name.empty()) return Invalid(key, ".preset: multiple_choice has no presets");
    spec.prompt_template = "{context}";
    return spec;
  }
  std::vector<std::string> names;
  for (const Preset& preset : Presets()) {
    if (preset.task != spec.task) continue;
    names.push_back(preset.name);
    if (!name.empty() && name != preset.name) continue;
    spec.prompt_template = preset.prompt_template;
    spec.labels = spec.targets = preset.labels;
    spec.regression = preset.regression;
    return spec;
  }
  return Invalid(key, ".preset: \"", absl::CEscape(name), "\" is not a preset of ",
                 Info(spec.task).name, " (", absl::StrJoin(names, ", "), ")");
}

std::string Describe(const ModelConfig& model) {
  return absl::StrCat(FamilyName(model.family),
                      model.architecture.empty() ? "" : absl::StrCat(" ", model.architecture));
}

// The defaults for `task` on `model`, with `config`'s preset. `key` = "<where>.tasks.<task>".
absl::StatusOr<TaskSpec> DefaultSpec(const ModelConfig& model, ClassifyMethod method,
                                     ClassifyTaskKind task, const TaskConfig& config,
                                     const std::string& key) {
  TaskSpec spec;
  spec.task = task;
  spec.method = method;
  if (method == ClassifyMethod::kTextToText) return TextToTextDefault(spec, config.preset, key);
  if (!config.preset.empty()) {
    return Invalid(key, ".preset: presets are T5 tasks; this model is ", Describe(model));
  }
  if (method == ClassifyMethod::kHead) {
    if (!IsMultipleChoice(task)) spec.labels = model.id2label;
    return spec;
  }
  const TaskInfo& info = Info(task);
  spec.prompt_template = info.lm_template;
  spec.choice_template = info.lm_choice_template;
  spec.labels = info.lm_labels;
  spec.targets = info.lm_targets;
  return spec;
}

// A head has no prompt (the checkpoint decides); its labels may only be renamed.
absl::Status ApplyHeadConfig(const TaskConfig& config, const std::string& key,
                             const ModelConfig& model, TaskSpec* spec) {
  const std::pair<bool, const char*> unused[] = {
      {!config.prompt_template.empty(), "template"},
      {!config.targets.empty(), "targets"},
      {!config.choice_template.empty(), "choice_template"},
      {config.length_normalize.has_value(), "length_normalize"},
  };
  for (const auto& [set, name] : unused) {
    if (set) {
      return Invalid(key, ".", name, ": not used by a classification head (",
                     Info(spec->task).upper_name, " runs the ", Describe(model), " head)");
    }
  }
  if (config.labels.empty()) return absl::OkStatus();
  if (IsMultipleChoice(spec->task)) {
    return Invalid(key, ".labels: multiple_choice scores the request's choices");
  }
  if (static_cast<int64_t>(config.labels.size()) != model.num_labels) {
    return Invalid(key, ".labels: ", config.labels.size(), " labels, but the head has ",
                   model.num_labels, " (num_labels)");
  }
  spec->labels = config.labels;
  return absl::OkStatus();
}

// A prompt-based task's overrides. Labels without targets: LM scoring scores " <label>", T5
// the label itself.
absl::Status ApplyPromptConfig(const TaskConfig& config, const std::string& key, TaskSpec* spec) {
  const bool choice = IsMultipleChoice(spec->task);
  if (choice && (!config.labels.empty() || !config.targets.empty())) {
    return Invalid(key, config.labels.empty() ? ".targets" : ".labels",
                   ": multiple_choice scores the request's choices");
  }
  if (!config.choice_template.empty() && !(choice && spec->method == ClassifyMethod::kLmScoring)) {
    return Invalid(key, ".choice_template: only multiple_choice with LM scoring uses it");
  }
  if (!config.prompt_template.empty()) spec->prompt_template = config.prompt_template;
  if (!config.choice_template.empty()) spec->choice_template = config.choice_template;
  if (!config.labels.empty()) {
    spec->labels = config.labels;
    spec->targets.clear();
    const char* prefix = spec->method == ClassifyMethod::kLmScoring ? " " : "";
    for (const std::string& label : config.labels) spec->targets.push_back(prefix + label);
  }
  if (config.targets.empty()) return absl::OkStatus();
  if (config.targets.size() != spec->labels.size()) {
    return Invalid(key, ".targets: ", config.targets.size(), " targets for ", spec->labels.size(),
                   " labels (one per label)");
  }
  spec->targets = config.targets;
  return absl::OkStatus();
}

// What the final spec asks of its templates, labels and targets.
absl::Status CheckSpec(const TaskSpec& spec, const tokenizer::Tokenizer& tokenizer,
                       const std::string& key) {
  TRIAD_RETURN_IF_ERROR(tokenizer::ValidateUtf8(spec.prompt_template, key + ".template"));
  TRIAD_RETURN_IF_ERROR(tokenizer::ValidateUtf8(spec.choice_template, key + ".choice_template"));
  if (spec.method != ClassifyMethod::kHead) {
    TRIAD_RETURN_IF_ERROR(
        CheckPlaceholders(spec.prompt_template, FieldNames(spec.task), key + ".template"));
  }
  if (IsMultipleChoice(spec.task) && spec.method == ClassifyMethod::kLmScoring) {
    TRIAD_RETURN_IF_ERROR(
        CheckPlaceholders(spec.choice_template, {"choice"}, key + ".choice_template"));
  }
  if (spec.regression && IsMultipleChoice(spec.task)) {
    return Invalid(key, ".regression: multiple_choice has no numeric labels");
  }
  double number = 0;
  for (const std::string& label : spec.labels) {
    if (spec.regression && !absl::SimpleAtod(label, &number)) {
      return Invalid(key, ".regression: label \"", absl::CEscape(label), "\" is not a number");
    }
  }
  for (size_t i = 0; i < spec.targets.size(); ++i) {
    absl::StatusOr<std::vector<int32_t>> ids = tokenizer.EncodeIds(spec.targets[i], false);
    if (!ids.ok()) return Invalid(key, ".targets[", i, "]: ", ids.status().message());
    if (ids->empty()) {
      return Invalid(key, ".targets[", i, "]: \"", absl::CEscape(spec.targets[i]),
                     "\" tokenizes to no tokens");
    }
  }
  return absl::OkStatus();
}

// How `model` serves `task` after `config` (nullptr: absent); nullopt when it does not.
absl::StatusOr<std::optional<TaskSpec>> ResolveTask(const ModelConfig& model,
                                                    const tokenizer::Tokenizer& tokenizer,
                                                    ClassifyTaskKind task, const TaskConfig* config,
                                                    const std::string& key) {
  const TaskConfig& overrides = config != nullptr ? *config : TaskConfig();
  const std::optional<ClassifyMethod> method = DefaultMethod(model, task);
  if (!overrides.enabled || (!method && config == nullptr)) return std::optional<TaskSpec>();
  if (!method) {
    return Invalid(key, ": ", Describe(model), " cannot serve ", Info(task).upper_name,
                   " (set \"enabled\": false or remove it)");
  }
  TRIAD_ASSIGN_OR_RETURN(TaskSpec spec, DefaultSpec(model, *method, task, overrides, key));
  TRIAD_RETURN_IF_ERROR(*method == ClassifyMethod::kHead
                            ? ApplyHeadConfig(overrides, key, model, &spec)
                            : ApplyPromptConfig(overrides, key, &spec));
  spec.length_normalize = overrides.length_normalize.value_or(false);
  spec.regression = overrides.regression.value_or(spec.regression);
  TRIAD_RETURN_IF_ERROR(CheckSpec(spec, tokenizer, key));
  return std::optional<TaskSpec>(std::move(spec));
}

// One special token of a head: the configured string, else the first of `names` the
// tokenizer has; its id must fit the model's embedding.
absl::StatusOr<int64_t> FindSpecialToken(const tokenizer::Tokenizer& tokenizer,
                                         const ModelConfig& model, const std::string& configured,
                                         std::initializer_list<const char*> names,
                                         const std::string& key) {
  std::optional<int32_t> id;
  if (!configured.empty()) {
    id = tokenizer.TokenToId(configured);
    if (!id) {
      return Invalid(key, ": \"", absl::CEscape(configured),
                     "\" is not in the tokenizer's vocabulary");
    }
  }
  for (const char* name : names) {
    if (!id) id = tokenizer.TokenToId(name);
  }
  if (!id) {
    return Invalid(key, ": the tokenizer has none of ", absl::StrJoin(names, ", "),
                   "; name the token here");
  }
  if (*id < 0 || *id >= model.vocab_size) {
    return Invalid(key, ": token id ", *id, " outside the model's vocabulary [0, ",
                   model.vocab_size, ")");
  }
  return *id;
}

// --- Work ---------------------------------------------------------------------------------

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

// Non-empty ids inside the model's vocabulary, widened.
absl::StatusOr<Ids> CheckedIds(const std::vector<int32_t>& ids, int64_t vocab_size,
                               const std::string& name) {
  if (ids.empty()) return Invalid(name, ": empty");
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size) {
      return Invalid(name, ": token id ", id, " outside the vocabulary [0, ", vocab_size, ")");
    }
  }
  return Ids(ids.begin(), ids.end());
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
  const bool choice = IsMultipleChoice(spec.task);
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

// Task keys are the four names (config.cc checks them too; a config may be built in code).
absl::Status CheckTaskNames(const ClassifyConfig& config, const std::string& where) {
  for (const auto& entry : config.tasks) {
    if (std::none_of(std::begin(kAllTasks), std::end(kAllTasks),
                     [&](ClassifyTaskKind task) { return entry.first == Info(task).name; })) {
      return Invalid(where, ".tasks.", entry.first,
                     ": unknown task (entailment, similarity, multiple_choice, single)");
    }
  }
  return absl::OkStatus();
}

}  // namespace

const char* ClassifyTaskName(ClassifyTaskKind task) { return Info(task).name; }

const char* ClassifyTaskUpperName(ClassifyTaskKind task) { return Info(task).upper_name; }

absl::StatusOr<ModelTasks> ModelTasks::Build(const ModelConfig& model,
                                             const tokenizer::Tokenizer& tokenizer,
                                             const ClassifyConfig& config,
                                             const std::string& where) {
  TRIAD_RETURN_IF_ERROR(CheckTaskNames(config, where));
  ModelTasks tasks;
  tasks.model_ = model;
  tasks.tokenizer_ = &tokenizer;
  bool head = false;
  for (ClassifyTaskKind task : kAllTasks) {
    const auto it = config.tasks.find(Info(task).name);
    TRIAD_ASSIGN_OR_RETURN(
        std::optional<TaskSpec> spec,
        ResolveTask(model, tokenizer, task, it == config.tasks.end() ? nullptr : &it->second,
                    absl::StrCat(where, ".tasks.", Info(task).name)));
    if (!spec) continue;
    head = head || spec->method == ClassifyMethod::kHead;
    tasks.tasks_.push_back(*std::move(spec));
  }
  const bool named = !config.start_token.empty() || !config.delimiter_token.empty() ||
                     !config.extract_token.empty();
  if (named && (model.family != Family::kGpt1 || model.head == HeadKind::kLanguageModel)) {
    return Invalid(where,
                   ".special_tokens: only GPT-1 classification heads use them; this model is ",
                   Describe(model));
  }
  if (!head) return tasks;
  const std::string key = where + ".special_tokens.";
  TRIAD_ASSIGN_OR_RETURN(tasks.start_id_, FindSpecialToken(tokenizer, model, config.start_token,
                                                           {"<start>", "_start_"}, key + "start"));
  TRIAD_ASSIGN_OR_RETURN(
      tasks.delimiter_id_,
      FindSpecialToken(tokenizer, model, config.delimiter_token,
                       {"<delim>", "_delimiter_", "<delimiter>"}, key + "delimiter"));
  TRIAD_ASSIGN_OR_RETURN(
      tasks.extract_id_,
      FindSpecialToken(tokenizer, model, config.extract_token,
                       {"<extract>", "_classify_", "<classify>"}, key + "extract"));
  return tasks;
}

const TaskSpec* ModelTasks::Find(ClassifyTaskKind task) const {
  for (const TaskSpec& spec : tasks_) {
    if (spec.task == task) return &spec;
  }
  return nullptr;
}

std::string ModelTasks::SupportedNames() const {
  if (tasks_.empty()) return "none";
  std::vector<std::string> names;
  for (const TaskSpec& spec : tasks_) names.push_back(Info(spec.task).upper_name);
  return absl::StrJoin(names, ", ");
}

absl::StatusOr<ItemWork> ModelTasks::BuildWork(ClassifyTaskKind task, const ItemTexts& item,
                                               const std::string& where) const {
  const TaskSpec* spec = Find(task);
  if (spec == nullptr) {
    return Invalid(where, "task: ", Info(task).upper_name,
                   " is not supported by this model (it supports: ", SupportedNames(), ")");
  }
  TRIAD_RETURN_IF_ERROR(CheckUnreadFields(task, item, where));
  const bool head = spec->method == ClassifyMethod::kHead;
  TRIAD_ASSIGN_OR_RETURN(const Pieces pieces,
                         item.segment_ids.empty()
                             ? TextPieces(task, item, *tokenizer_, head, where)
                             : IdsPieces(task, item, model_.vocab_size, where));
  if (!head) return ScoringWork(*spec, item, pieces, *tokenizer_, model_, where);
  return HeadWork(task, pieces, {start_id_, delimiter_id_, extract_id_}, model_.max_positions,
                  where);
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
