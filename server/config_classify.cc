#include "server/config_internal.h"

#include <initializer_list>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/status_macros.h"
#include "server/config.h"

namespace triad {
namespace config_internal {
namespace {

constexpr std::initializer_list<const char*> kClassifyKeys = {"special_tokens", "tasks"};
constexpr std::initializer_list<const char*> kSpecialTokenKeys = {"start", "delimiter", "extract"};
constexpr std::initializer_list<const char*> kTaskNames = {"entailment", "similarity",
                                                           "multiple_choice", "single"};
constexpr std::initializer_list<const char*> kTaskKeys = {
    "enabled", "preset",          "template",         "labels",
    "targets", "choice_template", "length_normalize", "regression"};
constexpr std::initializer_list<const char*> kPresets = {"mnli", "rte",  "cb",   "stsb", "mrpc",
                                                         "qqp",  "sst2", "cola", "copa"};

// --- Validation -------------------------------------------------------------------------------

bool IsOneOf(const std::string& value, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    if (value == name) return true;
  }
  return false;
}

}  // namespace

// The structural rules of one model's "classify"; what depends on the model (tokens, presets
// per family) is ModelTasks::Build's to check.
absl::Status ValidateClassify(const std::string& source, size_t index,
                              const ClassifyConfig& classify) {
  for (const auto& [name, task] : classify.tasks) {
    const std::string key = ModelKey(index, absl::StrCat("classify.tasks.", name));
    if (!IsOneOf(name, kTaskNames)) {
      return KeyError(source, key,
                      absl::StrCat("unknown task (known: ", absl::StrJoin(kTaskNames, ", "), ")"));
    }
    if (!task.preset.empty() && !IsOneOf(task.preset, kPresets)) {
      return KeyError(
          source, key + ".preset",
          absl::StrCat("unknown ", Quote(task.preset), " (", absl::StrJoin(kPresets, ", "), ")"));
    }
    for (size_t i = 0; i < task.labels.size(); ++i) {
      if (task.labels[i].empty()) {
        return KeyError(source, absl::StrCat(key, ".labels[", i, "]"), "must not be empty");
      }
    }
    // multiple_choice has no labels (they are the request's choices); its targets are fixed
    // decoder targets per choice position.
    if (!task.targets.empty() && task.targets.size() != task.labels.size() &&
        name != "multiple_choice") {
      return KeyError(source, key + ".targets",
                      absl::StrCat(task.targets.size(), " targets for ", task.labels.size(),
                                   " labels (one target per label; targets need labels)"));
    }
  }
  return absl::OkStatus();
}

// --- JSON reading -----------------------------------------------------------------------------

namespace {

absl::StatusOr<TaskConfig> ReadTask(const Json& json, const std::string& source,
                                    const std::string& key_path) {
  if (!json.is_object()) {
    return KeyError(source, key_path, absl::StrCat("must be an object, got ", Shown(json)));
  }
  const ObjectReader reader(json, source, key_path);
  TRIAD_RETURN_IF_ERROR(reader.CheckKeys(kTaskKeys));
  TaskConfig task;
  TRIAD_RETURN_IF_ERROR(reader.Read("enabled", &task.enabled));
  TRIAD_RETURN_IF_ERROR(reader.Read("preset", &task.preset));
  TRIAD_RETURN_IF_ERROR(reader.Read("template", &task.prompt_template));
  TRIAD_RETURN_IF_ERROR(reader.Read("labels", &task.labels));
  TRIAD_RETURN_IF_ERROR(reader.Read("targets", &task.targets));
  TRIAD_RETURN_IF_ERROR(reader.Read("choice_template", &task.choice_template));
  TRIAD_RETURN_IF_ERROR(reader.Read("length_normalize", &task.length_normalize));
  TRIAD_RETURN_IF_ERROR(reader.Read("regression", &task.regression));
  return task;
}

}  // namespace

// The model's "classify" object (`parent` reads the model entry).
absl::StatusOr<ClassifyConfig> ReadClassify(const ObjectReader& parent, const std::string& source) {
  ClassifyConfig classify;
  TRIAD_ASSIGN_OR_RETURN(const Json* json, parent.Object("classify"));
  if (json == nullptr) return classify;
  const ObjectReader reader(*json, source, parent.Path("classify"));
  TRIAD_RETURN_IF_ERROR(reader.CheckKeys(kClassifyKeys));
  TRIAD_ASSIGN_OR_RETURN(const Json* special, reader.Object("special_tokens"));
  if (special != nullptr) {
    const ObjectReader tokens(*special, source, reader.Path("special_tokens"));
    TRIAD_RETURN_IF_ERROR(tokens.CheckKeys(kSpecialTokenKeys));
    TRIAD_RETURN_IF_ERROR(tokens.Read("start", &classify.start_token));
    TRIAD_RETURN_IF_ERROR(tokens.Read("delimiter", &classify.delimiter_token));
    TRIAD_RETURN_IF_ERROR(tokens.Read("extract", &classify.extract_token));
  }
  TRIAD_ASSIGN_OR_RETURN(const Json* tasks, reader.Object("tasks"));
  if (tasks == nullptr) return classify;
  const ObjectReader task_reader(*tasks, source, reader.Path("tasks"));
  TRIAD_RETURN_IF_ERROR(task_reader.CheckKeys(kTaskNames));
  for (const auto& item : tasks->items()) {
    TRIAD_ASSIGN_OR_RETURN(classify.tasks[item.key()],
                           ReadTask(item.value(), source, task_reader.Path(item.key())));
  }
  return classify;
}

}  // namespace config_internal
}  // namespace triad
