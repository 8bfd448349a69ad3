// Guard: runs a model-library call, turning every exception LibTorch or the library can throw
// into a Status (what the public methods of Model and DecodeGraphRunner return).
#pragma once

#include <c10/util/Exception.h>

#include <exception>
#include <new>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "model/compat.h"
#include "model/kv_pool.h"

namespace triad {

// Runs `fn`, converting every exception LibTorch (or an Impl) can throw into a Status.
template <typename Fn>
auto Guard(const char* what, Fn&& fn) -> absl::StatusOr<decltype(fn())> {
  try {
    return fn();
  } catch (const c10::Error& e) {
    const std::string msg = compat::ErrorMessage(e);
    if (absl::StrContains(msg, "out of memory") || absl::StrContains(msg, "Out of memory")) {
      return absl::ResourceExhaustedError(absl::StrCat(what, ": out of memory: ", msg));
    }
    return absl::InternalError(absl::StrCat(what, ": ", msg));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": out of memory"));
  } catch (const KvPoolExhausted& e) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": ", e.what()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what()));
  }
}

}  // namespace triad
