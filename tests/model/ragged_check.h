// Continuous batching: sequences of different lengths advanced together by ForwardChunks over
// a paged KV pool (blocks of 4 positions, filled with NaN first so that nothing outside a
// sequence's own positions may reach it; chunked prefill mixed with decode tokens) give, for
// every chunk, the logits each sequence gets alone through the batch API, for every fixture
// folder. Tolerance: 1e-4 * max(1, max|alone|) (summation order). Shared by the CPU tests
// (kernel and padded decode paths) and the CUDA test.
#pragma once

#include "model/model.h"

namespace triad::testing {

void ExpectRaggedEqualsAlone(const LoadOptions& load);

}  // namespace triad::testing
