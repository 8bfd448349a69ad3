// Fuzz target: ModelTasks::BuildWork and RenderPrompt, the Classify request path from item
// texts (or ids) to the token sequences the model runs, on every family's tasks (fixture
// models and their tokenizers, default task settings).
//
// Input: byte 0 picks the model, byte 1 the task, byte 2 the form (bit 0: ids instead of
// texts); the rest, split at 0x1F, fills premise, hypothesis, text_a, text_b, context, text,
// question, then one choice per remaining piece (in the ids form, each byte of a piece is an
// id). An item must give work or INVALID_ARGUMENT naming an "item." field; work must hold only
// vocabulary ids, fit the context (a candidate's last token is scored, not fed), and have one
// candidate per label (or per choice).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_split.h"
#include "model/config.h"
#include "server/classify_tasks.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

struct Served {
  triad::ModelConfig config;
  std::unique_ptr<triad::tokenizer::Tokenizer> tokenizer;
  std::unique_ptr<triad::ModelTasks> tasks;
};

std::vector<Served> Load() {
  const std::string data = TRIAD_TEST_DATA_DIR;
  std::vector<Served> out;
  for (const auto& [model, tokenizer] :
       {std::pair{"gpt1-tiny-cls", "gpt1-tiny"}, std::pair{"gpt1-tiny-mc", "gpt1-tiny"},
        std::pair{"gpt1-tiny", "gpt1-tiny"}, std::pair{"llama-tiny", "llama-tiny"},
        std::pair{"t5-tiny", "t5-tiny"}}) {
    Served s;
    auto config = triad::LoadModelConfig(data + "/models/" + model);
    FUZZ_CHECK(config.ok(), "%s", config.status().ToString().c_str());
    s.config = *config;
    auto t = triad::tokenizer::Tokenizer::FromDir(data + "/tokenizers/" + tokenizer);
    FUZZ_CHECK(t.ok(), "%s", t.status().ToString().c_str());
    s.tokenizer = *std::move(t);
    auto tasks = triad::ModelTasks::Build(s.config, *s.tokenizer, {}, "models[0].classify");
    FUZZ_CHECK(tasks.ok(), "%s", tasks.status().ToString().c_str());
    s.tasks = std::make_unique<triad::ModelTasks>(*std::move(tasks));
    out.push_back(std::move(s));
  }
  return out;
}

const std::vector<Served>& Models() {
  static const auto* models = new std::vector<Served>(Load());
  return *models;
}

void CheckIds(const std::vector<int64_t>& ids, const Served& s, const char* what) {
  FUZZ_CHECK(!ids.empty(), "%s: empty", what);
  for (int64_t id : ids) {
    FUZZ_CHECK(id >= 0 && id < s.config.vocab_size, "%s: id %lld outside the vocabulary", what,
               static_cast<long long>(id));
  }
}

void CheckError(const absl::Status& status) {
  FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument, "%s",
             status.ToString().c_str());
  FUZZ_CHECK(status.message().substr(0, 5) == "item.", "error does not name an item field: %s",
             std::string(status.message()).c_str());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  Models();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const auto& models = Models();
  const Served& s = models[data[0] % models.size()];
  const auto task = static_cast<triad::ClassifyTaskKind>(data[1] % 4);
  const bool ids_form = data[2] & 1;
  const std::vector<std::string> pieces = absl::StrSplit(
      absl::string_view(reinterpret_cast<const char*>(data + 3), size - 3), '\x1f');

  triad::ItemTexts item;
  std::string* fields[] = {&item.premise, &item.hypothesis, &item.text_a, &item.text_b,
                           &item.context, &item.text,       &item.question};
  size_t i = 0;
  for (; i < pieces.size() && i < std::size(fields); ++i) {
    if (ids_form && i < 6) {
      if (!pieces[i].empty()) item.segment_ids.emplace_back(pieces[i].begin(), pieces[i].end());
    } else {
      *fields[i] = pieces[i];
    }
  }
  for (; i < pieces.size(); ++i) {
    if (ids_form) {
      item.choice_ids.emplace_back(pieces[i].begin(), pieces[i].end());
    } else {
      item.choices.push_back(pieces[i]);
    }
  }

  auto work = s.tasks->BuildWork(task, item, "item.");
  if (!work.ok()) {
    CheckError(work.status());
  } else {
    FUZZ_ACCEPTED();
    const triad::TaskSpec* spec = s.tasks->Find(task);
    FUZZ_CHECK(spec != nullptr, "work for a task the model does not serve");
    const int64_t limit = s.config.max_positions;
    for (const auto& seq : work->head_sequences) {
      CheckIds(seq, s, "head sequence");
      FUZZ_CHECK(limit == 0 || static_cast<int64_t>(seq.size()) <= limit, "head sequence too long");
    }
    if (spec->method == triad::ClassifyMethod::kHead) {
      FUZZ_CHECK(!work->head_sequences.empty(), "a head task without sequences");
    } else {
      CheckIds(work->context, s, "context");
      for (const auto& c : work->candidates) {
        CheckIds(c, s, "candidate");
        if (!s.config.is_encoder_decoder()) {  // the candidate's last token is not fed
          const auto fed = static_cast<int64_t>(work->context.size() + c.size()) - 1;
          FUZZ_CHECK(limit == 0 || fed <= limit, "context + candidate too long");
        }
      }
      const size_t expected = task == triad::ClassifyTaskKind::kMultipleChoice
                                  ? (ids_form ? item.choice_ids.size() : item.choices.size())
                                  : spec->labels.size();
      FUZZ_CHECK(work->candidates.size() == expected, "%zu candidates, expected %zu",
                 work->candidates.size(), expected);
    }
    FUZZ_CHECK(work->num_tokens > 0, "no tokens counted");
  }
  auto prompt = s.tasks->RenderPrompt(task, item, "item.");
  if (!prompt.ok()) CheckError(prompt.status());
  return 0;
}
