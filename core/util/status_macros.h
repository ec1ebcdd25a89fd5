// Status propagation helpers. Debian's Abseil (20220623) has no status macros, so
// they live here, once.
#ifndef GANSERVE_CORE_UTIL_STATUS_MACROS_H_
#define GANSERVE_CORE_UTIL_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define GANSERVE_CONCAT_INNER(a, b) a##b
#define GANSERVE_CONCAT(a, b) GANSERVE_CONCAT_INNER(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                            \
  do {                                                   \
    ::absl::Status ganserve_status_ = (expr);            \
    if (!ganserve_status_.ok()) return ganserve_status_; \
  } while (0)

// ASSIGN_OR_RETURN(lhs, expr): evaluates `expr` (an absl::StatusOr<T>); on error
// returns its status, else moves the value into `lhs` (which may be a declaration).
#define ASSIGN_OR_RETURN(lhs, expr) ASSIGN_OR_RETURN_IMPL(GANSERVE_CONCAT(ganserve_statusor_, __LINE__), lhs, expr)
// `lhs` may be a declaration and `tmp` names a variable, so neither is parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)    \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return std::move(tmp).status(); \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)

#endif  // GANSERVE_CORE_UTIL_STATUS_MACROS_H_
