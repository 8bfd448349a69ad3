// Loading: tokenizer.json, SentencePiece .model, and model folders (file choice and special
// ids as transformers does it).
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "model/tokenizer/json_fields.h"
#include "model/tokenizer/pipeline.h"
#include "model/tokenizer/sentencepiece_converter.h"
#include "model/tokenizer/tokenizer.h"
#include "model/tokenizer/unicode.h"

namespace triad::tokenizer {

using Json = nlohmann::json;

class TokenizerLoader {
 public:
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJson(const Json& root) {
    absl::StatusOr<Pipeline> pipeline = absl::InternalError("unset");
    try {
      pipeline = LoadPipeline(root);
    } catch (const nlohmann::json::exception& e) {
      // The loaders check types before reading; this is a last line of defence.
      return absl::InvalidArgumentError(absl::StrCat("tokenizer.json: ", e.what()));
    }
    if (!pipeline.ok()) return pipeline.status();
    auto tokenizer =
        std::unique_ptr<Tokenizer>(new Tokenizer(std::make_unique<Pipeline>(*std::move(pipeline))));
    return tokenizer;
  }

  static void SetSpecial(Tokenizer* t, int32_t bos, int32_t eos, int32_t pad, int32_t unk,
                         std::vector<int32_t> extra_eos) {
    t->SetSpecialIds(bos, eos, pad, std::move(extra_eos));
    t->unk_id_ = unk;
  }

  static void SetConfig(Tokenizer* t, const TokenizerConfig& config) { t->config_ = config; }
  static void SetSource(Tokenizer* t, std::string source) { t->source_ = std::move(source); }
};

namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading ", path));
  return buffer.str();
}

absl::StatusOr<Json> ParseJson(std::string_view text, std::string_view what) {
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, out_of_range (1e999)...
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(what), ": invalid JSON: ", e.what()));
  }
}

// A JSON file of the folder, or an empty object when it does not exist.
absl::StatusOr<Json> ReadOptionalJson(const std::filesystem::path& dir, const char* name) {
  const auto path = dir / name;
  if (!std::filesystem::exists(path)) return Json::object();
  TRIAD_ASSIGN_OR_RETURN(const std::string text, ReadFile(path.string()));
  return ParseJson(text, path.string());
}

// "bos_token": "<s>" or {"content": "<s>", ...} or null.
std::optional<std::string> TokenString(const Json& config, const char* key) {
  if (!config.is_object() || !config.contains(key)) return std::nullopt;
  const Json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    return v["content"].get<std::string>();
  }
  return std::nullopt;
}

// The ids of `key` (one id or a list), leaving out what is not a token id (as the other
// values of these files that are not what we read: nothing else of them is validated).
std::vector<int32_t> IdList(const Json& config, const char* key) {
  std::vector<int32_t> ids;
  if (!config.is_object() || !config.contains(key)) return ids;
  const Json& v = config[key];
  for (const Json& id : v.is_array() ? v : Json::array({v})) {
    if (const auto valid = json_fields::TokenId(id, key); valid.ok()) ids.push_back(*valid);
  }
  return ids;
}

struct FolderConfig {
  Json tokenizer_config, special_tokens_map, generation_config;
};

// tokenizer_config.json, then special_tokens_map.json, then generation_config.json, then
// the fallback (the .model's trainer ids).
int32_t ResolveId(const Tokenizer& t, const FolderConfig& c, const char* token_key,
                  const char* id_key, int32_t fallback) {
  for (const Json* config : {&c.tokenizer_config, &c.special_tokens_map}) {
    if (const auto token = TokenString(*config, token_key)) {
      if (const auto id = t.TokenToId(*token)) return *id;
    }
  }
  const std::vector<int32_t> ids = IdList(c.generation_config, id_key);
  return ids.empty() ? fallback : ids.front();
}

void ApplyFolderConfig(const FolderConfig& c, const SentencePieceConversion* spm, Tokenizer* t) {
  const int32_t bos = ResolveId(*t, c, "bos_token", "bos_token_id", spm ? spm->bos_id : -1);
  const int32_t eos = ResolveId(*t, c, "eos_token", "eos_token_id", spm ? spm->eos_id : -1);
  const int32_t pad = ResolveId(*t, c, "pad_token", "pad_token_id", spm ? spm->pad_id : -1);
  const int32_t unk = ResolveId(*t, c, "unk_token", "unk_token_id", spm ? spm->unk_id : -1);
  TokenizerLoader::SetSpecial(t, bos, eos, pad, unk, IdList(c.generation_config, "eos_token_id"));
  TokenizerConfig config;
  const Json& tc = c.tokenizer_config;
  const auto flag = [&](const char* key) {
    return tc.contains(key) && tc[key].is_boolean() && tc[key].get<bool>();
  };
  config.clean_up_tokenization_spaces = flag("clean_up_tokenization_spaces");
  config.add_bos_token = flag("add_bos_token");
  config.add_eos_token = flag("add_eos_token");
  // transformers writes int(1e30) when the length is unknown; it does not fit an int64.
  if (tc.contains("model_max_length") && tc["model_max_length"].is_number_integer()) {
    config.model_max_length = tc["model_max_length"].get<int64_t>();
  }
  TokenizerLoader::SetConfig(t, config);
}

// `model_type` is config.json's (the model's), used when tokenizer_config.json names no class.
SentencePieceOptions OptionsFromConfig(const Json& config, const std::string& model_type) {
  SentencePieceOptions o;
  const auto flag = [&](const char* key, bool fallback) {
    return config.contains(key) && config[key].is_boolean() ? config[key].get<bool>() : fallback;
  };
  o.legacy = flag("legacy", true);
  o.add_bos_token = flag("add_bos_token", true);
  o.add_eos_token = flag("add_eos_token", false);
  const std::string cls = config.value("tokenizer_class", "");
  if (cls.rfind("T5", 0) == 0) o.layout = "t5";
  if (cls.rfind("Llama", 0) == 0) o.layout = "llama";
  if (cls.empty() && (model_type == "t5" || model_type == "mt5" || model_type == "umt5")) {
    o.layout = "t5";
  }
  if (cls.empty() && model_type == "llama") o.layout = "llama";
  o.extra_ids = config.contains("extra_ids") && config["extra_ids"].is_number_integer()
                    ? config["extra_ids"].get<int>()
                    : (o.layout == "t5" ? 100 : 0);
  return o;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> FromConversion(const SentencePieceConversion& conv) {
  TRIAD_ASSIGN_OR_RETURN(auto tokenizer, TokenizerLoader::FromJson(conv.tokenizer_json));
  TokenizerLoader::SetSpecial(tokenizer.get(), conv.bos_id, conv.eos_id, conv.pad_id, conv.unk_id,
                              {});
  return tokenizer;
}

// A folder's .model, converted with the folder's tokenizer_config.json and config.json.
absl::StatusOr<std::unique_ptr<Tokenizer>> FromSentencePieceInDir(const std::filesystem::path& dir,
                                                                  const std::filesystem::path& path,
                                                                  const FolderConfig& config) {
  TRIAD_ASSIGN_OR_RETURN(const std::string bytes, ReadFile(path.string()));
  const Json& tc = config.tokenizer_config;
  const Json added =
      tc.is_object() && tc.contains("added_tokens_decoder") ? tc["added_tokens_decoder"] : Json();
  TRIAD_ASSIGN_OR_RETURN(const Json model_config, ReadOptionalJson(dir, "config.json"));
  const std::string model_type = model_config.is_object() && model_config.contains("model_type") &&
                                         model_config["model_type"].is_string()
                                     ? model_config["model_type"].get<std::string>()
                                     : "";
  auto conv = ConvertSentencePiece(bytes, OptionsFromConfig(tc, model_type), added);
  if (!conv.ok()) {
    return absl::Status(conv.status().code(),
                        absl::StrCat(path.string(), ": ", conv.status().message()));
  }
  TRIAD_ASSIGN_OR_RETURN(auto tokenizer, FromConversion(*conv));
  ApplyFolderConfig(config, &*conv, tokenizer.get());
  TokenizerLoader::SetSource(tokenizer.get(), path.string());
  return tokenizer;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJsonString(std::string_view json) {
  TRIAD_ASSIGN_OR_RETURN(const Json root, ParseJson(json, "tokenizer.json"));
  return TokenizerLoader::FromJson(root);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJsonFile(const std::string& path) {
  TRIAD_ASSIGN_OR_RETURN(const std::string text, ReadFile(path));
  auto tokenizer = FromJsonString(text);
  if (!tokenizer.ok()) {
    return absl::Status(tokenizer.status().code(),
                        absl::StrCat(path, ": ", tokenizer.status().message()));
  }
  TokenizerLoader::SetSource(tokenizer->get(), path);
  return tokenizer;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromSentencePieceString(
    std::string_view serialized, const SentencePieceOptions& options) {
  TRIAD_ASSIGN_OR_RETURN(const SentencePieceConversion conv,
                         ConvertSentencePiece(serialized, options, Json()));
  return FromConversion(conv);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromSentencePieceFile(
    const std::string& path, const SentencePieceOptions& options) {
  TRIAD_ASSIGN_OR_RETURN(const std::string bytes, ReadFile(path));
  auto tokenizer = FromSentencePieceString(bytes, options);
  if (!tokenizer.ok()) {
    return absl::Status(tokenizer.status().code(),
                        absl::StrCat(path, ": ", tokenizer.status().message()));
  }
  TokenizerLoader::SetSource(tokenizer->get(), path);
  return tokenizer;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromDir(const std::string& model_dir) {
  const std::filesystem::path dir(model_dir);
  FolderConfig config;
  TRIAD_ASSIGN_OR_RETURN(config.tokenizer_config, ReadOptionalJson(dir, "tokenizer_config.json"));
  TRIAD_ASSIGN_OR_RETURN(config.special_tokens_map,
                         ReadOptionalJson(dir, "special_tokens_map.json"));
  TRIAD_ASSIGN_OR_RETURN(config.generation_config, ReadOptionalJson(dir, "generation_config.json"));
  if (std::filesystem::exists(dir / "tokenizer.json")) {
    TRIAD_ASSIGN_OR_RETURN(auto tokenizer, FromJsonFile((dir / "tokenizer.json").string()));
    ApplyFolderConfig(config, nullptr, tokenizer.get());
    return tokenizer;
  }
  for (const char* name : {"tokenizer.model", "spiece.model"}) {
    const auto path = dir / name;
    if (!std::filesystem::exists(path)) continue;
    return FromSentencePieceInDir(dir, path, config);
  }
  return absl::NotFoundError(absl::StrCat(
      model_dir, ": no tokenizer.json, tokenizer.model or spiece.model in the folder"));
}

}  // namespace triad::tokenizer
