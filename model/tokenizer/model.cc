// Vocab and the helpers the models share.
#include "model/tokenizer/model.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace triad::tokenizer {

absl::Status Vocab::Add(std::string token, int32_t id) {
  if (id < 0 || id > kMaxTokenId) {
    return absl::InvalidArgumentError(
        absl::StrCat("id ", id, " is outside [0, ", kMaxTokenId, "]"));
  }
  if (static_cast<size_t>(id) >= id_to_token_.size()) {
    id_to_token_.resize(id + 1);
    present_.resize(id + 1, 0);
  }
  if (present_[id]) {
    return absl::InvalidArgumentError(
        absl::StrCat("id ", id, " is used by both \"", id_to_token_[id], "\" and \"", token, "\""));
  }
  present_[id] = 1;
  id_to_token_[id] = token;
  token_to_id_.emplace(std::move(token), id);
  return absl::OkStatus();
}

std::string ByteFallbackToken(unsigned char byte) { return absl::StrFormat("<0x%02X>", byte); }

}  // namespace triad::tokenizer
