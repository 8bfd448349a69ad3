// The Classify and ClassifyBatch handlers: proto items -> ModelTasks::BuildWork -> one
// ScoringRequest on the model's scheduler (batched there with other callers' items) ->
// ModelTasks::Interpret -> label probabilities. Thin, like the generation handlers.
#include <optional>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "server/call_record.h"
#include "server/service.h"

namespace triad {
namespace {

constexpr int kMaxBatchItems = 1024;

}  // namespace

ItemTexts ToItemTexts(const v1::ClassifyItem& item) {
  ItemTexts t;
  t.premise = item.premise();
  t.hypothesis = item.hypothesis();
  t.text_a = item.text_a();
  t.text_b = item.text_b();
  t.context = item.context();
  t.text = item.text();
  t.question = item.question();
  t.choices.assign(item.choices().begin(), item.choices().end());
  for (const v1::TokenIds& ids : item.segment_ids()) {
    t.segment_ids.emplace_back(ids.ids().begin(), ids.ids().end());
  }
  for (const v1::TokenIds& ids : item.choice_ids()) {
    t.choice_ids.emplace_back(ids.ids().begin(), ids.ids().end());
  }
  return t;
}

absl::StatusOr<ClassifyTaskKind> ToClassifyTask(v1::ClassifyTask task) {
  switch (task) {
    case v1::CLASSIFY_TASK_ENTAILMENT: return ClassifyTaskKind::kEntailment;
    case v1::CLASSIFY_TASK_SIMILARITY: return ClassifyTaskKind::kSimilarity;
    case v1::CLASSIFY_TASK_MULTIPLE_CHOICE: return ClassifyTaskKind::kMultipleChoice;
    case v1::CLASSIFY_TASK_SINGLE: return ClassifyTaskKind::kSingle;
    default:
      return absl::InvalidArgumentError(
          "task: required (ENTAILMENT, SIMILARITY, MULTIPLE_CHOICE or SINGLE)");
  }
}

namespace {

v1::ClassifyTask ToProto(ClassifyTaskKind task) {
  switch (task) {
    case ClassifyTaskKind::kEntailment: return v1::CLASSIFY_TASK_ENTAILMENT;
    case ClassifyTaskKind::kSimilarity: return v1::CLASSIFY_TASK_SIMILARITY;
    case ClassifyTaskKind::kMultipleChoice: return v1::CLASSIFY_TASK_MULTIPLE_CHOICE;
    case ClassifyTaskKind::kSingle: return v1::CLASSIFY_TASK_SINGLE;
  }
  return v1::CLASSIFY_TASK_UNSPECIFIED;
}

v1::ClassifyMethod ToProto(ClassifyMethod method) {
  switch (method) {
    case ClassifyMethod::kHead: return v1::CLASSIFY_METHOD_HEAD;
    case ClassifyMethod::kLmScoring: return v1::CLASSIFY_METHOD_LM_SCORING;
    case ClassifyMethod::kTextToText: return v1::CLASSIFY_METHOD_TEXT_TO_TEXT;
  }
  return v1::CLASSIFY_METHOD_UNSPECIFIED;
}

// One call's items, shared between the handler and the scheduler's callback.
struct ClassifyState {
  ServedModel* served = nullptr;
  ClassifyTaskKind task = ClassifyTaskKind::kEntailment;
  std::optional<bool> length_normalize;
  std::vector<ItemTexts> texts;
  std::vector<size_t> first_head, first_item;  // per item: its units in the ScoringRequest
  std::vector<size_t> num_heads;               // per item
  int64_t tokens = 0;
  CancelSlot slot;

  // Converts and transforms every item into `out`. `batch` names fields "items[i]." instead of
  // "item.".
  absl::Status Prepare(const std::vector<const v1::ClassifyItem*>& items, bool batch,
                       ScoringRequest& out) {
    const int64_t max_context = served->config.max_context;
    for (size_t i = 0; i < items.size(); ++i) {
      const std::string where = batch ? absl::StrCat("items[", i, "].") : "item.";
      texts.push_back(ToItemTexts(*items[i]));
      TRIAD_ASSIGN_OR_RETURN(ItemWork work, served->tasks->BuildWork(task, texts.back(), where));
      if (max_context > 0) {
        for (const auto& seq : work.head_sequences) {
          if (static_cast<int64_t>(seq.size()) > max_context) {
            return absl::InvalidArgumentError(absl::StrCat(where, "the transformed input has ",
                                                           seq.size(), " tokens; max_context is ",
                                                           max_context));
          }
        }
        for (const auto& cand : work.candidates) {
          if (static_cast<int64_t>(work.context.size() + cand.size()) > max_context) {
            return absl::InvalidArgumentError(absl::StrCat(
                where, "prompt + label take ", work.context.size() + cand.size(),
                " tokens; max_context is ", max_context));
          }
        }
      }
      first_head.push_back(out.head_sequences.size());
      num_heads.push_back(work.head_sequences.size());
      first_item.push_back(out.items.size());
      tokens += work.num_tokens;
      for (auto& seq : work.head_sequences) out.head_sequences.push_back(std::move(seq));
      if (!work.candidates.empty()) {
        out.items.push_back({std::move(work.context), std::move(work.candidates)});
      }
    }
    return absl::OkStatus();
  }

  ItemOutputs Outputs(size_t i, const ScoringResult& r) const {
    ItemOutputs o;
    for (size_t h = 0; h < num_heads[i]; ++h) o.head_logits.push_back(r.head_logits[first_head[i] + h]);
    if (num_heads[i] == 0) {
      for (const CandidateScore& s : r.scores[first_item[i]]) {
        o.candidate_logprob_sums.push_back(s.logprob_sum);
        o.candidate_tokens.push_back(static_cast<int64_t>(s.token_logprobs.size()));
      }
    }
    return o;
  }

};

void FillResult(const ItemResult& r, v1::ClassifyResult* out) {
  for (const LabelResult& l : r.labels) {
    v1::LabelScore* s = out->add_labels();
    s->set_label(l.label);
    s->set_index(l.index);
    s->set_probability(static_cast<float>(l.probability));
    s->set_logit(static_cast<float>(l.logit));
    s->set_num_tokens(static_cast<int32_t>(l.num_tokens));
  }
  if (!r.labels.empty()) {
    out->set_label(r.labels[0].label);
    out->set_index(r.labels[0].index);
  }
  if (r.value) out->set_value(*r.value);
  if (r.expected_value) out->set_expected_value(*r.expected_value);
}

// Where a call's answer goes: one result (Classify) or one per item (ClassifyBatch).
struct ResponseSlots {
  std::function<v1::ClassifyResult*()> add_result;
  v1::Usage* usage;
  v1::Timings* timings;
};

ResponseSlots Slots(v1::ClassifyResponse* r) {
  return {[r] { return r->mutable_result(); }, r->mutable_usage(), r->mutable_timings()};
}
ResponseSlots Slots(v1::ClassifyBatchResponse* r) {
  return {[r] { return r->add_results(); }, r->mutable_usage(), r->mutable_timings()};
}

// One Classify (Response = ClassifyResponse) or ClassifyBatch call from submission to reply.
template <typename Response>
class ClassifyReactor : public UnaryReply<Response> {
 public:
  static constexpr bool kBatch = std::is_same_v<Response, v1::ClassifyBatchResponse>;

  ClassifyReactor(ServedModel& served, grpc::CallbackServerContext* context, CallRecord call,
                  ClassifyTaskKind task, std::optional<bool> length_normalize,
                  const std::vector<const v1::ClassifyItem*>& items, grpc::ByteBuffer* out)
      : UnaryReply<Response>(out), call_(std::move(call)), state_(std::make_shared<ClassifyState>()) {
    std::shared_ptr<ClassifyState> state = state_;
    state->served = &served;
    state->task = task;
    state->length_normalize = length_normalize;
    ScoringRequest request;
    const absl::Status prepared = state->Prepare(items, kBatch, request);
    if (!prepared.ok()) {
      this->Finish(call_.Refuse(prepared));
      return;
    }
    this->response()->set_model(served.config.name);
    request.deadline = SteadyDeadline(context);
    request.on_done = [this, state, slots = Slots(this->response())](const ScoringResult& r) {
      if (!r.status.ok()) {
        this->Finish(call_.Done(ToGrpcStatus(r.status)));
        return;
      }
      for (size_t i = 0; i < state->texts.size(); ++i) {
        const ItemResult result = state->served->tasks->Interpret(
            state->task, state->texts[i], state->Outputs(i, r), state->length_normalize);
        FillResult(result, slots.add_result());
      }
      slots.usage->set_prompt_tokens(static_cast<uint32_t>(state->tokens));
      slots.timings->set_queue_seconds(r.queue_seconds);
      slots.timings->set_total_seconds(r.total_seconds);
      call_.Classified(state->tokens, r.queue_seconds);
      this->Reply(call_.Done(grpc::Status::OK));
    };
    auto handle = served.scheduler->SubmitScoring(std::move(request));
    if (!handle.ok()) {
      this->Finish(call_.Refuse(handle.status()));
      return;
    }
    state->slot.Set(*std::move(handle));
  }
  void OnCancel() override { state_->slot.Cancel(); }

 private:
  const CallRecord call_;
  std::shared_ptr<ClassifyState> state_;
};

// The request's length_normalize, unset when it has none (Classify or ClassifyBatch).
template <typename Request>
std::optional<bool> LengthNormalize(const Request& r) {
  return r.has_length_normalize() ? std::optional<bool>(r.length_normalize()) : std::nullopt;
}

}  // namespace

grpc::ServerUnaryReactor* TriadService::Classify(grpc::CallbackServerContext* context,
                                                 const grpc::ByteBuffer* in, grpc::ByteBuffer* out) {
  v1::ClassifyRequest request;
  const absl::Status parsed = ParseRequest(*in, &request);
  CallRecord call(sinks_, ModelLabel(request.model()), "Classify", context);
  if (!parsed.ok()) return Refused(context, call, parsed);
  auto served = Ready(request.model());
  if (!served.ok()) return Refused(context, call, served.status());
  auto task = ToClassifyTask(request.task());
  if (!task.ok()) return Refused(context, call, task.status());
  if (!request.has_item()) return Refused(context, call, absl::InvalidArgumentError("item: required"));
  return new ClassifyReactor<v1::ClassifyResponse>(**served, context, std::move(call), *task,
                                                   LengthNormalize(request), {&request.item()}, out);
}

grpc::ServerUnaryReactor* TriadService::ClassifyBatch(grpc::CallbackServerContext* context,
                                                      const grpc::ByteBuffer* in,
                                                      grpc::ByteBuffer* out) {
  v1::ClassifyBatchRequest request;
  const absl::Status parsed = ParseRequest(*in, &request);
  CallRecord call(sinks_, ModelLabel(request.model()), "ClassifyBatch", context);
  if (!parsed.ok()) return Refused(context, call, parsed);
  auto served = Ready(request.model());
  if (!served.ok()) return Refused(context, call, served.status());
  auto task = ToClassifyTask(request.task());
  if (!task.ok()) return Refused(context, call, task.status());
  if (request.items_size() == 0 || request.items_size() > kMaxBatchItems) {
    return Refused(context, call,
                   absl::InvalidArgumentError(absl::StrCat("items: ", request.items_size(),
                                                           " items; 1 to ", kMaxBatchItems,
                                                           " per call")));
  }
  std::vector<const v1::ClassifyItem*> items;
  for (const v1::ClassifyItem& item : request.items()) items.push_back(&item);
  return new ClassifyReactor<v1::ClassifyBatchResponse>(
      **served, context, std::move(call), *task, LengthNormalize(request), items, out);
}

void DescribeClassifyTasks(const ServedModel& served, v1::ModelInfo* info) {
  if (served.tasks == nullptr) return;
  for (const TaskSpec& spec : served.tasks->tasks()) {
    v1::ClassifyTaskInfo* t = info->add_classify_tasks();
    t->set_task(ToProto(spec.task));
    t->set_method(ToProto(spec.method));
    for (const std::string& label : spec.labels) t->add_labels(label);
    if (spec.task == ClassifyTaskKind::kMultipleChoice) {
      for (const std::string& target : spec.targets) t->add_choice_targets(target);
    }
    t->set_template_(spec.prompt_template);
    t->set_regression(spec.regression);
  }
}

}  // namespace triad
