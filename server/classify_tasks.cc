#include "server/classify_tasks.h"

#include <algorithm>
#include <initializer_list>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "model/status_macros.h"
#include "model/tokenizer/unicode.h"
#include "server/classify_internal.h"

namespace triad {
namespace classify_internal {

// --- Tasks --------------------------------------------------------------------------------

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

}  // namespace classify_internal

namespace {

using classify_internal::FieldNames;
using classify_internal::Info;
using classify_internal::Invalid;
using classify_internal::IsMultipleChoice;
using classify_internal::kAllTasks;
using classify_internal::TaskInfo;

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

// `text` has every placeholder of `required`, maybe those of `optional`, and no other.
absl::Status CheckPlaceholders(absl::string_view text, const std::vector<std::string>& required,
                               const std::vector<std::string>& optional, const std::string& key) {
  const std::vector<std::string> found = Placeholders(text);
  const std::string all = absl::StrCat("{", absl::StrJoin(required, "} {"), "}");
  for (const std::string& name : required) {
    if (std::find(found.begin(), found.end(), name) == found.end()) {
      return Invalid(key, ": has no {", name, "} (needs ", all, ")");
    }
  }
  for (const std::string& name : found) {
    if (std::find(required.begin(), required.end(), name) == required.end() &&
        std::find(optional.begin(), optional.end(), name) == optional.end()) {
      const std::string extra =
          optional.empty() ? "" : absl::StrCat(", and optionally {", absl::StrJoin(optional, "} {"), "}");
      return Invalid(key, ": unknown placeholder {", name, "} (this task has ", all, extra, ")");
    }
  }
  return absl::OkStatus();
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

// A T5 published task: its input template and label strings (the first per task is the
// default, except for multiple_choice, whose default scores the choices' texts). For
// multiple_choice the strings are fixed targets, one per choice position.
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
      // SuperGLUE COPA as T5 was trained on it: the features in sorted order, the answer
      // named by its position.
      {"copa",
       T::kMultipleChoice,
       "copa choice1: {choice1} choice2: {choice2} premise: {context} question: {question}",
       {"choice1", "choice2"},
       false},
  };
  return *presets;
}

// T5's defaults for `task` with preset `name` ("" = the task's default).
absl::StatusOr<TaskSpec> TextToTextDefault(TaskSpec spec, const std::string& name,
                                           const std::string& key) {
  const bool choice = IsMultipleChoice(spec.task);
  if (choice && name.empty()) {  // every choice's text is scored as the decoder's target
    spec.prompt_template = "{context}";
    return spec;
  }
  std::vector<std::string> names;
  for (const Preset& preset : Presets()) {
    if (preset.task != spec.task) continue;
    names.push_back(preset.name);
    if (!name.empty() && name != preset.name) continue;
    spec.prompt_template = preset.prompt_template;
    spec.targets = preset.labels;
    if (!choice) spec.labels = preset.labels;
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
  if (choice && !config.labels.empty()) {
    return Invalid(key, ".labels: multiple_choice scores the request's choices");
  }
  if (choice && !config.targets.empty() && spec->method != ClassifyMethod::kTextToText) {
    return Invalid(key, ".targets: fixed multiple_choice targets are for T5 (text-to-text); LM "
                   "scoring scores the request's choices");
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
  if (!choice && config.targets.size() != spec->labels.size()) {
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
  const bool choice = IsMultipleChoice(spec.task);
  if (spec.method != ClassifyMethod::kHead) {
    std::vector<std::string> required = FieldNames(spec.task), optional;
    if (choice) optional.push_back("question");
    for (size_t i = 1; choice && i <= spec.targets.size(); ++i) {
      required.push_back(absl::StrCat("choice", i));
    }
    TRIAD_RETURN_IF_ERROR(
        CheckPlaceholders(spec.prompt_template, required, optional, key + ".template"));
  }
  if (choice && spec.method == ClassifyMethod::kLmScoring) {
    TRIAD_RETURN_IF_ERROR(
        CheckPlaceholders(spec.choice_template, {"choice"}, {}, key + ".choice_template"));
  }
  if (choice && !spec.targets.empty() &&
      (spec.targets.size() < kMinChoices || spec.targets.size() > kMaxChoices)) {
    return Invalid(key, ".targets: ", spec.targets.size(), " targets; one per choice, ",
                   kMinChoices, "..", kMaxChoices);
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
  const std::vector<std::string> placeholders = Placeholders(spec.prompt_template);
  spec.reads_question = IsMultipleChoice(task) &&
                        std::count(placeholders.begin(), placeholders.end(), "question") > 0;
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

}  // namespace triad
