// triad-bench: prefill and decode throughput of the real model shapes with random weights,
// beside the machine's measured read bandwidth (the decode roofline), printed as JSON.
//
//   triad-bench [--models gpt1,t5-small,llama-110m,tinyllama-1.1b] [--dtypes float32,bfloat16]
//               [--device cpu|cuda|cuda:N] [--threads N] [--decode-steps 24]
//               [--workdir /tmp/triad-bench] [--write-only] [--cpu-kernels on|off]
//
// --dtypes also takes float16. On an accelerator the roofline's bandwidth is a sum over a
// 1 GiB tensor in its memory, and the peak-RSS figures cover host memory only.
//
// The parent writes each random checkpoint once, to WORKDIR/MODEL-DTYPE, then measures every
// (model, dtype) in a child process (itself with --child), so each peak-RSS figure covers
// exactly one load. --write-only stops after writing and prints the folders as JSON, e.g. for
// triadd to serve them (`--models gpt1-cls,t5-small --dtypes float32` for the Classify load
// test; gpt1-cls is GPT-1 with a 3-label classification head, not measured by default).
// `prefill_tokens_per_s` runs the prompt as one padded batch (Model::Forward);
// `serving_prefill_tokens_per_s` runs it as triadd does, one chunk through
// Model::ForwardChunks (decoder-only models; 0 for T5).
// Besides the padded-batch decode figures, `decode_ragged8` runs batch 8 through
// Model::ForwardChunks, the path triadd's scheduler uses (a cache per sequence, attention per
// sequence), as a fraction of `decode_batch8` in the same run; `decode_ragged1` and
// `decode_ragged16` run that path at batches 1 and 16. `prefill16` runs sixteen 64-token prompts
// as one step of that path (a burst of arrivals, a Classify batch's contexts).
// `decode_graph1` / `decode_graph16` run the ragged decode steps through a DecodeGraphRunner:
// replayed CUDA graphs on cuda, its static step eagerly on the CPU.
// `arrival16` is the step a newcomer's 64-token prompt joins 15 decoding sequences in (the
// serving steady state at concurrency 16), against the prompt's step alone and a decode-only
// step of 16. `--cpu-kernels off` runs the CPU through the padded path a GPU takes, to count
// that path's ATen calls here. On the CPU, `decode_attention16_96` and `_512` time the decode
// attention alone (PagedDecodeAttention over every layer) for 16 sequences of 96 and 512
// positions in interleaved blocks, with the keys and values read per second beside the probe.
#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "model/bench/random_checkpoint.h"
#include "model/kernels/bandwidth.h"
#include "model/kernels/linear.h"
#include "model/decode_graph.h"
#include "model/layers.h"
#include "model/model.h"

namespace triad::bench {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

int64_t PeakRssBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return 0;
}

// Resets VmHWM (Linux clear_refs "5"), so the bandwidth probe's buffer is not counted.
void ResetPeakRss() { std::ofstream("/proc/self/clear_refs") << "5"; }

// Waits for the work queued on `device` (a no-op on the CPU): a tiny reduction queued after it
// on the same stream, read back.
void Sync(const at::Device& device) {
  if (!device.is_cpu()) at::ones({1}, at::TensorOptions().device(device)).sum().item<float>();
}

// Read bandwidth of `device`'s memory in GB/s: the CPU's multi-threaded streaming probe, or a
// sum over a 1 GiB tensor on an accelerator (best of 3).
double ReadBandwidthGBs(const at::Device& device, int threads) {
  if (device.is_cpu()) return kernels::MeasureReadBandwidthGBs(size_t{1} << 30, threads, 3);
  const at::Tensor t = at::ones({int64_t{1} << 28}, at::TensorOptions().device(device));
  double best = 0;
  for (int rep = 0; rep < 4; ++rep) {
    const auto start = Clock::now();
    t.sum().item<float>();
    if (rep > 0) best = std::max(best, static_cast<double>(t.nbytes()) / Seconds(start) / 1e9);
  }
  return best;
}

at::Tensor RandomIds(int64_t batch, int64_t len, int64_t vocab) {
  return at::randint(10, vocab, {batch, len}, at::kLong);
}

void Check(const absl::Status& status) {
  if (!status.ok()) {
    std::cerr << "triad-bench: " << status << "\n";
    std::exit(1);
  }
}
template <typename T>
T Check(absl::StatusOr<T> value) {
  Check(value.status());
  return *std::move(value);
}

// A state primed for decoding `batch` rows: T5 with a 128-token encoder input, decoder-only
// models with a 16-token prompt.
std::unique_ptr<DecoderState> Prime(const Model& model, const ModelSpec& spec, int64_t batch,
                                    at::Tensor& next) {
  EncoderInput enc{RandomIds(batch, 128, spec.vocab_size), at::Tensor()};
  auto state = Check(model.NewState(batch, spec.encoder_decoder ? &enc : nullptr));
  StepInput step;
  step.input_ids = spec.encoder_decoder ? at::zeros({batch, 1}, at::kLong)
                                        : RandomIds(batch, 16, spec.vocab_size);
  step.last_logits_only = true;
  next = Check(model.Forward(step, *state)).select(1, 0).argmax(-1).to(at::kCPU);
  return state;
}

// Decode tokens/s over `steps` single-token steps (after 2 warm-up steps).
double DecodeTokensPerSecond(const Model& model, const ModelSpec& spec, int64_t batch,
                             int64_t steps) {
  at::Tensor next;
  auto state = Prime(model, spec, batch, next);
  StepInput step;
  step.last_logits_only = true;
  Clock::time_point start;
  for (int64_t i = 0; i < steps + 2; ++i) {
    if (i == 2) start = Clock::now();
    step.input_ids = next.view({batch, 1});
    next = Check(model.Forward(step, *state)).select(1, 0).argmax(-1).to(at::kCPU);
  }
  return static_cast<double>(batch * steps) / Seconds(start);
}

// Top-level ATen calls `fn` dispatches on this thread (calls made inside ATen ops not counted):
// on a GPU each is host work, and most launch a kernel, so a decode step's count is what its
// host time scales with where the device waits on the host.
int64_t CountAtenCalls(const std::function<void()>& fn) {
  static thread_local int depth = 0;
  static std::thread::id counted_thread;
  static int64_t count = 0;
  counted_thread = std::this_thread::get_id();
  count = 0;
  const at::CallbackHandle handle = at::addGlobalCallback(
      at::RecordFunctionCallback(
          [](const at::RecordFunction&) -> std::unique_ptr<at::ObserverContext> {
            if (std::this_thread::get_id() == counted_thread && depth++ == 0) ++count;
            return nullptr;
          },
          [](const at::RecordFunction&, at::ObserverContext*) {
            if (std::this_thread::get_id() == counted_thread) --depth;
          })
          .scopes({at::RecordScope::FUNCTION}));
  fn();
  at::removeCallback(handle);
  return count;
}

// `n` sequences in `pool` with prompts of 16..16+n-1 random tokens, and their first chunks
// (decoder-only: the prompt; T5: the prompt is the encoder's input, run here, and the chunk the
// decoder start token).
struct Sequences {
  std::vector<std::unique_ptr<SequenceState>> states;
  std::vector<SequenceChunk> chunks;
};
Sequences StartSequences(const Model& model, const ModelSpec& spec, KvPool& pool, int64_t n) {
  Sequences out;
  for (int64_t i = 0; i < n; ++i) {
    const at::Tensor prompt = RandomIds(1, 16 + i, spec.vocab_size)[0];
    out.states.push_back(Check(model.NewSequence(pool, spec.encoder_decoder ? &prompt : nullptr)));
    out.chunks.push_back(
        {out.states.back().get(), spec.encoder_decoder ? at::zeros({1}, at::kLong) : prompt});
  }
  return out;
}

// Decode tokens/s of `batch` sequences through ForwardChunks, the scheduler's ragged path:
// prompts of 16..16+batch-1 tokens, each with its own paged cache, one token per sequence per
// step.
// `aten_calls`, when given, receives the ATen calls of one more decode step after the timing.
// `graphs`: the steps go through a DecodeGraphRunner instead (CUDA graphs on cuda, its static
// step run eagerly elsewhere).
double RaggedDecodeTokensPerSecond(const Model& model, const ModelSpec& spec, int64_t batch,
                                   int64_t steps, int64_t* aten_calls = nullptr,
                                   bool graphs = false) {
  const int64_t block = 16;
  const int64_t per_sequence = 2 * ((16 + batch + steps + 4) / block + 1);  // self (+ T5 cross)
  auto pool = Check(model.NewKvPool(batch * per_sequence, block));
  Sequences sequences = StartSequences(model, spec, *pool, batch);
  std::vector<SequenceChunk>& chunks = sequences.chunks;
  std::unique_ptr<DecodeGraphRunner> runner;
  if (graphs) {
    runner = Check(DecodeGraphRunner::Create(model, *pool, batch,
                                             model.placement().device.is_cuda()
                                                 ? DecodeGraphRunner::Mode::kCapture
                                                 : DecodeGraphRunner::Mode::kEager));
    runner->CaptureAll(16 + batch + steps + 4, 16 + batch);  // no capture inside the timing
    Check(model.ForwardChunks(chunks));  // the prompts; then every step is a decode step
    const at::Tensor first = at::zeros({1}, at::kLong);
    for (SequenceChunk& chunk : chunks) chunk.input_ids = first;
  }
  Clock::time_point start;
  auto step = [&] {
    const at::Tensor logits =
        runner != nullptr ? Check(runner->Forward(chunks)) : Check(model.ForwardChunks(chunks));
    const at::Tensor next = logits.argmax(-1).to(at::kCPU);
    for (int64_t b = 0; b < batch; ++b) chunks[static_cast<size_t>(b)].input_ids = next.narrow(0, b, 1);
  };
  for (int64_t i = 0; i < steps + 2; ++i) {
    if (i == 2) start = Clock::now();
    step();
  }
  const double tokens_per_s = static_cast<double>(batch * steps) / Seconds(start);
  if (aten_calls != nullptr) *aten_calls = CountAtenCalls(step);
  return tokens_per_s;
}

// The CPU decode attention alone (PagedDecodeAttention, every layer of the model's KV shape):
// 16 sequences of `positions` keys each, their 16-position blocks taken in turn as a busy
// pool hands them out (sequence 0's first block, sequence 1's first, ...), one query per
// sequence. Returns the best of 20 steps' milliseconds and the keys and values read per
// step in bytes. CPU only.
std::pair<double, double> DecodeAttentionStep(const Model& model, int64_t positions) {
  constexpr int64_t kSequences = 16, kBlock = 16;
  const int64_t blocks = (positions + kBlock - 1) / kBlock;
  auto pool = Check(model.NewKvPool(kSequences * blocks, kBlock));
  const KvPoolShape& shape = pool->shape();
  for (int64_t l = 0; l < shape.num_layers; ++l) {
    at::Tensor(pool->keys(l)).normal_();
    at::Tensor(pool->values(l)).normal_();
  }
  std::vector<std::unique_ptr<PagedKv>> kv;
  for (int64_t s = 0; s < kSequences; ++s) kv.push_back(std::make_unique<PagedKv>(*pool));
  std::vector<int64_t> slots;
  for (int64_t b = 0; b < blocks; ++b) {
    for (auto& sequence : kv) {
      const int64_t n = std::min(kBlock, positions - b * kBlock);
      sequence->AppendSlots(n, slots);
      sequence->Advance(n);
    }
  }
  std::vector<PagedQuery> queries;
  for (auto& sequence : kv) queries.push_back({sequence.get(), positions, at::Tensor()});
  const int64_t heads = shape.num_kv_heads;  // one query head per KV head: the reads are the same
  const at::Tensor q = at::randn({kSequences, heads, shape.head_dim}, pool->keys(0).options());
  double best = 1e9;
  for (int rep = 0; rep < 21; ++rep) {
    const auto start = Clock::now();
    for (int64_t l = 0; l < shape.num_layers; ++l) PagedDecodeAttention(q, queries, l, 0.125);
    if (rep > 0) best = std::min(best, Seconds(start));
  }
  const double bytes = 2.0 * shape.num_layers * kSequences * positions * heads * shape.head_dim *
                       static_cast<double>(pool->keys(0).element_size());
  return {1e3 * best, bytes};
}

// A newcomer's step beside `decoding` sequences that decode (their prompts 16..16+decoding-1
// tokens): its 64-token prompt as one chunk of a ForwardChunks call with their decode tokens
// (T5: its encoder pass over the 64 tokens at admission, then its decoder start token in the
// step). The step's median seconds over 5 newcomers (after one to warm up), and the ATen calls
// of one more. On a GPU that one ForwardChunks call runs eagerly (CUDA graphs are
// decode-only), bound by its host work, so its time against a decode-only step is what an
// arrival costs everyone's next token, and against the prompt's step alone what the others
// cost its first.
// `split`: the step as triadd's scheduler runs it with decode graphs, DecodeGraphRunner::Step
// (the one-token chunks replayed from CUDA graphs on cuda, their static step run eagerly
// elsewhere; the prompt after them through ForwardChunks).
struct StepCost {
  double seconds = 0;
  int64_t aten_calls = 0;
};
StepCost ArrivalStep(const Model& model, const ModelSpec& spec, int64_t decoding,
                     bool split = false) {
  const int64_t block = 16, len = 64, reps = 5;
  const int64_t per_sequence = 2 * ((16 + decoding + reps + 2 + len) / block + 2);
  auto pool = Check(model.NewKvPool((decoding + 2) * per_sequence, block));
  Sequences sequences = StartSequences(model, spec, *pool, decoding);
  std::vector<SequenceChunk>& chunks = sequences.chunks;
  auto advance = [&](const at::Tensor& logits) {  // the decoding sequences' next tokens
    const at::Tensor next = logits.argmax(-1).to(at::kCPU);
    for (int64_t b = 0; b < decoding; ++b) chunks[static_cast<size_t>(b)].input_ids = next.narrow(0, b, 1);
  };
  if (decoding > 0) advance(Check(model.ForwardChunks(chunks)));  // their prompts
  std::unique_ptr<DecodeGraphRunner> runner;
  if (split) {
    runner = Check(DecodeGraphRunner::Create(model, *pool, decoding + 1,
                                             model.placement().device.is_cuda()
                                                 ? DecodeGraphRunner::Mode::kCapture
                                                 : DecodeGraphRunner::Mode::kEager));
    runner->CaptureAll(16 + decoding + reps + 4, len);  // no capture inside the timing
  }
  // [rows, vocab]: `with` through ForwardChunks, or through the runner as the scheduler runs it.
  auto forward = [&](const std::vector<SequenceChunk>& with) {
    if (runner == nullptr) return Check(model.ForwardChunks(with));
    DecodeGraphRunner::StepPath path;
    return Check(runner->Step(with, &path));
  };
  std::vector<double> seconds;
  StepCost cost;
  for (int64_t rep = 0; rep < reps + 2; ++rep) {
    const at::Tensor prompt = RandomIds(1, len, spec.vocab_size)[0];
    std::unique_ptr<SequenceState> newcomer;
    auto step = [&] {
      newcomer = Check(model.NewSequence(*pool, spec.encoder_decoder ? &prompt : nullptr));
      std::vector<SequenceChunk> with = chunks;
      with.push_back({newcomer.get(), spec.encoder_decoder ? at::zeros({1}, at::kLong) : prompt});
      advance(forward(with));
    };
    if (rep == reps + 1) {
      cost.aten_calls = CountAtenCalls(step);
      break;
    }
    const auto start = Clock::now();
    step();
    if (rep > 0) seconds.push_back(Seconds(start));
  }  // each newcomer's blocks go back to the pool with it
  std::sort(seconds.begin(), seconds.end());
  cost.seconds = seconds[seconds.size() / 2];
  return cost;
}

// Prefill tokens/s: a 512-token prompt (decoder-only) or the 128-token encoder pass plus the
// cross-attention projections (T5). Best of two.
double PrefillTokensPerSecond(const Model& model, const ModelSpec& spec) {
  const int64_t len = spec.encoder_decoder ? 128 : 512;
  double best = 0;
  for (int rep = 0; rep < 2; ++rep) {
    const at::Tensor ids = RandomIds(1, len, spec.vocab_size);
    const auto start = Clock::now();
    if (spec.encoder_decoder) {
      EncoderInput enc{ids, at::Tensor()};
      Check(model.NewState(1, &enc));
      Sync(model.placement().device);
    } else {
      auto state = Check(model.NewState(1, nullptr));
      StepInput step;
      step.input_ids = ids;
      step.last_logits_only = true;
      Check(model.Forward(step, *state)).to(at::kCPU);
    }
    best = std::max(best, static_cast<double>(len) / Seconds(start));
  }
  return best;
}

// Decoder-only models: prefill tokens/s of one 512-token prompt as triadd runs it, one chunk
// through Model::ForwardChunks into a paged cache (on CPU its attention reads the blocks in
// place); best of two. 0 for T5, whose prompt is its encoder pass (PrefillTokensPerSecond).
double ServingPrefillTokensPerSecond(const Model& model, const ModelSpec& spec) {
  if (spec.encoder_decoder) return 0;
  const int64_t len = 512, block = 16;
  double best = 0;
  for (int rep = 0; rep < 2; ++rep) {
    auto pool = Check(model.NewKvPool(len / block + 1, block));
    auto state = Check(model.NewSequence(*pool, nullptr));
    const std::vector<SequenceChunk> chunks = {{state.get(), RandomIds(1, len, spec.vocab_size)[0]}};
    const auto start = Clock::now();
    Check(model.ForwardChunks(chunks)).to(at::kCPU);
    best = std::max(best, static_cast<double>(len) / Seconds(start));
  }
  return best;
}

// Sixteen 64-token prompts arriving together, as triadd prefills them in one step (budget
// permitting): one ForwardChunks call over 16 fresh sequences (T5: their encoders as one
// NewSequences batch, then the 16 decoder start tokens). Prompt tokens/s, best of two, and the
// ATen calls of one more such step (on CUDA, host work that grows with the number of prompts
// unless they run as one batch).
std::pair<double, int64_t> Prefill16(const Model& model, const ModelSpec& spec) {
  const int64_t prompts = 16, len = 64, block = 16;
  double best = 0;
  int64_t calls = 0;
  for (int rep = 0; rep < 3; ++rep) {
    auto pool = Check(model.NewKvPool(prompts * 2 * (len / block + 2), block));
    std::vector<at::Tensor> ids;
    std::vector<const at::Tensor*> encoders;
    for (int64_t i = 0; i < prompts; ++i) ids.push_back(RandomIds(1, len, spec.vocab_size)[0]);
    for (const at::Tensor& t : ids) encoders.push_back(spec.encoder_decoder ? &t : nullptr);
    auto run = [&] {
      auto states = Check(model.NewSequences(*pool, encoders));
      std::vector<SequenceChunk> chunks;
      for (int64_t i = 0; i < prompts; ++i) {
        chunks.push_back({states[static_cast<size_t>(i)].get(),
                          spec.encoder_decoder ? at::zeros({1}, at::kLong) : ids[static_cast<size_t>(i)]});
      }
      Check(model.ForwardChunks(chunks)).to(at::kCPU);
    };
    if (rep == 2) {
      calls = CountAtenCalls(run);
      break;
    }
    const auto start = Clock::now();
    run();
    best = std::max(best, static_cast<double>(prompts * len) / Seconds(start));
  }
  return {best, calls};
}

Json MeasureOne(const std::string& name, const std::string& dtype, const std::string& device,
                const std::string& dir, int threads, int64_t steps) {
  const ModelSpec spec = BenchmarkModel(name);
  LoadOptions options;
  options.dtype = dtype;
  options.device = device;
  const auto load_start = Clock::now();
  auto model = Check(LoadModel(dir, options));
  const double load_seconds = Seconds(load_start);
  const int64_t load_peak_rss = PeakRssBytes();
  const int64_t element = dtype == "float32" ? 4 : 2;  // bfloat16 and float16
  const int64_t streamed = StreamedBytes(spec, element);
  const at::Device where = model->placement().device;
  Json r = {{"model", name}, {"dtype", dtype}, {"device", device}, {"threads", threads},
            {"weight_bytes", model->weight_bytes()}, {"streamed_bytes_per_step", streamed},
            {"load_seconds", load_seconds}, {"kernel_isa", std::string(kernels::KernelIsa())}};
  r["prefill_tokens_per_s"] = PrefillTokensPerSecond(*model, spec);
  r["serving_prefill_tokens_per_s"] = ServingPrefillTokensPerSecond(*model, spec);
  int64_t serving_peak_rss = PeakRssBytes();
  for (const int64_t batch : {1, 8}) {
    // The bandwidth is measured right before each decode figure: it drifts on shared machines.
    const int64_t peak_before_probe = PeakRssBytes();
    const double gbs = ReadBandwidthGBs(where, threads);
    ResetPeakRss();
    serving_peak_rss = std::max(serving_peak_rss, peak_before_probe);
    const double tps = DecodeTokensPerSecond(*model, spec, batch, steps);
    const double roofline = batch * gbs * 1e9 / static_cast<double>(streamed);
    const std::string key = "decode_batch" + std::to_string(batch);
    r[key] = {{"tokens_per_s", tps}, {"read_bandwidth_gbs", gbs},
              {"roofline_tokens_per_s", roofline}, {"fraction_of_roofline", tps / roofline}};
  }
  // The peak over load, prefill and decode at batches 1 and 8 (what peak_rss_limit_bytes
  // bounds); the batch-16 steps below hold a KV pool of 16+ sequences and their activations.
  serving_peak_rss = std::max(serving_peak_rss, PeakRssBytes());
  ResetPeakRss();
  const auto [prefill16, prefill16_calls] = Prefill16(*model, spec);
  r["prefill16"] = {{"tokens_per_s", prefill16}, {"aten_calls", prefill16_calls}};
  // The scheduler's path (ragged caches, attention per sequence) at batch 8, against
  // decode_batch8 (one padded batch) in the same run; and at batches 1 and 16, whose ratio is
  // the decode part of triadd's concurrency-16 over concurrency-1 throughput (issue 4's 5x).
  const double ragged = RaggedDecodeTokensPerSecond(*model, spec, 8, steps);
  r["decode_ragged8"] = {{"tokens_per_s", ragged},
                         {"fraction_of_batch8", ragged / r["decode_batch8"]["tokens_per_s"].get<double>()}};
  // aten_calls_per_step: what one step dispatches on this device's path (see CountAtenCalls).
  int64_t calls1 = 0, calls16 = 0;
  const double ragged1 = RaggedDecodeTokensPerSecond(*model, spec, 1, steps, &calls1);
  const double ragged16 = RaggedDecodeTokensPerSecond(*model, spec, 16, steps, &calls16);
  r["decode_ragged1"] = {{"tokens_per_s", ragged1}, {"aten_calls_per_step", calls1}};
  r["decode_ragged16"] = {{"tokens_per_s", ragged16}, {"over_ragged1", ragged16 / ragged1},
                          {"aten_calls_per_step", calls16}};
  // The same steps through a DecodeGraphRunner: replayed CUDA graphs on cuda; on the CPU its
  // static step eagerly (the padded path, which the CPU's kernels beat).
  for (const int64_t batch : {1, 16}) {
    int64_t calls = 0;
    const double tps = RaggedDecodeTokensPerSecond(*model, spec, batch, steps, &calls, true);
    r["decode_graph" + std::to_string(batch)] = {
        {"tokens_per_s", tps},
        {"over_ragged", tps / (batch == 1 ? ragged1 : ragged16)},
        {"captured", where.is_cuda()},
        {"aten_calls_per_step", calls}};
  }
  const StepCost alone = ArrivalStep(*model, spec, 0), arrival = ArrivalStep(*model, spec, 15);
  const StepCost split = ArrivalStep(*model, spec, 15, /*split=*/true);
  const double decode16_seconds = 16 / ragged16;
  r["arrival16"] = {{"step_ms", 1e3 * arrival.seconds},
                    {"aten_calls", arrival.aten_calls},
                    {"prompt_alone_ms", 1e3 * alone.seconds},
                    {"prompt_alone_aten_calls", alone.aten_calls},
                    {"over_prompt_alone", arrival.seconds / alone.seconds},
                    {"over_decode16", arrival.seconds / decode16_seconds},
                    {"split_step_ms", 1e3 * split.seconds},
                    {"split_aten_calls", split.aten_calls},
                    {"split_over_prompt_alone", split.seconds / alone.seconds}};
  // Before the attention timing's own pools and the probe's buffer.
  r["batch16_peak_rss_bytes"] = PeakRssBytes();
  if (where.is_cpu()) {
    // The decode attention of a concurrency-16 step at 96 and 512 positions (the serving
    // benchmark's mean context, and a long one), beside the read probe.
    const double gbs = ReadBandwidthGBs(where, threads);
    for (const int64_t positions : {96, 512}) {
      const auto [ms, bytes] = DecodeAttentionStep(*model, positions);
      r["decode_attention16_" + std::to_string(positions)] = {
          {"step_ms", ms}, {"kv_read_gbs", bytes / ms / 1e6}, {"read_bandwidth_gbs", gbs}};
    }
  }
  // Peak RSS while loading, and over load + prefill + decode at batches 1 and 8 (without the
  // probe's buffer);
  // host memory only (an accelerator's memory is not counted). The limit is the CPU's (weights
  // plus 20% plus 300 MB): on a GPU the CUDA runtime alone holds ~0.5 GB of host memory (H200,
  // LibTorch 2.11), so there the limit is left out.
  r["load_peak_rss_bytes"] = load_peak_rss;
  r["peak_rss_bytes"] = serving_peak_rss;
  if (where.is_cpu()) {
    r["peak_rss_limit_bytes"] = static_cast<int64_t>(1.2 * model->weight_bytes()) + 300'000'000;
  }
  return r;
}

// `--name value` pairs, and `--write-only` alone (stored as "1").
std::map<std::string, std::string> ParseFlags(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      std::cerr << "triad-bench: unexpected argument " << arg << "\n";
      std::exit(2);
    }
    const std::string name = arg.substr(2);
    if (name == "write-only") {
      flags[name] = "1";
      continue;
    }
    if (i + 1 >= argc) {
      std::cerr << "triad-bench: " << arg << " needs a value\n";
      std::exit(2);
    }
    flags[name] = argv[++i];
  }
  return flags;
}

std::string Flag(const std::map<std::string, std::string>& flags, const std::string& name,
                 const std::string& fallback) {
  auto it = flags.find(name);
  return it == flags.end() ? fallback : it->second;
}

// One (model, dtype) the run covers and its checkpoint folder.
struct Target {
  ModelSpec spec;
  std::string dtype;
  std::string dir;
};

// The (model, dtype) pairs --models and --dtypes name; exits 2 naming an unknown one.
std::vector<Target> Targets(const std::map<std::string, std::string>& flags,
                            const std::string& workdir) {
  const std::vector<std::string> models =
      absl::StrSplit(Flag(flags, "models", absl::StrJoin(BenchmarkModelNames(), ",")), ',');
  const std::vector<std::string> dtypes =
      absl::StrSplit(Flag(flags, "dtypes", "float32,bfloat16"), ',');
  std::vector<Target> targets;
  for (const std::string& name : models) {
    const ModelSpec spec = BenchmarkModel(name);
    if (spec.name.empty()) {
      std::cerr << "triad-bench: unknown model " << name << "\n";
      std::exit(2);
    }
    for (const std::string& dtype : dtypes) {
      if (dtype != "float32" && dtype != "bfloat16" && dtype != "float16") {
        std::cerr << "triad-bench: unsupported dtype " << dtype << "\n";
        std::exit(2);
      }
      targets.push_back({spec, dtype, workdir + "/" + name + "-" + dtype});
    }
  }
  return targets;
}

// Measures `target` (already written) in a child process; exits 1 when the child fails.
Json MeasureInChild(const char* self, const Target& target, const std::string& device, int threads,
                    int64_t steps, const std::string& cpu_kernels) {
  const std::string& name = target.spec.name;
  const std::string cmd = std::string(self) + " --child " + name + " --dtype " + target.dtype +
                          " --device " + device + " --dir " + target.dir + " --threads " +
                          std::to_string(threads) + " --decode-steps " + std::to_string(steps) +
                          " --cpu-kernels " + cpu_kernels;
  FILE* pipe = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (pipe != nullptr && fgets(buf, sizeof(buf), pipe) != nullptr) out += buf;
  if (pipe == nullptr || pclose(pipe) != 0 || out.empty()) {
    std::cerr << "triad-bench: measuring " << name << " " << target.dtype << " failed\n";
    std::exit(1);
  }
  return Json::parse(out);
}

int Main(int argc, char** argv) {
  const auto flags = ParseFlags(argc, argv);
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  int64_t steps = 24;
  if (!absl::SimpleAtoi(Flag(flags, "threads", std::to_string(threads)), &threads) ||
      !absl::SimpleAtoi(Flag(flags, "decode-steps", "24"), &steps) || threads < 1 || steps < 1) {
    std::cerr << "triad-bench: --threads and --decode-steps take positive integers\n";
    return 2;
  }
  at::set_num_threads(threads);
  const std::string cpu_kernels = Flag(flags, "cpu-kernels", "on");
  if (cpu_kernels != "on" && cpu_kernels != "off") {
    std::cerr << "triad-bench: --cpu-kernels takes on or off\n";
    return 2;
  }
  SetUseCpuKernels(cpu_kernels == "on");
  const std::string workdir = Flag(flags, "workdir", "/tmp/triad-bench");
  if (flags.count("child")) {
    const std::string dtype = Flag(flags, "dtype", "float32");
    std::cout << MeasureOne(flags.at("child"), dtype, Flag(flags, "device", "cpu"),
                            Flag(flags, "dir", ""), threads, steps)
                     .dump()
              << std::endl;
    return 0;
  }
  const bool write_only = flags.count("write-only") > 0;
  Json results = Json::array();
  for (const Target& target : Targets(flags, workdir)) {
    Check(WriteRandomCheckpoint(target.spec, target.dtype, target.dir));
    if (write_only) {
      results.push_back(
          {{"model", target.spec.name}, {"dtype", target.dtype}, {"dir", target.dir}});
      continue;
    }
    results.push_back(
        MeasureInChild(argv[0], target, Flag(flags, "device", "cpu"), threads, steps, cpu_kernels));
    std::cerr << results.back().dump() << "\n";
  }
  if (write_only) {
    std::cout << Json{{"checkpoints", results}}.dump(2) << std::endl;
    return 0;
  }
  std::cout << Json{{"torch_threads", threads}, {"results", results}}.dump(2) << std::endl;
  return 0;
}

}  // namespace
}  // namespace triad::bench

int main(int argc, char** argv) { return triad::bench::Main(argc, argv); }
