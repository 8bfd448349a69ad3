// triad-infer: runs one Hugging Face checkpoint folder without the server and prints the
// generated ids and their log-probabilities as JSON. What a user runs first on a new model.
//
//   triad-infer --model DIR [--device cpu|cuda|cuda:N] [--dtype float32|bfloat16|float16]
//               (--input-ids 5,17,42 | --prompt TEXT | --input TEXT) [--tokenizer DIR]
//               [--max-new-tokens 16] [--num-beams 1] [--threads N]
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "model/generation.h"
#include "model/model.h"
#include "model/tokenizer/tokenizer.h"

namespace {

constexpr char kUsage[] =
    "usage: triad-infer --model DIR (--input-ids ID,ID,... | --prompt TEXT | --input TEXT)\n"
    "                   [--tokenizer DIR] [--device cpu|cuda|cuda:N]\n"
    "                   [--dtype float32|bfloat16|float16] [--max-new-tokens N]\n"
    "                   [--num-beams N] [--threads N]\n"
    "  --prompt / --input: text, tokenized with the tokenizer in --tokenizer (default: the\n"
    "  model folder); --input is the same flag under T5's name (the encoder input).\n";

int Fail(const std::string& message) {
  std::cerr << "triad-infer: " << message << "\n";
  return 2;
}

// --name value / --name=value pairs; returns false with `error` set on a malformed line.
bool ParseFlags(int argc, char** argv, std::map<std::string, std::string>& flags,
                std::string& error) {
  static const char* kKnown[] = {"model",     "device",         "dtype",     "input-ids",
                                 "prompt",    "input",          "tokenizer", "max-new-tokens",
                                 "num-beams", "threads"};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      error = "";
      return false;
    }
    if (arg.rfind("--", 0) != 0) {
      error = "unexpected argument \"" + arg + "\"";
      return false;
    }
    std::string name = arg.substr(2), value;
    const size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      error = "--" + name + " needs a value";
      return false;
    }
    if (std::find(std::begin(kKnown), std::end(kKnown), name) == std::end(kKnown)) {
      error = "unknown flag --" + name;
      return false;
    }
    flags[name] = value;
  }
  return true;
}

bool ParseInt(const std::map<std::string, std::string>& flags, const std::string& name,
              int64_t fallback, int64_t& out, std::string& error) {
  auto it = flags.find(name);
  if (it == flags.end()) {
    out = fallback;
    return true;
  }
  if (!absl::SimpleAtoi(it->second, &out)) {
    error = "--" + name + ": not an integer: \"" + it->second + "\"";
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  std::string error;
  if (!ParseFlags(argc, argv, flags, error)) {
    if (error.empty()) {
      std::cout << kUsage;
      return 0;
    }
    return Fail(error + "\n" + kUsage);
  }
  if (!flags.count("model")) return Fail(std::string("--model is required\n") + kUsage);
  const int num_inputs = static_cast<int>(flags.count("input-ids") + flags.count("prompt") +
                                          flags.count("input"));
  if (num_inputs != 1) {
    return Fail(std::string("give exactly one of --input-ids, --prompt, --input\n") + kUsage);
  }
  std::unique_ptr<triad::tokenizer::Tokenizer> tokenizer;
  std::vector<int64_t> ids;
  if (flags.count("input-ids")) {
    for (absl::string_view piece : absl::StrSplit(flags["input-ids"], ',')) {
      int64_t id = 0;
      if (!absl::SimpleAtoi(piece, &id)) {
        return Fail("--input-ids: not an integer: \"" + std::string(piece) + "\"");
      }
      ids.push_back(id);
    }
  } else {
    const std::string dir = flags.count("tokenizer") ? flags["tokenizer"] : flags["model"];
    auto loaded = triad::tokenizer::Tokenizer::FromDir(dir);
    if (!loaded.ok()) return Fail("--tokenizer: " + std::string(loaded.status().ToString()));
    tokenizer = *std::move(loaded);
    const std::string& text = flags.count("prompt") ? flags["prompt"] : flags["input"];
    auto encoded = tokenizer->EncodeIds(text, /*add_special_tokens=*/true);
    if (!encoded.ok()) return Fail("--prompt: " + std::string(encoded.status().ToString()));
    ids.assign(encoded->begin(), encoded->end());
    if (ids.empty()) return Fail("--prompt: the text encodes to no tokens");
  }
  triad::GenerationOptions options;
  int64_t threads = 0;
  if (!ParseInt(flags, "max-new-tokens", 16, options.max_new_tokens, error) ||
      !ParseInt(flags, "num-beams", 1, options.num_beams, error) ||
      !ParseInt(flags, "threads", std::thread::hardware_concurrency(), threads, error)) {
    return Fail(error);
  }
  if (threads < 1) return Fail("--threads must be >= 1");
  at::set_num_threads(static_cast<int>(threads));
  if (options.num_beams > 1) options.early_stopping = triad::EarlyStopping::kTrue;

  triad::LoadOptions load;
  if (flags.count("device")) load.device = flags["device"];
  if (flags.count("dtype")) load.dtype = flags["dtype"];
  const auto t0 = std::chrono::steady_clock::now();
  auto model = triad::LoadModel(flags["model"], load);
  if (!model.ok()) return Fail(std::string(model.status().ToString()));
  const auto t1 = std::chrono::steady_clock::now();
  const at::Tensor input = at::tensor(ids, at::kLong).view({1, -1});
  auto out = triad::Generate(**model, {input, at::Tensor()}, options);
  if (!out.ok()) return Fail(std::string(out.status().ToString()));
  const auto t2 = std::chrono::steady_clock::now();

  const triad::ModelConfig& config = (*model)->config();
  const at::Tensor row = out->sequences[0];
  std::vector<int64_t> sequence(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
  std::vector<int64_t> generated(sequence.begin() + out->prompt_length, sequence.end());
  nlohmann::json result = {
      {"model", flags["model"]},
      {"family", triad::FamilyName(config.family)},
      {"device", load.device},
      {"dtype", load.dtype},
      {"input_ids", ids},
      {"generated_ids", generated},
      {"load_seconds", std::chrono::duration<double>(t1 - t0).count()},
      {"generate_seconds", std::chrono::duration<double>(t2 - t1).count()},
  };
  if (out->token_logprobs.defined()) {
    const at::Tensor lp = out->token_logprobs[0].contiguous();
    result["logprobs"] = std::vector<float>(lp.data_ptr<float>(), lp.data_ptr<float>() + lp.numel());
  }
  if (out->sequences_scores.defined()) result["sequence_score"] = out->sequences_scores[0].item<float>();
  if (tokenizer != nullptr) {
    const std::vector<int32_t> gen32(generated.begin(), generated.end());
    auto text = tokenizer->Decode(gen32, /*skip_special_tokens=*/true);
    if (!text.ok()) return Fail(std::string(text.status().ToString()));
    result["text"] = *text;
  }
  std::cout << result.dump(2) << std::endl;
  return 0;
}
