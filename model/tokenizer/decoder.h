// Decoders of the HF pipeline (ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace,
// BPEDecoder, WordPiece, Sequence). Like HF, each rewrites the whole token list
// ("decode_chain"), so position-dependent rules (first token, last token) see the list.
// Thread contract: immutable after construction; DecodeChain is const and thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/tokenizer/pre_tokenizer.h"
#include "model/tokenizer/regex.h"

namespace triad::tokenizer {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void DecodeChain(std::vector<std::string>* tokens) const = 0;
};

std::unique_ptr<Decoder> MakeByteLevelDecoder();
std::unique_ptr<Decoder> MakeMetaspaceDecoder(std::string replacement, PrependScheme scheme);
std::unique_ptr<Decoder> MakeByteFallbackDecoder();
// The byte of a byte-fallback token "<0xHH>" (either case of hex digit), or -1.
int ParseByteToken(const std::string& token);
std::unique_ptr<Decoder> MakeFuseDecoder();
// Removes up to `start` leading and `stop` trailing copies of `content` from each token.
std::unique_ptr<Decoder> MakeStripDecoder(std::string content, int start, int stop);
std::unique_ptr<Decoder> MakeReplaceDecoder(std::string pattern, std::unique_ptr<Regex> regex,
                                            std::string content);
std::unique_ptr<Decoder> MakeBpeDecoder(std::string suffix);
std::unique_ptr<Decoder> MakeWordPieceDecoder(std::string prefix, bool cleanup);
std::unique_ptr<Decoder> MakeDecoderSequence(std::vector<std::unique_ptr<Decoder>> decoders);

}  // namespace triad::tokenizer
