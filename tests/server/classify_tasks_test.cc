// Tests for server/classify_tasks.h over the real tiny tokenizers and model configs of
// tests/data: the tasks each family serves, the exact token sequences of every method in both
// item forms, every item and config error (each naming its field or key), and Interpret's
// numbers.
#include "server/classify_tasks.h"

#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace triad {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Ids = std::vector<int64_t>;

const std::string kData = TRIAD_TEST_DATA_DIR;

// A model config with a tokenizer, loaded from tests/data.
struct Model {
  ModelConfig config;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
};

Model LoadModel(const std::string& model, const std::string& tokenizer) {
  Model out;
  absl::StatusOr<ModelConfig> config = LoadModelConfig(kData + "/models/" + model);
  EXPECT_TRUE(config.ok()) << config.status();
  if (config.ok()) out.config = *config;
  absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> loaded =
      tokenizer::Tokenizer::FromDir(kData + "/tokenizers/" + tokenizer);
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  if (loaded.ok()) out.tokenizer = std::move(*loaded);
  return out;
}

// Loaded once; a ModelTasks keeps a reference to the tokenizer, so these live for the process.
const Model& Cached(const std::string& model, const std::string& tokenizer) {
  static auto* cache = new std::map<std::string, Model>();
  auto it = cache->find(model);
  if (it == cache->end()) it = cache->emplace(model, LoadModel(model, tokenizer)).first;
  return it->second;
}
const Model& GptCls() { return Cached("gpt1-tiny-cls", "gpt1-tiny"); }
const Model& GptMc() { return Cached("gpt1-tiny-mc", "gpt1-tiny"); }
const Model& GptLm() { return Cached("gpt1-tiny", "gpt1-tiny"); }
const Model& Llama() { return Cached("llama-tiny", "llama-tiny"); }
const Model& T5() { return Cached("t5-tiny", "t5-tiny"); }

ModelTasks Build(const Model& model, const ClassifyConfig& config = {}) {
  absl::StatusOr<ModelTasks> tasks =
      ModelTasks::Build(model.config, *model.tokenizer, config, "models[0].classify");
  EXPECT_TRUE(tasks.ok()) << tasks.status();
  return tasks.ok() ? *std::move(tasks) : ModelTasks();
}

std::string BuildError(const Model& model, const ClassifyConfig& config) {
  absl::StatusOr<ModelTasks> tasks =
      ModelTasks::Build(model.config, *model.tokenizer, config, "models[0].classify");
  EXPECT_EQ(tasks.status().code(), absl::StatusCode::kInvalidArgument) << tasks.status();
  return std::string(tasks.status().message());
}

Ids Encode(const Model& model, const std::string& text, bool special) {
  absl::StatusOr<std::vector<int32_t>> ids = model.tokenizer->EncodeIds(text, special);
  EXPECT_TRUE(ids.ok()) << ids.status();
  return ids.ok() ? Ids(ids->begin(), ids->end()) : Ids();
}

Ids Cat(std::initializer_list<Ids> parts) {
  Ids out;
  for (const Ids& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

ItemWork Work(const ModelTasks& tasks, ClassifyTaskKind task, const ItemTexts& item) {
  absl::StatusOr<ItemWork> work = tasks.BuildWork(task, item, "item.");
  EXPECT_TRUE(work.ok()) << work.status();
  return work.ok() ? *std::move(work) : ItemWork();
}

ItemTexts Entailment(const std::string& premise, const std::string& hypothesis) {
  ItemTexts item;
  item.premise = premise;
  item.hypothesis = hypothesis;
  return item;
}
ItemTexts Similarity(const std::string& a, const std::string& b) {
  ItemTexts item;
  item.text_a = a;
  item.text_b = b;
  return item;
}
ItemTexts Single(const std::string& text) {
  ItemTexts item;
  item.text = text;
  return item;
}
ItemTexts Choice(const std::string& context, std::vector<std::string> choices) {
  ItemTexts item;
  item.context = context;
  item.choices = std::move(choices);
  return item;
}

constexpr ClassifyTaskKind kEnt = ClassifyTaskKind::kEntailment;
constexpr ClassifyTaskKind kSim = ClassifyTaskKind::kSimilarity;
constexpr ClassifyTaskKind kMc = ClassifyTaskKind::kMultipleChoice;
constexpr ClassifyTaskKind kSingle = ClassifyTaskKind::kSingle;

// --- Tasks per model ----------------------------------------------------------------------

TEST(ClassifyTasksTest, Names) {
  EXPECT_STREQ(ClassifyTaskName(kEnt), "entailment");
  EXPECT_STREQ(ClassifyTaskName(kSim), "similarity");
  EXPECT_STREQ(ClassifyTaskName(kMc), "multiple_choice");
  EXPECT_STREQ(ClassifyTaskName(kSingle), "single");
  EXPECT_STREQ(ClassifyTaskUpperName(kEnt), "ENTAILMENT");
  EXPECT_STREQ(ClassifyTaskUpperName(kSim), "SIMILARITY");
  EXPECT_STREQ(ClassifyTaskUpperName(kMc), "MULTIPLE_CHOICE");
  EXPECT_STREQ(ClassifyTaskUpperName(kSingle), "SINGLE");
}

TEST(ClassifyTasksTest, SequenceClassificationHeadServesThreeTasksByHead) {
  const ModelTasks tasks = Build(GptCls());
  EXPECT_EQ(tasks.SupportedNames(), "ENTAILMENT, SIMILARITY, SINGLE");
  EXPECT_EQ(tasks.Find(kMc), nullptr);
  for (const TaskSpec& spec : tasks.tasks()) {
    EXPECT_EQ(spec.method, ClassifyMethod::kHead);
    EXPECT_EQ(spec.labels, (std::vector<std::string>{"entailment", "neutral", "contradiction"}));
    EXPECT_EQ(spec.prompt_template, "");
    EXPECT_TRUE(spec.targets.empty());
    EXPECT_FALSE(spec.regression);
  }
}

TEST(ClassifyTasksTest, DoubleHeadsServeMultipleChoiceByHeadAndTheRestByScoring) {
  const ModelTasks tasks = Build(GptMc());
  EXPECT_EQ(tasks.SupportedNames(), "ENTAILMENT, SIMILARITY, MULTIPLE_CHOICE, SINGLE");
  EXPECT_EQ(tasks.Find(kMc)->method, ClassifyMethod::kHead);
  EXPECT_TRUE(tasks.Find(kMc)->labels.empty());
  EXPECT_EQ(tasks.Find(kEnt)->method, ClassifyMethod::kLmScoring);
  EXPECT_EQ(tasks.Find(kSim)->method, ClassifyMethod::kLmScoring);
  EXPECT_EQ(tasks.Find(kSingle)->method, ClassifyMethod::kLmScoring);
}

TEST(ClassifyTasksTest, LanguageModelsScoreEveryTaskWithHarnessDefaults) {
  for (const Model* model_ptr : {&GptLm(), &Llama()}) {
    const Model& model = *model_ptr;
    SCOPED_TRACE(model.config.model_type);
    const ModelTasks tasks = Build(model);
    ASSERT_EQ(tasks.SupportedNames(), "ENTAILMENT, SIMILARITY, MULTIPLE_CHOICE, SINGLE");
    for (const TaskSpec& spec : tasks.tasks()) {
      EXPECT_EQ(spec.method, ClassifyMethod::kLmScoring);
      EXPECT_FALSE(spec.length_normalize);
    }
    const TaskSpec& ent = *tasks.Find(kEnt);
    EXPECT_EQ(ent.prompt_template,
              "{premise}\nQuestion: {hypothesis} True, False or Neither?\nAnswer:");
    EXPECT_EQ(ent.labels, (std::vector<std::string>{"entailment", "neutral", "contradiction"}));
    EXPECT_EQ(ent.targets, (std::vector<std::string>{" True", " Neither", " False"}));
    const TaskSpec& sim = *tasks.Find(kSim);
    EXPECT_EQ(sim.prompt_template,
              "Sentence 1: {text_a}\nSentence 2: {text_b}\nQuestion: Do both sentences mean "
              "the same thing?\nAnswer:");
    EXPECT_EQ(sim.labels, (std::vector<std::string>{"not_equivalent", "equivalent"}));
    EXPECT_EQ(sim.targets, (std::vector<std::string>{" no", " yes"}));
    const TaskSpec& single = *tasks.Find(kSingle);
    EXPECT_EQ(single.prompt_template,
              "{text}\nQuestion: Is this sentence positive or negative?\nAnswer:");
    EXPECT_EQ(single.labels, (std::vector<std::string>{"negative", "positive"}));
    EXPECT_EQ(single.targets, (std::vector<std::string>{" negative", " positive"}));
    const TaskSpec& mc = *tasks.Find(kMc);
    EXPECT_EQ(mc.prompt_template, "{context}");
    EXPECT_EQ(mc.choice_template, " {choice}");
    EXPECT_TRUE(mc.labels.empty());
  }
}

TEST(ClassifyTasksTest, T5UsesTheDefaultPresets) {
  const ModelTasks tasks = Build(T5());
  ASSERT_EQ(tasks.SupportedNames(), "ENTAILMENT, SIMILARITY, MULTIPLE_CHOICE, SINGLE");
  for (const TaskSpec& spec : tasks.tasks()) {
    EXPECT_EQ(spec.method, ClassifyMethod::kTextToText);
    EXPECT_EQ(spec.targets, spec.labels);
  }
  const TaskSpec& ent = *tasks.Find(kEnt);
  EXPECT_EQ(ent.prompt_template, "mnli hypothesis: {hypothesis} premise: {premise}");
  EXPECT_EQ(ent.labels, (std::vector<std::string>{"entailment", "neutral", "contradiction"}));
  EXPECT_FALSE(ent.regression);
  const TaskSpec& sim = *tasks.Find(kSim);
  EXPECT_EQ(sim.prompt_template, "stsb sentence1: {text_a} sentence2: {text_b}");
  ASSERT_EQ(sim.labels.size(), 26u);
  EXPECT_EQ(sim.labels[0], "0.0");
  EXPECT_EQ(sim.labels[1], "0.2");
  EXPECT_EQ(sim.labels[16], "3.2");
  EXPECT_EQ(sim.labels[25], "5.0");
  EXPECT_TRUE(sim.regression);
  const TaskSpec& single = *tasks.Find(kSingle);
  EXPECT_EQ(single.prompt_template, "sst2 sentence: {text}");
  EXPECT_EQ(single.labels, (std::vector<std::string>{"negative", "positive"}));
  EXPECT_EQ(tasks.Find(kMc)->prompt_template, "{context}");
  EXPECT_TRUE(tasks.Find(kMc)->labels.empty());
}

TEST(ClassifyTasksTest, T5PresetsAndOverrides) {
  ClassifyConfig config;
  config.tasks["entailment"].preset = "rte";
  config.tasks["similarity"].preset = "qqp";
  config.tasks["single"].preset = "cola";
  config.tasks["single"].labels = {"bad", "good"};
  config.tasks["multiple_choice"].enabled = false;
  ModelTasks tasks = Build(T5(), config);
  EXPECT_EQ(tasks.SupportedNames(), "ENTAILMENT, SIMILARITY, SINGLE");
  EXPECT_EQ(tasks.Find(kEnt)->prompt_template, "rte sentence1: {premise} sentence2: {hypothesis}");
  EXPECT_EQ(tasks.Find(kEnt)->labels, (std::vector<std::string>{"entailment", "not_entailment"}));
  EXPECT_EQ(tasks.Find(kSim)->prompt_template, "qqp question1: {text_a} question2: {text_b}");
  EXPECT_EQ(tasks.Find(kSim)->labels, (std::vector<std::string>{"not_duplicate", "duplicate"}));
  EXPECT_FALSE(tasks.Find(kSim)->regression);
  EXPECT_EQ(tasks.Find(kSingle)->prompt_template, "cola sentence: {text}");
  EXPECT_EQ(tasks.Find(kSingle)->labels, (std::vector<std::string>{"bad", "good"}));
  EXPECT_EQ(tasks.Find(kSingle)->targets, (std::vector<std::string>{"bad", "good"}));

  config = ClassifyConfig();
  config.tasks["entailment"].preset = "cb";
  config.tasks["similarity"].preset = "mrpc";
  config.tasks["single"].preset = "sst2";
  tasks = Build(T5(), config);
  EXPECT_EQ(tasks.Find(kEnt)->prompt_template, "cb hypothesis: {hypothesis} premise: {premise}");
  EXPECT_EQ(tasks.Find(kEnt)->labels,
            (std::vector<std::string>{"entailment", "contradiction", "neutral"}));
  EXPECT_EQ(tasks.Find(kSim)->prompt_template, "mrpc sentence1: {text_a} sentence2: {text_b}");
  EXPECT_EQ(tasks.Find(kSim)->labels, (std::vector<std::string>{"not_equivalent", "equivalent"}));
  EXPECT_EQ(tasks.Find(kSingle)->prompt_template, "sst2 sentence: {text}");
}

TEST(ClassifyTasksTest, LmOverrides) {
  ClassifyConfig config;
  config.tasks["single"].labels = {"sad", "happy"};
  config.tasks["single"].prompt_template = "Review: {text}\nMood:";
  config.tasks["single"].length_normalize = true;
  config.tasks["entailment"].labels = {"yes", "no"};
  config.tasks["entailment"].targets = {" Yes", " No"};
  config.tasks["multiple_choice"].choice_template = " Answer: {choice}";
  config.tasks["similarity"].enabled = false;
  const ModelTasks tasks = Build(Llama(), config);
  EXPECT_EQ(tasks.SupportedNames(), "ENTAILMENT, MULTIPLE_CHOICE, SINGLE");
  EXPECT_EQ(tasks.Find(kSim), nullptr);
  const TaskSpec& single = *tasks.Find(kSingle);
  EXPECT_EQ(single.prompt_template, "Review: {text}\nMood:");
  EXPECT_EQ(single.targets, (std::vector<std::string>{" sad", " happy"}));
  EXPECT_TRUE(single.length_normalize);
  EXPECT_EQ(tasks.Find(kEnt)->targets, (std::vector<std::string>{" Yes", " No"}));
  EXPECT_EQ(tasks.Find(kMc)->choice_template, " Answer: {choice}");
}

TEST(ClassifyTasksTest, HeadLabelsMayBeRenamed) {
  ClassifyConfig config;
  config.tasks["single"].labels = {"a", "b", "c"};
  const ModelTasks tasks = Build(GptCls(), config);
  EXPECT_EQ(tasks.Find(kSingle)->labels, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(tasks.Find(kEnt)->labels,
            (std::vector<std::string>{"entailment", "neutral", "contradiction"}));
}

// --- Build errors -------------------------------------------------------------------------

// A config with one task entry changed by `edit`.
ClassifyConfig OneTask(const std::string& task, const std::function<void(TaskConfig*)>& edit) {
  ClassifyConfig config;
  edit(&config.tasks[task]);
  return config;
}

ClassifyConfig SpecialTokens(const std::string& start, const std::string& delimiter,
                             const std::string& extract) {
  ClassifyConfig config;
  config.start_token = start;
  config.delimiter_token = delimiter;
  config.extract_token = extract;
  return config;
}

TEST(ClassifyTasksTest, BuildErrorsNameTheKey) {
  const struct {
    const Model& model;
    ClassifyConfig config;
    std::string message;
  } cases[] = {
      {Llama(), OneTask("entailment", [](TaskConfig* t) { t->preset = "mnli"; }),
       "models[0].classify.tasks.entailment.preset: presets are T5 tasks"},
      {T5(), OneTask("entailment", [](TaskConfig* t) { t->preset = "stsb"; }),
       "models[0].classify.tasks.entailment.preset: \"stsb\" is not a preset of entailment (mnli, "
       "rte, cb)"},
      {T5(), OneTask("multiple_choice", [](TaskConfig* t) { t->preset = "mnli"; }),
       "models[0].classify.tasks.multiple_choice.preset: \"mnli\" is not a preset of "
       "multiple_choice (copa)"},
      {T5(), OneTask("multiple_choice", [](TaskConfig* t) { t->targets = {"a", "b"}; }),
       "models[0].classify.tasks.multiple_choice.template: has no {choice1} (needs {context} "
       "{choice1} {choice2})"},
      {T5(),
       OneTask("multiple_choice",
               [](TaskConfig* t) {
                 t->targets = {"a"};
                 t->prompt_template = "{context} {choice1}";
               }),
       "models[0].classify.tasks.multiple_choice.targets: 1 targets; one per choice, 2..64"},
      {T5(), OneTask("multiple_choice", [](TaskConfig* t) { t->prompt_template = "{context} {foo}"; }),
       "models[0].classify.tasks.multiple_choice.template: unknown placeholder {foo} (this task "
       "has {context}, and optionally {question})"},
      {T5(), OneTask("multiple_choice", [](TaskConfig* t) { t->labels = {"a", "b"}; }),
       "models[0].classify.tasks.multiple_choice.labels: multiple_choice scores the request's "
       "choices"},
      {Llama(), OneTask("multiple_choice", [](TaskConfig* t) { t->targets = {"a", "b"}; }),
       "models[0].classify.tasks.multiple_choice.targets: fixed multiple_choice targets are for "
       "T5"},
      {Llama(), OneTask("summary", [](TaskConfig*) {}),
       "models[0].classify.tasks.summary: unknown task"},
      {GptCls(), OneTask("multiple_choice", [](TaskConfig*) {}),
       "models[0].classify.tasks.multiple_choice: gpt1 OpenAIGPTForSequenceClassification cannot "
       "serve MULTIPLE_CHOICE"},
      {GptCls(), SpecialTokens("<begin>", "", ""),
       "models[0].classify.special_tokens.start: \"<begin>\" is not in the tokenizer's "
       "vocabulary"},
      {GptCls(), SpecialTokens("", "", "<classify>"),
       "models[0].classify.special_tokens.extract: \"<classify>\" is not in the tokenizer's "
       "vocabulary"},
      {Llama(), SpecialTokens("", "<s>", ""),
       "models[0].classify.special_tokens: only GPT-1 classification heads use them"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.message);
    EXPECT_THAT(BuildError(c.model, c.config), HasSubstr(c.message));
  }
  // Disabling a task the model cannot serve is no error.
  const ModelTasks tasks =
      Build(GptCls(), OneTask("multiple_choice", [](TaskConfig* t) { t->enabled = false; }));
  EXPECT_EQ(tasks.SupportedNames(), "ENTAILMENT, SIMILARITY, SINGLE");
}

TEST(ClassifyTasksTest, SpecialTokensNotInTheTokenizerAreAnError) {
  // A GPT-1 head with Llama's tokenizer: none of the usual names exist.
  const Model model = LoadModel("gpt1-tiny-cls", "llama-tiny");
  EXPECT_THAT(BuildError(model, {}),
              HasSubstr("models[0].classify.special_tokens.start: the tokenizer has none of "
                        "<start>, _start_"));
  ClassifyConfig config;
  config.start_token = "<s>";
  EXPECT_THAT(BuildError(model, config),
              HasSubstr("models[0].classify.special_tokens.delimiter: the tokenizer has none of "
                        "<delim>, _delimiter_, <delimiter>"));
  config.delimiter_token = "</s>";
  EXPECT_THAT(BuildError(model, config),
              HasSubstr("models[0].classify.special_tokens.extract: the tokenizer has none of "
                        "<extract>, _classify_, <classify>"));
  // Every head task disabled: no tokens needed.
  for (const char* task : {"entailment", "similarity", "single"}) {
    config.tasks[task].enabled = false;
  }
  EXPECT_EQ(Build(model, config).SupportedNames(), "none");
}

TEST(ClassifyTasksTest, SpecialTokensMustFitTheModelsVocabulary) {
  // T5's tokenizer has 1100 ids; the GPT-1 head embeds 1000.
  const Model model = LoadModel("gpt1-tiny-cls", "t5-tiny");
  EXPECT_THAT(BuildError(model, SpecialTokens("<extra_id_0>", "</s>", "<pad>")),
              HasSubstr("models[0].classify.special_tokens.start: token id 1099 outside the "
                        "model's vocabulary [0, 1000)"));
  const ModelTasks tasks = Build(model, SpecialTokens("<unk>", "</s>", "<pad>"));
  ItemTexts item;
  item.segment_ids = {{5}};
  EXPECT_THAT(Work(tasks, kSingle, item).head_sequences, ElementsAre(Ids{2, 5, 0}));
}

TEST(ClassifyTasksTest, TaskConfigErrorsNameTheKey) {
  using Edit = std::function<void(TaskConfig*)>;
  const struct {
    const char* task;
    Edit edit;
    bool head;  // gpt1-tiny-cls; otherwise llama-tiny
    std::string message;
  } cases[] = {
      {"entailment", [](TaskConfig* t) { t->prompt_template = "{premise} and {hyp}"; }, false,
       "tasks.entailment.template: has no {hypothesis} (needs {premise} {hypothesis})"},
      {"entailment", [](TaskConfig* t) { t->prompt_template = "{premise} {hypothesis} {text}"; },
       false, "tasks.entailment.template: unknown placeholder {text}"},
      {"multiple_choice", [](TaskConfig* t) { t->prompt_template = "{text}"; }, false,
       "tasks.multiple_choice.template: has no {context}"},
      {"multiple_choice", [](TaskConfig* t) { t->choice_template = " {answer}"; }, false,
       "tasks.multiple_choice.choice_template: has no {choice}"},
      {"single", [](TaskConfig* t) { t->choice_template = " {choice}"; }, false,
       "tasks.single.choice_template: only multiple_choice with LM scoring uses it"},
      {"multiple_choice",
       [](TaskConfig* t) {
         t->labels = {"a", "b"};
       },
       false, "tasks.multiple_choice.labels: multiple_choice scores the request's choices"},
      {"single",
       [](TaskConfig* t) {
         t->labels = {"a", "b"};
         t->targets = {" a"};
       },
       false, "tasks.single.targets: 1 targets for 2 labels"},
      {"single",
       [](TaskConfig* t) {
         t->labels = {"a", "b"};
         t->targets = {" a", ""};
       },
       false, "tasks.single.targets[1]: \"\" tokenizes to no tokens"},
      {"single",
       [](TaskConfig* t) {
         t->labels = {"low", "high"};
         t->regression = true;
       },
       false, "tasks.single.regression: label \"low\" is not a number"},
      {"multiple_choice", [](TaskConfig* t) { t->regression = true; }, false,
       "tasks.multiple_choice.regression: multiple_choice has no numeric labels"},
      {"single",
       [](TaskConfig* t) {
         t->labels = {"a", "b"};
       },
       true, "tasks.single.labels: 2 labels, but the head has 3 (num_labels)"},
      {"single", [](TaskConfig* t) { t->prompt_template = "{text}"; }, true,
       "tasks.single.template: not used by a classification head"},
      {"entailment",
       [](TaskConfig* t) {
         t->labels = {"a", "b", "c"};
         t->targets = {" a", " b", " c"};
       },
       true, "tasks.entailment.targets: not used by a classification head"},
      {"similarity", [](TaskConfig* t) { t->length_normalize = true; }, true,
       "tasks.similarity.length_normalize: not used by a classification head"},
      {"single", [](TaskConfig* t) { t->preset = "sst2"; }, true,
       "tasks.single.preset: presets are T5 tasks"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.message);
    EXPECT_THAT(BuildError(c.head ? GptCls() : Llama(), OneTask(c.task, c.edit)),
                HasSubstr("models[0].classify." + c.message));
  }
}

// --- Head sequences -----------------------------------------------------------------------

TEST(ClassifyTasksTest, HeadSequencesTextForm) {
  const Model& model = GptCls();
  const ModelTasks tasks = Build(model);
  const Ids premise = Encode(model, "the cat sat on the mat.", false);
  const Ids hypothesis = Encode(model, "a cat is sitting.", false);
  ASSERT_FALSE(premise.empty());
  ASSERT_FALSE(hypothesis.empty());

  ItemWork work = Work(tasks, kEnt, Entailment("the cat sat on the mat.", "a cat is sitting."));
  EXPECT_THAT(work.head_sequences, ElementsAre(Cat({{997}, premise, {998}, hypothesis, {999}})));
  EXPECT_TRUE(work.context.empty());
  EXPECT_TRUE(work.candidates.empty());
  EXPECT_EQ(work.num_tokens, static_cast<int64_t>(premise.size() + hypothesis.size() + 3));

  work = Work(tasks, kSim, Similarity("the cat sat on the mat.", "a cat is sitting."));
  EXPECT_THAT(work.head_sequences, ElementsAre(Cat({{997}, premise, {998}, hypothesis, {999}}),
                                               Cat({{997}, hypothesis, {998}, premise, {999}})));
  EXPECT_EQ(work.num_tokens, static_cast<int64_t>(2 * (premise.size() + hypothesis.size() + 3)));

  work = Work(tasks, kSingle, Single("a cat is sitting."));
  EXPECT_THAT(work.head_sequences, ElementsAre(Cat({{997}, hypothesis, {999}})));
  EXPECT_EQ(work.num_tokens, static_cast<int64_t>(hypothesis.size() + 2));
}

TEST(ClassifyTasksTest, HeadSequencesIdsForm) {
  const ModelTasks tasks = Build(GptCls());
  ItemTexts item;
  item.segment_ids = {{5, 6, 7}, {8, 9}};
  EXPECT_THAT(Work(tasks, kEnt, item).head_sequences,
              ElementsAre(Ids{997, 5, 6, 7, 998, 8, 9, 999}));
  ItemWork work = Work(tasks, kSim, item);
  EXPECT_THAT(work.head_sequences,
              ElementsAre(Ids{997, 5, 6, 7, 998, 8, 9, 999}, Ids{997, 8, 9, 998, 5, 6, 7, 999}));
  EXPECT_EQ(work.num_tokens, 16);
  item.segment_ids = {{0, 999}};
  EXPECT_THAT(Work(tasks, kSingle, item).head_sequences, ElementsAre(Ids{997, 0, 999, 999}));
}

TEST(ClassifyTasksTest, ConfiguredSpecialTokensReplaceTheDefaults) {
  ClassifyConfig config;
  config.start_token = "<extract>";
  config.delimiter_token = "<start>";
  config.extract_token = "<delim>";
  const ModelTasks tasks = Build(GptCls(), config);
  ItemTexts item;
  item.segment_ids = {{5}};
  EXPECT_THAT(Work(tasks, kSingle, item).head_sequences, ElementsAre(Ids{999, 5, 998}));
}

TEST(ClassifyTasksTest, MultipleChoiceHeadSequences) {
  const Model& model = GptMc();
  const ModelTasks tasks = Build(model);
  const Ids context = Encode(model, "the cat is", false);
  const Ids a = Encode(model, "sitting", false);
  const Ids b = Encode(model, "on the mat", false);
  const Ids c = Encode(model, "a dog", false);
  ItemWork work = Work(tasks, kMc, Choice("the cat is", {"sitting", "on the mat", "a dog"}));
  EXPECT_THAT(work.head_sequences, ElementsAre(Cat({{997}, context, {998}, a, {999}}),
                                               Cat({{997}, context, {998}, b, {999}}),
                                               Cat({{997}, context, {998}, c, {999}})));
  EXPECT_EQ(work.num_tokens,
            static_cast<int64_t>(3 * context.size() + a.size() + b.size() + c.size() + 9));

  ItemTexts item;
  item.segment_ids = {{10, 11}};
  item.choice_ids = {{12}, {13, 14}};
  work = Work(tasks, kMc, item);
  EXPECT_THAT(work.head_sequences,
              ElementsAre(Ids{997, 10, 11, 998, 12, 999}, Ids{997, 10, 11, 998, 13, 14, 999}));
  EXPECT_EQ(work.num_tokens, 13);
}

// --- Scoring ------------------------------------------------------------------------------

TEST(ClassifyTasksTest, LmScoringSplitsContinuationsLikeTheHarness) {
  const Model& model = Llama();
  const ModelTasks tasks = Build(model);
  const std::string prompt =
      "The cat sat on the mat.\nQuestion: A cat is sitting. True, False or Neither?\nAnswer:";
  const Ids context = Encode(model, prompt, true);
  ASSERT_GT(context.size(), 2u);
  EXPECT_EQ(context[0], 1) << "bos";
  const ItemWork work =
      Work(tasks, kEnt, Entailment("The cat sat on the mat.", "A cat is sitting."));
  EXPECT_EQ(work.context, context);
  EXPECT_TRUE(work.head_sequences.empty());
  ASSERT_EQ(work.candidates.size(), 3u);
  int64_t num_tokens = static_cast<int64_t>(context.size());
  const char* targets[] = {" True", " Neither", " False"};
  for (size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE(targets[i]);
    const Ids whole = Encode(model, prompt + targets[i], true);
    ASSERT_GT(whole.size(), context.size());
    ASSERT_TRUE(std::equal(context.begin(), context.end(), whole.begin()));
    EXPECT_EQ(work.candidates[i], Ids(whole.begin() + context.size(), whole.end()));
    num_tokens += static_cast<int64_t>(work.candidates[i].size());
  }
  EXPECT_EQ(work.num_tokens, num_tokens);
}

TEST(ClassifyTasksTest, LmScoringMultipleChoiceUsesTheChoiceTemplate) {
  const Model& model = Llama();
  ClassifyConfig config;
  config.tasks["multiple_choice"].prompt_template = "Q: {context}\nA:";
  const ModelTasks tasks = Build(model, config);
  const ItemWork work = Work(tasks, kMc, Choice("Where is the cat?", {"on the mat", "outside"}));
  const Ids context = Encode(model, "Q: Where is the cat?\nA:", true);
  EXPECT_EQ(work.context, context);
  ASSERT_EQ(work.candidates.size(), 2u);
  const Ids whole = Encode(model, "Q: Where is the cat?\nA: outside", true);
  ASSERT_TRUE(std::equal(context.begin(), context.end(), whole.begin()));
  EXPECT_EQ(work.candidates[1], Ids(whole.begin() + context.size(), whole.end()));
}

TEST(ClassifyTasksTest, LmScoringIdsForm) {
  const Model& model = GptLm();
  const ModelTasks tasks = Build(model);
  ItemTexts item;
  item.segment_ids = {{5, 6}, {7}};
  ItemWork work = Work(tasks, kSim, item);
  EXPECT_EQ(work.context, (Ids{5, 6, 7}));
  EXPECT_THAT(work.candidates,
              ElementsAre(Encode(model, " no", false), Encode(model, " yes", false)));
  item.segment_ids = {{5, 6}};
  item.choice_ids = {{8}, {9, 10}, {11}};
  work = Work(tasks, kMc, item);
  EXPECT_EQ(work.context, (Ids{5, 6}));
  EXPECT_THAT(work.candidates, ElementsAre(Ids{8}, Ids{9, 10}, Ids{11}));
  EXPECT_EQ(work.num_tokens, 6);
}

TEST(ClassifyTasksTest, T5TextToText) {
  const Model& model = T5();
  const ModelTasks tasks = Build(model);
  ItemWork work = Work(tasks, kEnt, Entailment("A cat sat.", "A cat is sitting."));
  const Ids context = Encode(model, "mnli hypothesis: A cat is sitting. premise: A cat sat.", true);
  EXPECT_EQ(work.context, context);
  ASSERT_FALSE(context.empty());
  EXPECT_EQ(context.back(), 1) << "</s>";
  ASSERT_EQ(work.candidates.size(), 3u);
  EXPECT_EQ(work.candidates[0], Encode(model, "entailment", true));
  EXPECT_EQ(work.candidates[2], Encode(model, "contradiction", true));
  for (const Ids& candidate : work.candidates) EXPECT_EQ(candidate.back(), 1);

  work = Work(tasks, kMc, Choice("Where is the cat?", {"on the mat", "outside"}));
  EXPECT_EQ(work.context, Encode(model, "Where is the cat?", true));
  EXPECT_THAT(work.candidates,
              ElementsAre(Encode(model, "on the mat", true), Encode(model, "outside", true)));

  ItemTexts item;
  item.segment_ids = {{5, 6, 1}};
  work = Work(tasks, kSingle, item);
  EXPECT_EQ(work.context, (Ids{5, 6, 1}));
  EXPECT_THAT(work.candidates,
              ElementsAre(Encode(model, "negative", true), Encode(model, "positive", true)));
  item.choice_ids = {{7, 1}, {8, 1}};
  work = Work(tasks, kMc, item);
  EXPECT_THAT(work.candidates, ElementsAre(Ids{7, 1}, Ids{8, 1}));
  EXPECT_EQ(work.num_tokens, 7);
}

// --- Item errors --------------------------------------------------------------------------

struct ItemCase {
  ClassifyTaskKind task;
  ItemTexts item;
  std::string message;
};

void ExpectItemErrors(const ModelTasks& tasks, const std::vector<ItemCase>& cases) {
  for (const ItemCase& c : cases) {
    SCOPED_TRACE(c.message);
    const absl::Status status = tasks.BuildWork(c.task, c.item, "item.").status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.message));
  }
}

ItemTexts Ids2(std::vector<std::vector<int32_t>> segments,
               std::vector<std::vector<int32_t>> choices = {}) {
  ItemTexts item;
  item.segment_ids = std::move(segments);
  item.choice_ids = std::move(choices);
  return item;
}

TEST(ClassifyTasksTest, ItemErrorsNameTheField) {
  ItemTexts mixed = Entailment("a", "");
  mixed.segment_ids = {{1}, {2}};
  ItemTexts text_with_ids = Choice("a", {"b", "c"});
  text_with_ids.choice_ids = {{1}, {2}};
  ItemTexts choices_with_segments = Ids2({{1}}, {{2}, {3}});
  choices_with_segments.choices = {"b", "c"};
  ItemTexts single_with_choices = Single("a");
  single_with_choices.choices = {"b", "c"};
  const std::string long_text(400, 'a');
  ExpectItemErrors(
      Build(GptCls()),
      {
          {kMc, Choice("a", {"b", "c"}),
           "item.task: MULTIPLE_CHOICE is not supported by this model (it supports: ENTAILMENT, "
           "SIMILARITY, SINGLE)"},
          {kEnt, Entailment("", "b"), "item.premise: empty"},
          {kEnt, Entailment("a", ""), "item.hypothesis: empty"},
          {kSim, Similarity("a", ""), "item.text_b: empty"},
          {kSingle, Single(""), "item.text: empty"},
          {kEnt, Single("a"), "item.text: not read by ENTAILMENT (it reads premise, hypothesis)"},
          {kSingle, Entailment("a", "b"), "item.premise: not read by SINGLE (it reads text)"},
          {kSingle, single_with_choices, "item.choices: not read by SINGLE"},
          {kEnt, Entailment("a\xff", "b"),
           "item.premise is not valid UTF-8 (bad byte sequence at byte offset 1)"},
          {kEnt, mixed, "item.premise: set together with segment_ids"},
          {kEnt, Ids2({{1}}),
           "item.segment_ids: ENTAILMENT takes 2 segments (premise, "
           "hypothesis), got 1"},
          {kSingle, Ids2({{1}, {2}}), "item.segment_ids: SINGLE takes 1 segments (text), got 2"},
          {kEnt, Ids2({{1}, {}}), "item.segment_ids[1]: empty"},
          {kEnt, Ids2({{1}, {5000}}),
           "item.segment_ids[1]: token id 5000 outside the vocabulary [0, 1000)"},
          {kSingle, Ids2({{-1}}),
           "item.segment_ids[0]: token id -1 outside the vocabulary [0, 1000)"},
          {kSingle, Single(long_text),
           "item.text: 402 tokens with the start, delimiter and extract tokens, more than the "
           "model's 64 positions"},
          {kEnt, Ids2({std::vector<int32_t>(40, 5), std::vector<int32_t>(30, 5)}),
           "item.segment_ids: 73 tokens"},
      });
  const ModelTasks mc = Build(GptMc());
  std::vector<std::string> too_many(kMaxChoices + 1, "x");
  ExpectItemErrors(mc,
                   {
                       {kMc, Choice("a", {"b"}), "item.choices: 1 choices; needs 2..64"},
                       {kMc, Choice("a", too_many), "item.choices: 65 choices; needs 2..64"},
                       {kMc, Choice("a", {"b", ""}), "item.choices[1]: empty"},
                       {kMc, Choice("a", {"b", "\xc3"}), "item.choices[1] is not valid UTF-8"},
                       {kMc, Choice("", {"b", "c"}), "item.context: empty"},
                       {kMc, text_with_ids, "item.choice_ids: set without segment_ids"},
                       {kMc, choices_with_segments, "item.choices: set together with segment_ids"},
                       {kMc, Ids2({{1}}), "item.choice_ids: 0 choices; needs 2..64"},
                       {kMc, Ids2({{1}}, {{2}, {}}), "item.choice_ids[1]: empty"},
                       {kMc, Ids2({{1}}, {{2}, {1000}}),
                        "item.choice_ids[1]: token id 1000 outside the vocabulary [0, 1000)"},
                       {kMc, Choice("a", {"b", long_text}),
                        "item.context, item.choices[1]: 404 tokens with the start"},
                   });
}

ItemTexts Copa(const std::string& premise, const std::string& question,
               std::vector<std::string> choices) {
  ItemTexts item = Choice(premise, std::move(choices));
  item.question = question;
  return item;
}

ModelTasks T5WithCopa() {
  ClassifyConfig config;
  config.tasks["multiple_choice"].preset = "copa";
  return Build(T5(), config);
}

TEST(ClassifyTasksTest, T5CopaScoresFixedTargetsAfterATemplateShowingTheChoices) {
  const Model& model = T5();
  const ModelTasks tasks = T5WithCopa();
  const TaskSpec& spec = *tasks.Find(kMc);
  EXPECT_EQ(spec.prompt_template,
            "copa choice1: {choice1} choice2: {choice2} premise: {context} question: {question}");
  EXPECT_EQ(spec.targets, (std::vector<std::string>{"choice1", "choice2"}));
  EXPECT_TRUE(spec.labels.empty());
  EXPECT_TRUE(spec.reads_question);
  const ItemTexts item = Copa("The man lost.", "cause", {"He was sabotaged.", "He won."});
  const std::string prompt =
      "copa choice1: He was sabotaged. choice2: He won. premise: The man lost. question: cause";
  const ItemWork work = Work(tasks, kMc, item);
  EXPECT_EQ(work.context, Encode(model, prompt, true));
  EXPECT_THAT(work.candidates,
              ElementsAre(Encode(model, "choice1", true), Encode(model, "choice2", true)));
  // Generate can render the same prompt (T5 then answers "choice1" or "choice2").
  EXPECT_EQ(tasks.RenderPrompt(kMc, item, "task_input.").value_or(""), prompt);
  // The labels are the choices' texts.
  ItemOutputs outputs;
  outputs.candidate_logprob_sums = {-3.0, -1.0};
  outputs.candidate_tokens = {2, 2};
  const ItemResult result = tasks.Interpret(kMc, item, outputs, std::nullopt);
  ASSERT_EQ(result.labels.size(), 2u);
  EXPECT_EQ(result.labels[0].label, "He won.");
  EXPECT_EQ(result.labels[0].index, 1);

  // Any number of fixed targets, with a custom template.
  ClassifyConfig config;
  config.tasks["multiple_choice"].targets = {"A", "B", "C"};
  config.tasks["multiple_choice"].prompt_template =
      "question: {context} options: A: {choice1} B: {choice2} C: {choice3}";
  const ModelTasks three = Build(model, config);
  EXPECT_FALSE(three.Find(kMc)->reads_question);
  EXPECT_EQ(Work(three, kMc, Choice("Sky?", {"blue", "red", "green"})).context,
            Encode(model, "question: Sky? options: A: blue B: red C: green", true));
}

TEST(ClassifyTasksTest, QuestionsAreReadOnlyWhereATemplateSaysSo) {
  // An LM-scoring template may read {question} too.
  ClassifyConfig config;
  config.tasks["multiple_choice"].prompt_template = "{context} What was the {question}?";
  const Model& llama = Llama();
  const ModelTasks lm = Build(llama, config);
  const ItemWork work = Work(lm, kMc, Copa("It rained.", "effect", {"wet", "dry"}));
  EXPECT_EQ(work.context, Encode(llama, "It rained. What was the effect?", true));

  ItemTexts bad_utf8 = Copa("p", "ca\xffuse", {"a", "b"});
  ItemTexts ids = Ids2({{5}}, {{6}, {7}});
  ids.question = "cause";
  ExpectItemErrors(T5WithCopa(),
                   {
                       {kMc, Copa("p", "cause", {"a", "b", "c"}),
                        "item.choices: 3 choices; this model's MULTIPLE_CHOICE template takes "
                        "exactly 2"},
                       {kMc, Choice("p", {"a", "b"}),
                        "item.question: empty (this model's MULTIPLE_CHOICE template reads "
                        "{question})"},
                       {kMc, bad_utf8, "item.question is not valid UTF-8"},
                       {kMc, ids,
                        "item.segment_ids: this model's MULTIPLE_CHOICE template shows the "
                        "choices' texts"},
                   });
  ExpectItemErrors(Build(T5()), {{kMc, Copa("p", "cause", {"a", "b"}),
                                  "item.question: not read by this model's MULTIPLE_CHOICE "
                                  "template"}});
  // The ids form applies no template: a question there is an error, and none is needed.
  ItemTexts lm_ids = Ids2({{5, 6}}, {{7}, {8}});
  EXPECT_EQ(Work(lm, kMc, lm_ids).context, (Ids{5, 6}));
  lm_ids.question = "cause";
  ExpectItemErrors(lm, {{kMc, lm_ids, "item.question: the ids form applies no template"}});
  ExpectItemErrors(Build(GptMc()), {{kMc, Copa("p", "cause", {"a", "b"}),
                                     "item.question: not read by this model's MULTIPLE_CHOICE "
                                     "head"}});
  ItemTexts entailment = Entailment("a", "b");
  entailment.question = "why";
  ExpectItemErrors(Build(T5()), {{kEnt, entailment, "item.question: not read by ENTAILMENT"}});
  // Without fixed targets a MULTIPLE_CHOICE has one prompt per choice: nothing to generate.
  EXPECT_THAT(std::string(Build(T5()).RenderPrompt(kMc, Choice("p", {"a", "b"}), "task_input.")
                              .status()
                              .message()),
              HasSubstr("task_input.task: this model's MULTIPLE_CHOICE has one prompt per choice"));
}

TEST(ClassifyTasksTest, ScoringLengthErrors) {
  // gpt1-tiny has 64 positions: context + candidate - 1 must fit.
  const ModelTasks lm = Build(GptLm());
  ExpectItemErrors(lm, {
                           {kMc, Ids2({std::vector<int32_t>(60, 5)}, {{1}, {1, 2, 3, 4, 5, 6}}),
                            "item.segment_ids, item.choice_ids[1]: the prompt (60 tokens) and "
                            "the candidate (6 tokens) need 65 positions, more than the "
                            "model's 64"},
                           {kSingle, Ids2({std::vector<int32_t>(65, 5)}),
                            "item.segment_ids, the target of label \"negative\""},
                           {kSingle, Single(std::string(100, 'a')), "item.text, the target"},
                       });
  ItemTexts ok = Ids2({std::vector<int32_t>(59, 5)}, {{1}, {1, 2, 3, 4, 5, 6}});
  EXPECT_TRUE(lm.BuildWork(kMc, ok, "item.").ok());
}

TEST(ClassifyTasksTest, ErrorsUseTheGivenPrefix) {
  const ModelTasks tasks = Build(Llama());
  const absl::Status status = tasks.BuildWork(kEnt, Entailment("", "b"), "items[3].").status();
  EXPECT_EQ(status, absl::InvalidArgumentError("items[3].premise: empty"));
}

// --- Interpret ----------------------------------------------------------------------------

TEST(ClassifyTasksTest, InterpretHeadSoftmaxAndOrder) {
  const ModelTasks tasks = Build(GptCls());
  ItemOutputs outputs;
  outputs.head_logits = {{1.0f, 3.0f, 2.0f}};
  ItemResult result = tasks.Interpret(kEnt, Entailment("a", "b"), outputs, std::nullopt);
  ASSERT_EQ(result.labels.size(), 3u);
  EXPECT_EQ(result.labels[0].label, "neutral");
  EXPECT_EQ(result.labels[0].index, 1);
  EXPECT_NEAR(result.labels[0].probability, 0.66524095577, 1e-9);
  EXPECT_EQ(result.labels[0].logit, 3.0);
  EXPECT_EQ(result.labels[0].num_tokens, 0);
  EXPECT_EQ(result.labels[1].label, "contradiction");
  EXPECT_NEAR(result.labels[1].probability, 0.24472847105, 1e-9);
  EXPECT_EQ(result.labels[2].label, "entailment");
  EXPECT_NEAR(result.labels[2].probability, 0.09003057317, 1e-9);
  EXPECT_FALSE(result.value.has_value());
  EXPECT_FALSE(result.expected_value.has_value());

  // Ties keep the lower index first; large logits do not overflow.
  outputs.head_logits = {{1000.0f, 1001.0f, 1001.0f}};
  result = tasks.Interpret(kSingle, Single("a"), outputs, std::nullopt);
  ASSERT_EQ(result.labels.size(), 3u);
  EXPECT_EQ(result.labels[0].index, 1);
  EXPECT_EQ(result.labels[1].index, 2);
  EXPECT_EQ(result.labels[2].index, 0);
  EXPECT_NEAR(result.labels[0].probability, 0.42231879825, 1e-9);
  EXPECT_NEAR(result.labels[2].probability, 0.15536240349, 1e-9);
}

TEST(ClassifyTasksTest, InterpretSimilaritySumsBothOrderings) {
  const ModelTasks tasks = Build(GptCls());
  ItemOutputs outputs;
  outputs.head_logits = {{2.0f, 0.0f, -1.0f}, {-1.5f, 1.0f, 0.5f}};
  const ItemResult result = tasks.Interpret(kSim, Similarity("a", "b"), outputs, std::nullopt);
  ASSERT_EQ(result.labels.size(), 3u);
  EXPECT_EQ(result.labels[0].index, 1);
  EXPECT_EQ(result.labels[0].logit, 1.0);
  EXPECT_EQ(result.labels[1].index, 0);
  EXPECT_EQ(result.labels[1].logit, 0.5);
  EXPECT_EQ(result.labels[2].index, 2);
  EXPECT_EQ(result.labels[2].logit, -0.5);
  EXPECT_NEAR(result.labels[0].probability,
              std::exp(1.0) / (std::exp(1.0) + std::exp(0.5) + std::exp(-0.5)), 1e-12);
}

TEST(ClassifyTasksTest, InterpretMultipleChoiceHeadAndNames) {
  const ModelTasks tasks = Build(GptMc());
  ItemOutputs outputs;
  outputs.head_logits = {{0.5f}, {2.5f}};
  ItemResult result =
      tasks.Interpret(kMc, Choice("ctx", {"first", "second"}), outputs, std::nullopt);
  ASSERT_EQ(result.labels.size(), 2u);
  EXPECT_EQ(result.labels[0].label, "second");
  EXPECT_EQ(result.labels[0].index, 1);
  EXPECT_NEAR(result.labels[0].probability, 0.88079707798, 1e-9);
  EXPECT_EQ(result.labels[1].label, "first");
  result = tasks.Interpret(kMc, Ids2({{1}}, {{2}, {3}}), outputs, std::nullopt);
  ASSERT_EQ(result.labels.size(), 2u);
  EXPECT_EQ(result.labels[0].label, "choice_1");
  EXPECT_EQ(result.labels[1].label, "choice_0");
}

TEST(ClassifyTasksTest, InterpretScoringAndLengthNormalization) {
  ClassifyConfig config;
  config.tasks["single"].length_normalize = true;
  const ModelTasks tasks = Build(Llama(), config);
  ItemOutputs outputs;
  outputs.candidate_logprob_sums = {-4.0, -3.0};
  outputs.candidate_tokens = {4, 1};
  // Similarity's default: not normalized, so the shorter candidate wins on its sum.
  ItemResult result = tasks.Interpret(kSim, Similarity("a", "b"), outputs, std::nullopt);
  ASSERT_EQ(result.labels.size(), 2u);
  EXPECT_EQ(result.labels[0].label, "equivalent");
  EXPECT_EQ(result.labels[0].logit, -3.0);
  EXPECT_EQ(result.labels[0].num_tokens, 1);
  EXPECT_NEAR(result.labels[0].probability, 0.73105857863, 1e-9);
  result = tasks.Interpret(kSim, Similarity("a", "b"), outputs, true);
  EXPECT_EQ(result.labels[0].label, "not_equivalent");
  EXPECT_EQ(result.labels[0].logit, -1.0);
  EXPECT_EQ(result.labels[0].num_tokens, 4);
  EXPECT_NEAR(result.labels[0].probability, 0.88079707798, 1e-9);
  // The config's default, and the request overriding it.
  result = tasks.Interpret(kSingle, Single("a"), outputs, std::nullopt);
  EXPECT_EQ(result.labels[0].label, "negative");
  result = tasks.Interpret(kSingle, Single("a"), outputs, false);
  EXPECT_EQ(result.labels[0].label, "positive");
}

TEST(ClassifyTasksTest, InterpretRegressionWithStsb) {
  const ModelTasks tasks = Build(T5());
  ItemOutputs outputs;
  outputs.candidate_logprob_sums.assign(26, -1000.0);
  outputs.candidate_tokens.assign(26, 3);
  outputs.candidate_logprob_sums[16] = -1.0;  // "3.2"
  outputs.candidate_logprob_sums[20] = -2.0;  // "4.0"
  const ItemResult result = tasks.Interpret(kSim, Similarity("a", "b"), outputs, std::nullopt);
  ASSERT_EQ(result.labels.size(), 26u);
  EXPECT_EQ(result.labels[0].label, "3.2");
  EXPECT_EQ(result.labels[1].label, "4.0");
  EXPECT_EQ(result.labels[2].label, "0.0") << "ties: lower index first";
  ASSERT_TRUE(result.value.has_value());
  EXPECT_DOUBLE_EQ(*result.value, 3.2);
  ASSERT_TRUE(result.expected_value.has_value());
  const double p = 1.0 / (1.0 + std::exp(-1.0));  // the rest is ~exp(-999)
  EXPECT_NEAR(*result.expected_value, 3.2 * p + 4.0 * (1 - p), 1e-12);
  EXPECT_NEAR(*result.expected_value, 3.41515314, 1e-8);
}

}  // namespace
}  // namespace triad
