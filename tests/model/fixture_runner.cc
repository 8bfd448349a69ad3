#include "tests/model/fixture_runner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "model/architectures.h"
#include "model/generation.h"
#include "model/scoring.h"
#include "tests/model/fixture_util.h"

namespace triad::testing {
namespace {

using nlohmann::json;

void AddFloats(Measurements& out, const std::string& what, const at::Tensor& actual,
               const at::Tensor& expected, const at::Tensor& mask = at::Tensor(),
               double relative = 0) {
  Measurement m{what};
  if (actual.sizes() != expected.sizes()) {
    m.diff = INFINITY;
  } else {
    m.diff = MaxAbsDiff(actual, expected, mask);
  }
  m.tolerance = relative > 0 ? relative * expected.abs().max().item<double>()
                             : FixtureTolerance(expected);
  out.push_back(m);
}

void AddIds(Measurements& out, const std::string& what, const at::Tensor& actual,
            const at::Tensor& expected) {
  Measurement m{what, true};
  const at::Tensor a = actual.to(at::kCPU).to(at::kLong);
  m.ids_equal = a.sizes() == expected.sizes() && a.equal(expected);
  if (a.sizes() == expected.sizes()) {
    m.agreement = a.eq(expected).to(at::kDouble).mean().item<double>();
  } else {
    m.agreement = 0;
  }
  out.push_back(m);
}

at::Tensor Value(const absl::StatusOr<at::Tensor>& t) {
  if (!t.ok()) throw std::runtime_error(std::string(t.status().ToString()));
  return *t;
}

class CaseRunner {
 public:
  CaseRunner(const Model& model, std::string folder) : model_(model), folder_(std::move(folder)) {}

  Measurements Run(const json& c) {
    const std::string kind = c.at("kind");
    Measurements out;
    if (kind == "logits") {
      Logits(c, out);
    } else if (kind == "greedy" || kind == "seq2seq_greedy") {
      Greedy(c, out);
    } else if (kind == "seq_cls") {
      const at::Tensor ids = IntTensor(c["input_ids"]), mask = IntTensor(c["attention_mask"]);
      AddFloats(out, "logits", Value(model_.ClassifySequence(ids, mask)), Expected(c["expected"]));
      // The head alone, read at each row's last real token.
      const at::Tensor last = mask.defined() ? mask.sum(1) - 1
                                             : at::full({ids.size(0)}, ids.size(1) - 1, at::kLong);
      AddFloats(out, "head_logits", Value(model_.HeadLogits(ids, last)), Expected(c["expected"]));
    } else if (kind == "multiple_choice") {
      const at::Tensor ids = IntTensor(c["input_ids"]), at_token = IntTensor(c["mc_token_ids"]);
      auto mc = model_.MultipleChoice(ids, at_token);
      if (!mc.ok()) throw std::runtime_error(mc.status().ToString());
      AddFloats(out, "mc_logits", mc->mc_logits, Expected(c["expected_mc_logits"]));
      AddFloats(out, "lm_logits", mc->lm_logits, Expected(c["expected_lm_logits"]));
      const at::Tensor head = Value(model_.HeadLogits(ids.flatten(0, 1), at_token.flatten()));
      AddFloats(out, "head_logits", head.view(at_token.sizes()), Expected(c["expected_mc_logits"]));
    } else if (kind == "encoder_hidden") {
      const EncoderInput in{IntTensor(c["input_ids"]), IntTensor(c["attention_mask"])};
      AddFloats(out, "hidden", Value(model_.Encode(in)), Expected(c["expected"]));
    } else if (kind == "seq2seq_logits") {
      const EncoderInput in{IntTensor(c["input_ids"]), IntTensor(c["attention_mask"])};
      auto state = model_.NewState(in.input_ids.size(0), &in);
      if (!state.ok()) throw std::runtime_error(state.status().ToString());
      StepInput step;
      step.input_ids = IntTensor(c["decoder_input_ids"]);
      AddFloats(out, "logits", Value(model_.Forward(step, **state)), Expected(c["expected"]));
      Seq2SeqScoring(c, out);
    } else if (kind == "seq2seq_beam") {
      Beam(c, out);
    } else if (kind == "prompt_logprobs") {
      PromptLogprobs(c, out);
    } else if (kind == "t5_relative_buckets") {
      Buckets(c, out);
    } else {
      throw std::runtime_error("unknown case kind \"" + kind + "\"");
    }
    return out;
  }

 private:
  at::Tensor Expected(const json& v) const { return ExpectedTensor(folder_, v); }

  at::Tensor FullForward(const at::Tensor& ids, const at::Tensor& mask) {
    auto state = model_.NewState(ids.size(0), nullptr);
    if (!state.ok()) throw std::runtime_error(state.status().ToString());
    StepInput step;
    step.input_ids = ids;
    step.attention_mask = mask;
    return Value(model_.Forward(step, **state));
  }

  void Logits(const json& c, Measurements& out) {
    const at::Tensor mask = IntTensor(c["attention_mask"]);
    const at::Tensor logits = FullForward(IntTensor(c["input_ids"]), mask);
    AddFloats(out, "logits", logits, Expected(c["expected"]), mask);
    CausalScoring(c, out);
  }

  // ScoreCandidates against log-probs read off the expected logits: every row split at half
  // and at a quarter of its real tokens (items with different context lengths, so left
  // padding), each with its whole continuation and that continuation's first token.
  void CausalScoring(const json& c, Measurements& out) {
    const at::Tensor ids = IntTensor(c["input_ids"]), mask = IntTensor(c["attention_mask"]);
    const at::Tensor logprobs = at::log_softmax(Expected(c["expected"]), -1);
    std::vector<ScoringItem> items;
    std::vector<float> expected;
    for (int64_t b = 0; b < ids.size(0); ++b) {
      const at::Tensor cols = RealColumns(ids, mask, b);
      const std::vector<int64_t> row = ToVector(ids[b].index_select(0, cols));
      const at::Tensor lp = logprobs[b].index_select(0, cols);
      const int64_t n = static_cast<int64_t>(row.size());
      for (int64_t split : {std::max<int64_t>(1, n / 2), std::max<int64_t>(1, n / 4)}) {
        ScoringItem item;
        item.context.assign(row.begin(), row.begin() + split);
        item.candidates = {{row.begin() + split, row.end()}, {row[split]}};
        for (int64_t t = split; t < n; ++t) expected.push_back(lp[t - 1][row[t]].item<float>());
        expected.push_back(lp[split - 1][row[split]].item<float>());
        items.push_back(std::move(item));
      }
    }
    AddScores(items, expected, out);
  }

  // T5: the encoder input (real tokens) with the teacher-forced targets (decoder_input_ids
  // after the start token) and their first token as a second candidate.
  void Seq2SeqScoring(const json& c, Measurements& out) {
    const at::Tensor ids = IntTensor(c["input_ids"]), mask = IntTensor(c["attention_mask"]);
    const at::Tensor decoder = IntTensor(c["decoder_input_ids"]);
    const at::Tensor logprobs = at::log_softmax(Expected(c["expected"]), -1);
    std::vector<ScoringItem> items;
    std::vector<float> expected;
    for (int64_t b = 0; b < ids.size(0); ++b) {
      const at::Tensor cols = RealColumns(ids, mask, b);
      const std::vector<int64_t> target = ToVector(decoder[b].narrow(0, 1, decoder.size(1) - 1));
      ScoringItem item;
      item.context = ToVector(ids[b].index_select(0, cols));
      item.candidates = {target, {target[0]}};
      for (size_t t = 0; t < target.size(); ++t) {
        expected.push_back(logprobs[b][static_cast<int64_t>(t)][target[t]].item<float>());
      }
      expected.push_back(logprobs[b][0][target[0]].item<float>());
      items.push_back(std::move(item));
    }
    AddScores(items, expected, out);
  }

  // ScoreCandidates, and ScoreCandidatesInPool (blocks of 4) twice: the second run adopts
  // the contexts' whole blocks from the prefix cache (decoder-only) and must agree too.
  void AddScores(const std::vector<ScoringItem>& items, const std::vector<float>& expected,
                 Measurements& out) {
    auto flat = [](const std::vector<std::vector<CandidateScore>>& scores) {
      std::vector<float> actual;
      for (const auto& item : scores) {
        for (const CandidateScore& s : item) {
          actual.insert(actual.end(), s.token_logprobs.begin(), s.token_logprobs.end());
        }
      }
      return at::tensor(actual);
    };
    auto scores = ScoreCandidates(model_, items);
    if (!scores.ok()) throw std::runtime_error(scores.status().ToString());
    AddFloats(out, "scored_logprobs", flat(*scores), at::tensor(expected));
    auto pool = model_.NewKvPool(64, 4);
    if (!pool.ok()) throw std::runtime_error(pool.status().ToString());
    if (ScoringPoolBlocks(model_, **pool, items) > (*pool)->num_blocks()) {
      throw std::runtime_error("the scoring pool is too small for the case");
    }
    for (const char* name : {"pool_scored_logprobs", "pool_cached_logprobs"}) {
      int64_t cached = 0;
      auto paged = ScoreCandidatesInPool(model_, **pool, items, true, {}, &cached);
      if (!paged.ok()) throw std::runtime_error(paged.status().ToString());
      AddFloats(out, name, flat(*paged), at::tensor(expected));
      if ((*pool)->free_blocks() != (*pool)->num_blocks()) {
        throw std::runtime_error("ScoreCandidatesInPool kept pool blocks");
      }
      const bool adopts = std::string(name) == "pool_cached_logprobs" &&
                          !model_.config().is_encoder_decoder() &&
                          std::any_of(items.begin(), items.end(),
                                      [](const ScoringItem& i) { return i.context.size() > 4; });
      if (adopts != (cached > 0)) {
        throw std::runtime_error(std::string(name) + ": " + std::to_string(cached) +
                                 " context positions came from the prefix cache");
      }
    }
  }

  // Columns of row `b` holding real tokens (mask undefined = all).
  static at::Tensor RealColumns(const at::Tensor& ids, const at::Tensor& mask, int64_t b) {
    return mask.defined() ? mask[b].nonzero().flatten() : at::arange(ids.size(1), at::kLong);
  }

  static std::vector<int64_t> ToVector(const at::Tensor& t) {
    const at::Tensor c = t.to(at::kCPU).to(at::kLong).contiguous();
    return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
  }

  void PromptLogprobs(const json& c, Measurements& out) {
    const at::Tensor ids = IntTensor(c["input_ids"]);
    const at::Tensor logprobs = at::log_softmax(FullForward(ids, at::Tensor()), -1).to(at::kCPU);
    const int64_t len = ids.size(1);
    const at::Tensor picked =
        logprobs.narrow(1, 0, len - 1).gather(2, ids.narrow(1, 1, len - 1).unsqueeze(-1)).squeeze(-1);
    AddFloats(out, "logprobs", picked, Expected(c["expected"]));
    AddFloats(out, "sum", picked.sum().to(at::kDouble).view({1}),
              at::tensor({c["sum"].get<double>()}, at::kDouble));
    // Label scoring: the prompt's second half as a continuation of its first.
    const std::vector<int64_t> row = ToVector(ids[0]);
    const int64_t split = len / 2;
    ScoringItem item{{row.begin(), row.begin() + split}, {{row.begin() + split, row.end()}}};
    auto scores = ScoreCandidates(model_, {item});
    if (!scores.ok()) throw std::runtime_error(scores.status().ToString());
    const at::Tensor expected = Expected(c["expected"]).flatten().narrow(0, split - 1, len - split);
    AddFloats(out, "scored_sum", at::tensor({(*scores)[0][0].logprob_sum}, at::kDouble),
              expected.to(at::kDouble).sum().view({1}));
  }

  GenerationOutput RunGenerate(const at::Tensor& ids, const at::Tensor& mask,
                               const GenerationOptions& options) {
    auto gen = Generate(model_, GenerationInput{ids, mask}, options);
    if (!gen.ok()) throw std::runtime_error(gen.status().ToString());
    return *std::move(gen);
  }

  void Greedy(const json& c, Measurements& out) {
    const at::Tensor ids = IntTensor(c["input_ids"]), mask = IntTensor(c["attention_mask"]);
    GenerationOptions options;
    options.max_new_tokens = c["max_new_tokens"];
    options.keep_step_logits = true;
    const GenerationOutput gen = RunGenerate(ids, mask, options);
    const at::Tensor expected_ids = IntTensor(c["output_ids"]);
    AddIds(out, "output_ids", gen.sequences, expected_ids);
    if (c.contains("step_logits") && expected_ids.sizes() == gen.sequences.sizes()) {
      // A row's step logits are meaningful up to and including its eos.
      const at::Tensor generated = expected_ids.narrow(1, gen.prompt_length,
                                                       expected_ids.size(1) - gen.prompt_length);
      at::Tensor is_eos = at::zeros_like(generated, at::kBool);
      for (int64_t eos : model_.config().eos_token_ids) is_eos |= generated.eq(eos);
      const at::Tensor finished_before = (is_eos.to(at::kLong).cumsum(1) - is_eos.to(at::kLong)).gt(0);
      AddFloats(out, "step_logits", gen.step_logits, Expected(c["step_logits"]),
                finished_before.logical_not().t());
    }
    if (c.contains("solo_output_ids")) {
      const json& solo = c["solo_output_ids"];
      for (int64_t row = 0; row < ids.size(0); ++row) {
        at::Tensor row_ids = ids[row];
        at::Tensor row_mask = mask.defined() ? mask[row] : at::Tensor();
        if (row_mask.defined()) {  // alone means unpadded
          row_ids = row_ids.index({row_mask.ne(0)});
          row_mask = at::Tensor();
        }
        const GenerationOutput one = RunGenerate(
            row_ids.unsqueeze(0), row_mask.defined() ? row_mask.unsqueeze(0) : at::Tensor(), options);
        AddIds(out, "solo_output_ids[" + std::to_string(row) + "]", one.sequences[0],
               IntTensor(solo[row]));
      }
    }
  }

  void Beam(const json& c, Measurements& out) {
    GenerationOptions options;
    options.max_new_tokens = c["max_new_tokens"];
    options.num_beams = c["num_beams"];
    options.num_return_sequences = c.value("num_return_sequences", 1);
    options.length_penalty = c.value("length_penalty", 1.0);
    const json& es = c["early_stopping"];
    options.early_stopping = es.is_boolean() ? (es.get<bool>() ? EarlyStopping::kTrue
                                                               : EarlyStopping::kHeuristic)
                                             : EarlyStopping::kNever;
    const GenerationOutput gen =
        RunGenerate(IntTensor(c["input_ids"]), IntTensor(c["attention_mask"]), options);
    AddIds(out, "output_ids", gen.sequences, IntTensor(c["output_ids"]));
    AddFloats(out, "sequences_scores", gen.sequences_scores, FloatTensor(c["sequences_scores"]),
              at::Tensor(), /*relative=*/1e-5);
  }

  void Buckets(const json& c, Measurements& out) {
    const ModelConfig& cfg = model_.config();
    const at::Tensor rel = IntTensor(c["relative_positions"]);
    for (const bool bidirectional : {true, false}) {
      const char* key = bidirectional ? "bidirectional" : "unidirectional";
      AddIds(out, key,
             T5RelativePositionBucket(rel, bidirectional, cfg.relative_attention_num_buckets,
                                      cfg.relative_attention_max_distance),
             IntTensor(c[key]));
    }
  }

  const Model& model_;
  std::string folder_;
};

std::string Name(const std::string& folder) {
  return std::filesystem::path(folder).filename().string();
}

}  // namespace

void ForEveryCase(const LoadOptions& load, const CaseCheck& check) {
  const auto folders = ModelFixtureFolders(ModelFixtureRoot());
  ASSERT_FALSE(folders.empty()) << "no fixture folders under " << ModelFixtureRoot();
  for (const std::string& folder : folders) {
    auto model = LoadModel(folder, load);
    ASSERT_TRUE(model.ok()) << model.status();
    const json reference = ReadJsonFile(folder + "/reference.json");
    CaseRunner runner(**model, folder);
    for (const json& c : reference.at("cases")) {
      const std::string where = Name(folder) + "/" + c.at("name").get<std::string>();
      try {
        for (const Measurement& m : runner.Run(c)) check(where, (*model)->config(), m);
      } catch (const std::exception& e) {
        ADD_FAILURE() << where << ": " << e.what();
      }
    }
  }
}

void ExpectFloat32Parity(const LoadOptions& load) {
  int checked = 0;
  ForEveryCase(load, [&](const std::string& where, const ModelConfig&, const Measurement& m) {
    ++checked;
    if (m.is_ids) {
      EXPECT_TRUE(m.ids_equal) << where << ": " << m.what << " differ";
    } else {
      EXPECT_LE(m.diff, m.tolerance) << where << ": " << m.what;
    }
  });
  EXPECT_GT(checked, 0);
}

void ExpectBfloat16WithinBounds(const LoadOptions& load, const std::string& tag) {
  double worst = 0;
  double ids_total = 0, ids_agree = 0;
  ForEveryCase(load, [&](const std::string& where, const ModelConfig& config, const Measurement& m) {
    if (m.is_ids) {
      ids_total += 1;
      ids_agree += m.agreement;
      std::printf("[%s] %-40s %-20s token agreement %.3f\n", tag.c_str(), where.c_str(),
                  m.what.c_str(), m.agreement);
      return;
    }
    if (m.what == "sequences_scores" || m.what == "step_logits") return;  // depend on ids
    const double scale = m.tolerance / 1e-4;
    worst = std::max(worst, m.diff / scale);
    std::printf("[%s] %-40s %-20s max|diff| %.4g (%.4f of max(1,|expected|))\n", tag.c_str(),
                where.c_str(), m.what.c_str(), m.diff, m.diff / scale);
    const double bound = config.family == Family::kT5 ? 0.5 : 0.1;
    EXPECT_LE(m.diff, bound * scale) << where << ": " << m.what;
  });
  std::printf("[%s] worst relative deviation %.4f, mean token agreement %.3f\n", tag.c_str(),
              worst, ids_total > 0 ? ids_agree / ids_total : 1.0);
}

}  // namespace triad::testing
