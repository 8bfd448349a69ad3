// triad: the command-line client of triadd.
//
//   triad generate --model M (--prompt TEXT | --input-ids 1,2,3) [--max-new-tokens N]
//                  [--temperature T] [--top-k K] [--top-p P] [--seed S] [--stop STR]
//                  [--num-beams K [--length-penalty L] [--early-stopping early|heuristic|never]]
//                  [--no-stream]
//   triad classify --model M --task entailment|similarity|multiple_choice|single
//                  (--premise T --hypothesis T | --text-a T --text-b T |
//                   --context T --choice C... | --text T) [--length-normalize] [--json]
//   triad tokenize --model M --text TEXT
//   triad models
//   triad health [--service NAME]
//   triad bench --model M [--concurrency N] [--requests N | --duration S] [--prompt-tokens N]
//               [--shared-prefix N] [--output-tokens N] [--output-spread F] [--num-beams K]
//               [--rate R | --ramp-up S] [--seed S] [--json]
//               [--task TASK [--choices K] [--choice-tokens N] [--batch-items K]]
// Every command takes --server HOST:PORT (default 127.0.0.1:50051). Exit status: 0 on
// success, 1 when the server returns an error, 2 for bad usage.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "client/bench.h"
#include "client/client.h"
#include "google/protobuf/util/json_util.h"

namespace {

using triad::client::TriadClient;

constexpr char kUsage[] =
    "usage: triad COMMAND [--server HOST:PORT] [flags]\n"
    "  generate --model M (--prompt TEXT | --input-ids 1,2,3) [--max-new-tokens N]\n"
    "           [--temperature T] [--top-k K] [--top-p P] [--seed S] [--stop STR]... [--no-stream]\n"
    "           [--num-beams K [--length-penalty L] [--early-stopping early|heuristic|never]]\n"
    "           (beam search: unary, prints the beam's score)\n"
    "  classify --model M --task entailment|similarity|multiple_choice|single\n"
    "           (--premise T --hypothesis T | --text-a T --text-b T |\n"
    "            --context T --choice C [--choice C]... | --text T) [--length-normalize] [--json]\n"
    "  tokenize --model M --text TEXT\n"
    "  models\n"
    "  health [--service NAME]\n"
    "  bench --model M [--concurrency N] [--requests N | --duration S] [--prompt-tokens N]\n"
    "        [--shared-prefix N] [--output-tokens N] [--output-spread F] [--num-beams K]\n"
    "        [--rate R | --ramp-up S] [--seed S] [--json]\n"
    "        [--task TASK [--choices K] [--choice-tokens N] [--batch-items K]]\n"
    "        (--task benchmarks Classify: random token-id segments of --prompt-tokens each;\n"
    "         --batch-items K > 0 sends ClassifyBatch calls of K items;\n"
    "         --ramp-up S starts the closed loop's clients one by one over S seconds)\n";

struct Flags {
  std::map<std::string, std::string> values;
  std::vector<std::string> stops;    // --stop, repeatable
  std::vector<std::string> choices;  // --choice, repeatable
  bool Has(const std::string& k) const { return values.count(k) > 0; }
  std::string Get(const std::string& k, const std::string& fallback = "") const {
    auto it = values.find(k);
    return it == values.end() ? fallback : it->second;
  }
};

int Usage(const std::string& error) {
  std::cerr << "triad: " << error << "\n" << kUsage;
  return 2;
}

int Failed(const grpc::Status& s) {
  std::cerr << "triad: " << s.error_code() << " " << s.error_message() << "\n";
  return 1;
}

bool ParseFlags(int argc, char** argv, Flags& flags, std::string& error) {
  static const std::vector<std::string> kBool = {"no-stream", "json", "length-normalize"};
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      error = "unexpected argument \"" + arg + "\"";
      return false;
    }
    const std::string name = arg.substr(2);
    if (std::find(kBool.begin(), kBool.end(), name) != kBool.end()) {
      flags.values[name] = "1";
      continue;
    }
    if (i + 1 >= argc) {
      error = arg + " needs a value";
      return false;
    }
    if (name == "stop") {
      flags.stops.push_back(argv[++i]);
    } else if (name == "choice") {
      flags.choices.push_back(argv[++i]);
    } else {
      flags.values[name] = argv[++i];
    }
  }
  return true;
}

template <typename T>
bool Number(const Flags& f, const std::string& name, T& out, std::string& error) {
  if (!f.Has(name)) return true;
  if (!absl::SimpleAtoi(f.Get(name), &out)) {
    error = "--" + name + ": not an integer: " + f.Get(name);
    return false;
  }
  return true;
}

bool Real(const Flags& f, const std::string& name, double& out, std::string& error) {
  if (!f.Has(name)) return true;
  if (!absl::SimpleAtod(f.Get(name), &out)) {
    error = "--" + name + ": not a number: " + f.Get(name);
    return false;
  }
  return true;
}

int Generate(TriadClient& client, const Flags& f) {
  if (!f.Has("model")) return Usage("--model is required");
  triad::v1::GenerateRequest r;
  r.set_model(f.Get("model"));
  if (f.Has("prompt") == f.Has("input-ids")) return Usage("give one of --prompt, --input-ids");
  if (f.Has("prompt")) r.set_text(f.Get("prompt"));
  for (absl::string_view piece : absl::StrSplit(f.Get("input-ids"), ',', absl::SkipEmpty())) {
    int32_t id = 0;
    if (!absl::SimpleAtoi(piece, &id)) return Usage("--input-ids: not an integer: " + std::string(piece));
    r.mutable_token_ids()->add_ids(id);
  }
  std::string error;
  uint32_t max_new = 0, top_k = 0, beams = 1;
  uint64_t seed = 0;
  double temperature = 1, top_p = 1, length_penalty = 1;
  if (!Number(f, "max-new-tokens", max_new, error) || !Number(f, "top-k", top_k, error) ||
      !Number(f, "num-beams", beams, error) ||
      !Number(f, "seed", seed, error) || !Real(f, "temperature", temperature, error) ||
      !Real(f, "top-p", top_p, error) || !Real(f, "length-penalty", length_penalty, error)) {
    return Usage(error);
  }
  triad::v1::BeamStopping stopping = triad::v1::BEAM_STOPPING_UNSPECIFIED;
  if (f.Has("early-stopping")) {
    const std::string name = "BEAM_STOPPING_" + absl::AsciiStrToUpper(f.Get("early-stopping"));
    if (!triad::v1::BeamStopping_Parse(name, &stopping) ||
        stopping == triad::v1::BEAM_STOPPING_UNSPECIFIED) {
      return Usage("--early-stopping: one of early, heuristic, never");
    }
  }
  triad::v1::SamplingParameters* s = r.mutable_sampling();
  s->set_max_new_tokens(max_new);
  s->set_top_k(top_k);
  if (f.Has("temperature")) s->set_temperature(static_cast<float>(temperature));
  if (f.Has("top-p")) s->set_top_p(static_cast<float>(top_p));
  if (f.Has("seed")) s->set_seed(seed);
  for (const std::string& stop : f.stops) s->add_stop(stop);
  s->set_num_beams(beams);
  if (f.Has("length-penalty")) s->set_length_penalty(static_cast<float>(length_penalty));
  s->set_early_stopping(stopping);
  if (f.Has("no-stream") || beams > 1) {  // beam search is unary only
    triad::v1::GenerateResponse out;
    const grpc::Status status = client.Generate(r, &out, std::chrono::minutes(10));
    if (!status.ok()) return Failed(status);
    std::cout << out.text() << "\n";
    std::cerr << "[" << triad::v1::FinishReason_Name(out.finish_reason()) << ", "
              << out.usage().generated_tokens() << " tokens";
    if (beams > 1) std::cerr << ", beam score " << out.sequence_score();
    std::cerr << "]\n";
    return 0;
  }
  triad::v1::GenerateStreamResponse last;
  const grpc::Status status = client.GenerateStream(
      r,
      [&](const triad::v1::GenerateStreamResponse& m) {
        std::cout << m.text_delta() << std::flush;
        last = m;
      },
      std::chrono::minutes(10));
  std::cout << "\n";
  if (!status.ok()) return Failed(status);
  std::cerr << "[" << triad::v1::FinishReason_Name(last.finish_reason()) << ", "
            << last.usage().generated_tokens() << " tokens]\n";
  return 0;
}

// The item's text flags in ClassifyItem order; a task reads some of them (see TaskTextFlags).
constexpr const char* kTextFlags[] = {"premise", "hypothesis", "text-a",
                                      "text-b",  "context",    "text"};

std::vector<std::string> TaskTextFlags(triad::v1::ClassifyTask task) {
  switch (task) {
    case triad::v1::CLASSIFY_TASK_ENTAILMENT: return {"premise", "hypothesis"};
    case triad::v1::CLASSIFY_TASK_SIMILARITY: return {"text-a", "text-b"};
    case triad::v1::CLASSIFY_TASK_MULTIPLE_CHOICE: return {"context"};
    default: return {"text"};
  }
}

// Fills `item` from the flags `task` reads. A missing flag, or one the task does not read, is
// a usage error here (returned as text) rather than a server round trip.
std::string FillItem(triad::v1::ClassifyTask task, const Flags& f, triad::v1::ClassifyItem& item) {
  const std::string task_name = f.Get("task");
  const std::vector<std::string> wanted = TaskTextFlags(task);
  for (const std::string name : kTextFlags) {
    const bool read = std::find(wanted.begin(), wanted.end(), name) != wanted.end();
    if (read && !f.Has(name)) return "--task " + task_name + " needs --" + name;
    if (!read && f.Has(name)) return "--" + name + " is not read by --task " + task_name;
  }
  const bool choices = task == triad::v1::CLASSIFY_TASK_MULTIPLE_CHOICE;
  if (choices && f.choices.empty()) return "--task multiple_choice needs --choice (repeatable)";
  if (!choices && !f.choices.empty()) return "--choice is only read by --task multiple_choice";
  item.set_premise(f.Get("premise"));
  item.set_hypothesis(f.Get("hypothesis"));
  item.set_text_a(f.Get("text-a"));
  item.set_text_b(f.Get("text-b"));
  item.set_context(f.Get("context"));
  item.set_text(f.Get("text"));
  for (const std::string& choice : f.choices) item.add_choices(choice);
  return "";
}

// The labels as the server sorted them (most probable first), then the regression values.
void PrintResult(const triad::v1::ClassifyResult& result) {
  size_t width = 5;
  for (const auto& l : result.labels()) width = std::max(width, l.label().size());
  width = std::min<size_t>(width, 48);  // a long choice text overflows its cell instead
  char line[128];
  std::snprintf(line, sizeof(line), "%-*s %12s %12s\n", static_cast<int>(width), "label",
                "probability", "logit");
  std::cout << line;
  for (const auto& l : result.labels()) {
    std::snprintf(line, sizeof(line), " %12.6f %12.4f\n", l.probability(), l.logit());
    std::cout << l.label() << std::string(width - std::min(width, l.label().size()), ' ') << line;
  }
  if (result.has_value()) std::cout << "value " << result.value() << "\n";
  if (result.has_expected_value()) {
    std::cout << "expected_value " << result.expected_value() << "\n";
  }
}

int Classify(TriadClient& client, const Flags& f) {
  if (!f.Has("model") || !f.Has("task")) return Usage("--model and --task are required");
  triad::v1::ClassifyRequest r;
  r.set_model(f.Get("model"));
  triad::v1::ClassifyTask task;
  if (!triad::client::ParseClassifyTask(f.Get("task"), &task)) {
    return Usage("--task: unknown task \"" + f.Get("task") +
                 "\" (entailment, similarity, multiple_choice, single)");
  }
  r.set_task(task);
  const std::string error = FillItem(task, f, *r.mutable_item());
  if (!error.empty()) return Usage(error);
  // Unset means the task's configured default, so only the flag sets it.
  if (f.Has("length-normalize")) r.set_length_normalize(true);
  triad::v1::ClassifyResponse out;
  const grpc::Status status = client.Classify(r, &out, std::chrono::minutes(10));
  if (!status.ok()) return Failed(status);
  if (!f.Has("json")) {
    PrintResult(out.result());
    return 0;
  }
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;  // a top label at index 0 still shows "index"
  options.preserve_proto_field_names = true;     // the names the proto and README use
  std::string json;
  const auto printed = google::protobuf::util::MessageToJsonString(out, &json, options);
  if (!printed.ok()) {
    std::cerr << "triad: cannot print the response as JSON: " << printed.ToString() << "\n";
    return 1;
  }
  std::cout << json;
  return 0;
}

int Bench(TriadClient& client, const Flags& f) {
  triad::client::BenchOptions o;
  o.model = f.Get("model");
  std::string error;
  if (!Number(f, "concurrency", o.concurrency, error) ||
      !Number(f, "requests", o.num_requests, error) ||
      !Real(f, "duration", o.duration_seconds, error) ||
      !Number(f, "prompt-tokens", o.prompt_tokens, error) ||
      !Number(f, "shared-prefix", o.shared_prefix_tokens, error) ||
      !Number(f, "output-tokens", o.output_tokens, error) ||
      !Real(f, "output-spread", o.output_spread, error) || !Real(f, "rate", o.rate, error) ||
      !Real(f, "ramp-up", o.ramp_up_seconds, error) || !Number(f, "num-beams", o.num_beams, error) ||
      !Number(f, "seed", o.seed, error) || !Number(f, "choices", o.num_choices, error) ||
      !Number(f, "choice-tokens", o.choice_tokens, error) ||
      !Number(f, "batch-items", o.batch_items, error)) {
    return Usage(error);
  }
  o.task = f.Get("task");
  if (o.classify() && (f.Has("output-tokens") || f.Has("output-spread"))) {
    return Usage("--output-tokens and --output-spread are not used with --task");
  }
  if ((f.Has("choices") || f.Has("choice-tokens")) && o.task != "multiple_choice") {
    return Usage("--choices and --choice-tokens need --task multiple_choice");
  }
  if (f.Has("duration") && !f.Has("requests")) o.num_requests = 0;
  error = o.Validate();
  if (!error.empty()) return Usage(error);
  triad::v1::ListModelsResponse models;
  const grpc::Status status = client.ListModels(&models);
  if (!status.ok()) return Failed(status);
  int64_t vocab = 0;
  for (const auto& m : models.models()) {
    if (m.name() == o.model) vocab = m.vocab_size();
  }
  if (vocab == 0) return Usage("--model: the server has no model \"" + o.model + "\"");
  const nlohmann::json report = triad::client::RunBench(client, o, vocab);
  if (f.Has("json")) {
    std::cout << report.dump(2) << "\n";
  } else {
    std::cout << triad::client::FormatBenchTable(report) << "\n" << report.dump() << "\n";
  }
  return report["requests_failed"].get<int64_t>() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  Flags f;
  std::string error;
  if (!ParseFlags(argc, argv, f, error)) return Usage(error);
  TriadClient client(f.Get("server", "127.0.0.1:50051"));
  if (command == "generate") return Generate(client, f);
  if (command == "bench") return Bench(client, f);
  if (command == "classify") return Classify(client, f);
  if (command == "tokenize") {
    if (!f.Has("model") || !f.Has("text")) return Usage("--model and --text are required");
    triad::v1::TokenizeRequest r;
    r.set_model(f.Get("model"));
    r.set_text(f.Get("text"));
    triad::v1::TokenizeResponse out;
    const grpc::Status status = client.Tokenize(r, &out);
    if (!status.ok()) return Failed(status);
    for (int i = 0; i < out.token_ids_size(); ++i) {
      std::cout << out.token_ids(i) << "\t" << out.tokens(i) << "\n";
    }
    return 0;
  }
  if (command == "models") {
    triad::v1::ListModelsResponse out;
    const grpc::Status status = client.ListModels(&out);
    if (!status.ok()) return Failed(status);
    for (const auto& m : out.models()) {
      std::cout << m.name() << "\t" << triad::v1::ModelFamily_Name(m.family()) << "\t"
                << triad::v1::ModelState_Name(m.state()) << "\t" << m.dtype() << "\t" << m.device()
                << "\tcontext " << m.context_length() << "\tvocab " << m.vocab_size() << "\n";
    }
    return 0;
  }
  if (command == "health") {
    std::string state;
    const grpc::Status status = client.Health(f.Get("service"), &state);
    if (!status.ok()) return Failed(status);
    std::cout << state << "\n";
    return state == "SERVING" ? 0 : 1;
  }
  return Usage("unknown command \"" + command + "\"");
}
