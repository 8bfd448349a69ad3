// StopMatcher: the text of one generation as it streams in, cut at the first stop string, and
// how much of it may be sent now (a suffix that could still grow into a stop string is held
// back, so streamed deltas always concatenate to the final text). One per request.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

namespace triad {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
    for (const std::string& s : stops_) longest_ = std::max(longest_, s.size());
  }

  // Appends decoded text; returns true once a stop string has appeared (the text is then cut
  // just before it and stays cut).
  bool Append(const std::string& delta) {
    if (stopped_) return true;
    const size_t from = text_.size() >= longest_ ? text_.size() - longest_ + 1 : 0;
    text_ += delta;
    size_t cut = std::string::npos;
    for (const std::string& s : stops_) {
      if (s.empty()) continue;
      const size_t at = text_.find(s, from);
      if (at != std::string::npos && at < cut) cut = at;
    }
    if (cut != std::string::npos) {
      text_.resize(cut);
      stopped_ = true;
    }
    return stopped_;
  }

  // Text not yet taken that can be sent now; everything once `final` or stopped.
  std::string TakeReady(bool final) {
    size_t end = text_.size();
    if (!final && !stopped_) end -= Holdback();
    if (end <= emitted_) return "";
    std::string ready = text_.substr(emitted_, end - emitted_);
    emitted_ = end;
    return ready;
  }

  const std::string& text() const { return text_; }
  bool stopped() const { return stopped_; }

 private:
  // Length of the longest suffix of the text that is a proper prefix of a stop string.
  size_t Holdback() const {
    size_t best = 0;
    for (const std::string& s : stops_) {
      if (s.empty()) continue;
      for (size_t k = std::min(s.size() - 1, text_.size()); k > best; --k) {
        if (text_.compare(text_.size() - k, k, s, 0, k) == 0) {
          best = k;
          break;
        }
      }
    }
    return best;
  }

  std::vector<std::string> stops_;
  size_t longest_ = 0;
  std::string text_;
  size_t emitted_ = 0;
  bool stopped_ = false;
};

}  // namespace triad
