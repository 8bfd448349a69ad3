// Internal to triad_classify: what classify_tasks.cc (the task table, templates, presets and
// ModelTasks::Build) and classify_work.cc (ModelTasks::BuildWork and ModelTasks::Interpret)
// both use. No other library includes it. No LibTorch, no gRPC.
//
// Thread contract: the task table is built on first use (a function-local static) and is
// immutable after; everything here may be called from any thread.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/classify_tasks.h"

namespace triad {
namespace classify_internal {

inline constexpr ClassifyTaskKind kAllTasks[] = {
    ClassifyTaskKind::kEntailment, ClassifyTaskKind::kSimilarity, ClassifyTaskKind::kMultipleChoice,
    ClassifyTaskKind::kSingle};

template <typename... Args>
absl::Status Invalid(const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat(args...));
}

struct TextField {
  const char* name;
  std::string ItemTexts::*member;
};

// What a task reads and how a decoder-only LM scores it by default (lm-evaluation-harness
// prompts; the targets start with a space).
struct TaskInfo {
  const char* name;
  const char* upper_name;
  std::vector<TextField> fields;  // the text fields read, in segment order
  std::string lm_template, lm_choice_template;
  std::vector<std::string> lm_labels, lm_targets;
};

// The table entry of `task` (defined in classify_tasks.cc).
const TaskInfo& Info(ClassifyTaskKind task);

bool IsMultipleChoice(ClassifyTaskKind task);

// The text fields `task` reads, in segment order.
std::vector<std::string> FieldNames(ClassifyTaskKind task);

}  // namespace classify_internal
}  // namespace triad
