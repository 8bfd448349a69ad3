#include "model/tokenizer/normalizer.h"

#include <utility>

namespace triad::tokenizer {
namespace {

class BertNormalizer : public Normalizer {
 public:
  explicit BertNormalizer(const BertNormalizerOptions& options) : options_(options) {}

  void Normalize(std::string* text) const override {
    std::string out;
    out.reserve(text->size() + 8);
    // HF applies the steps as separate passes; they commute per character except accent
    // stripping, which needs the decomposed form first.
    std::string decomposed;
    std::string_view src = *text;
    if (options_.strip_accents) {
      decomposed = NormalizeUnicode(*text, NormalForm::kNfd);
      src = decomposed;
    }
    for (size_t pos = 0; pos < src.size();) {
      const char32_t cp = NextCodePoint(src, &pos);
      if (options_.clean_text && (cp == 0 || cp == 0xFFFD || IsBertControl(cp))) continue;
      if (options_.strip_accents && IsBertNonspacingMark(cp)) continue;
      if (options_.clean_text && IsWhitespace(cp)) {
        out.push_back(' ');
      } else if (options_.handle_chinese_chars && IsChineseChar(cp)) {
        out.push_back(' ');
        AppendUtf8(cp, &out);
        out.push_back(' ');
      } else if (options_.lowercase) {
        AppendLowercase(cp, &out);
      } else {
        AppendUtf8(cp, &out);
      }
    }
    *text = std::move(out);
  }

 private:
  BertNormalizerOptions options_;
};

class Lowercase : public Normalizer {
 public:
  void Normalize(std::string* text) const override {
    std::string out;
    out.reserve(text->size());
    for (size_t pos = 0; pos < text->size();) AppendLowercase(NextCodePoint(*text, &pos), &out);
    *text = std::move(out);
  }
};

class StripAccents : public Normalizer {
 public:
  void Normalize(std::string* text) const override {
    std::string out;
    out.reserve(text->size());
    for (size_t pos = 0; pos < text->size();) {
      const char32_t cp = NextCodePoint(*text, &pos);
      if (!IsNonspacingMark(cp)) AppendUtf8(cp, &out);
    }
    *text = std::move(out);
  }
};

class Strip : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}

  void Normalize(std::string* text) const override {
    size_t begin = 0, end = text->size();
    if (left_) {
      while (begin < end) {
        size_t next = begin;
        if (!IsWhitespace(NextCodePoint(*text, &next))) break;
        begin = next;
      }
    }
    if (right_) {
      while (end > begin) {
        size_t start = end - 1;
        while (start > begin && (static_cast<unsigned char>((*text)[start]) & 0xC0) == 0x80) {
          --start;
        }
        size_t probe = start;
        if (!IsWhitespace(NextCodePoint(*text, &probe))) break;
        end = start;
      }
    }
    *text = text->substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

class Prepend : public Normalizer {
 public:
  explicit Prepend(std::string prefix) : prefix_(std::move(prefix)) {}
  void Normalize(std::string* text) const override {
    if (!text->empty()) text->insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class Replace : public Normalizer {
 public:
  Replace(std::string pattern, std::unique_ptr<Regex> regex, std::string content)
      : pattern_(std::move(pattern)), regex_(std::move(regex)), content_(std::move(content)) {}
  void Normalize(std::string* text) const override {
    *text = ReplaceAll(*text, pattern_, regex_.get(), content_);
  }

 private:
  std::string pattern_;
  std::unique_ptr<Regex> regex_;
  std::string content_;
};

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormalForm form) : form_(form) {}
  void Normalize(std::string* text) const override { *text = NormalizeUnicode(*text, form_); }

 private:
  NormalForm form_;
};

class NormalizerSequence : public Normalizer {
 public:
  explicit NormalizerSequence(std::vector<std::unique_ptr<Normalizer>> normalizers)
      : normalizers_(std::move(normalizers)) {}
  void Normalize(std::string* text) const override {
    for (const auto& n : normalizers_) n->Normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> normalizers_;
};

}  // namespace

std::string ReplaceAll(const std::string& text, const std::string& pattern, const Regex* regex,
                       const std::string& content) {
  std::string out;
  out.reserve(text.size());
  size_t last = 0;
  const auto emit = [&](size_t begin, size_t end) {
    out.append(text, last, begin - last);
    out.append(content);
    last = end;
  };
  if (regex != nullptr) {
    for (const auto& [begin, end] : regex->FindAll(text)) emit(begin, end);
  } else if (!pattern.empty()) {
    for (size_t at = text.find(pattern); at != std::string::npos;
         at = text.find(pattern, at + pattern.size())) {
      emit(at, at + pattern.size());
    }
  }
  out.append(text, last, std::string::npos);
  return out;
}

std::unique_ptr<Normalizer> MakeBertNormalizer(const BertNormalizerOptions& options) {
  return std::make_unique<BertNormalizer>(options);
}
std::unique_ptr<Normalizer> MakeLowercase() { return std::make_unique<Lowercase>(); }
std::unique_ptr<Normalizer> MakeStripAccents() { return std::make_unique<StripAccents>(); }
std::unique_ptr<Normalizer> MakeStrip(bool left, bool right) {
  return std::make_unique<Strip>(left, right);
}
std::unique_ptr<Normalizer> MakePrepend(std::string prefix) {
  return std::make_unique<Prepend>(std::move(prefix));
}
std::unique_ptr<Normalizer> MakeReplace(std::string pattern, std::unique_ptr<Regex> regex,
                                        std::string content) {
  return std::make_unique<Replace>(std::move(pattern), std::move(regex), std::move(content));
}
std::unique_ptr<Normalizer> MakeUnicodeNormalizer(NormalForm form) {
  return std::make_unique<UnicodeNormalizer>(form);
}
std::unique_ptr<Normalizer> MakeNormalizerSequence(
    std::vector<std::unique_ptr<Normalizer>> normalizers) {
  return std::make_unique<NormalizerSequence>(std::move(normalizers));
}

}  // namespace triad::tokenizer
