// Classify end to end (label integration): the real triadd serving every model fixture folder,
// driven through the Classify / ClassifyBatch RPCs. Data-driven: every seq_cls and
// multiple_choice case of every folder gives transformers' head logits; every prompt_logprobs,
// decoder-only logits and seq2seq_logits case gives label scores equal to the sums of
// transformers' log-probabilities. Then text inputs, task advertising, bad input, and a mixed
// generate + classify load whose outputs equal their solo outputs.
#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/model/fixture_util.h"
#include "tests/server/triadd_process.h"
#include "triad/v1/triad.grpc.pb.h"

namespace triad {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::ExpectedTensor;
using testing::FixtureTolerance;
using testing::IntTensor;

const std::string kData = TRIAD_TEST_DATA_DIR;

std::string Folder(const std::string& name) { return kData + "/models/" + name; }

// The tokenizer folder serving a fixture model of this model_type.
std::string TokenizerFor(const std::string& folder) {
  const std::string type = testing::ReadJsonFile(folder + "/config.json").at("model_type");
  const char* name = type == "openai-gpt" ? "gpt1-tiny" : type == "t5" ? "t5-tiny" : "llama-tiny";
  return kData + "/tokenizers/" + name;
}

std::vector<int32_t> Row(const at::Tensor& ids) {
  const at::Tensor c = ids.to(at::kInt).contiguous();
  return std::vector<int32_t>(c.data_ptr<int32_t>(), c.data_ptr<int32_t>() + c.numel());
}

class Classify : public ::testing::Test {
 protected:
  // Serves every fixture folder under its own name, plus "t5-copa" (t5-tiny with the copa
  // preset) and "mixed" (llama-tiny, batch 8).
  static void SetUpTestSuite() {
    json models = json::array();
    for (const std::string& folder : testing::ModelFixtureFolders(kData + "/models")) {
      models.push_back({{"name", std::filesystem::path(folder).filename().string()},
                        {"path", folder},
                        {"tokenizer", TokenizerFor(folder)}});
    }
    // T5's SuperGLUE COPA format (a config preset).
    models.push_back({{"name", "t5-copa"}, {"path", Folder("t5-tiny")},
                      {"tokenizer", TokenizerFor(Folder("t5-tiny"))},
                      {"classify", {{"tasks", {{"multiple_choice", {{"preset", "copa"}}}}}}}});
    models.push_back({{"name", "mixed"}, {"path", Folder("llama-tiny")},
                      {"tokenizer", TokenizerFor(Folder("llama-tiny"))}, {"max_batch_size", 8},
                      {"batch_window_ms", 5}});
    server_.Start("classify_e2e_test", models.dump());
    stub_ = v1::Triad::NewStub(server_.channel);
    ASSERT_TRUE(server_.WaitServing()) << "triadd did not become healthy";
  }
  static void TearDownTestSuite() { server_.Stop(); }

 public:
  static grpc::Status Call(const v1::ClassifyBatchRequest& r, v1::ClassifyBatchResponse* out) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 60s);
    return stub_->ClassifyBatch(&ctx, r, out);
  }
  static grpc::Status Call(const v1::ClassifyRequest& r, v1::ClassifyResponse* out) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 60s);
    return stub_->Classify(&ctx, r, out);
  }

  // The logit the response gives label / choice `index`.
  static double LogitOf(const v1::ClassifyResult& r, int index) {
    for (const v1::LabelScore& l : r.labels()) {
      if (l.index() == index) return l.logit();
    }
    ADD_FAILURE() << "no label with index " << index;
    return 0;
  }

 protected:
  static testing::TriaddProcess server_;
  static std::unique_ptr<v1::Triad::Stub> stub_;
};

testing::TriaddProcess Classify::server_;
std::unique_ptr<v1::Triad::Stub> Classify::stub_;

void AddSegment(v1::ClassifyItem* item, const std::vector<int32_t>& ids) {
  item->add_segment_ids()->mutable_ids()->Add(ids.begin(), ids.end());
}
void AddChoice(v1::ClassifyItem* item, const std::vector<int32_t>& ids) {
  item->add_choice_ids()->mutable_ids()->Add(ids.begin(), ids.end());
}

// Splits `<start> a <delim> b <extract>` (b optional) into a and b.
std::pair<std::vector<int32_t>, std::vector<int32_t>> Split(const std::vector<int32_t>& row,
                                                            const json& special) {
  const int32_t delim = special.value("delim", 998), extract = special.value("extract", 999);
  auto d = std::find(row.begin(), row.end(), delim);
  auto e = std::find(row.begin(), row.end(), extract);
  if (d == row.end()) return {{row.begin() + 1, e}, {}};
  return {{row.begin() + 1, d}, {d + 1, e}};
}

// seq_cls: each row through ENTAILMENT (or SINGLE without a delimiter) = the head's logits.
void CheckSeqCls(const std::string& model, const std::string& folder, const json& ref,
                 const json& c) {
  const at::Tensor ids = IntTensor(c["input_ids"]), mask = IntTensor(c["attention_mask"]);
  const at::Tensor expected = ExpectedTensor(folder, c["expected"]);
  for (int64_t b = 0; b < ids.size(0); ++b) {
    const at::Tensor real = mask.defined() ? ids[b].index({mask[b].ne(0)}) : ids[b];
    const auto [a, second] = Split(Row(real), ref["special_tokens"]);
    v1::ClassifyBatchRequest r;
    r.set_model(model);
    r.set_task(second.empty() ? v1::CLASSIFY_TASK_SINGLE : v1::CLASSIFY_TASK_ENTAILMENT);
    v1::ClassifyItem* item = r.add_items();
    AddSegment(item, a);
    if (!second.empty()) AddSegment(item, second);
    v1::ClassifyBatchResponse out;
    const grpc::Status s = Classify::Call(r, &out);
    ASSERT_TRUE(s.ok()) << s.error_message();
    for (int64_t k = 0; k < expected.size(1); ++k) {
      EXPECT_NEAR(Classify::LogitOf(out.results(0), static_cast<int>(k)),
                  expected[b][k].item<double>(), FixtureTolerance(expected))
          << "row " << b << " label " << k;
    }
  }
}

// multiple_choice: context and choices through MULTIPLE_CHOICE = the double-heads mc_logits.
void CheckMultipleChoice(const std::string& model, const std::string& folder, const json& ref,
                         const json& c) {
  const at::Tensor ids = IntTensor(c["input_ids"]), at_token = IntTensor(c["mc_token_ids"]);
  const at::Tensor expected = ExpectedTensor(folder, c["expected_mc_logits"]);
  v1::ClassifyBatchRequest r;
  r.set_model(model);
  r.set_task(v1::CLASSIFY_TASK_MULTIPLE_CHOICE);
  for (int64_t b = 0; b < ids.size(0); ++b) {
    v1::ClassifyItem* item = r.add_items();
    for (int64_t k = 0; k < ids.size(1); ++k) {
      const int64_t end = at_token[b][k].item<int64_t>() + 1;
      const auto [context, choice] = Split(Row(ids[b][k].narrow(0, 0, end)), ref["special_tokens"]);
      if (k == 0) AddSegment(item, context);
      AddChoice(item, choice);
    }
  }
  v1::ClassifyBatchResponse out;
  const grpc::Status s = Classify::Call(r, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  for (int64_t b = 0; b < ids.size(0); ++b) {
    for (int64_t k = 0; k < ids.size(1); ++k) {
      EXPECT_NEAR(Classify::LogitOf(out.results(static_cast<int>(b)), static_cast<int>(k)),
                  expected[b][k].item<double>(), FixtureTolerance(expected));
    }
  }
}

// Label scoring: MULTIPLE_CHOICE with the context and continuation ids of a sequence whose
// log-probs transformers computed; choice 0 is the true continuation (its logit must be the
// sum of those log-probs), choice 1 its first token alone.
void CheckScoring(const std::string& model, const std::vector<int32_t>& context,
                  const std::vector<int32_t>& continuation, const at::Tensor& logprobs) {
  v1::ClassifyRequest r;
  r.set_model(model);
  r.set_task(v1::CLASSIFY_TASK_MULTIPLE_CHOICE);
  AddSegment(r.mutable_item(), context);
  AddChoice(r.mutable_item(), continuation);
  AddChoice(r.mutable_item(), {continuation[0]});
  v1::ClassifyResponse out;
  const grpc::Status s = Classify::Call(r, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const double tolerance = FixtureTolerance(logprobs) * static_cast<double>(logprobs.numel());
  EXPECT_NEAR(Classify::LogitOf(out.result(), 0), logprobs.sum().item<double>(), tolerance);
  EXPECT_NEAR(Classify::LogitOf(out.result(), 1), logprobs[0].item<double>(),
              FixtureTolerance(logprobs));
  EXPECT_EQ(out.result().labels_size(), 2);
  EXPECT_EQ(out.usage().prompt_tokens(), context.size() + continuation.size() + 1);
}

TEST_F(Classify, EveryFixtureCaseThroughTheRpc) {
  int checked = 0;
  for (const std::string& folder : testing::ModelFixtureFolders(kData + "/models")) {
    const std::string model = std::filesystem::path(folder).filename().string();
    const json ref = testing::ReadJsonFile(folder + "/reference.json");
    for (const json& c : ref["cases"]) {
      SCOPED_TRACE(model + "/" + c["name"].get<std::string>());
      const std::string kind = c["kind"];
      if (kind == "seq_cls") {
        CheckSeqCls(model, folder, ref, c);
      } else if (kind == "multiple_choice") {
        CheckMultipleChoice(model, folder, ref, c);
      } else if (kind == "prompt_logprobs") {
        const std::vector<int32_t> ids = Row(IntTensor(c["input_ids"])[0]);
        const size_t split = ids.size() / 2;
        CheckScoring(model, {ids.begin(), ids.begin() + static_cast<long>(split)},
                     {ids.begin() + static_cast<long>(split), ids.end()},
                     ExpectedTensor(folder, c["expected"]).flatten().narrow(
                         0, static_cast<int64_t>(split) - 1, static_cast<int64_t>(ids.size() - split)));
      } else if (kind == "logits" && c["attention_mask"].is_null() &&
                 ref["model_class"] != "OpenAIGPTForSequenceClassification") {
        const at::Tensor ids = IntTensor(c["input_ids"])[0];
        const at::Tensor lp = at::log_softmax(ExpectedTensor(folder, c["expected"])[0], -1);
        const int64_t n = ids.size(0), split = n / 2;
        const at::Tensor targets = ids.narrow(0, split, n - split);
        CheckScoring(model, Row(ids.narrow(0, 0, split)), Row(targets),
                     lp.narrow(0, split - 1, n - split).gather(1, targets.unsqueeze(1)).squeeze(1));
      } else if (kind == "seq2seq_logits") {
        const at::Tensor ids = IntTensor(c["input_ids"])[0];
        const at::Tensor decoder = IntTensor(c["decoder_input_ids"])[0];
        const at::Tensor lp = at::log_softmax(ExpectedTensor(folder, c["expected"])[0], -1);
        const at::Tensor targets = decoder.narrow(0, 1, decoder.size(0) - 1);
        CheckScoring(model, Row(ids), Row(targets),
                     lp.narrow(0, 0, targets.size(0)).gather(1, targets.unsqueeze(1)).squeeze(1));
      } else {
        continue;
      }
      ++checked;
    }
  }
  EXPECT_GE(checked, 20);  // 5 seq_cls, 1 multiple_choice, 2 prompt_logprobs, 10 logits, 4 seq2seq
}

v1::ClassifyRequest TextRequest(const std::string& model, v1::ClassifyTask task) {
  v1::ClassifyRequest r;
  r.set_model(model);
  r.set_task(task);
  return r;
}

TEST_F(Classify, TextInputsEqualTheirTokenIdsAndSimilarityAddsBothOrderings) {
  const std::string premise = "the cat sat on the mat", hypothesis = "a cat is sitting";
  auto ids_of = [](const std::string& text) {
    grpc::ClientContext ctx;
    v1::TokenizeRequest r;
    r.set_model("gpt1-tiny-cls");
    r.set_text(text);
    r.set_add_special_tokens(false);
    v1::TokenizeResponse out;
    EXPECT_TRUE(stub_->Tokenize(&ctx, r, &out).ok());
    return std::vector<int32_t>(out.token_ids().begin(), out.token_ids().end());
  };
  auto entail = [](const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
    v1::ClassifyRequest r = TextRequest("gpt1-tiny-cls", v1::CLASSIFY_TASK_ENTAILMENT);
    AddSegment(r.mutable_item(), a);
    AddSegment(r.mutable_item(), b);
    v1::ClassifyResponse out;
    EXPECT_TRUE(Call(r, &out).ok());
    return out.result();
  };
  const v1::ClassifyResult ab = entail(ids_of(premise), ids_of(hypothesis));
  const v1::ClassifyResult ba = entail(ids_of(hypothesis), ids_of(premise));

  v1::ClassifyRequest text = TextRequest("gpt1-tiny-cls", v1::CLASSIFY_TASK_ENTAILMENT);
  text.mutable_item()->set_premise(premise);
  text.mutable_item()->set_hypothesis(hypothesis);
  v1::ClassifyResponse out;
  ASSERT_TRUE(Call(text, &out).ok());
  ASSERT_EQ(out.result().labels_size(), 3);
  double total = 0;
  for (int k = 0; k < 3; ++k) {
    EXPECT_NEAR(LogitOf(out.result(), k), LogitOf(ab, k), 1e-5);
    total += out.result().labels(k).probability();
  }
  EXPECT_NEAR(total, 1.0, 1e-5);
  EXPECT_GE(out.result().labels(0).probability(), out.result().labels(1).probability());
  EXPECT_EQ(out.result().label(), out.result().labels(0).label());
  // Label names come from the checkpoint's id2label.
  for (const v1::LabelScore& l : out.result().labels()) {
    EXPECT_EQ(l.label(), std::vector<std::string>({"entailment", "neutral", "contradiction"})[
        static_cast<size_t>(l.index())]);
  }

  v1::ClassifyRequest sim = TextRequest("gpt1-tiny-cls", v1::CLASSIFY_TASK_SIMILARITY);
  sim.mutable_item()->set_text_a(premise);
  sim.mutable_item()->set_text_b(hypothesis);
  ASSERT_TRUE(Call(sim, &out).ok());
  for (int k = 0; k < 3; ++k) {
    EXPECT_NEAR(LogitOf(out.result(), k), LogitOf(ab, k) + LogitOf(ba, k), 1e-4);
  }
}

TEST_F(Classify, EveryFamilyServesItsTasksFromText) {
  struct Case {
    std::string model;
    v1::ClassifyTask task;
    int labels;
  };
  for (const Case& c : std::vector<Case>{{"llama-tiny", v1::CLASSIFY_TASK_ENTAILMENT, 3},
                                         {"llama-tiny", v1::CLASSIFY_TASK_SINGLE, 2},
                                         {"gpt1-tiny", v1::CLASSIFY_TASK_SIMILARITY, 2},
                                         {"t5-tiny", v1::CLASSIFY_TASK_ENTAILMENT, 3},
                                         {"t5-tiny", v1::CLASSIFY_TASK_SIMILARITY, 26},
                                         {"t5-tiny", v1::CLASSIFY_TASK_MULTIPLE_CHOICE, 3}}) {
    SCOPED_TRACE(c.model + " " + v1::ClassifyTask_Name(c.task));
    v1::ClassifyRequest r = TextRequest(c.model, c.task);
    v1::ClassifyItem* item = r.mutable_item();
    item->set_premise("the license grants you rights");
    item->set_hypothesis("you have rights");
    if (c.task == v1::CLASSIFY_TASK_SIMILARITY) {
      item->clear_premise();
      item->clear_hypothesis();
      item->set_text_a("one sentence");
      item->set_text_b("another sentence");
    } else if (c.task == v1::CLASSIFY_TASK_SINGLE) {
      item->clear_premise();
      item->clear_hypothesis();
      item->set_text("a fine day");
    } else if (c.task == v1::CLASSIFY_TASK_MULTIPLE_CHOICE) {
      item->clear_premise();
      item->clear_hypothesis();
      item->set_context("the weather today is");
      for (const char* choice : {"sunny", "rainy", "a cat"}) item->add_choices(choice);
    }
    v1::ClassifyResponse out;
    const grpc::Status s = Call(r, &out);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(out.result().labels_size(), c.labels);
    for (int k = 1; k < c.labels; ++k) {
      EXPECT_GE(out.result().labels(k - 1).probability(), out.result().labels(k).probability());
    }
    EXPECT_GT(out.usage().prompt_tokens(), 0u);
    if (c.labels == 26) {  // stsb: a number
      EXPECT_TRUE(out.result().has_value());
      EXPECT_TRUE(out.result().has_expected_value());
      EXPECT_GE(out.result().expected_value(), 0.0);
      EXPECT_LE(out.result().expected_value(), 5.0);
    }
  }
}

// Generate shares Classify's templates: task_input renders the task's prompt, so T5 generates
// the free-form answer of the text-to-text task Classify scores.
TEST_F(Classify, GenerateRendersTheTaskTemplate) {
  auto generate = [](v1::GenerateRequest r, std::vector<int32_t>* ids) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 60s);
    r.mutable_sampling()->set_temperature(0);
    r.mutable_sampling()->set_max_new_tokens(6);
    v1::GenerateResponse out;
    const grpc::Status s = stub_->Generate(&ctx, r, &out);
    ids->assign(out.token_ids().begin(), out.token_ids().end());
    return s;
  };
  struct Case {
    std::string model;
    v1::ClassifyTask task;
    std::string rendered;
  };
  for (const Case& c : std::vector<Case>{
           {"t5-tiny", v1::CLASSIFY_TASK_ENTAILMENT, "mnli hypothesis: it rains premise: rain falls"},
           {"llama-tiny", v1::CLASSIFY_TASK_ENTAILMENT,
            "rain falls\nQuestion: it rains True, False or Neither?\nAnswer:"}}) {
    SCOPED_TRACE(c.model);
    v1::GenerateRequest templated;
    templated.set_model(c.model);
    templated.set_task(c.task);
    templated.mutable_task_input()->set_premise("rain falls");
    templated.mutable_task_input()->set_hypothesis("it rains");
    v1::GenerateRequest plain;
    plain.set_model(c.model);
    plain.set_text(c.rendered);
    std::vector<int32_t> a, b;
    ASSERT_TRUE(generate(templated, &a).ok());
    ASSERT_TRUE(generate(plain, &b).ok());
    EXPECT_EQ(a, b);
    EXPECT_FALSE(a.empty());
  }
  v1::GenerateRequest mc;
  mc.set_model("t5-tiny");
  mc.set_task(v1::CLASSIFY_TASK_MULTIPLE_CHOICE);
  mc.mutable_task_input()->set_context("x");
  std::vector<int32_t> ids;
  const grpc::Status s = generate(mc, &ids);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("MULTIPLE_CHOICE"));
  v1::GenerateRequest missing;
  missing.set_model("t5-tiny");
  missing.set_task(v1::CLASSIFY_TASK_ENTAILMENT);
  missing.mutable_task_input()->set_premise("p");
  const grpc::Status m = generate(missing, &ids);
  EXPECT_EQ(m.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(m.error_message(), ::testing::HasSubstr("task_input.hypothesis"));
}

// COPA scores T5's fixed targets "choice1" / "choice2" after a prompt showing both choices:
// exactly what the default MULTIPLE_CHOICE computes for that prompt with those two strings as
// the choices; the labels are the request's choices; Generate renders the same prompt.
TEST_F(Classify, T5CopaScoresTheChoicePositions) {
  v1::ClassifyRequest copa = TextRequest("t5-copa", v1::CLASSIFY_TASK_MULTIPLE_CHOICE);
  copa.mutable_item()->set_context("the man lost the game");
  copa.mutable_item()->set_question("cause");
  copa.mutable_item()->add_choices("he was tired");
  copa.mutable_item()->add_choices("he won");
  const std::string prompt =
      "copa choice1: he was tired choice2: he won premise: the man lost the game question: cause";
  v1::ClassifyRequest plain = TextRequest("t5-tiny", v1::CLASSIFY_TASK_MULTIPLE_CHOICE);
  plain.mutable_item()->set_context(prompt);
  plain.mutable_item()->add_choices("choice1");
  plain.mutable_item()->add_choices("choice2");
  v1::ClassifyResponse a, b;
  ASSERT_TRUE(Call(copa, &a).ok());
  ASSERT_TRUE(Call(plain, &b).ok());
  ASSERT_EQ(a.result().labels_size(), 2);
  for (int k = 0; k < 2; ++k) {
    EXPECT_NEAR(LogitOf(a.result(), k), LogitOf(b.result(), k), 1e-5) << k;
    const v1::LabelScore& l = a.result().labels(k);
    EXPECT_EQ(l.label(), copa.item().choices(l.index()));
  }
  // Three choices, or none of the question, are refused naming the field.
  v1::ClassifyRequest three = copa;
  three.mutable_item()->add_choices("he slept");
  v1::ClassifyResponse out;
  grpc::Status s = Call(three, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("item.choices: 3 choices"));
  v1::ClassifyRequest no_question = copa;
  no_question.mutable_item()->clear_question();
  s = Call(no_question, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("item.question: empty"));

  auto generate = [](v1::GenerateRequest r) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 60s);
    r.set_model("t5-copa");
    r.mutable_sampling()->set_temperature(0);
    r.mutable_sampling()->set_max_new_tokens(4);
    v1::GenerateResponse out;
    EXPECT_TRUE(stub_->Generate(&ctx, r, &out).ok());
    return std::vector<int32_t>(out.token_ids().begin(), out.token_ids().end());
  };
  v1::GenerateRequest templated, text;
  templated.set_task(v1::CLASSIFY_TASK_MULTIPLE_CHOICE);
  *templated.mutable_task_input() = copa.item();
  text.set_text(prompt);
  EXPECT_EQ(generate(templated), generate(text));

  grpc::ClientContext ctx;
  v1::GetModelRequest get;
  get.set_name("t5-copa");
  v1::ModelInfo info;
  ASSERT_TRUE(stub_->GetModel(&ctx, get, &info).ok());
  bool advertised = false;
  for (const v1::ClassifyTaskInfo& t : info.classify_tasks()) {
    if (t.task() != v1::CLASSIFY_TASK_MULTIPLE_CHOICE) continue;
    advertised = true;
    EXPECT_EQ(std::vector<std::string>(t.choice_targets().begin(), t.choice_targets().end()),
              (std::vector<std::string>{"choice1", "choice2"}));
    EXPECT_THAT(t.template_(), ::testing::HasSubstr("{question}"));
  }
  EXPECT_TRUE(advertised);
}

TEST_F(Classify, ModelsAdvertiseTheirTasks) {
  auto tasks_of = [](const std::string& name) {
    grpc::ClientContext ctx;
    v1::GetModelRequest r;
    r.set_name(name);
    v1::ModelInfo info;
    EXPECT_TRUE(stub_->GetModel(&ctx, r, &info).ok());
    std::map<v1::ClassifyTask, v1::ClassifyMethod> out;
    for (const auto& t : info.classify_tasks()) out[t.task()] = t.method();
    return std::make_pair(out, info.tasks_size());
  };
  const auto [cls, cls_generate] = tasks_of("gpt1-tiny-cls");
  EXPECT_EQ(cls, (std::map<v1::ClassifyTask, v1::ClassifyMethod>{
                     {v1::CLASSIFY_TASK_ENTAILMENT, v1::CLASSIFY_METHOD_HEAD},
                     {v1::CLASSIFY_TASK_SIMILARITY, v1::CLASSIFY_METHOD_HEAD},
                     {v1::CLASSIFY_TASK_SINGLE, v1::CLASSIFY_METHOD_HEAD}}));
  EXPECT_EQ(cls_generate, 0);  // no LM head
  const auto [mc, mc_generate] = tasks_of("gpt1-tiny-mc");
  EXPECT_EQ(mc.at(v1::CLASSIFY_TASK_MULTIPLE_CHOICE), v1::CLASSIFY_METHOD_HEAD);
  EXPECT_EQ(mc_generate, 1);
  const auto [t5, t5_generate] = tasks_of("t5-tiny");
  EXPECT_EQ(t5.size(), 4u);
  EXPECT_EQ(t5.at(v1::CLASSIFY_TASK_ENTAILMENT), v1::CLASSIFY_METHOD_TEXT_TO_TEXT);
  const auto [llama, llama_generate] = tasks_of("llama-tiny");
  EXPECT_EQ(llama.size(), 4u);
  EXPECT_EQ(llama.at(v1::CLASSIFY_TASK_SINGLE), v1::CLASSIFY_METHOD_LM_SCORING);
}

TEST_F(Classify, BadInputGetsInvalidArgumentNamingWhatIsWrong) {
  auto error = [](const v1::ClassifyRequest& r) {
    v1::ClassifyResponse out;
    const grpc::Status s = Call(r, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    return s.error_message();
  };
  using ::testing::HasSubstr;
  v1::ClassifyRequest mc = TextRequest("gpt1-tiny-cls", v1::CLASSIFY_TASK_MULTIPLE_CHOICE);
  mc.mutable_item()->set_context("x");
  mc.mutable_item()->add_choices("a");
  mc.mutable_item()->add_choices("b");
  const std::string unsupported = error(mc);
  EXPECT_THAT(unsupported, HasSubstr("MULTIPLE_CHOICE"));
  EXPECT_THAT(unsupported, HasSubstr("ENTAILMENT"));  // what it does support

  v1::ClassifyRequest one = TextRequest("llama-tiny", v1::CLASSIFY_TASK_MULTIPLE_CHOICE);
  one.mutable_item()->set_context("x");
  one.mutable_item()->add_choices("a");
  EXPECT_THAT(error(one), HasSubstr("item.choices"));
  for (int i = 0; i < 64; ++i) one.mutable_item()->add_choices("c");
  EXPECT_THAT(error(one), HasSubstr("item.choices"));

  v1::ClassifyRequest empty = TextRequest("llama-tiny", v1::CLASSIFY_TASK_ENTAILMENT);
  empty.mutable_item()->set_premise("p");
  EXPECT_THAT(error(empty), HasSubstr("item.hypothesis"));

  v1::ClassifyRequest no_task = TextRequest("llama-tiny", v1::CLASSIFY_TASK_UNSPECIFIED);
  no_task.mutable_item()->set_text("x");
  EXPECT_THAT(error(no_task), HasSubstr("task"));

  v1::ClassifyRequest too_long = TextRequest("gpt1-tiny-cls", v1::CLASSIFY_TASK_SINGLE);
  AddSegment(too_long.mutable_item(), std::vector<int32_t>(100, 5));  // n_positions 64
  EXPECT_THAT(error(too_long), HasSubstr("64 positions"));

  v1::ClassifyRequest bad_id = TextRequest("llama-tiny", v1::CLASSIFY_TASK_SINGLE);
  AddSegment(bad_id.mutable_item(), {5, 5000});
  EXPECT_THAT(error(bad_id), HasSubstr("item.segment_ids[0]"));

  v1::ClassifyBatchRequest none;
  none.set_model("llama-tiny");
  none.set_task(v1::CLASSIFY_TASK_SINGLE);
  v1::ClassifyBatchResponse out;
  const grpc::Status s = Call(none, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("items"));

  v1::ClassifyRequest unknown = TextRequest("nope", v1::CLASSIFY_TASK_SINGLE);
  v1::ClassifyResponse o2;
  EXPECT_EQ(Call(unknown, &o2).error_code(), grpc::StatusCode::NOT_FOUND);

  // A classification checkpoint has no language-model head to generate with.
  grpc::ClientContext ctx;
  v1::GenerateRequest gen;
  gen.set_model("gpt1-tiny-cls");
  gen.mutable_token_ids()->add_ids(5);
  v1::GenerateResponse g;
  const grpc::Status gs = stub_->Generate(&ctx, gen, &g);
  EXPECT_EQ(gs.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(gs.error_message(), HasSubstr("Classify"));
}

// Concurrent generate and classify clients on one model: every output equals its solo output
// (generation ids exactly, label logits to float32 batching noise).
TEST_F(Classify, MixedGenerateAndClassifyLoadEqualsSoloOutputs) {
  auto generate = [](int i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 60s);
    v1::GenerateRequest r;
    r.set_model("mixed");
    for (int t = 0; t < 6 + i % 5; ++t) r.mutable_token_ids()->add_ids(10 + 37 * (i + t) % 900);
    r.mutable_sampling()->set_temperature(0);
    r.mutable_sampling()->set_max_new_tokens(16);
    r.mutable_sampling()->set_ignore_eos(true);
    v1::GenerateResponse out;
    EXPECT_TRUE(stub_->Generate(&ctx, r, &out).ok());
    return std::vector<int32_t>(out.token_ids().begin(), out.token_ids().end());
  };
  auto classify = [](int i) {
    v1::ClassifyRequest r = TextRequest("mixed", v1::CLASSIFY_TASK_MULTIPLE_CHOICE);
    std::vector<int32_t> context;
    for (int t = 0; t < 5 + i % 7; ++t) context.push_back(20 + 53 * (i + t) % 900);
    AddSegment(r.mutable_item(), context);
    AddChoice(r.mutable_item(), {30 + i, 40 + i});
    AddChoice(r.mutable_item(), {50 + i});
    AddChoice(r.mutable_item(), {60 + i, 70 + i, 80 + i});
    v1::ClassifyResponse out;
    EXPECT_TRUE(Call(r, &out).ok());
    return std::vector<double>{LogitOf(out.result(), 0), LogitOf(out.result(), 1),
                               LogitOf(out.result(), 2)};
  };
  constexpr int kClients = 12;
  std::vector<std::vector<int32_t>> solo_gen, busy_gen(kClients);
  std::vector<std::vector<double>> solo_cls, busy_cls(kClients);
  for (int i = 0; i < kClients; ++i) {
    solo_gen.push_back(generate(i));
    solo_cls.push_back(classify(i));
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] { busy_gen[i] = generate(i); });
    threads.emplace_back([&, i] { busy_cls[i] = classify(i); });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(busy_gen[i], solo_gen[i]) << "generation " << i;
    for (size_t k = 0; k < 3; ++k) EXPECT_NEAR(busy_cls[i][k], solo_cls[i][k], 1e-4) << i;
  }
  // Classify items were batched (more than one per batch at least once).
  const std::string metrics = testing::HttpGet(server_.port + 1, "/metrics");
  const double batches = testing::Sample(metrics, "triad_classify_batch_items_count{model=\"mixed\"}");
  const double items = testing::Sample(metrics, "triad_classify_batch_items_sum{model=\"mixed\"}");
  EXPECT_EQ(items, 2 * kClients);
  EXPECT_LT(batches, items);
}

}  // namespace
}  // namespace triad
