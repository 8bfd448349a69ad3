// RefillGate: whether the scheduler's refill window (SchedulerOptions::refill_window) is worth
// waiting out. The window pays when clients send their next request right after their last
// token (a closed loop: chat turns, agents, benchmarks) and is idle time when arrivals have
// nothing to do with finishes (independent users, Poisson traffic). The gate measures which
// of the two it sees, whether or not steps wait: each request that arrives within the window
// after a finish no earlier request claimed is a hit (the oldest such finish is claimed), and
// each finish left unclaimed for longer than the window is a miss. It is open while an
// exponential average of those (weight 1/4) is at least 1/4, and starts open: five misses in
// a row close it, and any hit reopens it (it lifts the average to at least 1/4). The bar is
// low because a skipped wait costs its client a whole step of time to first token, while a
// wasted one costs the window: closed-loop clients that sometimes leave (a benchmark's last requests, a chat
// that ends) keep it open, while independent arrivals (a hit when one happens to land within
// the window after a finish: ~3% for 3.5 requests/s and 10 ms) keep it closed.
//
// Thread contract: none of its own; the scheduler calls it under its mutex.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>

namespace triad {

class RefillGate {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr double kWeight = 1.0 / 4;
  static constexpr double kOpenAt = 0.25;
  // Unclaimed finishes kept at most (older ones count as misses at once): a bound on memory
  // when thousands finish within one window.
  static constexpr size_t kMaxPending = 1024;

  explicit RefillGate(Clock::duration window) : window_(window) {}

  // A generation finished naturally (eos, stop or length) at `now`.
  void Finished(Clock::time_point now) {
    Expire(now);
    if (pending_.size() == kMaxPending) {
      pending_.pop_front();
      Note(false);
    }
    pending_.push_back(now);
  }
  // A generation arrived at `now`.
  void Arrived(Clock::time_point now) {
    Expire(now);
    if (pending_.empty()) return;
    pending_.pop_front();
    Note(true);
  }
  // Whether a step should wait out the window now.
  bool Open(Clock::time_point now) {
    Expire(now);
    return hit_rate_ >= kOpenAt;
  }
  double hit_rate() const { return hit_rate_; }

 private:
  void Expire(Clock::time_point now) {
    while (!pending_.empty() && now - pending_.front() > window_) {
      pending_.pop_front();
      Note(false);
    }
  }
  void Note(bool hit) { hit_rate_ += ((hit ? 1.0 : 0.0) - hit_rate_) * kWeight; }

  Clock::duration window_;
  std::deque<Clock::time_point> pending_;  // unclaimed finishes, oldest first
  double hit_rate_ = 1.0;
};

}  // namespace triad
