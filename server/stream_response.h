// GenerateStream messages queued behind a write in flight go out as one message: with a slow
// reader (or a final message right behind the last token) the stream then costs one write per
// turn of the transport instead of one per token. The proto already allows it: a message
// carries the ids generated since the previous one.
#pragma once

#include <string>

#include "triad/v1/triad.pb.h"

namespace triad {

// Appends `next`, a later message of the same stream, to `into`: token ids, log-probs, prompt
// log-probs and text deltas concatenate in order; done, finish_reason, usage and timings come
// from `next` when it sets them (the final message).
inline void AppendStreamResponse(v1::GenerateStreamResponse* into,
                                 const v1::GenerateStreamResponse& next) {
  std::string text = into->text_delta() + next.text_delta();
  into->MergeFrom(next);
  into->set_text_delta(std::move(text));
}

}  // namespace triad
