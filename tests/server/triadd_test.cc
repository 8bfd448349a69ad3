// End to end (label integration): starts the real triadd binary on loopback with the tiny
// fixture models and drives it with the generated C++ stubs: unary equals stream, greedy
// equals the model library, concurrent clients each get their solo output, bad input gets the
// right code naming the field, deadlines, cancellation, health, Prometheus /metrics, and SIGTERM
// drains to exit 0.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <future>
#include <limits>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "model/generation.h"
#include "tests/server/scheduler_test_util.h"
#include "tests/server/triadd_process.h"
#include "triad/v1/triad.grpc.pb.h"

namespace triad {
namespace {

using namespace std::chrono_literals;

const std::string kData = TRIAD_TEST_DATA_DIR;

using testing::HttpGet;

using testing::Sample;

class Triadd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_.Start("triadd_test", R"([
      {"name": "llama", "path": ")" + kData + R"(/models/llama-tiny",
       "tokenizer": ")" + kData + R"(/tokenizers/llama-tiny", "max_batch_size": 4, "max_queue": 64},
      {"name": "t5", "path": ")" + kData + R"(/models/t5-tiny",
       "tokenizer": ")" + kData + R"(/tokenizers/t5-tiny"},
      {"name": "tight", "path": ")" + kData + R"(/models/llama-tiny",
       "tokenizer": ")" + kData + R"(/tokenizers/llama-tiny", "max_batch_size": 1, "max_queue": 1}])");
    port_ = server_.port;
    channel_ = server_.channel;
    stub_ = v1::Triad::NewStub(channel_);
  }
  static void TearDownTestSuite() { server_.Stop(); }
  static bool WaitServing() { return server_.WaitServing(); }

  static v1::GenerateRequest Greedy(const std::string& model, std::vector<int32_t> ids, int n) {
    v1::GenerateRequest r;
    r.set_model(model);
    for (int32_t id : ids) r.mutable_token_ids()->add_ids(id);
    r.mutable_sampling()->set_temperature(0);
    r.mutable_sampling()->set_max_new_tokens(n);
    return r;
  }

  static grpc::Status Call(const v1::GenerateRequest& r, v1::GenerateResponse* out,
                           std::chrono::milliseconds deadline = 30s) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    return stub_->Generate(&ctx, r, out);
  }

  // Streams `r`; returns the concatenated deltas, the ids and the final message.
  static grpc::Status Stream(const v1::GenerateRequest& r, std::string* text,
                             std::vector<int32_t>* ids, v1::GenerateStreamResponse* last) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    auto reader = stub_->GenerateStream(&ctx, r);
    v1::GenerateStreamResponse msg;
    while (reader->Read(&msg)) {
      *text += msg.text_delta();
      ids->insert(ids->end(), msg.token_ids().begin(), msg.token_ids().end());
      *last = msg;
    }
    return reader->Finish();
  }

  static testing::TriaddProcess server_;
  static int port_;
  static std::shared_ptr<grpc::Channel> channel_;
  static std::unique_ptr<v1::Triad::Stub> stub_;
};

testing::TriaddProcess Triadd::server_;
int Triadd::port_ = 0;
std::shared_ptr<grpc::Channel> Triadd::channel_;
std::unique_ptr<v1::Triad::Stub> Triadd::stub_;

std::vector<int64_t> SoloGreedy(const std::string& folder, const std::vector<int32_t>& prompt, int n) {
  auto model = LoadModel(kData + "/models/" + folder, testing::TestLoadOptions());
  EXPECT_TRUE(model.ok());
  GenerationOptions options;
  options.max_new_tokens = n;
  std::vector<int64_t> p(prompt.begin(), prompt.end());
  auto out = Generate(**model, {at::tensor(p, at::kLong).view({1, -1}), at::Tensor()}, options);
  EXPECT_TRUE(out.ok());
  std::vector<int64_t> ids;
  const auto& eos = (*model)->config().eos_token_ids;
  for (int64_t t = out->prompt_length; t < out->sequences.size(1); ++t) {
    ids.push_back(out->sequences[0][t].item<int64_t>());
    if (std::find(eos.begin(), eos.end(), ids.back()) != eos.end()) break;
  }
  return ids;
}

TEST_F(Triadd, A_ServesHealthAndModels) {
  ASSERT_TRUE(WaitServing()) << "triadd did not become healthy on port " << port_;
  grpc::ClientContext ctx;
  v1::ListModelsResponse models;
  ASSERT_TRUE(stub_->ListModels(&ctx, v1::ListModelsRequest(), &models).ok());
  ASSERT_EQ(models.models_size(), 3);
  grpc::ClientContext ctx2;
  v1::GetModelRequest get;
  get.set_name("t5");
  v1::ModelInfo info;
  ASSERT_TRUE(stub_->GetModel(&ctx2, get, &info).ok());
  EXPECT_EQ(info.family(), v1::MODEL_FAMILY_T5);
  EXPECT_EQ(info.state(), v1::MODEL_STATE_READY);
  EXPECT_EQ(info.vocab_size(), 1100);
}

TEST_F(Triadd, GreedyEqualsTheModelLibraryAndStreamEqualsUnary) {
  ASSERT_TRUE(WaitServing());
  for (const auto& [name, folder] : {std::pair<std::string, std::string>{"llama", "llama-tiny"},
                                     {"t5", "t5-tiny"}}) {
    SCOPED_TRACE(name);
    const std::vector<int32_t> prompt = {1, 306, 496, 298, 13, 45};
    v1::GenerateResponse unary;
    ASSERT_TRUE(Call(Greedy(name, prompt, 12), &unary).ok());
    const std::vector<int64_t> expected = SoloGreedy(folder, prompt, 12);
    EXPECT_EQ(std::vector<int64_t>(unary.token_ids().begin(), unary.token_ids().end()), expected);
    std::string text;
    std::vector<int32_t> ids;
    v1::GenerateStreamResponse last;
    ASSERT_TRUE(Stream(Greedy(name, prompt, 12), &text, &ids, &last).ok());
    EXPECT_EQ(text, unary.text());
    EXPECT_EQ(std::vector<int32_t>(unary.token_ids().begin(), unary.token_ids().end()), ids);
    EXPECT_TRUE(last.done());
    EXPECT_EQ(last.finish_reason(), unary.finish_reason());
    EXPECT_EQ(last.usage().generated_tokens(), static_cast<uint32_t>(ids.size()));
  }
}

TEST_F(Triadd, TextInTextOutAndTokenizeRoundTrip) {
  ASSERT_TRUE(WaitServing());
  v1::TokenizeRequest tok;
  tok.set_model("llama");
  tok.set_text("The license grants you");
  v1::TokenizeResponse ids;
  grpc::ClientContext c1;
  ASSERT_TRUE(stub_->Tokenize(&c1, tok, &ids).ok());
  EXPECT_EQ(ids.token_ids(0), 1);  // bos
  v1::DetokenizeRequest detok;
  detok.set_model("llama");
  detok.mutable_token_ids()->CopyFrom(ids.token_ids());
  v1::DetokenizeResponse text;
  grpc::ClientContext c2;
  ASSERT_TRUE(stub_->Detokenize(&c2, detok, &text).ok());
  EXPECT_EQ(text.text(), "The license grants you");
  v1::GenerateRequest r;
  r.set_model("llama");
  r.set_text("The license grants you");
  r.set_logprobs(true);
  r.mutable_sampling()->set_temperature(0);
  r.mutable_sampling()->set_max_new_tokens(5);
  r.mutable_sampling()->set_ignore_eos(true);
  v1::GenerateResponse out;
  ASSERT_TRUE(Call(r, &out).ok());
  EXPECT_EQ(out.token_ids_size(), 5);
  EXPECT_EQ(out.logprobs_size(), 5);
  EXPECT_EQ(out.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(out.usage().prompt_tokens(), static_cast<uint32_t>(ids.token_ids_size()));
}

// The fixture's own greedy case, straight through the API.
TEST_F(Triadd, GreedyEqualsTheTransformersFixture) {
  ASSERT_TRUE(WaitServing());
  std::ifstream in(kData + "/models/llama-tiny/reference.json");
  const nlohmann::json reference = nlohmann::json::parse(in);
  int checked = 0;
  for (const nlohmann::json& c : reference["cases"]) {
    if (c["kind"] != "greedy" || c["input_ids"].size() != 1) continue;
    const std::vector<int32_t> prompt = c["input_ids"][0].get<std::vector<int32_t>>();
    const std::vector<int32_t> full = c["output_ids"][0].get<std::vector<int32_t>>();
    v1::GenerateResponse out;
    ASSERT_TRUE(Call(Greedy("llama", prompt, c["max_new_tokens"].get<int>()), &out).ok());
    EXPECT_EQ(std::vector<int32_t>(out.token_ids().begin(), out.token_ids().end()),
              std::vector<int32_t>(full.begin() + static_cast<int64_t>(prompt.size()), full.end()));
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

// echo returns transformers' prompt log-probs (fixture prompt_logprobs, tolerance
// 1e-4 * max(1, max|expected|)) in the unary response and the stream's first message, without
// changing the completion; top_logprobs lists the k best alternatives, the chosen one first.
TEST_F(Triadd, EchoPromptLogprobsAndTopLogprobs) {
  ASSERT_TRUE(WaitServing());
  std::ifstream in(kData + "/models/llama-tiny/reference.json");
  const nlohmann::json reference = nlohmann::json::parse(in);
  int checked = 0;
  for (const nlohmann::json& c : reference["cases"]) {
    if (c["kind"] != "prompt_logprobs") continue;
    const std::vector<int32_t> prompt = c["input_ids"][0].get<std::vector<int32_t>>();
    const std::vector<double> expected = c["expected_values"][0].get<std::vector<double>>();
    const double tolerance = 1e-4 * std::max(1.0, c["expected_max_abs_value"].get<double>());
    v1::GenerateRequest r = Greedy("llama", prompt, 6);
    v1::GenerateResponse plain, echoed;
    ASSERT_TRUE(Call(r, &plain).ok());
    r.set_echo(true);
    r.set_top_logprobs(3);
    const grpc::Status s = Call(r, &echoed);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(echoed.prompt_logprobs_size(), static_cast<int>(expected.size()));
    for (size_t t = 0; t < expected.size(); ++t) {
      EXPECT_EQ(echoed.prompt_logprobs(static_cast<int>(t)).token_id(), prompt[t + 1]);
      EXPECT_NEAR(echoed.prompt_logprobs(static_cast<int>(t)).logprob(), expected[t], tolerance);
    }
    EXPECT_EQ(std::vector<int32_t>(echoed.token_ids().begin(), echoed.token_ids().end()),
              std::vector<int32_t>(plain.token_ids().begin(), plain.token_ids().end()));
    ASSERT_EQ(echoed.logprobs_size(), echoed.token_ids_size());
    for (const v1::TokenLogprob& lp : echoed.logprobs()) {
      ASSERT_EQ(lp.top_size(), 3);
      EXPECT_EQ(lp.top(0).token_id(), lp.token_id());  // greedy: the chosen is the best
      EXPECT_FLOAT_EQ(lp.top(0).logprob(), lp.logprob());
      EXPECT_GE(lp.top(0).logprob(), lp.top(1).logprob());
      EXPECT_GE(lp.top(1).logprob(), lp.top(2).logprob());
    }
    std::string text;
    std::vector<int32_t> ids;
    v1::GenerateStreamResponse last;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    auto reader = stub_->GenerateStream(&ctx, r);
    v1::GenerateStreamResponse first;
    ASSERT_TRUE(reader->Read(&first));
    ASSERT_EQ(first.prompt_logprobs_size(), echoed.prompt_logprobs_size());
    for (int t = 0; t < first.prompt_logprobs_size(); ++t) {
      EXPECT_EQ(first.prompt_logprobs(t).logprob(), echoed.prompt_logprobs(t).logprob());
    }
    while (reader->Read(&last)) {
    }
    EXPECT_TRUE(reader->Finish().ok());
    ++checked;
  }
  EXPECT_GT(checked, 0);
  v1::GenerateRequest t5 = Greedy("t5", {5, 6, 1}, 2);
  t5.set_echo(true);
  v1::GenerateResponse out;
  const grpc::Status s = Call(t5, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("echo"), std::string::npos) << s.error_message();
}

TEST_F(Triadd, QueueOverflowIsResourceExhausted) {
  ASSERT_TRUE(WaitServing());
  v1::GenerateRequest r = Greedy("tight", {1, 2, 3}, 200);  // batch 1, queue 1
  r.mutable_sampling()->set_ignore_eos(true);
  std::vector<grpc::Status> statuses(6);
  std::vector<std::thread> clients;
  for (size_t i = 0; i < statuses.size(); ++i) {
    clients.emplace_back([&, i] {
      v1::GenerateResponse out;
      statuses[i] = Call(r, &out, 5s);
    });
  }
  for (auto& t : clients) t.join();
  int exhausted = 0;
  for (const grpc::Status& s : statuses) {
    if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++exhausted;
      EXPECT_NE(s.error_message().find("queue"), std::string::npos) << s.error_message();
    }
  }
  EXPECT_GT(exhausted, 0);
}

TEST_F(Triadd, ConcurrentClientsEachGetTheirSoloOutput) {
  ASSERT_TRUE(WaitServing());
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 32; ++i) prompts.push_back({1, 10 + i, 20 + 2 * i, 300 + i});
  std::vector<v1::GenerateResponse> results(prompts.size());
  std::vector<grpc::Status> statuses(prompts.size());
  std::vector<std::thread> clients;
  for (size_t i = 0; i < prompts.size(); ++i) {
    clients.emplace_back([&, i] { statuses[i] = Call(Greedy("llama", prompts[i], 8), &results[i]); });
  }
  for (auto& t : clients) t.join();
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_TRUE(statuses[i].ok()) << statuses[i].error_message();
    EXPECT_EQ(std::vector<int64_t>(results[i].token_ids().begin(), results[i].token_ids().end()),
              SoloGreedy("llama-tiny", prompts[i], 8))
        << "client " << i;
  }
}

TEST_F(Triadd, BadInputGetsItsCodeNamingTheField) {
  ASSERT_TRUE(WaitServing());
  auto expect = [&](v1::GenerateRequest r, grpc::StatusCode code, const std::string& field) {
    v1::GenerateResponse out;
    const grpc::Status s = Call(r, &out);
    EXPECT_EQ(s.error_code(), code) << field << ": " << s.error_message();
    EXPECT_NE(s.error_message().find(field), std::string::npos) << s.error_message();
  };
  v1::GenerateRequest r = Greedy("nope", {1, 2}, 4);
  expect(r, grpc::StatusCode::NOT_FOUND, "model");
  r = Greedy("llama", {1, 2}, 4);
  r.mutable_sampling()->set_temperature(-1);
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "sampling.temperature");
  r = Greedy("llama", {1, 2}, 4);
  r.mutable_sampling()->set_top_p(1.5f);
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "sampling.top_p");
  r = Greedy("llama", {}, 4);
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "token_ids");
  r = Greedy("llama", {1, 5000}, 4);
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "token_ids");
  r = Greedy("llama", {}, 4);
  r.clear_token_ids();
  r.set_text("");
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "text");
  r = Greedy("llama", {1, 2}, 4);
  r.set_text("okay");
  v1::GenerateResponse out;
  EXPECT_TRUE(Call(r, &out).ok());
  r = Greedy("llama", std::vector<int32_t>(250, 5), 16);  // 250 + 16 > 256 positions
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "prompt");
  // The beam-search parameters need a beam search, and sane values.
  r = Greedy("llama", {1, 2}, 4);
  r.mutable_sampling()->set_length_penalty(2.0f);
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "sampling.length_penalty");
  r = Greedy("llama", {1, 2}, 4);
  r.mutable_sampling()->set_early_stopping(v1::BEAM_STOPPING_NEVER);
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "sampling.early_stopping");
  r = Greedy("llama", {1, 2}, 4);
  r.mutable_sampling()->set_num_beams(2);
  r.mutable_sampling()->set_length_penalty(std::numeric_limits<float>::quiet_NaN());
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "sampling.length_penalty");
  r = Greedy("llama", {1, 2}, 4);
  r.mutable_sampling()->set_num_beams(2);
  {  // an enum value this server does not know (proto3 keeps it)
    v1::SamplingParameters* sampling = r.mutable_sampling();
    sampling->GetReflection()->SetEnumValue(
        sampling, sampling->GetDescriptor()->FindFieldByName("early_stopping"), 7);
  }
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "sampling.early_stopping");
  // Stop strings and ids are checked at every token on the scheduler's thread: bounded.
  r = Greedy("llama", {1, 2}, 4);
  for (int i = 0; i < 16; ++i) r.mutable_sampling()->add_stop(std::string(256, 'a' + i));
  for (int i = 0; i < 64; ++i) r.mutable_sampling()->add_stop_token_ids(i);
  EXPECT_TRUE(Call(r, &out).ok());  // the limits themselves
  r.mutable_sampling()->add_stop("q");
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "sampling.stop: 17 strings, at most 16");
  r.mutable_sampling()->mutable_stop()->RemoveLast();
  r.mutable_sampling()->set_stop(3, std::string(257, 'x'));
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "sampling.stop[3]: 257 bytes, at most 256");
  r.mutable_sampling()->set_stop(3, "x");
  r.mutable_sampling()->add_stop_token_ids(64);
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "sampling.stop_token_ids: 65 ids, at most 64");
}

// Sends `request` encoded, with the bytes of `marker` (in some string field) replaced by bytes
// that are not UTF-8, to `method` as raw bytes (the stubs would not send them).
grpc::Status CallRaw(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                     const google::protobuf::Message& request, const std::string& marker) {
  std::string bytes = request.SerializeAsString();
  const size_t at = bytes.find(marker);
  if (at != std::string::npos) bytes.replace(at, marker.size(), std::string(marker.size(), '\xff'));
  grpc::Slice slice(bytes);
  grpc::ByteBuffer in(&slice, 1), out;
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 30s);
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &in, &out,
                 [&done](grpc::Status s) { done.set_value(std::move(s)); });
  return done.get_future().get();
}

TEST_F(Triadd, MalformedRequestsNameTheField) {
  ASSERT_TRUE(WaitServing());
  const auto expect = [](const grpc::Status& s, const std::string& field) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_NE(s.error_message().find(field), std::string::npos) << s.error_message();
  };
  v1::GenerateRequest g = Greedy("llama", {}, 4);
  g.clear_token_ids();
  g.set_text("hello MARK");
  g.mutable_sampling()->add_stop("x");
  expect(CallRaw(channel_, "/triad.v1.Triad/Generate", g, "MARK"),
         "text is not valid UTF-8 (bad byte sequence at byte offset 6)");
  g.mutable_sampling()->add_stop("STOP");
  g.set_text("hello");
  expect(CallRaw(channel_, "/triad.v1.Triad/Generate", g, "STOP"), "sampling.stop[1] is not valid UTF-8");
  v1::TokenizeRequest t;
  t.set_model("llaMARK");
  t.set_text("hi");
  expect(CallRaw(channel_, "/triad.v1.Triad/Tokenize", t, "MARK"), "model is not valid UTF-8");
  v1::ClassifyBatchRequest c;
  c.set_model("t5");
  c.set_task(v1::CLASSIFY_TASK_ENTAILMENT);
  c.add_items()->set_premise("a");
  c.add_items()->set_premise("bMARK");
  expect(CallRaw(channel_, "/triad.v1.Triad/ClassifyBatch", c, "MARK"),
         "items[1].premise is not valid UTF-8");
  // Bytes that are no protobuf at all name the message type.
  v1::GetModelRequest m;
  m.set_name("llama");
  expect(CallRaw(channel_, "/triad.v1.Triad/GetModel", m, std::string("\x0a\x05", 2)),
         "not a valid triad.v1.GetModelRequest");
  // The server is unharmed: a good request still succeeds.
  v1::GenerateResponse out;
  EXPECT_TRUE(Call(Greedy("llama", {1, 2}, 2), &out).ok());
}

// One ServerReflectionInfo stream: sends each encoded request, collects the encoded responses.
class ReflectionCall : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  explicit ReflectionCall(std::vector<std::string> requests) : requests_(std::move(requests)) {}
  grpc::Status Run(const std::shared_ptr<grpc::Channel>& channel, std::vector<std::string>* out) {
    grpc::GenericStub stub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    stub.PrepareBidiStreamingCall(
        &ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        grpc::StubOptions(), this);
    StartRead(&in_);
    WriteNext();
    StartCall();
    const grpc::Status status = done_.get_future().get();
    *out = responses_;
    return status;
  }
  void OnWriteDone(bool ok) override {
    if (ok) WriteNext();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    std::vector<grpc::Slice> slices;
    std::string bytes;
    if (in_.Dump(&slices).ok()) {
      for (const grpc::Slice& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    responses_.push_back(bytes);
    StartRead(&in_);
  }
  void OnDone(const grpc::Status& s) override { done_.set_value(s); }

 private:
  void WriteNext() {
    if (next_ == requests_.size()) {
      StartWritesDone();
      return;
    }
    grpc::Slice slice(requests_[next_++]);
    out_ = grpc::ByteBuffer(&slice, 1);
    StartWrite(&out_);
  }
  std::vector<std::string> requests_, responses_;
  size_t next_ = 0;
  grpc::ByteBuffer in_, out_;
  std::promise<grpc::Status> done_;
};

// Stock tools (grpcurl, grpc_cli) work: reflection lists the services and describes
// triad.v1.Triad. The requests are encoded by hand (ServerReflectionRequest.list_services = 7,
// .file_containing_symbol = 4); the responses are checked for the names they must carry.
TEST_F(Triadd, ReflectionDescribesTheService) {
  ASSERT_TRUE(WaitServing());
  const std::string symbol = "triad.v1.Triad";
  std::string describe = "\x22";
  describe += static_cast<char>(symbol.size());
  describe += symbol;
  ReflectionCall call({std::string("\x3a\x00", 2), describe});
  std::vector<std::string> responses;
  const grpc::Status status = call.Run(channel_, &responses);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(responses.size(), 2u);
  for (const char* service : {"triad.v1.Triad", "grpc.health.v1.Health"}) {
    EXPECT_NE(responses[0].find(service), std::string::npos) << service;
  }
  for (const char* name : {"GenerateStream", "ClassifyBatch", "GenerateRequest", "question"}) {
    EXPECT_NE(responses[1].find(name), std::string::npos) << name;
  }
}

TEST_F(Triadd, DeadlineAndCancellation) {
  ASSERT_TRUE(WaitServing());
  v1::GenerateRequest r = Greedy("llama", {1, 2, 3}, 200);
  r.mutable_sampling()->set_ignore_eos(true);
  v1::GenerateResponse out;
  EXPECT_EQ(Call(r, &out, 1ms).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  grpc::ClientContext ctx;
  auto reader = stub_->GenerateStream(&ctx, r);
  v1::GenerateStreamResponse msg;
  ASSERT_TRUE(reader->Read(&msg));  // generation started
  ctx.TryCancel();
  while (reader->Read(&msg)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The cancellation reaches the metrics (the slot was freed by the scheduler).
  double cancelled = -1;
  for (int i = 0; i < 100 && cancelled <= 0; ++i) {
    cancelled = Sample(HttpGet(port_ + 1, "/metrics"), "triad_requests_cancelled_total{model=\"llama\"}");
    if (cancelled <= 0) std::this_thread::sleep_for(20ms);
  }
  EXPECT_GT(cancelled, 0);
  // The server is still healthy and serving after the cancel.
  v1::GenerateResponse after;
  EXPECT_TRUE(Call(Greedy("llama", {1, 2}, 3), &after).ok());
}

TEST_F(Triadd, ServesPrometheusMetrics) {
  ASSERT_TRUE(WaitServing());
  v1::GenerateResponse out;
  ASSERT_TRUE(Call(Greedy("llama", {1, 2, 3}, 4), &out).ok());
  // The same 20-token prompt twice: the second takes its first block (16) from the cache.
  std::vector<int32_t> long_prompt;
  for (int i = 0; i < 20; ++i) long_prompt.push_back(100 + i);
  ASSERT_TRUE(Call(Greedy("llama", long_prompt, 2), &out).ok());
  EXPECT_EQ(out.usage().cached_prompt_tokens(), 0u);
  const std::vector<int32_t> first_ids(out.token_ids().begin(), out.token_ids().end());
  ASSERT_TRUE(Call(Greedy("llama", long_prompt, 2), &out).ok());
  EXPECT_EQ(out.usage().cached_prompt_tokens(), 16u);
  EXPECT_EQ(out.usage().prompt_tokens(), 20u);
  EXPECT_EQ(std::vector<int32_t>(out.token_ids().begin(), out.token_ids().end()), first_ids);
  v1::GenerateRequest slow = Greedy("llama", {1, 2, 3}, 250);
  slow.mutable_sampling()->set_ignore_eos(true);
  // The server records the expired call once the scheduler has dropped it (within a step). On
  // a loaded machine a 20 ms deadline can pass before the server even sees the call (then it
  // records nothing), so longer deadlines are tried too; 250 tokens outlast each of them.
  std::string response, body;
  for (auto deadline : {20ms, 60ms, 150ms}) {
    EXPECT_EQ(Call(slow, &out, deadline).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
    for (int i = 0; i < 50; ++i) {
      response = HttpGet(port_ + 1, "/metrics");
      ASSERT_EQ(response.rfind("HTTP/1.", 0), 0u) << response;
      body = response.substr(response.find("\r\n\r\n") + 4);
      if (Sample(body, R"(triad_requests_deadline_exceeded_total{model="llama"} )") > 0) break;
      std::this_thread::sleep_for(20ms);
    }
    if (Sample(body, R"(triad_requests_deadline_exceeded_total{model="llama"} )") > 0) break;
  }
  EXPECT_NE(response.find(" 200 "), std::string::npos) << response.substr(0, 200);
  EXPECT_GT(Sample(body, R"(triad_requests_total{code="OK",model="llama",rpc="Generate"} )"), 0)
      << body;
  EXPECT_GT(Sample(body, R"(triad_generated_tokens_total{model="llama"} )"), 0);
  EXPECT_GT(Sample(body, R"(triad_requests_deadline_exceeded_total{model="llama"} )"), 0);
  EXPECT_GT(Sample(body, R"(triad_batch_size_count{model="llama"} )"), 0);
  // Every step counted once by how it ran (on a GPU with cuda_graphs, graph and split steps).
  double steps = 0;
  for (const char* path : {"eager", "graph", "split"}) {
    const double n = Sample(body, std::string(R"(triad_engine_steps_total{model="llama",path=")") +
                                      path + "\"} ");
    EXPECT_GE(n, 0) << path;
    steps += n;
  }
  // Within one: a step in flight may land between the two families' samples.
  EXPECT_NEAR(steps, Sample(body, R"(triad_batch_size_count{model="llama"} )"), 1);
  EXPECT_GT(steps, 0);
  EXPECT_GT(Sample(body, R"(triad_model_load_seconds{model="t5"} )"), 0);
  EXPECT_GE(Sample(body, R"(triad_queue_depth{model="llama"} )"), 0);
  EXPECT_GE(Sample(body, R"(triad_prefix_cache_hit_tokens_total{model="llama"} )"), 16);
  EXPECT_GE(Sample(body, R"(triad_kv_cache_usage_ratio{model="llama"} )"), 0);
  EXPECT_GE(Sample(body, R"(triad_preemptions_total{model="llama"} )"), 0);
  EXPECT_NE(body.find("triad_build_info{"), std::string::npos);
}

TEST_F(Triadd, BeamSearchEqualsTheModelLibrary) {
  ASSERT_TRUE(WaitServing());
  const std::vector<int32_t> prompt = {161, 591, 855, 159, 927, 403, 1024, 775, 1};
  auto model = LoadModel(kData + "/models/t5-tiny", testing::TestLoadOptions());
  ASSERT_TRUE(model.ok());
  struct Case {
    v1::BeamStopping stopping;
    std::optional<float> length_penalty;
    EarlyStopping expected_stopping;
  };
  for (const Case& c : {Case{v1::BEAM_STOPPING_UNSPECIFIED, std::nullopt, EarlyStopping::kTrue},
                        Case{v1::BEAM_STOPPING_HEURISTIC, 0.5f, EarlyStopping::kHeuristic},
                        Case{v1::BEAM_STOPPING_NEVER, -1.0f, EarlyStopping::kNever}}) {
    SCOPED_TRACE(v1::BeamStopping_Name(c.stopping));
    v1::GenerateRequest r = Greedy("t5", prompt, 12);
    r.mutable_sampling()->set_num_beams(4);
    r.mutable_sampling()->set_early_stopping(c.stopping);
    if (c.length_penalty) r.mutable_sampling()->set_length_penalty(*c.length_penalty);
    v1::GenerateResponse out;
    ASSERT_TRUE(Call(r, &out).ok());
    GenerationOptions options;
    options.max_new_tokens = 12;
    options.num_beams = 4;
    options.early_stopping = c.expected_stopping;
    options.length_penalty = c.length_penalty.value_or(1.0f);
    std::vector<int64_t> p(prompt.begin(), prompt.end());
    auto expected =
        Generate(**model, {at::tensor(p, at::kLong).view({1, -1}), at::Tensor()}, options);
    ASSERT_TRUE(expected.ok());
    std::vector<int64_t> ids;
    for (int64_t t = expected->prompt_length; t < expected->sequences.size(1); ++t) {
      ids.push_back(expected->sequences[0][t].item<int64_t>());
      if (ids.back() == 1) break;  // eos
    }
    EXPECT_EQ(std::vector<int64_t>(out.token_ids().begin(), out.token_ids().end()), ids);
    EXPECT_FLOAT_EQ(out.sequence_score(), expected->sequences_scores[0].item<float>());
  }
  v1::GenerateRequest r = Greedy("t5", prompt, 12);
  r.mutable_sampling()->set_num_beams(4);
  // Beam search is unary only.
  std::string text;
  std::vector<int32_t> streamed;
  v1::GenerateStreamResponse last;
  const grpc::Status s = Stream(r, &text, &streamed, &last);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("sampling.num_beams"), std::string::npos) << s.error_message();
}

TEST_F(Triadd, Z_SigtermDrainsAndExitsZero) {
  ASSERT_TRUE(WaitServing());
  v1::GenerateRequest r = Greedy("llama", {1, 2, 3}, 40);
  r.mutable_sampling()->set_ignore_eos(true);
  v1::GenerateResponse in_flight;
  grpc::Status in_flight_status;
  std::thread client([&] { in_flight_status = Call(r, &in_flight); });
  std::this_thread::sleep_for(50ms);
  ASSERT_EQ(kill(server_.pid, SIGTERM), 0);
  client.join();
  int status = 0;
  ASSERT_EQ(waitpid(server_.pid, &status, 0), server_.pid);
  server_.pid = -1;
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // The request in flight when SIGTERM arrived finished normally.
  EXPECT_TRUE(in_flight_status.ok()) << in_flight_status.error_message();
  EXPECT_EQ(in_flight.token_ids_size(), 40);
}

// The models of the TriaddLoading tests: llama-tiny alone.
std::string LlamaTinyOnly() {
  return R"([{"name": "llama", "path": ")" + kData + R"(/models/llama-tiny", "tokenizer": ")" +
         kData + R"(/tokenizers/llama-tiny"}])";
}

// Models load after the server listens: meanwhile health is NOT_SERVING (overall and per
// model), GetModel says LOADING and requests get UNAVAILABLE.
TEST(TriaddLoading, NotServingWhileModelsLoad) {
  testing::TriaddProcess server;
  server.Start("triadd_loading_test", LlamaTinyOnly(),
               {{"TRIADD_TEST_LOAD_DELAY_MS", "3000"}});
  auto stub = v1::Triad::NewStub(server.channel);
  auto check = [&](const std::string& service) { return server.Health(service); };
  auto state = [&] {  // GetModel("llama").state
    grpc::ClientContext ctx;
    v1::GetModelRequest r;
    r.set_name("llama");
    v1::ModelInfo info;
    EXPECT_TRUE(stub->GetModel(&ctx, r, &info).ok());
    return info.state();
  };
  ASSERT_TRUE(server.WaitListening());  // the loader sleeps 3 s before loading
  EXPECT_EQ(check(""), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(check("llama"), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(state(), v1::MODEL_STATE_LOADING);
  {
    grpc::ClientContext ctx;
    v1::GenerateRequest r;
    r.set_model("llama");
    r.mutable_token_ids()->add_ids(5);
    v1::GenerateResponse out;
    EXPECT_EQ(stub->Generate(&ctx, r, &out).error_code(), grpc::StatusCode::UNAVAILABLE);
  }
  ASSERT_TRUE(server.WaitServing());
  EXPECT_EQ(check("llama"), grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(state(), v1::MODEL_STATE_READY);
  server.Stop();
}

// SIGTERM while a model is still loading exits 0 at once instead of waiting for the load.
TEST(TriaddLoading, SigtermWhileLoadingExitsZero) {
  testing::TriaddProcess server;
  server.Start("triadd_loading_sigterm_test", LlamaTinyOnly(),
               {{"TRIADD_TEST_LOAD_DELAY_MS", "20000"}});
  ASSERT_TRUE(server.WaitListening());
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(kill(server.pid, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(waitpid(server.pid, &status, 0), server.pid);
  server.pid = -1;
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);  // not the 20 s load
  server.Stop();
}

// The request log on stderr: by default ("errors") a failed call gets a line naming its RPC,
// model, code and message and a successful one none; with --request-log all every call does,
// a generation's with its usage and finish reason.
TEST(TriaddRequestLog, LinesNameTheCallAndItsOutcome) {
  for (const bool all : {false, true}) {
    testing::TriaddProcess server;
    server.capture_stderr = true;
    if (all) server.extra_args = {"--request-log", "all"};
    server.Start(all ? "triadd_request_log_all_test" : "triadd_request_log_test", LlamaTinyOnly());
    ASSERT_TRUE(server.WaitServing());
    auto stub = v1::Triad::NewStub(server.channel);
    auto generate = [&](float temperature) {
      grpc::ClientContext ctx;
      v1::GenerateRequest r;
      r.set_model("llama");
      r.mutable_token_ids()->add_ids(5);
      r.mutable_sampling()->set_temperature(temperature);
      r.mutable_sampling()->set_max_new_tokens(3);
      r.mutable_sampling()->set_ignore_eos(true);
      v1::GenerateResponse out;
      return stub->Generate(&ctx, r, &out).error_code();
    };
    EXPECT_EQ(generate(0), grpc::StatusCode::OK);
    EXPECT_EQ(generate(-1), grpc::StatusCode::INVALID_ARGUMENT);
    const std::string log = server.Stderr();
    EXPECT_NE(log.find("triadd: request rpc=Generate model=llama code=INVALID_ARGUMENT ms="),
              std::string::npos)
        << log;
    EXPECT_NE(log.find(" peer=ipv4:127.0.0.1:"), std::string::npos) << log;
    EXPECT_NE(log.find(" error=\"sampling.temperature"), std::string::npos) << log;
    const size_t ok = log.find("triadd: request rpc=Generate model=llama code=OK ms=");
    if (!all) {
      EXPECT_EQ(ok, std::string::npos) << log;
    } else {
      ASSERT_NE(ok, std::string::npos) << log;
      const std::string line = log.substr(ok, log.find('\n', ok) - ok);
      EXPECT_NE(line.find(" prompt_tokens=1 cached_prompt_tokens=0 generated_tokens=3 queue_ms="),
                std::string::npos)
          << line;
      EXPECT_NE(line.find(" finish=length"), std::string::npos) << line;
    }
    server.Stop();
  }
}

// A crash (here a SIGSEGV sent from outside) prints the signal and the faulting thread's stack
// to stderr, then triadd dies of that signal, so the pod's log says where it happened.
TEST(TriaddLoading, ACrashReportsItsSignalAndStack) {
  testing::TriaddProcess server;
  server.capture_stderr = true;
  server.Start("triadd_crash_test", LlamaTinyOnly(),
               {{"TRIADD_TEST_LOAD_DELAY_MS", "20000"}});
  ASSERT_TRUE(server.WaitListening());
  ASSERT_EQ(kill(server.pid, SIGSEGV), 0);
  int status = 0;
  ASSERT_EQ(waitpid(server.pid, &status, 0), server.pid);
  server.pid = -1;
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGSEGV);
  const std::string log = server.Stderr();
  EXPECT_NE(log.find("*** SIGSEGV received"), std::string::npos) << log;
  EXPECT_NE(log.find("@ "), std::string::npos) << log;  // the stack's frames
  server.Stop();
}

}  // namespace
}  // namespace triad
