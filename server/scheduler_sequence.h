// The Scheduler's per-request state, shared by the files that implement it (scheduler.cc, and
// scheduler_beam.cc for beam search). Only the scheduler's loop thread touches a Sequence once
// it is admitted; before that it sits in the queue under the scheduler's mutex.
#pragma once

#include <memory>
#include <vector>

#include "server/scheduler.h"

namespace triad {

// A beam search's open beams once its prompt is in the cache, and its closed hypotheses.
struct Scheduler::BeamGroup {
  std::vector<std::unique_ptr<SequenceState>> states;  // one per open beam
  std::vector<std::vector<int64_t>> ids;  // each open beam's decoder ids, prompt included
  std::vector<float> scores;              // each open beam's summed log-probs
  BeamHypotheses hypotheses;
};

struct Scheduler::Sequence {
  GenerationRequest request;
  std::shared_ptr<RequestHandle> handle;
  std::unique_ptr<SequenceState> state;  // beam search: the prompt's, until beams exist
  std::unique_ptr<BeamGroup> beams;
  std::unique_ptr<Sampler> sampler;
  std::vector<int64_t> context;  // what repetition penalties see: decoder ids so far
  std::vector<int64_t> pending;  // decoder tokens not yet fed (prompt chunks, then the last token)
  Completion completion;
  SteadyClock::time_point submitted, admitted;
  bool done = false;
};

}  // namespace triad
