#include "model/bench/random_checkpoint.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "model/io/safetensors.h"

namespace triad::bench {
namespace {

void Add(ModelSpec& s, const std::string& name, std::vector<int64_t> shape, bool streamed) {
  const int64_t fan_in = shape.size() > 1 ? shape[1] : shape[0];
  s.tensors.push_back({name, shape, streamed, 1.0f / std::sqrt(static_cast<float>(fan_in))});
}
void AddNorm(ModelSpec& s, const std::string& name, int64_t dim) {
  s.tensors.push_back({name, {dim}, true, 0.0f});
}

// GPT-1 117M. Its config.json text is built by the caller (the head differs).
ModelSpec Gpt1(const std::string& name, const std::string& config_json) {
  ModelSpec s;
  s.name = name;
  const int64_t d = 768, v = 40478;
  s.vocab_size = v;
  s.config_json = config_json;
  Add(s, "transformer.tokens_embed.weight", {v, d}, true);  // the tied LM head
  Add(s, "transformer.positions_embed.weight", {512, d}, false);
  for (int i = 0; i < 12; ++i) {
    const std::string p = absl::StrCat("transformer.h.", i, ".");
    // Conv1D stores [in, out].
    Add(s, p + "attn.c_attn.weight", {d, 3 * d}, true);
    Add(s, p + "attn.c_attn.bias", {3 * d}, true);
    Add(s, p + "attn.c_proj.weight", {d, d}, true);
    Add(s, p + "attn.c_proj.bias", {d}, true);
    Add(s, p + "mlp.c_fc.weight", {d, 4 * d}, true);
    Add(s, p + "mlp.c_fc.bias", {4 * d}, true);
    Add(s, p + "mlp.c_proj.weight", {4 * d, d}, true);
    Add(s, p + "mlp.c_proj.bias", {d}, true);
    for (const char* ln : {"ln_1", "ln_2"}) {
      AddNorm(s, p + ln + ".weight", d);
      Add(s, p + ln + ".bias", {d}, true);
    }
  }
  return s;
}

constexpr char kGpt1Shape[] =
    R"("model_type":"openai-gpt","n_embd":768,"n_layer":12,"n_head":12,"vocab_size":40478,)"
    R"("n_positions":512)";

ModelSpec Gpt1LanguageModel() {
  return Gpt1("gpt1",
              absl::StrCat(R"({"architectures":["OpenAIGPTLMHeadModel"],)", kGpt1Shape, "}"));
}

// GPT-1 fine-tuned for 3-way entailment (the paper's MNLI setup), as HF saves
// OpenAIGPTForSequenceClassification: the body plus `score` [num_labels, n_embd] without bias,
// no lm_head. Our loader sizes the head from id2label. No pad_token_id: GPT-1 has none, and the
// server reads each sequence at its own last (extract) token.
ModelSpec Gpt1Classifier() {
  ModelSpec s =
      Gpt1("gpt1-cls",
           absl::StrCat(R"({"architectures":["OpenAIGPTForSequenceClassification"],)", kGpt1Shape,
                        R"(,"id2label":{"0":"entailment","1":"neutral","2":"contradiction"},)",
                        R"("label2id":{"entailment":0,"neutral":1,"contradiction":2}})"));
  // Not on the decode path: a classification is one forward pass.
  Add(s, "score.weight", {3, 768}, false);
  return s;
}

ModelSpec T5Small() {
  ModelSpec s;
  s.name = "t5-small";
  const int64_t d = 512, ff = 2048, v = 32128;
  s.vocab_size = v;
  s.encoder_decoder = true;
  s.config_json = R"({"model_type":"t5","architectures":["T5ForConditionalGeneration"],
    "d_model":512,"d_ff":2048,"d_kv":64,"num_heads":8,"num_layers":6,"num_decoder_layers":6,
    "vocab_size":32128,"feed_forward_proj":"relu","decoder_start_token_id":0,
    "eos_token_id":1,"pad_token_id":0})";
  Add(s, "shared.weight", {v, d}, true);  // tied LM head
  for (const char* stack : {"encoder", "decoder"}) {
    const bool dec = std::string(stack) == "decoder";
    for (int i = 0; i < 6; ++i) {
      const std::string p = absl::StrCat(stack, ".block.", i, ".layer.");
      for (const char* w : {"q", "k", "v", "o"}) Add(s, p + "0.SelfAttention." + w + ".weight", {d, d}, dec);
      if (i == 0) Add(s, p + "0.SelfAttention.relative_attention_bias.weight", {32, 8}, false);
      AddNorm(s, p + "0.layer_norm.weight", d);
      const std::string f = p + (dec ? "2." : "1.");
      if (dec) {
        // Cross-attention k/v run once per request, q/o every step.
        for (const char* w : {"q", "k", "v", "o"}) {
          const bool per_step = std::string(w) == "q" || std::string(w) == "o";
          Add(s, p + "1.EncDecAttention." + w + ".weight", {d, d}, per_step);
        }
        AddNorm(s, p + "1.layer_norm.weight", d);
      }
      Add(s, f + "DenseReluDense.wi.weight", {ff, d}, dec);
      Add(s, f + "DenseReluDense.wo.weight", {d, ff}, dec);
      AddNorm(s, f + "layer_norm.weight", d);
    }
    AddNorm(s, absl::StrCat(stack, ".final_layer_norm.weight"), d);
  }
  return s;
}

ModelSpec Llama(const std::string& name, int64_t d, int64_t layers, int64_t heads,
                int64_t kv_heads, int64_t ff) {
  ModelSpec s;
  s.name = name;
  const int64_t v = 32000, hd = d / heads;
  s.vocab_size = v;
  s.config_json = absl::StrCat(
      R"({"model_type":"llama","architectures":["LlamaForCausalLM"],"hidden_size":)", d,
      R"(,"num_hidden_layers":)", layers, R"(,"num_attention_heads":)", heads,
      R"(,"num_key_value_heads":)", kv_heads, R"(,"intermediate_size":)", ff,
      R"(,"vocab_size":32000,"max_position_embeddings":2048,"tie_word_embeddings":false})");
  Add(s, "model.embed_tokens.weight", {v, d}, false);
  for (int64_t i = 0; i < layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    Add(s, p + "self_attn.q_proj.weight", {heads * hd, d}, true);
    Add(s, p + "self_attn.k_proj.weight", {kv_heads * hd, d}, true);
    Add(s, p + "self_attn.v_proj.weight", {kv_heads * hd, d}, true);
    Add(s, p + "self_attn.o_proj.weight", {d, heads * hd}, true);
    Add(s, p + "mlp.gate_proj.weight", {ff, d}, true);
    Add(s, p + "mlp.up_proj.weight", {ff, d}, true);
    Add(s, p + "mlp.down_proj.weight", {d, ff}, true);
    AddNorm(s, p + "input_layernorm.weight", d);
    AddNorm(s, p + "post_attention_layernorm.weight", d);
  }
  AddNorm(s, "model.norm.weight", d);
  Add(s, "lm_head.weight", {v, d}, true);
  return s;
}

int64_t Elements(const TensorSpec& t) {
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  return n;
}

uint16_t ToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  bits += 0x7FFF + ((bits >> 16) & 1);  // round to nearest even
  return static_cast<uint16_t>(bits >> 16);
}

}  // namespace

std::vector<std::string> BenchmarkModelNames() {
  return {"gpt1", "t5-small", "llama-110m", "tinyllama-1.1b"};
}

ModelSpec BenchmarkModel(const std::string& name) {
  if (name == "gpt1") return Gpt1LanguageModel();
  if (name == "gpt1-cls") return Gpt1Classifier();
  if (name == "t5-small") return T5Small();
  if (name == "llama-110m") return Llama(name, 768, 12, 12, 12, 2048);
  if (name == "tinyllama-1.1b") return Llama(name, 2048, 22, 32, 4, 5632);
  return ModelSpec();
}

int64_t StreamedBytes(const ModelSpec& spec, int64_t element_size) {
  int64_t bytes = 0;
  for (const TensorSpec& t : spec.tensors) {
    if (t.streamed_per_decode_step) bytes += Elements(t) * element_size;
  }
  return bytes;
}

absl::Status WriteRandomCheckpoint(const ModelSpec& spec, const std::string& dtype,
                                   const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path done = fs::path(dir) / ".complete";
  if (fs::exists(done)) return absl::OkStatus();
  fs::create_directories(dir);
  std::ofstream(fs::path(dir) / "config.json") << spec.config_json;
  const bool bf16 = dtype == "bfloat16";
  std::vector<std::vector<float>> f32(spec.tensors.size());
  std::vector<std::vector<uint16_t>> b16(spec.tensors.size());
  std::vector<io::TensorToWrite> out;
  uint64_t state = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < spec.tensors.size(); ++i) {
    const TensorSpec& t = spec.tensors[i];
    std::vector<float> values(static_cast<size_t>(Elements(t)));
    for (float& v : values) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      const float u = static_cast<float>(state >> 40) / static_cast<float>(1 << 24) * 2 - 1;
      v = t.scale == 0 ? 1.0f : u * t.scale;
    }
    if (bf16) {
      b16[i].resize(values.size());
      for (size_t j = 0; j < values.size(); ++j) b16[i][j] = ToBf16(values[j]);
      out.push_back({t.name, io::DType::kBF16, t.shape, b16[i].data()});
    } else {
      f32[i] = std::move(values);
      out.push_back({t.name, io::DType::kF32, t.shape, f32[i].data()});
    }
  }
  absl::Status status = io::WriteSafetensors((fs::path(dir) / "model.safetensors").string(), out);
  if (status.ok()) std::ofstream(done) << "ok\n";
  return status;
}

}  // namespace triad::bench
