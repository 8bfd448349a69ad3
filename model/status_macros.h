// Status propagation macros. The abseil shipped with Debian 12 (20220623) has no status
// macros, so Triad defines the two it needs here. Header-only; no LibTorch.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define TRIAD_CONCAT_INNER_(a, b) a##b
#define TRIAD_CONCAT_(a, b) TRIAD_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define TRIAD_RETURN_IF_ERROR(expr)                  \
  do {                                               \
    ::absl::Status triad_status_ = (expr);           \
    if (!triad_status_.ok()) return triad_status_;   \
  } while (0)

// `lhs = value of expr` where expr is an absl::StatusOr<T>; returns its status on error.
// `lhs` may be a declaration: TRIAD_ASSIGN_OR_RETURN(auto x, MakeX());
#define TRIAD_ASSIGN_OR_RETURN(lhs, expr) \
  TRIAD_ASSIGN_OR_RETURN_IMPL_(TRIAD_CONCAT_(triad_statusor_, __LINE__), lhs, expr)
#define TRIAD_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()
