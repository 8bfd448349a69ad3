#include "model/model.h"

#include <algorithm>
#include <fstream>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "model/architectures.h"
#include "model/compat.h"
#include "model/guard.h"
#include "model/status_macros.h"
#include "model/weights.h"

namespace triad {
namespace {

absl::Status CheckIds(const at::Tensor& ids, int64_t dims, const char* field, int64_t vocab) {
  if (!ids.defined() || ids.dim() != dims) {
    return absl::InvalidArgumentError(absl::StrCat(field, " must be a ", dims, "-d tensor"));
  }
  if (ids.scalar_type() != at::kLong) {
    return absl::InvalidArgumentError(absl::StrCat(field, " must be int64"));
  }
  if (ids.numel() == 0) return absl::InvalidArgumentError(absl::StrCat(field, " is empty"));
  int64_t lo = 0, hi = 0;
  if (ids.device().is_cpu() && ids.is_contiguous()) {
    // A plain scan: the scheduler checks every sequence's chunk each step, and four ATen calls
    // per chunk (min, max and their item()) are host work a GPU step waits on.
    const int64_t* p = ids.data_ptr<int64_t>();
    const auto [min_it, max_it] = std::minmax_element(p, p + ids.numel());
    lo = *min_it;
    hi = *max_it;
  } else {
    lo = ids.min().item<int64_t>();
    hi = ids.max().item<int64_t>();
  }
  if (lo < 0 || hi >= vocab) {
    return absl::InvalidArgumentError(absl::StrCat(field, " holds token id ", lo < 0 ? lo : hi,
                                                   " outside the vocabulary [0, ", vocab, ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckMask(const at::Tensor& mask, const at::Tensor& ids, const char* field) {
  if (mask.defined() && mask.sizes() != ids.sizes()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " must have the shape of the ids"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Placement> ParsePlacement(const LoadOptions& options) {
  Placement p;
  if (options.dtype == "float32") {
    p.dtype = at::kFloat;
  } else if (options.dtype == "bfloat16") {
    p.dtype = at::kBFloat16;
  } else if (options.dtype == "float16") {
    p.dtype = at::kHalf;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "dtype: unsupported \"", options.dtype, "\" (float32, bfloat16 or float16)"));
  }
  const std::string& d = options.device;
  if (d == "cpu") {
    p.device = at::Device(at::kCPU);
  } else if (d == "cuda" || absl::StartsWith(d, "cuda:")) {
    int index = 0;
    if (d.size() > 5 && !absl::SimpleAtoi(d.substr(5), &index)) {
      return absl::InvalidArgumentError(absl::StrCat("device: bad CUDA index in \"", d, "\""));
    }
    if (index < 0 || index >= compat::CudaDeviceCount()) {
      return absl::InvalidArgumentError(
          absl::StrCat("device: \"", d, "\" is not available (", compat::CudaDeviceCount(),
                       " CUDA device(s) visible to this LibTorch ", compat::TorchVersion(), ")"));
    }
    p.device = at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("device: unsupported \"", d, "\" (cpu, cuda or cuda:N)"));
  }
  return p;
}

absl::StatusOr<std::unique_ptr<DecoderState>> Model::NewState(int64_t batch_size,
                                                              const EncoderInput* encoder) const {
  if (batch_size <= 0) return absl::InvalidArgumentError("batch_size must be positive");
  if (config_.is_encoder_decoder()) {
    if (encoder == nullptr) {
      return absl::InvalidArgumentError("encoder input is required for encoder-decoder models");
    }
    TRIAD_RETURN_IF_ERROR(CheckIds(encoder->input_ids, 2, "encoder input_ids", config_.vocab_size));
    TRIAD_RETURN_IF_ERROR(CheckMask(encoder->attention_mask, encoder->input_ids,
                                    "encoder attention_mask"));
    if (encoder->input_ids.size(0) != batch_size) {
      return absl::InvalidArgumentError("encoder input_ids batch differs from batch_size");
    }
  }
  try {
    return Guard("NewState", [&] { return NewStateImpl(batch_size, encoder); });
  } catch (const Unsupported& u) {
    return absl::UnimplementedError(u.what);
  }
}

absl::StatusOr<at::Tensor> Model::Forward(const StepInput& input, DecoderState& state) const {
  TRIAD_RETURN_IF_ERROR(CheckIds(input.input_ids, 2, "input_ids", config_.vocab_size));
  TRIAD_RETURN_IF_ERROR(CheckMask(input.attention_mask, input.input_ids, "attention_mask"));
  TRIAD_RETURN_IF_ERROR(CheckMask(input.position_ids, input.input_ids, "position_ids"));
  if (input.input_ids.size(0) != state.batch_size()) {
    return absl::InvalidArgumentError(absl::StrCat("input_ids has batch ", input.input_ids.size(0),
                                                   ", the state ", state.batch_size()));
  }
  const int64_t limit = config_.max_positions;
  if (limit > 0) {
    const int64_t last = input.position_ids.defined()
                             ? input.position_ids.max().item<int64_t>()
                             : state.length() + input.input_ids.size(1) - 1;
    if (last >= limit) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input_ids: position ", last, " exceeds the context length ", limit));
    }
  }
  return Guard("Forward", [&] { return ForwardImpl(input, state); });
}

int64_t KvBytesPerToken(const ModelConfig& c, at::ScalarType dtype) {
  const int64_t layers = c.is_encoder_decoder() ? c.num_decoder_layers : c.num_layers;
  return 2 * layers * c.num_kv_heads * c.head_dim * static_cast<int64_t>(c10::elementSize(dtype));
}

int64_t CrossKvBytesPerToken(const ModelConfig& c, at::ScalarType dtype) {
  return c.is_encoder_decoder() ? KvBytesPerToken(c, dtype) : 0;
}

int64_t SequenceKvBytes(const ModelConfig& c, at::ScalarType dtype, int64_t prompt_tokens,
                        int64_t max_new_tokens) {
  if (c.is_encoder_decoder()) {
    return (1 + max_new_tokens) * KvBytesPerToken(c, dtype) +
           prompt_tokens * CrossKvBytesPerToken(c, dtype);
  }
  return (prompt_tokens + max_new_tokens) * KvBytesPerToken(c, dtype);
}


namespace {

// A continuous-batching sequence's encoder input: required (and [S], in the vocabulary) for
// encoder-decoder models, ignored otherwise.
absl::Status CheckEncoderIds(const ModelConfig& config, const at::Tensor* encoder_ids,
                             const std::string& field) {
  if (!config.is_encoder_decoder()) return absl::OkStatus();
  if (encoder_ids == nullptr) {
    return absl::InvalidArgumentError("encoder input_ids are required for encoder-decoder models");
  }
  return CheckIds(*encoder_ids, 1, field.c_str(), config.vocab_size);
}

// The pool a sequence is given must be one this model could have made.
absl::Status CheckPool(const KvPool& pool, const KvPoolShape& want, const Placement& placement) {
  const KvPoolShape& got = pool.shape();
  const at::Tensor& keys = pool.keys(0);
  if (got.num_layers != want.num_layers || got.num_kv_heads != want.num_kv_heads ||
      got.head_dim != want.head_dim || keys.scalar_type() != placement.dtype ||
      keys.device() != placement.device) {
    return absl::InvalidArgumentError("pool: the KV pool was not made for this model");
  }
  return absl::OkStatus();
}

}  // namespace

KvPoolShape Model::PoolShape() const {
  KvPoolShape shape;
  shape.num_layers = config_.is_encoder_decoder() ? config_.num_decoder_layers : config_.num_layers;
  shape.num_kv_heads = config_.num_kv_heads;
  shape.head_dim = config_.head_dim;
  return shape;
}

absl::StatusOr<std::unique_ptr<KvPool>> Model::NewKvPool(int64_t num_blocks,
                                                         int64_t block_size) const {
  if (num_blocks < 1 || num_blocks > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_blocks: ", num_blocks, " is outside [1, 2^31)"));
  }
  if (block_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("block_size: ", block_size, " must be >= 1"));
  }
  KvPoolShape shape = PoolShape();
  shape.block_size = block_size;
  return Guard("NewKvPool", [&] {
    return std::make_unique<KvPool>(shape, num_blocks, placement_.dtype, placement_.device);
  });
}

absl::StatusOr<std::unique_ptr<SequenceState>> Model::NewSequence(
    KvPool& pool, const at::Tensor* encoder_ids) const {
  TRIAD_RETURN_IF_ERROR(CheckPool(pool, PoolShape(), placement_));
  TRIAD_RETURN_IF_ERROR(CheckEncoderIds(config_, encoder_ids, "encoder input_ids"));
  return Guard("NewSequence", [&] { return NewSequenceImpl(pool, encoder_ids); });
}

absl::StatusOr<std::vector<std::unique_ptr<SequenceState>>> Model::NewSequences(
    KvPool& pool, const std::vector<const at::Tensor*>& encoder_ids) const {
  TRIAD_RETURN_IF_ERROR(CheckPool(pool, PoolShape(), placement_));
  for (size_t i = 0; i < encoder_ids.size(); ++i) {
    TRIAD_RETURN_IF_ERROR(
        CheckEncoderIds(config_, encoder_ids[i], absl::StrCat("encoder input_ids[", i, "]")));
  }
  return Guard("NewSequences", [&] { return NewSequencesImpl(pool, encoder_ids); });
}

std::vector<std::unique_ptr<SequenceState>> Model::NewSequencesImpl(
    KvPool& pool, const std::vector<const at::Tensor*>& encoder_ids) const {
  std::vector<std::unique_ptr<SequenceState>> out;
  for (const at::Tensor* ids : encoder_ids) out.push_back(NewSequenceImpl(pool, ids));
  return out;
}

absl::StatusOr<std::unique_ptr<SequenceState>> Model::ForkSequence(
    const SequenceState& source) const {
  return Guard("ForkSequence", [&] { return source.Fork(); });
}

at::Tensor ConcatChunkIds(const std::vector<SequenceChunk>& chunks, const at::Device& device) {
  std::vector<int64_t> ids;
  for (const SequenceChunk& chunk : chunks) {
    const at::Tensor& in = chunk.input_ids;
    const at::Tensor host = in.is_cpu() && in.scalar_type() == at::kLong && in.is_contiguous()
                                ? in
                                : in.to(at::kCPU, at::kLong).contiguous();
    ids.insert(ids.end(), host.data_ptr<int64_t>(), host.data_ptr<int64_t>() + host.numel());
  }
  return at::tensor(ids, at::kLong).to(device).unsqueeze(0);
}

absl::Status Model::CheckChunks(const std::vector<SequenceChunk>& chunks) const {
  if (chunks.empty()) return absl::InvalidArgumentError("chunks: empty");
  std::vector<const SequenceState*> seen;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const SequenceChunk& c = chunks[i];
    const std::string field = absl::StrCat("chunks[", i, "].input_ids");
    if (c.state == nullptr) return absl::InvalidArgumentError(absl::StrCat("chunks[", i, "]: no state"));
    if (std::find(seen.begin(), seen.end(), c.state) != seen.end()) {
      return absl::InvalidArgumentError(absl::StrCat("chunks[", i, "]: sequence appears twice"));
    }
    seen.push_back(c.state);
    TRIAD_RETURN_IF_ERROR(CheckIds(c.input_ids, 1, field.c_str(), config_.vocab_size));
    const int64_t end = c.state->length() + c.input_ids.size(0);
    if (config_.max_positions > 0 && end > config_.max_positions) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": position ", end - 1,
                                                     " exceeds the context length ",
                                                     config_.max_positions));
    }
  }
  return absl::OkStatus();
}

at::Tensor Model::StaticDecode(const StaticDecodeInputs&, const KvPool&) const {
  throw std::logic_error("this model has no static decode step");
}

absl::StatusOr<at::Tensor> Model::ForwardChunks(const std::vector<SequenceChunk>& chunks) const {
  TRIAD_RETURN_IF_ERROR(CheckChunks(chunks));
  return Guard("ForwardChunks", [&] { return ForwardChunksImpl(chunks); });
}

absl::StatusOr<at::Tensor> Model::HeadChunks(const std::vector<SequenceChunk>& chunks) const {
  if (head_outputs() == 0) {
    return absl::UnimplementedError("the checkpoint has no classification head");
  }
  TRIAD_RETURN_IF_ERROR(CheckChunks(chunks));
  try {
    return Guard("HeadChunks", [&] { return HeadChunksImpl(chunks); });
  } catch (const Unsupported& u) {
    return absl::UnimplementedError(u.what);
  }
}

at::Tensor Model::HeadChunksImpl(const std::vector<SequenceChunk>&) const {
  throw Unsupported{"the checkpoint has no classification head"};
}

absl::StatusOr<at::Tensor> Model::Encode(const EncoderInput& input) const {
  if (!config_.is_encoder_decoder()) {
    return absl::UnimplementedError(absl::StrCat(FamilyName(config_.family), " has no encoder"));
  }
  TRIAD_RETURN_IF_ERROR(CheckIds(input.input_ids, 2, "input_ids", config_.vocab_size));
  TRIAD_RETURN_IF_ERROR(CheckMask(input.attention_mask, input.input_ids, "attention_mask"));
  return Guard("Encode", [&] { return EncodeImpl(input); });
}

absl::StatusOr<at::Tensor> Model::ClassifySequence(const at::Tensor& input_ids,
                                                   const at::Tensor& attention_mask) const {
  TRIAD_RETURN_IF_ERROR(CheckIds(input_ids, 2, "input_ids", config_.vocab_size));
  TRIAD_RETURN_IF_ERROR(CheckMask(attention_mask, input_ids, "attention_mask"));
  if (config_.max_positions > 0 && input_ids.size(1) > config_.max_positions) {
    return absl::InvalidArgumentError("input_ids: longer than the context length");
  }
  try {
    return Guard("ClassifySequence", [&] { return ClassifySequenceImpl(input_ids, attention_mask); });
  } catch (const Unsupported& u) {
    return absl::UnimplementedError(u.what);
  }
}

absl::StatusOr<MultipleChoiceOutput> Model::MultipleChoice(const at::Tensor& input_ids,
                                                           const at::Tensor& mc_token_ids) const {
  TRIAD_RETURN_IF_ERROR(CheckIds(input_ids, 3, "input_ids", config_.vocab_size));
  if (!mc_token_ids.defined() || mc_token_ids.dim() != 2 ||
      mc_token_ids.size(0) != input_ids.size(0) || mc_token_ids.size(1) != input_ids.size(1)) {
    return absl::InvalidArgumentError("mc_token_ids must be [batch, choices]");
  }
  if (mc_token_ids.min().item<int64_t>() < 0 ||
      mc_token_ids.max().item<int64_t>() >= input_ids.size(2)) {
    return absl::InvalidArgumentError("mc_token_ids: index outside the sequence");
  }
  try {
    return Guard("MultipleChoice", [&] { return MultipleChoiceImpl(input_ids, mc_token_ids); });
  } catch (const Unsupported& u) {
    return absl::UnimplementedError(u.what);
  }
}

absl::StatusOr<at::Tensor> Model::HeadLogits(const at::Tensor& input_ids,
                                             const at::Tensor& read_index) const {
  TRIAD_RETURN_IF_ERROR(CheckIds(input_ids, 2, "input_ids", config_.vocab_size));
  if (config_.max_positions > 0 && input_ids.size(1) > config_.max_positions) {
    return absl::InvalidArgumentError("input_ids: longer than the context length");
  }
  if (!read_index.defined() || read_index.dim() != 1 || read_index.size(0) != input_ids.size(0)) {
    return absl::InvalidArgumentError("read_index must be [batch]");
  }
  if (read_index.numel() > 0 && (read_index.min().item<int64_t>() < 0 ||
                                 read_index.max().item<int64_t>() >= input_ids.size(1))) {
    return absl::InvalidArgumentError("read_index: index outside the sequence");
  }
  try {
    return Guard("HeadLogits", [&] { return HeadLogitsImpl(input_ids, read_index); });
  } catch (const Unsupported& u) {
    return absl::UnimplementedError(u.what);
  }
}

int64_t Model::head_outputs() const {
  switch (config_.head) {
    case HeadKind::kSequenceClassification:
      return config_.num_labels;
    case HeadKind::kDoubleHeads:
      return 1;
    case HeadKind::kLanguageModel:
      return 0;
  }
  return 0;
}

at::Tensor Model::HeadLogitsImpl(const at::Tensor&, const at::Tensor&) const {
  throw Unsupported{"this model has no classification head"};
}

at::Tensor Model::EncodeImpl(const EncoderInput&) const {
  throw Unsupported{"this model has no encoder"};
}
at::Tensor Model::ClassifySequenceImpl(const at::Tensor&, const at::Tensor&) const {
  throw Unsupported{"this model has no sequence-classification head"};
}
MultipleChoiceOutput Model::MultipleChoiceImpl(const at::Tensor&, const at::Tensor&) const {
  throw Unsupported{"this model has no multiple-choice head"};
}

absl::StatusOr<std::unique_ptr<Model>> LoadModel(const std::string& model_dir,
                                                 const LoadOptions& options) {
  TRIAD_ASSIGN_OR_RETURN(Placement placement, ParsePlacement(options));
  TRIAD_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(model_dir));
  TRIAD_ASSIGN_OR_RETURN(std::unique_ptr<io::Checkpoint> checkpoint, io::Checkpoint::Open(model_dir));
  // Architectures are registered here, explicitly (no static initialisers).
  auto load = [&]() -> absl::StatusOr<std::unique_ptr<Model>> {
    switch (config.family) {
      case Family::kGpt1: {
        WeightLoader weights(*checkpoint, model_dir, "transformer.", placement);
        return LoadGpt1(config, weights, placement);
      }
      case Family::kT5: {
        WeightLoader weights(*checkpoint, model_dir, "", placement);
        return LoadT5(config, weights, placement);
      }
      case Family::kLlama: {
        WeightLoader weights(*checkpoint, model_dir, "model.", placement);
        return LoadLlama(config, weights, placement);
      }
    }
    return absl::InternalError("unreachable model family");
  };
  auto loaded = Guard(model_dir.c_str(), load);
  if (!loaded.ok()) return loaded.status();
  return std::move(loaded).value();
}

}  // namespace triad
