#include "server/config.h"

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "model/status_macros.h"
#include "server/config_internal.h"
#include "server/request_log.h"

namespace triad {
namespace config_internal {

std::string Quote(absl::string_view text) {
  return absl::StrCat("\"", absl::CHexEscape(text), "\"");
}

absl::Status KeyError(absl::string_view source, absl::string_view key_path,
                      absl::string_view what) {
  std::string message;
  if (!source.empty()) absl::StrAppend(&message, source, ": ");
  if (!key_path.empty()) absl::StrAppend(&message, key_path, ": ");
  absl::StrAppend(&message, what);
  return absl::InvalidArgumentError(message);
}

std::string ModelKey(size_t index, absl::string_view key) {
  return absl::StrCat("models[", index, "]", key.empty() ? "" : ".", key);
}

std::string Shown(const Json& value) {
  std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > 40) text = absl::StrCat(text.substr(0, 37), "...");
  return text;
}

}  // namespace config_internal

namespace {

using config_internal::Json;
using config_internal::KeyError;
using config_internal::ModelKey;
using config_internal::ObjectReader;
using config_internal::Quote;
using config_internal::ReadClassify;
using config_internal::Shown;
using config_internal::ValidateClassify;

namespace fs = std::filesystem;

constexpr std::initializer_list<const char*> kServerKeys = {
    "listen", "metrics_port", "threads", "shutdown_grace_ms", "request_log", "models"};
constexpr std::initializer_list<const char*> kModelKeys = {"name",
                                                           "path",
                                                           "tokenizer",
                                                           "device",
                                                           "dtype",
                                                           "max_batch_size",
                                                           "max_context",
                                                           "kv_budget_mb",
                                                           "kv_block_size",
                                                           "prefix_caching",
                                                           "cuda_graphs",
                                                           "max_queue",
                                                           "batch_window_ms",
                                                           "admission_window_ms",
                                                           "refill_window_ms",
                                                           "prefill_chunk_tokens",
                                                           "max_classify_batch",
                                                           "classify"};
constexpr std::initializer_list<const char*> kDtypes = {"float32", "bfloat16", "float16"};
constexpr int kMaxPort = 65535;

// --- Validation -------------------------------------------------------------------------------

bool AllDigits(absl::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// The port of a gRPC `host:port` address; the error carries only what is wrong.
absl::StatusOr<int> ListenPort(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(Quote(listen), " has no port (host:port)"));
  }
  const absl::string_view host = absl::string_view(listen).substr(0, colon);
  const absl::string_view port_text = absl::string_view(listen).substr(colon + 1);
  if (host.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quote(listen), " has no host (0.0.0.0:PORT listens on every interface)"));
  }
  const bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']';
  if (!bracketed && host.find_first_of(":[]") != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quote(listen), ": an IPv6 host goes in brackets, e.g. [::1]:50051"));
  }
  int port = 0;
  if (!AllDigits(port_text) || !absl::SimpleAtoi(port_text, &port) || port < 1 || port > kMaxPort) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quote(listen), ": port must be 1..65535, got ", Quote(port_text)));
  }
  return port;
}

bool IsValidDevice(const std::string& device) {
  if (device == "cpu" || device == "cuda") return true;
  int index = 0;
  return absl::StartsWith(device, "cuda:") && AllDigits(device.substr(5)) &&
         absl::SimpleAtoi(device.substr(5), &index);
}

// What is wrong with a device or dtype value ("" when it is valid): the same words for the
// file's keys and the --device / --dtype flags.
std::string DeviceProblem(const std::string& device) {
  if (IsValidDevice(device)) return "";
  return absl::StrCat("unsupported ", Quote(device), " (cpu, cuda, cuda:N)");
}

std::string DtypeProblem(const std::string& dtype) {
  for (const char* known : kDtypes) {
    if (dtype == known) return "";
  }
  return absl::StrCat("unsupported ", Quote(dtype), " (", absl::StrJoin(kDtypes, ", "), ")");
}

bool IsValidName(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

absl::Status CheckRange(absl::string_view source, absl::string_view key, int64_t value, int64_t min,
                        int64_t max) {
  if (value >= min && value <= max) return absl::OkStatus();
  if (max == std::numeric_limits<int64_t>::max()) {
    return KeyError(source, key, absl::StrCat("must be >= ", min, ", got ", value));
  }
  return KeyError(source, key, absl::StrCat("must be ", min, "..", max, ", got ", value));
}

// `folder` exists, is a folder and (when `needs_config`) holds a Hugging Face config.json.
absl::Status CheckFolder(absl::string_view source, absl::string_view key, const std::string& folder,
                         bool needs_config) {
  if (folder.empty()) return KeyError(source, key, "must not be empty");
  std::error_code error;
  if (!fs::exists(folder, error)) {
    return KeyError(source, key, absl::StrCat("folder ", Quote(folder), " does not exist"));
  }
  if (!fs::is_directory(folder, error)) {
    return KeyError(source, key, absl::StrCat(Quote(folder), " is not a folder"));
  }
  if (needs_config && !fs::is_regular_file(fs::path(folder) / "config.json", error)) {
    return KeyError(source, key,
                    absl::StrCat("folder ", Quote(folder),
                                 " has no config.json (not a Hugging Face model folder)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateModelStrings(const std::string& source, size_t index,
                                  const ModelServingConfig& model) {
  if (!IsValidName(model.name)) {
    return KeyError(source, ModelKey(index, "name"),
                    absl::StrCat(Quote(model.name), " is not a valid name ([A-Za-z0-9._-]+)"));
  }
  if (const std::string problem = DeviceProblem(model.device); !problem.empty()) {
    return KeyError(source, ModelKey(index, "device"), problem);
  }
  if (const std::string problem = DtypeProblem(model.dtype); !problem.empty()) {
    return KeyError(source, ModelKey(index, "dtype"), problem);
  }
  TRIAD_RETURN_IF_ERROR(CheckFolder(source, ModelKey(index, "path"), model.path, true));
  if (model.tokenizer.empty()) return absl::OkStatus();
  return CheckFolder(source, ModelKey(index, "tokenizer"), model.tokenizer, false);
}

absl::Status ValidateModelLimits(const std::string& source, size_t index,
                                 const ModelServingConfig& model) {
  constexpr int64_t kNoMax = std::numeric_limits<int64_t>::max();
  const struct {
    const char* key;
    int64_t value;
    int64_t min;
  } limits[] = {
      {"max_batch_size", model.max_batch_size, 1},
      {"max_context", model.max_context, 0},
      {"kv_budget_mb", model.kv_budget_mb, 0},
      {"max_queue", model.max_queue, 0},
      {"batch_window_ms", model.batch_window_ms, 0},
      {"admission_window_ms", model.admission_window_ms, 0},
      {"refill_window_ms", model.refill_window_ms, 0},
      {"prefill_chunk_tokens", model.prefill_chunk_tokens, 1},
      {"max_classify_batch", model.max_classify_batch, 1},
  };
  for (const auto& limit : limits) {
    TRIAD_RETURN_IF_ERROR(
        CheckRange(source, ModelKey(index, limit.key), limit.value, limit.min, kNoMax));
  }
  TRIAD_RETURN_IF_ERROR(
      CheckRange(source, ModelKey(index, "kv_block_size"), model.kv_block_size, 1, 1024));
  return absl::OkStatus();
}

absl::Status ValidateModels(const std::string& source,
                            const std::vector<ModelServingConfig>& models) {
  if (models.empty()) return KeyError(source, "models", "needs at least one model");
  std::map<std::string, size_t> first_index;
  for (size_t i = 0; i < models.size(); ++i) {
    TRIAD_RETURN_IF_ERROR(ValidateModelStrings(source, i, models[i]));
    TRIAD_RETURN_IF_ERROR(ValidateModelLimits(source, i, models[i]));
    TRIAD_RETURN_IF_ERROR(ValidateClassify(source, i, models[i].classify));
    const auto [it, inserted] = first_index.emplace(models[i].name, i);
    if (!inserted) {
      return KeyError(source, ModelKey(i, "name"),
                      absl::StrCat("duplicate ", Quote(models[i].name), " (also ",
                                   ModelKey(it->second, "name"), ")"));
    }
  }
  return absl::OkStatus();
}

// --- JSON reading -----------------------------------------------------------------------------

// `path` as the daemon will open it: absolute, relative ones resolved against `base`.
std::string ResolvePath(const fs::path& base, const std::string& path) {
  if (path.empty()) return path;
  fs::path resolved = fs::path(path).is_absolute() ? fs::path(path) : base / path;
  std::error_code error;
  const fs::path absolute = fs::absolute(resolved, error);
  return (error ? resolved : absolute).lexically_normal().string();
}

// Relative paths resolve against `base`; an empty tokenizer becomes the model folder.
void ResolveModelPaths(const fs::path& base, ModelServingConfig* model) {
  model->path = ResolvePath(base, model->path);
  model->tokenizer = model->tokenizer.empty() ? model->path : ResolvePath(base, model->tokenizer);
}

absl::StatusOr<ModelServingConfig> ReadModel(const Json& json, const std::string& source,
                                             size_t index) {
  if (!json.is_object()) {
    return KeyError(source, ModelKey(index, ""),
                    absl::StrCat("must be an object, got ", Shown(json)));
  }
  const ObjectReader reader(json, source, ModelKey(index, ""));
  TRIAD_RETURN_IF_ERROR(reader.CheckKeys(kModelKeys));
  TRIAD_RETURN_IF_ERROR(reader.Require("name"));
  TRIAD_RETURN_IF_ERROR(reader.Require("path"));
  ModelServingConfig model;
  TRIAD_RETURN_IF_ERROR(reader.Read("name", &model.name));
  TRIAD_RETURN_IF_ERROR(reader.Read("path", &model.path));
  TRIAD_RETURN_IF_ERROR(reader.Read("tokenizer", &model.tokenizer));
  TRIAD_RETURN_IF_ERROR(reader.Read("device", &model.device));
  TRIAD_RETURN_IF_ERROR(reader.Read("dtype", &model.dtype));
  TRIAD_RETURN_IF_ERROR(reader.Read("max_batch_size", &model.max_batch_size));
  TRIAD_RETURN_IF_ERROR(reader.Read("max_context", &model.max_context));
  TRIAD_RETURN_IF_ERROR(reader.Read("kv_budget_mb", &model.kv_budget_mb));
  TRIAD_RETURN_IF_ERROR(reader.Read("kv_block_size", &model.kv_block_size));
  TRIAD_RETURN_IF_ERROR(reader.Read("prefix_caching", &model.prefix_caching));
  TRIAD_RETURN_IF_ERROR(reader.Read("cuda_graphs", &model.cuda_graphs));
  TRIAD_RETURN_IF_ERROR(reader.Read("max_queue", &model.max_queue));
  TRIAD_RETURN_IF_ERROR(reader.Read("batch_window_ms", &model.batch_window_ms));
  TRIAD_RETURN_IF_ERROR(reader.Read("admission_window_ms", &model.admission_window_ms));
  TRIAD_RETURN_IF_ERROR(reader.Read("refill_window_ms", &model.refill_window_ms));
  TRIAD_RETURN_IF_ERROR(reader.Read("prefill_chunk_tokens", &model.prefill_chunk_tokens));
  TRIAD_RETURN_IF_ERROR(reader.Read("max_classify_batch", &model.max_classify_batch));
  TRIAD_ASSIGN_OR_RETURN(model.classify, ReadClassify(reader, source));
  ResolveModelPaths(fs::path(source).parent_path(), &model);
  return model;
}

// JSON text to a document. nlohmann keeps the last of repeated keys; a repeat is an error
// here, since it is as much a silent typo as an unknown key.
absl::StatusOr<Json> ParseJson(const std::string& text, const std::string& source) {
  std::vector<std::set<std::string>> open_objects;
  std::string repeated;
  const Json::parser_callback_t on_event = [&](int, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) open_objects.emplace_back();
    if (event == Json::parse_event_t::object_end && !open_objects.empty()) open_objects.pop_back();
    if (event == Json::parse_event_t::key && !open_objects.empty() && repeated.empty() &&
        !open_objects.back().insert(parsed.get<std::string>()).second) {
      repeated = parsed.get<std::string>();
    }
    return true;
  };
  Json json;
  try {
    json = Json::parse(text, on_event);
  } catch (const Json::exception& e) {
    return KeyError(source, "", absl::StrCat("invalid JSON: ", e.what()));
  }
  if (!repeated.empty()) {
    return KeyError(source, "", absl::StrCat("key ", Quote(repeated), " appears twice"));
  }
  return json;
}

// Parses without Validate(), so that flags can complete or fix the file first.
absl::StatusOr<ServerConfig> ParseUnvalidated(const std::string& json_text,
                                              const std::string& source) {
  TRIAD_ASSIGN_OR_RETURN(const Json root, ParseJson(json_text, source));
  if (!root.is_object()) {
    return KeyError(source, "", absl::StrCat("must be a JSON object, got ", Shown(root)));
  }
  ServerConfig config;
  config.source = source;
  const ObjectReader reader(root, source, "");
  TRIAD_RETURN_IF_ERROR(reader.CheckKeys(kServerKeys));
  TRIAD_RETURN_IF_ERROR(reader.Read("listen", &config.listen));
  TRIAD_RETURN_IF_ERROR(reader.Read("metrics_port", &config.metrics_port));
  TRIAD_RETURN_IF_ERROR(reader.Read("threads", &config.threads));
  TRIAD_RETURN_IF_ERROR(reader.Read("shutdown_grace_ms", &config.shutdown_grace_ms));
  TRIAD_RETURN_IF_ERROR(reader.Read("request_log", &config.request_log));
  TRIAD_RETURN_IF_ERROR(reader.Require("models"));
  const Json& models = root.at("models");
  if (!models.is_array()) {
    return reader.Error("models", absl::StrCat("must be a list, got ", Shown(models)));
  }
  for (size_t i = 0; i < models.size(); ++i) {
    TRIAD_ASSIGN_OR_RETURN(ModelServingConfig model, ReadModel(models[i], source, i));
    config.models.push_back(std::move(model));
  }
  return config;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::error_code error;
  if (!fs::exists(path, error)) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  if (fs::is_directory(path, error)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": is a folder, not a config file"));
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot be read"));
  }
  return text.str();
}

// --- Flags ------------------------------------------------------------------------------------

struct Flags {
  std::string config_file;  // "" = none
  std::optional<std::string> listen;
  std::optional<int> metrics_port;
  std::optional<int> threads;
  std::optional<std::string> request_log;
  std::optional<std::string> device, dtype;  // for every model
  std::vector<ModelServingConfig> models;    // from --model, paths not yet resolved
};

constexpr std::initializer_list<const char*> kFlagNames = {
    "--config", "--listen", "--metrics-port", "--threads", "--request-log",
    "--model",  "--device", "--dtype"};

absl::Status FlagError(absl::string_view flag, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(flag, ": ", what));
}

absl::Status ParseIntFlag(absl::string_view flag, const std::string& value,
                          std::optional<int>* out) {
  int parsed = 0;
  if (!absl::SimpleAtoi(value, &parsed)) {
    return FlagError(flag, absl::StrCat("not an integer: ", Quote(value)));
  }
  *out = parsed;
  return absl::OkStatus();
}

absl::Status ApplyFlag(const std::string& flag, const std::string& value, Flags* flags) {
  if (flag == "--config") {
    flags->config_file = value;
  } else if (flag == "--listen") {
    flags->listen = value;
  } else if (flag == "--metrics-port") {
    return ParseIntFlag(flag, value, &flags->metrics_port);
  } else if (flag == "--threads") {
    return ParseIntFlag(flag, value, &flags->threads);
  } else if (flag == "--request-log") {
    flags->request_log = value;  // checked by Validate, naming request_log
  } else if (flag == "--device" || flag == "--dtype") {
    const bool device = flag == "--device";
    if (const std::string problem = device ? DeviceProblem(value) : DtypeProblem(value);
        !problem.empty()) {
      return FlagError(flag, problem);
    }
    (device ? flags->device : flags->dtype) = value;
  } else {  // --model
    const size_t equals = value.find('=');
    if (equals == std::string::npos || equals == 0 || equals + 1 == value.size()) {
      return FlagError(flag, absl::StrCat("expected NAME=PATH, got ", Quote(value)));
    }
    ModelServingConfig model;
    model.name = value.substr(0, equals);
    model.path = value.substr(equals + 1);
    flags->models.push_back(std::move(model));
  }
  return absl::OkStatus();
}

absl::StatusOr<Flags> ParseFlags(int argc, const char* const* argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (!absl::StartsWith(arg, "--")) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument ", Quote(arg), " (flags start with --)"));
    }
    const size_t equals = arg.find('=');
    const std::string flag = arg.substr(0, equals);
    bool known = false;
    for (const char* name : kFlagNames) known = known || flag == name;
    if (!known) {
      return FlagError(flag,
                       absl::StrCat("unknown flag (known: ", absl::StrJoin(kFlagNames, ", "), ")"));
    }
    if (equals == std::string::npos && i + 1 >= argc) return FlagError(flag, "needs a value");
    const std::string value = equals == std::string::npos ? argv[++i] : arg.substr(equals + 1);
    TRIAD_RETURN_IF_ERROR(ApplyFlag(flag, value, &flags));
  }
  if (flags.config_file.empty() && flags.models.empty()) {
    return absl::InvalidArgumentError(
        "--config FILE is required unless --model NAME=PATH is given");
  }
  return flags;
}

}  // namespace

absl::Status ServerConfig::Validate() const {
  const absl::StatusOr<int> grpc_port = ListenPort(listen);
  if (!grpc_port.ok()) return KeyError(source, "listen", grpc_port.status().message());
  TRIAD_RETURN_IF_ERROR(CheckRange(source, "metrics_port", metrics_port, 0, kMaxPort));
  if (metrics_port == *grpc_port) {
    return KeyError(
        source, "metrics_port",
        absl::StrCat(metrics_port, " is also the gRPC port (listen ", Quote(listen), ")"));
  }
  TRIAD_RETURN_IF_ERROR(CheckRange(source, "threads", threads, 0, kMaxThreads));
  TRIAD_RETURN_IF_ERROR(CheckRange(source, "shutdown_grace_ms", shutdown_grace_ms, 0,
                                   std::numeric_limits<int64_t>::max()));
  if (!ParseRequestLogLevel(request_log)) {
    return KeyError(source, "request_log",
                    absl::StrCat("unsupported ", Quote(request_log), " (none, errors, all)"));
  }
  return ValidateModels(source, models);
}

absl::StatusOr<ServerConfig> ParseServerConfig(const std::string& json_text,
                                               const std::string& source) {
  TRIAD_ASSIGN_OR_RETURN(ServerConfig config, ParseUnvalidated(json_text, source));
  TRIAD_RETURN_IF_ERROR(config.Validate());
  return config;
}

absl::StatusOr<ServerConfig> LoadServerConfig(const std::string& path) {
  TRIAD_ASSIGN_OR_RETURN(const std::string text, ReadFile(path));
  return ParseServerConfig(text, path);
}

absl::StatusOr<ServerConfig> ConfigFromFlags(int argc, const char* const* argv) {
  TRIAD_ASSIGN_OR_RETURN(Flags flags, ParseFlags(argc, argv));
  ServerConfig config;
  if (!flags.config_file.empty()) {
    TRIAD_ASSIGN_OR_RETURN(const std::string text, ReadFile(flags.config_file));
    TRIAD_ASSIGN_OR_RETURN(config, ParseUnvalidated(text, flags.config_file));
  }
  const bool overrides = flags.listen || flags.metrics_port || flags.threads ||
                         flags.request_log || flags.device || flags.dtype || !flags.models.empty();
  if (flags.listen) config.listen = *flags.listen;
  if (flags.metrics_port) config.metrics_port = *flags.metrics_port;
  if (flags.threads) config.threads = *flags.threads;
  if (flags.request_log) config.request_log = *flags.request_log;
  for (ModelServingConfig& model : flags.models) {
    ResolveModelPaths(fs::path(), &model);
    config.models.push_back(std::move(model));
  }
  for (ModelServingConfig& model : config.models) {
    if (flags.device) model.device = *flags.device;
    if (flags.dtype) model.dtype = *flags.dtype;
  }
  if (config.source.empty()) {
    config.source = "flags";
  } else if (overrides) {
    absl::StrAppend(&config.source, " + flags");
  }
  TRIAD_RETURN_IF_ERROR(config.Validate());
  return config;
}

}  // namespace triad
