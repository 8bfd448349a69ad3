// The GPT-2 byte-to-unicode alphabet: every byte maps to one printable code point so that
// byte-level BPE vocabularies are valid text (space -> "Ġ", newline -> "Ċ").
// Thread contract: tables are built once (thread-safe static init) and read-only.
#pragma once

#include <string>
#include <string_view>

namespace triad::tokenizer {

// Appends the alphabet characters of every byte of `bytes`.
void AppendByteLevel(std::string_view bytes, std::string* out);

// The byte that alphabet character `cp` stands for, or -1 if `cp` is not in the alphabet.
int ByteFromByteLevelChar(char32_t cp);

}  // namespace triad::tokenizer
