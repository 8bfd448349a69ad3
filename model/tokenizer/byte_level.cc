#include "model/tokenizer/byte_level.h"

#include <algorithm>
#include <array>

#include "model/tokenizer/unicode.h"

namespace triad::tokenizer {
namespace {

struct Encoded {
  char bytes[2];
  size_t len;
};

struct Tables {
  std::array<Encoded, 256> encoded;
  std::array<int, 512> decoded;  // every alphabet code point is below 512
};

const Tables& GetTables() {
  static const Tables* tables = [] {
    auto* t = new Tables();
    t->decoded.fill(-1);
    // Printable Latin-1 bytes keep their own code point; the others take 256, 257, ... in
    // byte order.
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const int cp = printable ? b : next++;
      std::string utf8;
      AppendUtf8(static_cast<char32_t>(cp), &utf8);  // 1 or 2 bytes: cp < 0x800
      t->encoded[b].len = utf8.size();
      std::copy(utf8.begin(), utf8.end(), t->encoded[b].bytes);
      t->decoded[cp] = b;
    }
    return t;
  }();
  return *tables;
}

}  // namespace

void AppendByteLevel(std::string_view bytes, std::string* out) {
  const Tables& tables = GetTables();
  // Write into a buffer sized for the worst case (2 bytes per byte), then trim: appending
  // 1-2 bytes at a time dominated profiles.
  const size_t old_size = out->size();
  out->resize(old_size + 2 * bytes.size());
  char* p = out->data() + old_size;
  for (const char c : bytes) {
    const Encoded& e = tables.encoded[static_cast<unsigned char>(c)];
    p[0] = e.bytes[0];
    p[1] = e.bytes[1];
    p += e.len;
  }
  out->resize(static_cast<size_t>(p - out->data()));
}

int ByteFromByteLevelChar(char32_t cp) { return cp < 512 ? GetTables().decoded[cp] : -1; }

}  // namespace triad::tokenizer
