#include "model/config.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "model/status_macros.h"

namespace triad {
namespace {

using Json = nlohmann::json;

absl::Status KeyError(const std::string& source, const std::string& key, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": key \"", key, "\": ", what));
}

// Typed, error-reporting access to one config object; every read names the file and key.
class Reader {
 public:
  Reader(const Json& json, std::string source) : json_(json), source_(std::move(source)) {}

  bool Has(const std::string& key) const {
    return json_.contains(key) && !json_.at(key).is_null();
  }

  absl::StatusOr<int64_t> Int(const std::string& key, int64_t fallback) const {
    if (!Has(key)) return fallback;
    const Json& v = json_.at(key);
    if (!v.is_number_integer()) return KeyError(source_, key, "must be an integer");
    return v.get<int64_t>();
  }
  // A strictly positive integer (a dimension).
  absl::StatusOr<int64_t> Dim(const std::string& key, int64_t fallback) const {
    TRIAD_ASSIGN_OR_RETURN(int64_t v, Int(key, fallback));
    if (v <= 0) return KeyError(source_, key, absl::StrCat("must be positive, got ", v));
    return v;
  }
  absl::StatusOr<double> Float(const std::string& key, double fallback) const {
    if (!Has(key)) return fallback;
    const Json& v = json_.at(key);
    if (!v.is_number()) return KeyError(source_, key, "must be a number");
    return v.get<double>();
  }
  absl::StatusOr<bool> Bool(const std::string& key, bool fallback) const {
    if (!Has(key)) return fallback;
    const Json& v = json_.at(key);
    if (!v.is_boolean()) return KeyError(source_, key, "must be true or false");
    return v.get<bool>();
  }
  absl::StatusOr<std::string> String(const std::string& key, const std::string& fallback) const {
    if (!Has(key)) return fallback;
    const Json& v = json_.at(key);
    if (!v.is_string()) return KeyError(source_, key, "must be a string");
    return v.get<std::string>();
  }
  // An id or a list of ids (eos_token_id may be either); empty when absent.
  absl::StatusOr<std::vector<int64_t>> Ids(const std::string& key) const {
    std::vector<int64_t> ids;
    if (!Has(key)) return ids;
    const Json& v = json_.at(key);
    if (v.is_number_integer()) return std::vector<int64_t>{v.get<int64_t>()};
    if (!v.is_array()) return KeyError(source_, key, "must be an integer or a list of integers");
    for (const Json& e : v) {
      if (!e.is_number_integer()) return KeyError(source_, key, "must hold only integers");
      ids.push_back(e.get<int64_t>());
    }
    return ids;
  }
  const Json& json() const { return json_; }
  const std::string& source() const { return source_; }

 private:
  const Json& json_;
  std::string source_;
};

absl::Status ParseGpt1(const Reader& r, ModelConfig& c) {
  TRIAD_ASSIGN_OR_RETURN(c.vocab_size, r.Dim("vocab_size", 40478));
  TRIAD_ASSIGN_OR_RETURN(c.max_positions, r.Dim("n_positions", 512));
  TRIAD_ASSIGN_OR_RETURN(c.hidden_size, r.Dim("n_embd", 768));
  TRIAD_ASSIGN_OR_RETURN(c.num_layers, r.Dim("n_layer", 12));
  TRIAD_ASSIGN_OR_RETURN(c.num_heads, r.Dim("n_head", 12));
  TRIAD_ASSIGN_OR_RETURN(c.norm_eps, r.Float("layer_norm_epsilon", 1e-5));
  TRIAD_ASSIGN_OR_RETURN(std::string afn, r.String("afn", "gelu"));
  // openai-gpt's ACT_FNS: "gelu" is the tanh approximation (gelu_new), "swish" is silu.
  if (afn == "gelu") {
    c.activation = "gelu_new";
  } else if (afn == "relu" || afn == "silu") {
    c.activation = afn;
  } else if (afn == "swish") {
    c.activation = "silu";
  } else {
    return KeyError(r.source(), "afn", absl::StrCat("unsupported activation \"", afn, "\""));
  }
  if (c.hidden_size % c.num_heads != 0) {
    return KeyError(r.source(), "n_head", "must divide n_embd");
  }
  c.num_kv_heads = c.num_heads;
  c.head_dim = c.hidden_size / c.num_heads;
  c.intermediate_size = 4 * c.hidden_size;
  TRIAD_ASSIGN_OR_RETURN(c.tie_word_embeddings, r.Bool("tie_word_embeddings", true));
  return absl::OkStatus();
}

absl::Status ParseT5(const Reader& r, ModelConfig& c) {
  TRIAD_ASSIGN_OR_RETURN(c.vocab_size, r.Dim("vocab_size", 32128));
  TRIAD_ASSIGN_OR_RETURN(c.hidden_size, r.Dim("d_model", 512));
  TRIAD_ASSIGN_OR_RETURN(c.head_dim, r.Dim("d_kv", 64));
  TRIAD_ASSIGN_OR_RETURN(c.intermediate_size, r.Dim("d_ff", 2048));
  TRIAD_ASSIGN_OR_RETURN(c.num_layers, r.Dim("num_layers", 6));
  TRIAD_ASSIGN_OR_RETURN(c.num_decoder_layers, r.Dim("num_decoder_layers", c.num_layers));
  TRIAD_ASSIGN_OR_RETURN(c.num_heads, r.Dim("num_heads", 8));
  c.num_kv_heads = c.num_heads;
  TRIAD_ASSIGN_OR_RETURN(c.relative_attention_num_buckets,
                         r.Dim("relative_attention_num_buckets", 32));
  TRIAD_ASSIGN_OR_RETURN(c.relative_attention_max_distance,
                         r.Dim("relative_attention_max_distance", 128));
  TRIAD_ASSIGN_OR_RETURN(c.norm_eps, r.Float("layer_norm_epsilon", 1e-6));
  TRIAD_ASSIGN_OR_RETURN(std::string ff, r.String("feed_forward_proj", "relu"));
  // HF: "gated-gelu" means gated with gelu_new; otherwise "gated-<act>" or "<act>".
  std::string act = ff;
  if (ff.rfind("gated-", 0) == 0) {
    c.gated_ff = true;
    act = ff.substr(6);
  }
  if (ff == "gated-gelu") act = "gelu_new";
  if (act != "relu" && act != "gelu_new" && act != "gelu" && act != "silu") {
    return KeyError(r.source(), "feed_forward_proj",
                    absl::StrCat("unsupported feed-forward \"", ff, "\""));
  }
  c.activation = act;
  TRIAD_ASSIGN_OR_RETURN(c.tie_word_embeddings, r.Bool("tie_word_embeddings", true));
  c.max_positions = 0;  // relative positions: no hard limit
  return absl::OkStatus();
}

absl::Status ParseRopeScaling(const Reader& r, ModelConfig& c) {
  if (!r.Has("rope_scaling")) return absl::OkStatus();
  const Json& rs = r.json().at("rope_scaling");
  if (!rs.is_object()) return KeyError(r.source(), "rope_scaling", "must be an object or null");
  Reader s(rs, r.source() + ": rope_scaling");
  std::string type;
  if (s.Has("rope_type")) {
    TRIAD_ASSIGN_OR_RETURN(type, s.String("rope_type", ""));
  } else {
    TRIAD_ASSIGN_OR_RETURN(type, s.String("type", ""));
  }
  RopeScaling& out = c.rope_scaling;
  if (type == "default") return absl::OkStatus();
  if (type == "linear") {
    out.type = RopeScaling::Type::kLinear;
  } else if (type == "llama3") {
    out.type = RopeScaling::Type::kLlama3;
    TRIAD_ASSIGN_OR_RETURN(out.low_freq_factor, s.Float("low_freq_factor", 1.0));
    TRIAD_ASSIGN_OR_RETURN(out.high_freq_factor, s.Float("high_freq_factor", 4.0));
    TRIAD_ASSIGN_OR_RETURN(out.original_max_position_embeddings,
                           s.Dim("original_max_position_embeddings", 8192));
    if (out.high_freq_factor <= out.low_freq_factor) {
      return KeyError(r.source(), "rope_scaling.high_freq_factor",
                      "must be greater than low_freq_factor");
    }
  } else {
    return KeyError(r.source(), "rope_scaling.rope_type",
                    absl::StrCat("unsupported type \"", type, "\" (supported: linear, llama3)"));
  }
  TRIAD_ASSIGN_OR_RETURN(out.factor, s.Float("factor", 1.0));
  if (out.factor < 1.0) return KeyError(r.source(), "rope_scaling.factor", "must be >= 1");
  return absl::OkStatus();
}

absl::Status ParseLlama(const Reader& r, ModelConfig& c) {
  TRIAD_ASSIGN_OR_RETURN(c.vocab_size, r.Dim("vocab_size", 32000));
  TRIAD_ASSIGN_OR_RETURN(c.hidden_size, r.Dim("hidden_size", 4096));
  TRIAD_ASSIGN_OR_RETURN(c.intermediate_size, r.Dim("intermediate_size", 11008));
  TRIAD_ASSIGN_OR_RETURN(c.num_layers, r.Dim("num_hidden_layers", 32));
  TRIAD_ASSIGN_OR_RETURN(c.num_heads, r.Dim("num_attention_heads", 32));
  TRIAD_ASSIGN_OR_RETURN(c.num_kv_heads, r.Dim("num_key_value_heads", c.num_heads));
  TRIAD_ASSIGN_OR_RETURN(c.max_positions, r.Dim("max_position_embeddings", 2048));
  TRIAD_ASSIGN_OR_RETURN(c.norm_eps, r.Float("rms_norm_eps", 1e-6));
  TRIAD_ASSIGN_OR_RETURN(c.rope_theta, r.Float("rope_theta", 10000.0));
  TRIAD_ASSIGN_OR_RETURN(c.attention_bias, r.Bool("attention_bias", false));
  TRIAD_ASSIGN_OR_RETURN(c.mlp_bias, r.Bool("mlp_bias", false));
  // LlamaConfig's own default is untied (unlike PretrainedConfig's).
  TRIAD_ASSIGN_OR_RETURN(c.tie_word_embeddings, r.Bool("tie_word_embeddings", false));
  TRIAD_ASSIGN_OR_RETURN(std::string act, r.String("hidden_act", "silu"));
  if (act != "silu") {
    return KeyError(r.source(), "hidden_act", absl::StrCat("unsupported \"", act, "\" (silu only)"));
  }
  c.activation = act;
  if (c.num_heads % c.num_kv_heads != 0) {
    return KeyError(r.source(), "num_key_value_heads", "must divide num_attention_heads");
  }
  if (!r.Has("head_dim") && c.hidden_size % c.num_heads != 0) {
    return KeyError(r.source(), "num_attention_heads", "must divide hidden_size");
  }
  TRIAD_ASSIGN_OR_RETURN(c.head_dim, r.Dim("head_dim", c.hidden_size / c.num_heads));
  if (c.head_dim % 2 != 0) return KeyError(r.source(), "head_dim", "must be even for RoPE");
  TRIAD_RETURN_IF_ERROR(ParseRopeScaling(r, c));
  if (c.bos_token_id < 0) c.bos_token_id = 1;
  return absl::OkStatus();
}

absl::Status ParseLabels(const Reader& r, ModelConfig& c) {
  c.id2label.clear();
  if (r.Has("id2label")) {
    const Json& m = r.json().at("id2label");
    if (!m.is_object()) return KeyError(r.source(), "id2label", "must be an object");
    c.id2label.resize(m.size());
    for (auto it = m.begin(); it != m.end(); ++it) {
      int64_t id = -1;
      if (!absl::SimpleAtoi(it.key(), &id) || id < 0 || id >= static_cast<int64_t>(m.size())) {
        return KeyError(r.source(), "id2label",
                        absl::StrCat("keys must be 0..", m.size() - 1, ", got \"", it.key(), "\""));
      }
      if (!it.value().is_string()) return KeyError(r.source(), "id2label", "values must be strings");
      c.id2label[id] = it.value().get<std::string>();
    }
  }
  TRIAD_ASSIGN_OR_RETURN(int64_t num_labels,
                         r.Int("num_labels", c.id2label.empty() ? 2 : c.id2label.size()));
  // Found by fuzzing: a negative count threw std::length_error out of the resize below (a
  // crash at load), and a huge one allocated a label name per count.
  constexpr int64_t kMaxLabels = int64_t{1} << 16;
  if (num_labels < 0 || num_labels > kMaxLabels) {
    return KeyError(r.source(), "num_labels",
                    absl::StrCat("must be 0..", kMaxLabels, ", got ", num_labels));
  }
  if (c.head == HeadKind::kDoubleHeads) num_labels = 1;  // HF forces it in __init__
  c.num_labels = num_labels;
  for (int64_t i = static_cast<int64_t>(c.id2label.size()); i < num_labels; ++i) {
    c.id2label.push_back(absl::StrCat("LABEL_", i));
  }
  c.id2label.resize(num_labels);
  return absl::OkStatus();
}

absl::Status ParseTokens(const Reader& r, ModelConfig& c) {
  TRIAD_ASSIGN_OR_RETURN(std::vector<int64_t> eos, r.Ids("eos_token_id"));
  if (!eos.empty()) c.eos_token_ids = eos;
  TRIAD_ASSIGN_OR_RETURN(c.bos_token_id, r.Int("bos_token_id", c.bos_token_id));
  TRIAD_ASSIGN_OR_RETURN(c.pad_token_id, r.Int("pad_token_id", c.pad_token_id));
  TRIAD_ASSIGN_OR_RETURN(c.decoder_start_token_id,
                         r.Int("decoder_start_token_id", c.decoder_start_token_id));
  return absl::OkStatus();
}

absl::StatusOr<Json> ParseJson(const std::string& text, const std::string& source) {
  try {
    Json j = Json::parse(text);
    if (!j.is_object()) return absl::InvalidArgumentError(source + ": not a JSON object");
    return j;
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": invalid JSON: ", e.what()));
  }
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

HeadKind HeadOf(const std::string& architecture) {
  if (architecture == "OpenAIGPTForSequenceClassification") {
    return HeadKind::kSequenceClassification;
  }
  if (architecture == "OpenAIGPTDoubleHeadsModel") return HeadKind::kDoubleHeads;
  return HeadKind::kLanguageModel;
}

}  // namespace

const char* FamilyName(Family family) {
  switch (family) {
    case Family::kGpt1: return "gpt1";
    case Family::kT5: return "t5";
    case Family::kLlama: return "llama";
  }
  return "unknown";
}

absl::StatusOr<ModelConfig> ParseModelConfig(const std::string& config_json,
                                             const std::string& generation_json,
                                             const std::string& source) {
  TRIAD_ASSIGN_OR_RETURN(Json json, ParseJson(config_json, source));
  Reader r(json, source);
  ModelConfig c;
  TRIAD_ASSIGN_OR_RETURN(c.model_type, r.String("model_type", ""));
  if (r.Has("architectures")) {
    const Json& a = json.at("architectures");
    if (!a.is_array() || (!a.empty() && !a[0].is_string())) {
      return KeyError(source, "architectures", "must be a list of strings");
    }
    if (!a.empty()) c.architecture = a[0].get<std::string>();
  }
  c.head = HeadOf(c.architecture);
  if (c.model_type == "openai-gpt") {
    c.family = Family::kGpt1;
    TRIAD_RETURN_IF_ERROR(ParseGpt1(r, c));
  } else if (c.model_type == "t5") {
    c.family = Family::kT5;
    c.pad_token_id = 0;
    c.eos_token_ids = {1};
    TRIAD_RETURN_IF_ERROR(ParseT5(r, c));
  } else if (c.model_type == "llama") {
    c.family = Family::kLlama;
    c.eos_token_ids = {2};
    TRIAD_RETURN_IF_ERROR(ParseLlama(r, c));
  } else {
    return KeyError(source, "model_type",
                    absl::StrCat("unsupported model_type \"", c.model_type,
                                 "\" (supported: openai-gpt, t5, llama)"));
  }
  TRIAD_RETURN_IF_ERROR(ParseLabels(r, c));
  TRIAD_RETURN_IF_ERROR(ParseTokens(r, c));
  if (!generation_json.empty()) {
    std::string gen_source = source;
    const size_t slash = gen_source.find_last_of('/');
    gen_source = (slash == std::string::npos ? "" : gen_source.substr(0, slash + 1)) +
                 "generation_config.json";
    TRIAD_ASSIGN_OR_RETURN(Json gen, ParseJson(generation_json, gen_source));
    TRIAD_RETURN_IF_ERROR(ParseTokens(Reader(gen, gen_source), c));
  }
  if (c.family == Family::kT5 && c.decoder_start_token_id < 0) {
    c.decoder_start_token_id = c.pad_token_id;
  }
  return c;
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir) {
  const std::string config_path = model_dir + "/config.json";
  TRIAD_ASSIGN_OR_RETURN(std::string config_text, ReadFile(config_path));
  std::string generation_text;
  auto gen = ReadFile(model_dir + "/generation_config.json");
  if (gen.ok()) generation_text = std::move(gen).value();
  return ParseModelConfig(config_text, generation_text, config_path);
}

absl::Status CheckTokenIds(const std::vector<int64_t>& ids, int64_t vocab_size,
                           const std::string& field) {
  for (int64_t id : ids) {
    if (id < 0 || id >= vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": token id ", id,
                                                     " outside the vocabulary [0, ", vocab_size,
                                                     ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace triad
