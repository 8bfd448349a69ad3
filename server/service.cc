#include "server/service.h"

#include <cmath>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "server/call_record.h"
#include "server/status_convert.h"
#include "server/stop_matcher.h"
#include "server/stream_response.h"

namespace triad {
namespace {

absl::Status Prefixed(const char* prefix, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(prefix, status.message()));
}

// Bounds on what a request makes the scheduler thread check at every token (each stop string
// and id, on its own thread's time but in every step of the batch): generous against the 4
// stop sequences of TGI's default and OpenAI's API.
constexpr int kMaxStopStrings = 16;
constexpr size_t kMaxStopBytes = 256;
constexpr int kMaxStopTokenIds = 64;

absl::StatusOr<SamplingParams> ToSampling(const v1::GenerateRequest& r) {
  const v1::SamplingParameters& s = r.sampling();
  SamplingParams p;
  p.max_new_tokens = s.max_new_tokens() == 0 ? 16 : s.max_new_tokens();
  p.min_new_tokens = s.min_new_tokens();
  if (s.has_temperature()) p.temperature = s.temperature();
  p.top_k = s.top_k();
  if (s.has_top_p()) p.top_p = s.top_p();
  if (s.has_min_p()) p.min_p = s.min_p();
  if (s.has_typical_p()) p.typical_p = s.typical_p();
  if (s.has_repetition_penalty()) p.repetition_penalty = s.repetition_penalty();
  p.presence_penalty = s.presence_penalty();
  p.frequency_penalty = s.frequency_penalty();
  p.stop_token_ids.assign(s.stop_token_ids().begin(), s.stop_token_ids().end());
  p.has_seed = s.has_seed();
  p.seed = s.seed();
  p.ignore_eos = s.ignore_eos();
  p.top_logprobs = r.top_logprobs();
  p.logprobs = r.logprobs();  // the responses carry log-probs only when asked
  TRIAD_RETURN_IF_ERROR(Prefixed("sampling.", p.Validate()));
  if (s.stop_size() > kMaxStopStrings) {
    return absl::InvalidArgumentError(absl::StrCat("sampling.stop: ", s.stop_size(),
                                                   " strings, at most ", kMaxStopStrings));
  }
  for (int i = 0; i < s.stop_size(); ++i) {
    if (s.stop(i).empty()) {
      return absl::InvalidArgumentError(absl::StrCat("sampling.stop[", i, "]: empty"));
    }
    if (s.stop(i).size() > kMaxStopBytes) {
      return absl::InvalidArgumentError(absl::StrCat("sampling.stop[", i, "]: ", s.stop(i).size(),
                                                     " bytes, at most ", kMaxStopBytes));
    }
  }
  if (s.stop_token_ids_size() > kMaxStopTokenIds) {
    return absl::InvalidArgumentError(absl::StrCat("sampling.stop_token_ids: ",
                                                   s.stop_token_ids_size(), " ids, at most ",
                                                   kMaxStopTokenIds));
  }
  if (s.num_beams() > 16) return absl::InvalidArgumentError("sampling.num_beams: at most 16");
  const bool beam = s.num_beams() > 1;
  if (s.has_length_penalty() && !beam) {
    return absl::InvalidArgumentError("sampling.length_penalty: only with num_beams > 1");
  }
  if (!std::isfinite(s.length_penalty())) {
    return absl::InvalidArgumentError("sampling.length_penalty: must be finite");
  }
  if (!v1::BeamStopping_IsValid(s.early_stopping())) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling.early_stopping: unknown value ", s.early_stopping()));
  }
  if (s.early_stopping() != v1::BEAM_STOPPING_UNSPECIFIED && !beam) {
    return absl::InvalidArgumentError("sampling.early_stopping: only with num_beams > 1");
  }
  return p;
}

EarlyStopping ToEarlyStopping(v1::BeamStopping stopping) {
  switch (stopping) {
    case v1::BEAM_STOPPING_HEURISTIC:
      return EarlyStopping::kHeuristic;
    case v1::BEAM_STOPPING_NEVER:
      return EarlyStopping::kNever;
    default:  // BEAM_STOPPING_EARLY and unset
      return EarlyStopping::kTrue;
  }
}

// `text` (from the request, or a Classify task's template rendered for task_input) as ids.
absl::StatusOr<std::vector<int64_t>> EncodePrompt(const ServedModel& m, const v1::GenerateRequest& r,
                                                  const std::string& text, const char* field) {
  auto ids = m.tokenizer->EncodeIds(text, !r.has_add_special_tokens() || r.add_special_tokens());
  if (!ids.ok()) return Prefixed(field, ids.status());
  if (ids->empty()) return absl::InvalidArgumentError(absl::StrCat(field, "encodes to no tokens"));
  return std::vector<int64_t>(ids->begin(), ids->end());
}

absl::StatusOr<std::vector<int64_t>> ToPromptIds(const ServedModel& m, const v1::GenerateRequest& r) {
  if (r.input_case() == v1::GenerateRequest::kText) {
    if (r.text().empty()) return absl::InvalidArgumentError("text: empty input");
    return EncodePrompt(m, r, r.text(), "text: ");
  }
  if (r.input_case() == v1::GenerateRequest::kTaskInput) {
    TRIAD_ASSIGN_OR_RETURN(const ClassifyTaskKind task, ToClassifyTask(r.task()));
    TRIAD_ASSIGN_OR_RETURN(const std::string prompt,
                           m.tasks->RenderPrompt(task, ToItemTexts(r.task_input()), "task_input."));
    return EncodePrompt(m, r, prompt, "task_input: ");
  }
  if (r.input_case() != v1::GenerateRequest::kTokenIds) {
    return absl::InvalidArgumentError("input: set text, token_ids or task_input");
  }
  if (r.token_ids().ids_size() == 0) return absl::InvalidArgumentError("token_ids: empty input");
  std::vector<int64_t> ids(r.token_ids().ids().begin(), r.token_ids().ids().end());
  TRIAD_RETURN_IF_ERROR(CheckTokenIds(ids, m.model->config().vocab_size, "token_ids"));
  return ids;
}

v1::FinishReason ToProto(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength: return v1::FINISH_REASON_LENGTH;
    case FinishReason::kEos: return v1::FINISH_REASON_EOS;
    case FinishReason::kStop: return v1::FINISH_REASON_STOP_SEQUENCE;
    case FinishReason::kCancelled: return v1::FINISH_REASON_CANCELLED;
    case FinishReason::kDeadline: return v1::FINISH_REASON_DEADLINE;
    case FinishReason::kError: break;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

grpc::Status FinalStatus(const Completion& c) {
  if (c.reason == FinishReason::kError) return ToGrpcStatus(c.status);
  if (c.reason == FinishReason::kCancelled) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
  if (c.reason == FinishReason::kDeadline) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "the request's deadline passed");
  }
  return grpc::Status::OK;
}

// What a generation call accumulates on the scheduler thread, shared with the gRPC side.
struct CallState {
  ServedModel* served = nullptr;
  bool want_logprobs = false;
  std::unique_ptr<tokenizer::IncrementalDecoder> decoder;
  std::unique_ptr<StopMatcher> stops;
  CancelSlot slot;

  void Cancel() { slot.Cancel(); }

  v1::TokenLogprob Logprob(const SampledToken& t) const {
    v1::TokenLogprob out;
    out.set_token_id(static_cast<int32_t>(t.token_id));
    out.set_token(served->tokenizer->IdToToken(static_cast<int32_t>(t.token_id)).value_or(""));
    out.set_logprob(t.logprob);
    for (const auto& [id, lp] : t.top_logprobs) {
      v1::TopLogprob* top = out.add_top();
      top->set_token_id(static_cast<int32_t>(id));
      top->set_token(served->tokenizer->IdToToken(static_cast<int32_t>(id)).value_or(""));
      top->set_logprob(lp);
    }
    return out;
  }

  // Decodes the new token into the stop matcher; true when a stop string completed.
  bool Feed(int64_t token_id) {
    auto delta = decoder->Push(static_cast<int32_t>(token_id));
    return stops->Append(delta.ok() ? *delta : "");
  }
  void Flush() {
    auto rest = decoder->Flush();
    if (rest.ok()) stops->Append(*rest);
  }
};

// Validates `request` and prepares the shared state and the scheduler request (without
// callbacks).
absl::Status Prepare(ServedModel& served, const v1::GenerateRequest& request,
                     const grpc::CallbackServerContext* context, CallState& state,
                     GenerationRequest& out) {
  TRIAD_ASSIGN_OR_RETURN(out.sampling, ToSampling(request));
  TRIAD_ASSIGN_OR_RETURN(out.prompt_ids, ToPromptIds(served, request));
  const int64_t limit = served.config.max_context;
  const int64_t decoder_len = (served.model->config().is_encoder_decoder()
                                   ? 1
                                   : static_cast<int64_t>(out.prompt_ids.size())) +
                              out.sampling.max_new_tokens;
  if (limit > 0 && decoder_len > limit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sampling.max_new_tokens: ", out.prompt_ids.size(), " prompt tokens + ",
        out.sampling.max_new_tokens, " new tokens exceed this model's max_context ", limit));
  }
  if (request.echo() && served.model->config().is_encoder_decoder()) {
    return absl::InvalidArgumentError(
        "echo: a T5 prompt is the encoder input; it has no log-probabilities");
  }
  if (request.echo() && request.sampling().num_beams() > 1) {
    return absl::InvalidArgumentError("echo: not available with sampling.num_beams > 1");
  }
  out.deadline = SteadyDeadline(context);
  state.served = &served;
  state.want_logprobs = request.logprobs() || request.top_logprobs() > 0;
  state.decoder = std::make_unique<tokenizer::IncrementalDecoder>(
      *served.tokenizer, !request.has_skip_special_tokens() || request.skip_special_tokens());
  state.stops = std::make_unique<StopMatcher>(
      std::vector<std::string>(request.sampling().stop().begin(), request.sampling().stop().end()));
  return absl::OkStatus();
}

void FillUsage(const Completion& c, v1::Usage* usage, v1::Timings* timings) {
  usage->set_prompt_tokens(static_cast<uint32_t>(c.prompt_tokens));
  usage->set_cached_prompt_tokens(static_cast<uint32_t>(c.cached_prompt_tokens));
  usage->set_generated_tokens(static_cast<uint32_t>(c.token_ids.size()));
  timings->set_queue_seconds(c.queue_seconds);
  timings->set_time_to_first_token_seconds(c.first_token_seconds);
  timings->set_total_seconds(c.total_seconds);
}

// Receivers of what happens after SubmitCall returned: the prompt log-probs (echo) and a
// failure of the echo step or of the generation's deferred submission.
struct EchoCallbacks {
  std::function<void(std::vector<v1::TokenLogprob>)> on_prompt;
  std::function<void(const absl::Status&)> on_error;
};

// Submits the generation and records its handle for cancellation. With `echo` (decoder-only,
// checked by Prepare) the prompt is first scored on the scheduler like all model work, and the
// generation is submitted when that finishes.
absl::Status SubmitCall(ServedModel& served, GenerationRequest request,
                        const std::shared_ptr<CallState>& state, bool echo,
                        const EchoCallbacks& callbacks) {
  const std::vector<int64_t>& prompt = request.prompt_ids;
  if (!echo || prompt.size() < 2) {
    auto handle = served.scheduler->Submit(std::move(request));
    if (!handle.ok()) return handle.status();
    if (echo) callbacks.on_prompt({});
    state->slot.Set(*std::move(handle));
    return absl::OkStatus();
  }
  ScoringRequest score;
  score.items.push_back({{prompt[0]}, {{prompt.begin() + 1, prompt.end()}}});
  score.deadline = request.deadline;
  score.on_done = [&served, state, request, callbacks](const ScoringResult& r) {
    if (!r.status.ok()) return callbacks.on_error(r.status);
    std::vector<v1::TokenLogprob> logprobs;
    const std::vector<float>& lp = r.scores[0][0].token_logprobs;
    for (size_t t = 0; t < lp.size(); ++t) {
      logprobs.push_back(state->Logprob({request.prompt_ids[t + 1], lp[t], {}}));
    }
    callbacks.on_prompt(std::move(logprobs));
    const absl::Status status = SubmitCall(served, request, state, false, callbacks);
    if (!status.ok()) callbacks.on_error(status);
  };
  auto handle = served.scheduler->SubmitScoring(std::move(score));
  if (!handle.ok()) return handle.status();
  state->slot.Set(*std::move(handle));
  return absl::OkStatus();
}

// Prepare, finishing `reactor` with the error when the request is bad.
template <typename Reactor>
bool Begin(Reactor* reactor, const CallRecord& call, ServedModel& served,
           const v1::GenerateRequest& request, const grpc::CallbackServerContext* context,
           CallState& state, GenerationRequest& gen) {
  const absl::Status status = Prepare(served, request, context, state, gen);
  if (!status.ok()) reactor->Finish(call.Refuse(status));
  return status.ok();
}

class UnaryGenerate : public UnaryReply<v1::GenerateResponse> {
 public:
  UnaryGenerate(ServedModel& served, grpc::CallbackServerContext* context,
                const v1::GenerateRequest& request, grpc::ByteBuffer* out, CallRecord call)
      : UnaryReply(out), call_(std::move(call)) {
    v1::GenerateResponse* response = this->response();
    auto state = std::make_shared<CallState>();
    state_ = state;
    GenerationRequest gen;
    if (!Begin(this, call_, served, request, context, *state, gen)) return;
    response->set_model(served.config.name);
    // Beam search (scheduler.h): HF BeamSearchScorer (early_stopping true unless the request
    // says otherwise); temperature, stop strings and logprobs do not apply, and the text is
    // decoded from the chosen beam.
    const bool beam = request.sampling().num_beams() > 1;
    const bool skip_special = !request.has_skip_special_tokens() || request.skip_special_tokens();
    if (beam) {
      const v1::SamplingParameters& s = request.sampling();
      gen.num_beams = s.num_beams();
      gen.length_penalty = s.has_length_penalty() ? s.length_penalty() : 1.0;
      gen.early_stopping = ToEarlyStopping(s.early_stopping());
    } else {
      gen.on_token = [state, response](const TokenEvent& e) {
        if (state->want_logprobs) *response->add_logprobs() = state->Logprob(e.token);
        return state->Feed(e.token.token_id);
      };
    }
    gen.on_done = [this, &served, state, response, beam, skip_special](const Completion& c) {
      if (beam) {
        const std::vector<int32_t> ids(c.token_ids.begin(), c.token_ids.end());
        auto text = served.tokenizer->Decode(ids, skip_special);
        response->set_text(text.ok() ? *text : "");
        response->set_sequence_score(static_cast<float>(c.sequence_score));
      } else {
        if (!state->stops->stopped()) state->Flush();
        response->set_text(state->stops->text());
      }
      response->mutable_token_ids()->Add(c.token_ids.begin(), c.token_ids.end());
      response->set_finish_reason(ToProto(c.reason));
      FillUsage(c, response->mutable_usage(), response->mutable_timings());
      call_.Generated(c);
      Reply(call_.Done(FinalStatus(c)));
    };
    EchoCallbacks echo;
    echo.on_prompt = [response](std::vector<v1::TokenLogprob> logprobs) {
      for (auto& lp : logprobs) *response->add_prompt_logprobs() = std::move(lp);
    };
    echo.on_error = [this](const absl::Status& status) { Reply(call_.Done(ToGrpcStatus(status))); };
    const absl::Status status = SubmitCall(served, std::move(gen), state, request.echo(), echo);
    if (!status.ok()) Finish(call_.Refuse(status));
  }
  void OnCancel() override { state_->Cancel(); }

 private:
  const CallRecord call_;
  std::shared_ptr<CallState> state_;
};

// Starts stream writes on a thread of its own. StartWrite does the write inline, sendmsg
// included, on the thread that calls it; called from the scheduler's token callback it cost
// ~110 us per streamed token on the step's serial path (16 streams: ~1.8 ms of a ~27 ms
// Llama-110m decode step, two cores). Writes after the first of a burst chain from
// OnWriteDone on gRPC's threads.
class WriteStarter {
 public:
  // Never destroyed: reactors may post to it until the process exits.
  static WriteStarter& Get() {
    static WriteStarter* const starter = new WriteStarter();
    return *starter;
  }
  void Post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.push_back(std::move(task));
    }
    ready_.notify_one();
  }

 private:
  WriteStarter() { std::thread([this] { Run(); }).detach(); }
  void Run() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        ready_.wait(lock, [this] { return !tasks_.empty(); });
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> tasks_;  // guarded by mu_
};

class StreamGenerate : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  StreamGenerate(ServedModel& served, grpc::CallbackServerContext* context,
                 const v1::GenerateRequest& request, CallRecord call)
      : call_(std::move(call)) {
    auto state = std::make_shared<CallState>();
    state_ = state;
    GenerationRequest gen;
    if (!Begin(this, call_, served, request, context, *state, gen)) return;
    gen.on_token = [this, state](const TokenEvent& e) {
      v1::GenerateStreamResponse msg;
      msg.add_token_ids(static_cast<int32_t>(e.token.token_id));
      if (state->want_logprobs) *msg.add_logprobs() = state->Logprob(e.token);
      const bool stop = state->Feed(e.token.token_id);
      msg.set_text_delta(state->stops->TakeReady(false));
      Send(std::move(msg), false, grpc::Status::OK);
      return stop;
    };
    gen.on_done = [this, state](const Completion& c) {
      if (!state->stops->stopped()) state->Flush();
      v1::GenerateStreamResponse last;
      last.set_text_delta(state->stops->TakeReady(true));
      last.set_done(true);
      last.set_finish_reason(ToProto(c.reason));
      FillUsage(c, last.mutable_usage(), last.mutable_timings());
      call_.Generated(c);
      Send(std::move(last), true, FinalStatus(c));
    };
    EchoCallbacks echo;
    echo.on_prompt = [this](std::vector<v1::TokenLogprob> logprobs) {
      v1::GenerateStreamResponse first;
      for (auto& lp : logprobs) *first.add_prompt_logprobs() = std::move(lp);
      Send(std::move(first), false, grpc::Status::OK);
    };
    echo.on_error = [this](const absl::Status& status) { Fail(ToGrpcStatus(status)); };
    const absl::Status status = SubmitCall(served, std::move(gen), state, request.echo(), echo);
    if (!status.ok()) Finish(call_.Refuse(status));
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) pending_.clear();  // the client is gone; the scheduler hears of it via OnCancel
    WriteNextLocked();
  }
  void OnCancel() override { state_->Cancel(); }
  void OnDone() override { delete this; }

 private:
  // Queues a message; writes are issued one at a time. The final message carries the status.
  void Send(v1::GenerateStreamResponse msg, bool last, grpc::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(std::move(msg));
    if (last) {
      final_ = true;
      final_status_ = std::move(status);
    }
    KickLocked();
  }
  // Ends the stream with `status` once the queued messages are written.
  void Fail(grpc::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    final_ = true;
    final_status_ = std::move(status);
    KickLocked();
  }
  // Called from the scheduler's thread (or the service's): unless a write is in flight (its
  // OnWriteDone goes on), the next write starts on the WriteStarter's thread. While that is
  // posted, nothing else writes or finishes, so the reactor outlives the posted task.
  void KickLocked() {
    if (writing_ || finished_ || kick_posted_) return;
    kick_posted_ = true;
    WriteStarter::Get().Post([this] {
      std::lock_guard<std::mutex> lock(mu_);
      kick_posted_ = false;
      WriteNextLocked();
    });
  }
  void WriteNextLocked() {
    if (writing_ || finished_ || kick_posted_) return;
    if (!pending_.empty()) {
      // Everything queued behind the last write goes out as one message (stream_response.h).
      v1::GenerateStreamResponse msg = std::move(pending_.front());
      pending_.pop_front();
      for (; !pending_.empty(); pending_.pop_front()) AppendStreamResponse(&msg, pending_.front());
      const grpc::Status encoded = SerializeResponse(msg, &current_);
      if (!encoded.ok()) {
        pending_.clear();
        final_ = true;
        final_status_ = encoded;
      } else {
        writing_ = true;
        StartWrite(&current_);
        return;
      }
    }
    if (final_) {
      finished_ = true;
      Finish(call_.Done(final_status_));
    }
  }

  const CallRecord call_;
  std::shared_ptr<CallState> state_;
  std::mutex mu_;
  std::deque<v1::GenerateStreamResponse> pending_;  // guarded by mu_
  grpc::ByteBuffer current_;                         // the message being written
  bool writing_ = false, final_ = false, finished_ = false;
  bool kick_posted_ = false;  // a WriteNextLocked is posted to the WriteStarter
  grpc::Status final_status_;
};

}  // namespace

std::string TriadService::ModelLabel(const std::string& model) const {
  return models_.count(model) > 0 ? model : "";
}

absl::StatusOr<ServedModel*> TriadService::Ready(const std::string& name) const {
  if (name.empty()) return absl::InvalidArgumentError("model: required");
  auto it = models_.find(name);
  if (it == models_.end()) return absl::NotFoundError(absl::StrCat("model: no model named \"", name, "\""));
  const ServingState state = it->second->state.load();
  if (state != ServingState::kReady) {
    return absl::UnavailableError(absl::StrCat("model \"", name, "\" is not serving (",
                                               state == ServingState::kFailed ? it->second->error
                                                                              : "loading or draining",
                                               ")"));
  }
  return it->second.get();
}

absl::StatusOr<ServedModel*> TriadService::ReadyToGenerate(const std::string& name) const {
  TRIAD_ASSIGN_OR_RETURN(ServedModel * served, Ready(name));
  const ModelConfig& c = served->model->config();
  if (c.head == HeadKind::kSequenceClassification) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model: \"", name, "\" is a sequence-classification checkpoint (", c.architecture,
        ") without a language-model head; it serves Classify only"));
  }
  return served;
}

grpc::ServerUnaryReactor* TriadService::Generate(grpc::CallbackServerContext* context,
                                                 const grpc::ByteBuffer* in, grpc::ByteBuffer* out) {
  v1::GenerateRequest request;
  const absl::Status parsed = ParseRequest(*in, &request);
  CallRecord call(sinks_, ModelLabel(request.model()), "Generate", context);
  if (!parsed.ok()) return Refused(context, call, parsed);
  auto served = ReadyToGenerate(request.model());
  if (!served.ok()) return Refused(context, call, served.status());
  return new UnaryGenerate(**served, context, request, out, std::move(call));
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* TriadService::GenerateStream(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* in) {
  v1::GenerateRequest request;
  absl::Status status = ParseRequest(*in, &request);
  CallRecord call(sinks_, ModelLabel(request.model()), "GenerateStream", context);
  if (status.ok()) {
    auto served = ReadyToGenerate(request.model());
    if (!served.ok()) {
      status = served.status();
    } else if (request.sampling().num_beams() > 1) {
      status = absl::InvalidArgumentError(
          "sampling.num_beams: beam search is served by the unary Generate only");
    } else {
      return new StreamGenerate(**served, context, request, std::move(call));
    }
  }
  class Refusal : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
   public:
    explicit Refusal(grpc::Status s) { Finish(std::move(s)); }
    void OnDone() override { delete this; }
  };
  return new Refusal(call.Refuse(status));
}

grpc::ServerUnaryReactor* TriadService::Tokenize(grpc::CallbackServerContext* context,
                                                 const grpc::ByteBuffer* in, grpc::ByteBuffer* out) {
  v1::TokenizeRequest request;
  const absl::Status parsed = ParseRequest(*in, &request);
  const CallRecord call(sinks_, ModelLabel(request.model()), "Tokenize", context);
  if (!parsed.ok()) return Refused(context, call, parsed);
  v1::TokenizeResponse response;
  auto served = Ready(request.model());
  if (!served.ok()) return Respond(context, call, served.status(), response, out);
  auto encoding = (*served)->tokenizer->Encode(
      request.text(), !request.has_add_special_tokens() || request.add_special_tokens());
  if (!encoding.ok()) {
    return Respond(context, call, Prefixed("text: ", encoding.status()), response, out);
  }
  response.mutable_token_ids()->Add(encoding->ids.begin(), encoding->ids.end());
  for (const std::string& t : encoding->tokens) response.add_tokens(t);
  return Respond(context, call, absl::OkStatus(), response, out);
}

grpc::ServerUnaryReactor* TriadService::Detokenize(grpc::CallbackServerContext* context,
                                                   const grpc::ByteBuffer* in,
                                                   grpc::ByteBuffer* out) {
  v1::DetokenizeRequest request;
  const absl::Status parsed = ParseRequest(*in, &request);
  const CallRecord call(sinks_, ModelLabel(request.model()), "Detokenize", context);
  if (!parsed.ok()) return Refused(context, call, parsed);
  v1::DetokenizeResponse response;
  auto served = Ready(request.model());
  if (!served.ok()) return Respond(context, call, served.status(), response, out);
  const absl::Status checked =
      CheckTokenIds({request.token_ids().begin(), request.token_ids().end()},
                    (*served)->tokenizer->vocab_size(), "token_ids");
  if (!checked.ok()) return Respond(context, call, checked, response, out);
  std::vector<int32_t> ids(request.token_ids().begin(), request.token_ids().end());
  auto text = (*served)->tokenizer->Decode(
      ids, !request.has_skip_special_tokens() || request.skip_special_tokens());
  if (!text.ok()) return Respond(context, call, text.status(), response, out);
  response.set_text(*text);
  return Respond(context, call, absl::OkStatus(), response, out);
}

grpc::ServerUnaryReactor* TriadService::ListModels(grpc::CallbackServerContext* context,
                                                   const grpc::ByteBuffer* in,
                                                   grpc::ByteBuffer* out) {
  v1::ListModelsRequest request;
  const absl::Status parsed = ParseRequest(*in, &request);
  const CallRecord call(sinks_, "", "ListModels", context);
  if (!parsed.ok()) return Refused(context, call, parsed);
  v1::ListModelsResponse response;
  for (const auto& [name, served] : models_) *response.add_models() = DescribeModel(*served);
  return Respond(context, call, absl::OkStatus(), response, out);
}

grpc::ServerUnaryReactor* TriadService::GetModel(grpc::CallbackServerContext* context,
                                                 const grpc::ByteBuffer* in, grpc::ByteBuffer* out) {
  v1::GetModelRequest request;
  const absl::Status parsed = ParseRequest(*in, &request);
  const CallRecord call(sinks_, ModelLabel(request.name()), "GetModel", context);
  if (!parsed.ok()) return Refused(context, call, parsed);
  v1::ModelInfo response;
  if (request.name().empty()) {
    return Respond(context, call, absl::InvalidArgumentError("name: required"), response, out);
  }
  auto it = models_.find(request.name());
  if (it == models_.end()) {
    return Respond(context, call,
                   absl::NotFoundError(absl::StrCat("name: no model named \"", request.name(), "\"")),
                   response, out);
  }
  response = DescribeModel(*it->second);
  return Respond(context, call, absl::OkStatus(), response, out);
}

v1::ModelInfo DescribeModel(const ServedModel& served) {
  v1::ModelInfo info;
  info.set_name(served.config.name);
  info.set_device(served.config.device);
  info.set_dtype(served.config.dtype);
  info.set_max_batch_size(static_cast<int32_t>(served.config.max_batch_size));
  switch (served.state.load()) {
    case ServingState::kLoading: info.set_state(v1::MODEL_STATE_LOADING); break;
    case ServingState::kReady: info.set_state(v1::MODEL_STATE_READY); break;
    case ServingState::kDraining: info.set_state(v1::MODEL_STATE_DRAINING); break;
    case ServingState::kFailed: info.set_state(v1::MODEL_STATE_FAILED); break;
  }
  if (!served.load_finished) return info;  // the loader thread still writes the rest
  info.set_error(served.error);
  if (served.model == nullptr) return info;
  const ModelConfig& c = served.model->config();
  info.set_family(c.family == Family::kGpt1 ? v1::MODEL_FAMILY_GPT1
                  : c.family == Family::kT5 ? v1::MODEL_FAMILY_T5
                                            : v1::MODEL_FAMILY_LLAMA);
  info.set_architecture(c.architecture);
  info.set_context_length(served.config.max_context > 0 ? served.config.max_context : c.max_positions);
  info.set_vocab_size(c.vocab_size);
  if (c.head != HeadKind::kSequenceClassification) {
    info.add_tasks(c.is_encoder_decoder() ? v1::TASK_TEXT_TO_TEXT : v1::TASK_GENERATE);
  }
  DescribeClassifyTasks(served, &info);
  info.set_weight_bytes(served.model->weight_bytes());
  for (int64_t id : c.eos_token_ids) info.add_eos_token_ids(static_cast<int32_t>(id));
  info.set_bos_token_id(static_cast<int32_t>(c.bos_token_id));
  return info;
}

}  // namespace triad
