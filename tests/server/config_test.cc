// Tests for server/config.h: the shipped deploy/triad.json, every rejection (each error must name
// the file and the key's JSON path), relative path resolution, and the flags merge.
#include "server/config.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/remove_tree.h"

namespace triad {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// `{<top> "models": [{"name": "a", "path": "m"<model>}]}`: one valid model plus the extra keys.
std::string Config(const std::string& top, const std::string& model) {
  return absl::StrCat("{", top, R"( "models": [{"name": "a", "path": "m")", model, "}]}");
}

// Each test gets a fresh folder with a fake model folder `m` (just a config.json) and a
// tokenizer folder `tok`; configs are written there too.
class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* base = getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/triad_config_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << pattern;
    dir_ = fs::path(pattern).lexically_normal().string();
    fs::create_directories(Path("m"));
    fs::create_directories(Path("tok"));
    Write("m/config.json", "{}");
  }
  void TearDown() override { triad::testing::RemoveTree(dir_); }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  std::string Write(const std::string& name, const std::string& text) const {
    std::ofstream(Path(name)) << text;
    return Path(name);
  }
  // Writes `text` as triad.json and loads it.
  absl::StatusOr<ServerConfig> Load(const std::string& text) const {
    return LoadServerConfig(Write("triad.json", text));
  }
  // ConfigFromFlags with "triadd" as argv[0].
  static absl::StatusOr<ServerConfig> FromFlags(const std::vector<std::string>& args) {
    std::vector<const char*> argv = {"triadd"};
    for (const std::string& arg : args) argv.push_back(arg.c_str());
    return ConfigFromFlags(static_cast<int>(argv.size()), argv.data());
  }

  std::string dir_;
};

// An INVALID_ARGUMENT whose message starts `<source>: <key_path>: ` and contains `what`.
void ExpectError(const absl::Status& status, const std::string& source, const std::string& key_path,
                 const std::string& what) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  const std::string prefix =
      key_path.empty() ? source + ": " : absl::StrCat(source, ": ", key_path, ": ");
  EXPECT_THAT(std::string(status.message()), StartsWith(prefix));
  EXPECT_THAT(std::string(status.message()), HasSubstr(what));
}

TEST_F(ConfigTest, ShippedConfigLoadsAndResolvesToTheBundledModels) {
  const std::string data = TRIAD_TEST_DATA_DIR;
  absl::StatusOr<ServerConfig> config = LoadServerConfig(data + "/../../deploy/triad.json");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen, "127.0.0.1:50051");
  EXPECT_EQ(config->metrics_port, 9090);
  ASSERT_EQ(config->models.size(), 4u);
  const char* names[] = {"llama-tiny", "t5-tiny", "gpt1-tiny", "gpt1-tiny-cls"};
  const char* tokenizers[] = {"llama-tiny", "t5-tiny", "gpt1-tiny", "gpt1-tiny"};
  for (size_t i = 0; i < 4; ++i) {
    const ModelServingConfig& model = config->models[i];
    EXPECT_EQ(model.name, names[i]);
    EXPECT_TRUE(fs::path(model.path).is_absolute()) << model.path;
    EXPECT_TRUE(fs::equivalent(model.path, data + "/models/" + names[i])) << model.path;
    EXPECT_TRUE(fs::equivalent(model.tokenizer, data + "/tokenizers/" + tokenizers[i]))
        << model.tokenizer;
    EXPECT_GT(model.kv_budget_mb, 0);
  }
  EXPECT_TRUE(config->Validate().ok());
}

TEST_F(ConfigTest, AbsentKeysKeepTheDefaults) {
  absl::StatusOr<ServerConfig> config = Load(Config("", ""));
  ASSERT_TRUE(config.ok()) << config.status();
  const ServerConfig defaults;
  const ModelServingConfig model_defaults;
  EXPECT_EQ(config->listen, defaults.listen);
  EXPECT_EQ(config->metrics_port, defaults.metrics_port);
  EXPECT_EQ(config->threads, defaults.threads);
  EXPECT_EQ(config->shutdown_grace_ms, defaults.shutdown_grace_ms);
  EXPECT_EQ(config->request_log, "errors");
  EXPECT_EQ(config->source, Path("triad.json"));
  const ModelServingConfig& model = config->models[0];
  EXPECT_EQ(model.device, model_defaults.device);
  EXPECT_EQ(model.dtype, model_defaults.dtype);
  EXPECT_EQ(model.max_batch_size, model_defaults.max_batch_size);
  EXPECT_EQ(model.max_context, model_defaults.max_context);
  EXPECT_EQ(model.kv_budget_mb, model_defaults.kv_budget_mb);
  EXPECT_EQ(model.max_queue, model_defaults.max_queue);
  EXPECT_EQ(model.batch_window_ms, model_defaults.batch_window_ms);
  EXPECT_EQ(model.admission_window_ms, 0);
  EXPECT_EQ(model.refill_window_ms, 10);
  EXPECT_EQ(model.prefill_chunk_tokens, model_defaults.prefill_chunk_tokens);
  EXPECT_TRUE(model.prefix_caching);
  EXPECT_TRUE(model.cuda_graphs);  // on by default (no effect off cuda)
  EXPECT_EQ(model.max_classify_batch, 32);
  EXPECT_TRUE(model.classify.tasks.empty());
  EXPECT_EQ(model.classify.start_token, "");
  EXPECT_EQ(model.classify.delimiter_token, "");
  EXPECT_EQ(model.classify.extract_token, "");
}

TEST_F(ConfigTest, ReadsTheClassifyBlock) {
  absl::StatusOr<ServerConfig> config = Load(Config("", R"(, "max_classify_batch": 4,
      "classify": {
        "special_tokens": {"start": "_s_", "delimiter": "_d_", "extract": "_e_"},
        "tasks": {
          "entailment": {"enabled": false},
          "similarity": {"preset": "mrpc", "template": "{text_a} / {text_b}",
                         "labels": ["no", "yes"], "targets": [" No", " Yes"],
                         "length_normalize": true, "regression": false},
          "multiple_choice": {"preset": "copa", "targets": ["one", "two"],
                              "choice_template": " -> {choice}"},
          "single": {}}})"));
  ASSERT_TRUE(config.ok()) << config.status();
  const ModelServingConfig& model = config->models[0];
  EXPECT_EQ(model.max_classify_batch, 4);
  const ClassifyConfig& classify = model.classify;
  EXPECT_EQ(classify.start_token, "_s_");
  EXPECT_EQ(classify.delimiter_token, "_d_");
  EXPECT_EQ(classify.extract_token, "_e_");
  ASSERT_EQ(classify.tasks.size(), 4u);
  EXPECT_FALSE(classify.tasks.at("entailment").enabled);
  const TaskConfig& similarity = classify.tasks.at("similarity");
  EXPECT_TRUE(similarity.enabled);
  EXPECT_EQ(similarity.preset, "mrpc");
  EXPECT_EQ(similarity.prompt_template, "{text_a} / {text_b}");
  EXPECT_EQ(similarity.labels, (std::vector<std::string>{"no", "yes"}));
  EXPECT_EQ(similarity.targets, (std::vector<std::string>{" No", " Yes"}));
  EXPECT_EQ(similarity.length_normalize, std::optional<bool>(true));
  EXPECT_EQ(similarity.regression, std::optional<bool>(false));
  // multiple_choice targets are fixed per choice position, without labels.
  EXPECT_EQ(classify.tasks.at("multiple_choice").preset, "copa");
  EXPECT_EQ(classify.tasks.at("multiple_choice").choice_template, " -> {choice}");
  EXPECT_EQ(classify.tasks.at("multiple_choice").targets, (std::vector<std::string>{"one", "two"}));
  const TaskConfig& single = classify.tasks.at("single");
  EXPECT_TRUE(single.enabled);
  EXPECT_EQ(single.preset, "");
  EXPECT_TRUE(single.labels.empty());
  EXPECT_FALSE(single.length_normalize.has_value());
  EXPECT_FALSE(single.regression.has_value());
}

TEST_F(ConfigTest, ReadsEveryKey) {
  absl::StatusOr<ServerConfig> config = Load(
      Config(R"("listen": "[::1]:7000", "metrics_port": 0, "threads": 4, "shutdown_grace_ms": 0,
                "request_log": "all",)",
             R"(, "tokenizer": "tok", "device": "cuda:1", "dtype": "bfloat16", "max_batch_size": 1,
      "max_context": 0, "kv_budget_mb": 64, "max_queue": 0, "batch_window_ms": 0,
      "prefill_chunk_tokens": 1, "kv_block_size": 32, "prefix_caching": false,
      "cuda_graphs": false, "admission_window_ms": 3, "refill_window_ms": 4)"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen, "[::1]:7000");
  EXPECT_EQ(config->metrics_port, 0);
  EXPECT_EQ(config->threads, 4);
  EXPECT_EQ(config->shutdown_grace_ms, 0);
  EXPECT_EQ(config->request_log, "all");
  const ModelServingConfig& model = config->models[0];
  EXPECT_EQ(model.tokenizer, Path("tok"));
  EXPECT_EQ(model.device, "cuda:1");
  EXPECT_EQ(model.dtype, "bfloat16");
  EXPECT_EQ(model.max_batch_size, 1);
  EXPECT_EQ(model.kv_budget_mb, 64);
  EXPECT_EQ(model.kv_block_size, 32);
  EXPECT_FALSE(model.prefix_caching);
  EXPECT_FALSE(model.cuda_graphs);
  EXPECT_EQ(model.max_queue, 0);
  EXPECT_EQ(model.batch_window_ms, 0);
  EXPECT_EQ(model.admission_window_ms, 3);
  EXPECT_EQ(model.refill_window_ms, 4);
  EXPECT_EQ(model.prefill_chunk_tokens, 1);
}

TEST_F(ConfigTest, AcceptsEveryDeviceForm) {
  for (const char* device : {"cpu", "cuda", "cuda:0", "cuda:12"}) {
    SCOPED_TRACE(device);
    absl::StatusOr<ServerConfig> config =
        Load(Config("", absl::StrCat(R"(, "device": ")", device, "\"")));
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->models[0].device, device);
  }
}

TEST_F(ConfigTest, ResolvesRelativePathsAgainstTheConfigFolder) {
  fs::create_directories(Path("conf"));
  absl::StatusOr<ServerConfig> config =
      LoadServerConfig(Write("conf/triad.json", R"({"models": [{"name": "a", "path": "../m"},
      {"name": "b", "path": "../m", "tokenizer": "../tok"},
      {"name": "c", "path": ")" + Path("m") + R"("}]})"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->models[0].path, Path("m"));
  EXPECT_EQ(config->models[0].tokenizer, Path("m")) << "no tokenizer = the model folder";
  EXPECT_EQ(config->models[1].tokenizer, Path("tok"));
  EXPECT_EQ(config->models[2].path, Path("m")) << "absolute paths stay";
}

TEST_F(ConfigTest, ParseResolvesAgainstTheSourceFolderWithoutReadingIt) {
  absl::StatusOr<ServerConfig> config = ParseServerConfig(Config("", ""), Path("unwritten.json"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->models[0].path, Path("m"));
}

struct Rejection {
  std::string json;
  std::string key_path;  // "" = the error is about the whole file
  std::string what;      // a substring of the message
};

TEST_F(ConfigTest, RejectionsNameTheFileAndTheKeyPath) {
  const std::vector<Rejection> rejections = {
      // Unknown keys, including typos of known ones.
      {Config(R"("listn": "127.0.0.1:1",)", ""), "listn", "unknown key"},
      {Config("", R"(, "dtpye": "float16")"), "models[0].dtpye", "unknown key"},
      // Wrong JSON types.
      {Config(R"("listen": 50051,)", ""), "listen", "must be a string"},
      {Config(R"("metrics_port": "9090",)", ""), "metrics_port", "must be an integer"},
      {Config(R"("threads": true,)", ""), "threads", "must be an integer"},
      {Config(R"("shutdown_grace_ms": null,)", ""), "shutdown_grace_ms", "must be an integer"},
      {Config(R"("request_log": true,)", ""), "request_log", "must be a string"},
      {Config("", R"(, "max_batch_size": 2.5)"), "models[0].max_batch_size", "integer"},
      {Config("", R"(, "device": 0)"), "models[0].device", "must be a string"},
      {Config("", R"(, "tokenizer": ["tok"])"), "models[0].tokenizer", "must be a string"},
      {R"({"models": {"name": "a"}})", "models", "must be a list"},
      {R"({"models": ["m"]})", "models[0]", "must be an object"},
      {R"(["models"])", "", "must be a JSON object"},
      // Malformed JSON and repeated keys.
      {R"({"models": [)", "", "invalid JSON"},
      {Config(R"("threads": 1, "threads": 2,)", ""), "", "\"threads\" appears twice"},
      // Required keys and the models list.
      {"{}", "models", "missing"},
      {R"({"models": [{"path": "m"}]})", "models[0].name", "missing"},
      {R"({"models": [{"name": "a"}]})", "models[0].path", "missing"},
      {R"({"models": []})", "models", "at least one"},
      {R"({"models": [{"name": "a", "path": "m"}, {"name": "a", "path": "m"}]})", "models[1].name",
       "duplicate \"a\" (also models[0].name)"},
      {R"({"models": [{"name": "a b", "path": "m"}]})", "models[0].name", "not a valid name"},
      {R"({"models": [{"name": "", "path": "m"}]})", "models[0].name", "not a valid name"},
      {R"({"models": [{"name": "a/b", "path": "m"}]})", "models[0].name", "not a valid name"},
      // Listen address and ports.
      {Config(R"("listen": "127.0.0.1",)", ""), "listen", "no port"},
      {Config(R"("listen": "127.0.0.1:0",)", ""), "listen", "port must be 1..65535"},
      {Config(R"("listen": "127.0.0.1:65536",)", ""), "listen", "port must be 1..65535"},
      {Config(R"("listen": "127.0.0.1:http",)", ""), "listen", "port must be 1..65535"},
      {Config(R"("listen": "127.0.0.1:",)", ""), "listen", "port must be 1..65535"},
      {Config(R"("listen": ":50051",)", ""), "listen", "no host"},
      {Config(R"("listen": "::1:50051",)", ""), "listen", "brackets"},
      {Config(R"("metrics_port": 65536,)", ""), "metrics_port", "0..65535"},
      {Config(R"("metrics_port": -1,)", ""), "metrics_port", "0..65535"},
      {Config(R"("metrics_port": 4294967296,)", ""), "metrics_port", "out of range"},
      {Config(R"("listen": "127.0.0.1:9000", "metrics_port": 9000,)", ""), "metrics_port",
       "also the gRPC port"},
      // Other numbers.
      {Config(R"("threads": -1,)", ""), "threads", "must be 0..1024"},
      {Config(R"("threads": 5000,)", ""), "threads", "must be 0..1024"},
      {Config(R"("shutdown_grace_ms": -1,)", ""), "shutdown_grace_ms", "must be >= 0"},
      {Config(R"("request_log": "debug",)", ""), "request_log",
       "unsupported \"debug\" (none, errors, all)"},
      {Config("", R"(, "max_batch_size": 0)"), "models[0].max_batch_size", "must be >= 1"},
      {Config("", R"(, "max_context": -1)"), "models[0].max_context", "must be >= 0"},
      {Config("", R"(, "kv_budget_mb": -1)"), "models[0].kv_budget_mb", "must be >= 0"},
      {Config("", R"(, "kv_block_size": 0)"), "models[0].kv_block_size", "must be 1..1024"},
      {Config("", R"(, "kv_block_size": 4096)"), "models[0].kv_block_size", "1024"},
      {Config("", R"(, "max_queue": -1)"), "models[0].max_queue", "must be >= 0"},
      {Config("", R"(, "batch_window_ms": -1)"), "models[0].batch_window_ms", "must be >= 0"},
      {Config("", R"(, "admission_window_ms": -1)"), "models[0].admission_window_ms",
       "must be >= 0"},
      {Config("", R"(, "refill_window_ms": -1)"), "models[0].refill_window_ms", "must be >= 0"},
      {Config("", R"(, "prefill_chunk_tokens": 0)"), "models[0].prefill_chunk_tokens",
       "must be >= 1"},
      {Config("", R"(, "max_context": 9223372036854775808)"), "models[0].max_context",
       "out of range"},
      // Devices and dtypes.
      {Config("", R"(, "device": "gpu")"), "models[0].device", "unsupported \"gpu\""},
      {Config("", R"(, "device": "CUDA")"), "models[0].device", "unsupported"},
      {Config("", R"(, "device": "cuda:")"), "models[0].device", "unsupported"},
      {Config("", R"(, "device": "cuda:-1")"), "models[0].device", "unsupported"},
      {Config("", R"(, "device": "cuda:x")"), "models[0].device", "unsupported"},
      {Config("", R"(, "device": "cuda:99999999999")"), "models[0].device", "unsupported"},
      {Config("", R"(, "dtype": "float64")"), "models[0].dtype", "unsupported \"float64\""},
      // Folders.
      {R"({"models": [{"name": "a", "path": "nope"}]})", "models[0].path", "does not exist"},
      {R"({"models": [{"name": "a", "path": "tok"}]})", "models[0].path", "has no config.json"},
      {R"({"models": [{"name": "a", "path": "m/config.json"}]})", "models[0].path",
       "is not a folder"},
      {R"({"models": [{"name": "a", "path": ""}]})", "models[0].path", "must not be empty"},
      {Config("", R"(, "tokenizer": "nope")"), "models[0].tokenizer", "does not exist"},
      // Classify.
      {Config("", R"(, "max_classify_batch": 0)"), "models[0].max_classify_batch", "must be >= 1"},
      {Config("", R"(, "max_classify_batch": "8")"), "models[0].max_classify_batch",
       "must be an integer"},
      {Config("", R"(, "classify": [])"), "models[0].classify", "must be an object"},
      {Config("", R"(, "classify": {"task": {}})"), "models[0].classify.task", "unknown key"},
      {Config("", R"(, "classify": {"special_tokens": "<s>"})"),
       "models[0].classify.special_tokens", "must be an object"},
      {Config("", R"(, "classify": {"special_tokens": {"begin": "<s>"}})"),
       "models[0].classify.special_tokens.begin", "unknown key"},
      {Config("", R"(, "classify": {"special_tokens": {"start": 997}})"),
       "models[0].classify.special_tokens.start", "must be a string"},
      {Config("", R"(, "classify": {"tasks": []})"), "models[0].classify.tasks",
       "must be an object"},
      {Config("", R"(, "classify": {"tasks": {"sentiment": {}}})"),
       "models[0].classify.tasks.sentiment", "unknown key (known: entailment, similarity"},
      {Config("", R"(, "classify": {"tasks": {"single": true}})"),
       "models[0].classify.tasks.single", "must be an object"},
      {Config("", R"(, "classify": {"tasks": {"single": {"label": ["a"]}}})"),
       "models[0].classify.tasks.single.label", "unknown key"},
      {Config("", R"(, "classify": {"tasks": {"single": {"enabled": 0}}})"),
       "models[0].classify.tasks.single.enabled", "must be true or false"},
      {Config("", R"(, "classify": {"tasks": {"single": {"preset": 1}}})"),
       "models[0].classify.tasks.single.preset", "must be a string"},
      {Config("", R"(, "classify": {"tasks": {"single": {"template": null}}})"),
       "models[0].classify.tasks.single.template", "must be a string"},
      {Config("", R"(, "classify": {"tasks": {"single": {"labels": "a"}}})"),
       "models[0].classify.tasks.single.labels", "must be a list"},
      {Config("", R"(, "classify": {"tasks": {"single": {"labels": ["a", 2]}}})"),
       "models[0].classify.tasks.single.labels[1]", "must be a string"},
      {Config("", R"(, "classify": {"tasks": {"single": {"targets": [[" a"]]}}})"),
       "models[0].classify.tasks.single.targets[0]", "must be a string"},
      {Config("", R"(, "classify": {"tasks": {"multiple_choice": {"choice_template": []}}})"),
       "models[0].classify.tasks.multiple_choice.choice_template", "must be a string"},
      {Config("", R"(, "classify": {"tasks": {"single": {"length_normalize": "yes"}}})"),
       "models[0].classify.tasks.single.length_normalize", "must be true or false"},
      {Config("", R"(, "classify": {"tasks": {"single": {"regression": 1}}})"),
       "models[0].classify.tasks.single.regression", "must be true or false"},
      {Config("", R"(, "classify": {"tasks": {"single": {"labels": ["a", ""]}}})"),
       "models[0].classify.tasks.single.labels[1]", "must not be empty"},
      {Config("", R"(, "classify": {"tasks": {"single": {"labels": ["a", "b"],
                                                         "targets": [" a"]}}})"),
       "models[0].classify.tasks.single.targets", "1 targets for 2 labels"},
      {Config("", R"(, "classify": {"tasks": {"single": {"targets": [" a"]}}})"),
       "models[0].classify.tasks.single.targets", "1 targets for 0 labels"},
      {Config("", R"(, "classify": {"tasks": {"entailment": {"preset": "snli"}}})"),
       "models[0].classify.tasks.entailment.preset", "unknown \"snli\" (mnli, rte, cb, stsb, mrpc, qqp, sst2, cola, copa)"},
  };
  for (const Rejection& rejection : rejections) {
    SCOPED_TRACE(rejection.json);
    ExpectError(Load(rejection.json).status(), Path("triad.json"), rejection.key_path,
                rejection.what);
  }
}

TEST_F(ConfigTest, ErrorMessageFormat) {
  absl::StatusOr<ServerConfig> config =
      Load(R"({"models": [{"name": "a", "path": "m"}, {"name": "b", "path": "m",
               "dtype": "int8"}]})");
  EXPECT_EQ(config.status(),
            absl::InvalidArgumentError(absl::StrCat(
                Path("triad.json"),
                R"(: models[1].dtype: unsupported "int8" (float32, bfloat16, float16))")));
}

TEST_F(ConfigTest, MissingFileIsNotFound) {
  const absl::Status status = LoadServerConfig(Path("absent.json")).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(Path("absent.json")));
  EXPECT_EQ(LoadServerConfig(dir_).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ConfigTest, ValidateRechecksAfterChanges) {
  absl::StatusOr<ServerConfig> config = Load(Config("", ""));
  ASSERT_TRUE(config.ok()) << config.status();
  config->models[0].max_queue = -5;
  ExpectError(config->Validate(), Path("triad.json"), "models[0].max_queue", "must be >= 0");
  config->models[0].max_queue = 0;
  config->models.push_back(config->models[0]);
  ExpectError(config->Validate(), Path("triad.json"), "models[1].name", "duplicate");
}

TEST_F(ConfigTest, ValidateRechecksTheClassifyBlock) {
  absl::StatusOr<ServerConfig> config = Load(Config("", ""));
  ASSERT_TRUE(config.ok()) << config.status();
  config->models[0].classify.tasks["summarize"] = TaskConfig();
  ExpectError(config->Validate(), Path("triad.json"), "models[0].classify.tasks.summarize",
              "unknown task");
  config->models[0].classify.tasks.clear();
  config->models[0].classify.tasks["single"].preset = "mnlii";
  ExpectError(config->Validate(), Path("triad.json"), "models[0].classify.tasks.single.preset",
              "unknown \"mnlii\"");
  config->models[0].classify.tasks["single"].preset = "sst2";
  EXPECT_TRUE(config->Validate().ok()) << "a preset's task is ModelTasks::Build's to check";
  config->models[0].max_classify_batch = 0;
  ExpectError(config->Validate(), Path("triad.json"), "models[0].max_classify_batch",
              "must be >= 1");
}

TEST_F(ConfigTest, FlagsOverrideTheFile) {
  const std::string file =
      Write("triad.json", Config(R"("listen": "127.0.0.1:1234", "threads": 2,)", ""));
  absl::StatusOr<ServerConfig> config = FromFlags(
      {"--config", file, "--listen", "0.0.0.0:7000", "--metrics-port=0", "--threads", "3",
       "--request-log", "none"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen, "0.0.0.0:7000");
  EXPECT_EQ(config->metrics_port, 0);
  EXPECT_EQ(config->threads, 3);
  EXPECT_EQ(config->request_log, "none");
  ASSERT_EQ(config->models.size(), 1u);
  EXPECT_EQ(config->models[0].path, Path("m"));
  EXPECT_EQ(config->models[0].device, "cpu");
  EXPECT_EQ(config->models[0].dtype, "float32");
  EXPECT_EQ(config->source, file + " + flags");

  config = FromFlags({"--config=" + file});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen, "127.0.0.1:1234");
  EXPECT_EQ(config->threads, 2);
  EXPECT_EQ(config->source, file);

  // --device and --dtype move every model, the file's and --model's alike.
  config = FromFlags({"--config", file, "--model", "b=" + Path("m"), "--device", "cuda:1",
                      "--dtype=bfloat16"});
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->models.size(), 2u);
  for (const ModelServingConfig& model : config->models) {
    EXPECT_EQ(model.device, "cuda:1") << model.name;
    EXPECT_EQ(model.dtype, "bfloat16") << model.name;
  }
  EXPECT_EQ(config->source, file + " + flags");
}

TEST_F(ConfigTest, ModelFlagsWithoutAFile) {
  const std::string relative = fs::relative(Path("m"), fs::current_path()).string();
  absl::StatusOr<ServerConfig> config =
      FromFlags({"--model", "a=" + Path("m"), "--model=b=" + relative});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->source, "flags");
  EXPECT_EQ(config->listen, ServerConfig().listen);
  ASSERT_EQ(config->models.size(), 2u);
  EXPECT_EQ(config->models[0].name, "a");
  EXPECT_EQ(config->models[1].name, "b");
  for (const ModelServingConfig& model : config->models) {
    EXPECT_EQ(model.path, Path("m")) << "relative to the working directory";
    EXPECT_EQ(model.tokenizer, Path("m"));
    EXPECT_EQ(model.device, "cpu");
    EXPECT_EQ(model.max_batch_size, ModelServingConfig().max_batch_size);
  }
}

TEST_F(ConfigTest, ModelFlagsAddToTheFile) {
  const std::string file = Write("triad.json", R"({"listen": "127.0.0.1:1", "models": []})");
  absl::StatusOr<ServerConfig> config = FromFlags({"--config", file, "--model", "b=" + Path("m")});
  ASSERT_TRUE(config.ok()) << "flags may supply every model: " << config.status();
  EXPECT_EQ(config->listen, "127.0.0.1:1");
  ASSERT_EQ(config->models.size(), 1u);

  Write("triad.json", Config("", ""));
  config = FromFlags({"--config", file, "--model", "b=" + Path("m")});
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->models.size(), 2u);
  EXPECT_EQ(config->models[1].name, "b");

  ExpectError(FromFlags({"--config", file, "--model", "a=" + Path("m")}).status(),
              file + " + flags", "models[1].name", "duplicate");
}

TEST_F(ConfigTest, FlagErrors) {
  const std::string file = Write("triad.json", Config("", ""));
  const struct {
    std::vector<std::string> args;
    std::string message;  // a substring
  } cases[] = {
      {{"--config", file, "--listne", "x:1"}, "--listne: unknown flag"},
      {{"--config", file, "--verbose"}, "--verbose: unknown flag"},
      {{"--config"}, "--config: needs a value"},
      {{"--config", file, "extra"}, "unexpected argument \"extra\""},
      {{}, "--config FILE is required unless --model NAME=PATH is given"},
      {{"--listen", "127.0.0.1:1"}, "--config FILE is required"},
      {{"--config", file, "--metrics-port", "abc"}, "--metrics-port: not an integer: \"abc\""},
      {{"--config", file, "--threads", "99999999999"}, "--threads: not an integer"},
      {{"--model", "a"}, "--model: expected NAME=PATH, got \"a\""},
      {{"--model", "=m"}, "--model: expected NAME=PATH"},
      {{"--model", "a="}, "--model: expected NAME=PATH"},
      {{"--config", file, "--device", "gpu"}, "--device: unsupported \"gpu\" (cpu, cuda, cuda:N)"},
      {{"--config", file, "--device", "cuda:x"}, "--device: unsupported \"cuda:x\""},
      {{"--config", file, "--dtype", "int8"},
       "--dtype: unsupported \"int8\" (float32, bfloat16, float16)"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.message);
    const absl::Status status = FromFlags(c.args).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.message));
  }
}

TEST_F(ConfigTest, FlagValuesAreValidatedLikeTheFile) {
  const std::string file = Write("triad.json", Config(R"("listen": "127.0.0.1:9000",)", ""));
  ExpectError(FromFlags({"--config", file, "--metrics-port", "9000"}).status(), file + " + flags",
              "metrics_port", "also the gRPC port");
  ExpectError(FromFlags({"--config", file, "--listen", "localhost"}).status(), file + " + flags",
              "listen", "no port");
  ExpectError(FromFlags({"--config", file, "--request-log=everything"}).status(),
              file + " + flags", "request_log", "unsupported \"everything\"");
  ExpectError(FromFlags({"--model", "a=" + Path("nope")}).status(), "flags", "models[0].path",
              "does not exist");
  EXPECT_EQ(FromFlags({"--config", Path("absent.json")}).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace triad
