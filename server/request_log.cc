#include "server/request_log.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace triad {
namespace {

// `value` as a logfmt value: bare when it has no space, '=', quote, backslash or control
// byte; otherwise quoted, with \" \\ \n \r \t and \xNN for the other control bytes.
std::string LogfmtValue(const std::string& value) {
  bool bare = !value.empty();
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || c == '=' || c == '"' || c == '\\' || u == 0x7f) bare = false;
  }
  if (bare) return value;
  std::string out = "\"";
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (u < ' ' || u == 0x7f) {
          absl::StrAppendFormat(&out, "\\x%02x", u);
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// `message` cut to kMaxLoggedMessageBytes, not inside a UTF-8 sequence.
std::string Shortened(const std::string& message) {
  if (message.size() <= kMaxLoggedMessageBytes) return message;
  size_t end = kMaxLoggedMessageBytes;
  while (end > 0 && (static_cast<unsigned char>(message[end]) & 0xC0) == 0x80) --end;
  return message.substr(0, end) + "...";
}

std::string Ms(double seconds) { return absl::StrFormat("%.1f", seconds * 1e3); }

}  // namespace

std::string FormatRequestLine(const RequestLogEntry& e) {
  std::string line = absl::StrCat("triadd: request rpc=", LogfmtValue(e.rpc),
                                  " model=", LogfmtValue(e.model),
                                  " code=", absl::StatusCodeToString(e.code),
                                  " ms=", Ms(e.seconds), " peer=", LogfmtValue(e.peer));
  if (e.generation) {
    const GenerationLogFields& g = *e.generation;
    absl::StrAppend(&line, " prompt_tokens=", g.prompt_tokens,
                    " cached_prompt_tokens=", g.cached_prompt_tokens,
                    " generated_tokens=", g.generated_tokens, " queue_ms=", Ms(g.queue_seconds),
                    " ttft_ms=", Ms(g.first_token_seconds),
                    " finish=", LogfmtValue(g.finish_reason));
  }
  if (e.code != absl::StatusCode::kOk) {
    absl::StrAppend(&line, " error=", LogfmtValue(Shortened(e.message)));
  }
  return line;
}

void RequestLog::Record(const RequestLogEntry& entry) const {
  if (!Wants(entry.code)) return;
  const std::string line = FormatRequestLine(entry) + "\n";
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

}  // namespace triad
