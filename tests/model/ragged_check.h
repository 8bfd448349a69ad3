// Continuous batching: sequences of different lengths advanced together by ForwardChunks over
// a paged KV pool (blocks of 4 positions, filled with NaN first so that nothing outside a
// sequence's own positions may reach it; chunked prefill mixed with decode tokens) give, for
// every chunk, the logits each sequence gets alone through the batch API, for every fixture
// folder. Tolerance: 1e-4 * max(1, max|alone|) (summation order). Shared by the CPU tests
// (kernel and padded decode paths) and the CUDA test.
#pragma once

#include "model/decode_graph.h"
#include "model/model.h"

namespace triad::testing {

void ExpectRaggedEqualsAlone(const LoadOptions& load);

// ForkSequence (beam search), for every fixture folder: a fork shares its source's full
// blocks, copies the partly filled one (taking exactly one block; none at a block boundary;
// T5's cross-attention keys are shared), and then each advances on its own to what a fresh
// sequence fed the same tokens computes (same tolerance). A pool with no free block refuses a
// fork that needs one, taking nothing.
void ExpectForksEqualFresh(const LoadOptions& load);

// DecodeGraphRunner, for every fixture folder: decode steps of 1 to 5 sequences (row buckets
// 1, 2, 4 and the runner's cap of 7; their keys crossing 4-position blocks from the 4-block
// bucket into the 8-block one; T5's encoder inputs of 1 to 30 positions in 4- and 8-block
// buckets) give the logits ForwardChunks gives the same sequences in a second pool (same
// tolerance), both pools filled with NaN first; steps it does not take (a prefill chunk, all
// logits, another pool's sequence, too many rows) are refused by Applies; its padding block is
// its only block left once the sequences are gone. Step splits a step with a prompt chunk
// among decode rows (same tolerance, rows in the step's order), takes a decode-only one whole,
// and leaves one with a chunk asking for every logit to ForwardChunks. `mode` kCapture also
// expects every bucket captured (CUDA).
void ExpectDecodeGraphsEqualChunks(const LoadOptions& load, DecodeGraphRunner::Mode mode);

}  // namespace triad::testing
