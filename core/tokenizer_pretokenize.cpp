// The GPT-2 pre-tokenizer regex as a hand-written scanner (each branch below names the regex
// alternative it implements), and the byte-level map.
#include "core/tokenizer_pretokenize.h"

#include "core/unicode_class.h"

namespace brickrt {

namespace {

struct Char {
  uint32_t offset;  // byte offset in the text
  char32_t cp;
  CharClass cls;
};

std::array<char32_t, 256> MakeByteMap() {
  std::array<char32_t, 256> m{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    m[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return m;
}

}  // namespace

const std::array<char32_t, 256> kByteToCodePoint = MakeByteMap();

int CodePointToByte(char32_t cp) {
  static const std::array<int16_t, 324> inverse = [] {
    std::array<int16_t, 324> inv{};
    inv.fill(-1);
    for (int b = 0; b < 256; ++b) inv[kByteToCodePoint[b]] = static_cast<int16_t>(b);
    return inv;
  }();
  return cp < inverse.size() ? inverse[cp] : -1;
}

std::string BytesToByteLevel(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) AppendUtf8(kByteToCodePoint[static_cast<unsigned char>(c)], &out);
  return out;
}

bool ByteLevelToBytes(std::string_view s, std::string* bytes) {
  bytes->clear();
  for (size_t pos = 0; pos < s.size();) {
    char32_t cp;
    const size_t len = DecodeUtf8(s, pos, &cp);
    const int b = (cp == 0xFFFD && len == 1) ? -1 : CodePointToByte(cp);
    if (b < 0) return false;
    bytes->push_back(static_cast<char>(b));
    pos += len;
  }
  return true;
}

void SplitGpt2(std::string_view text, std::vector<std::string_view>* out) {
  thread_local std::vector<Char> chars;
  chars.clear();
  for (size_t pos = 0; pos < text.size();) {
    char32_t cp;
    const size_t len = DecodeUtf8(text, pos, &cp);
    const CharClass cls = (cp == 0xFFFD && len == 1) ? CharClass::kOther : ClassifyCodePoint(cp);
    chars.push_back({static_cast<uint32_t>(pos), cp, cls});
    pos += len;
  }
  const size_t n = chars.size();
  auto offset = [&](size_t i) { return i < n ? chars[i].offset : static_cast<uint32_t>(text.size()); };
  auto emit = [&](size_t from, size_t to) { out->push_back(text.substr(offset(from), offset(to) - offset(from))); };
  auto run_end = [&](size_t j, CharClass cls) {
    while (j < n && chars[j].cls == cls) ++j;
    return j;
  };

  size_t i = 0;
  while (i < n) {
    const char32_t c = chars[i].cp;
    // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive, as in GPT-2)
    if (c == U'\'' && i + 1 < n) {
      const char32_t c1 = chars[i + 1].cp;
      if (c1 == U's' || c1 == U't' || c1 == U'm' || c1 == U'd') {
        emit(i, i + 2);
        i += 2;
        continue;
      }
      if (i + 2 < n) {
        const char32_t c2 = chars[i + 2].cp;
        if ((c1 == U'r' && c2 == U'e') || (c1 == U'v' && c2 == U'e') || (c1 == U'l' && c2 == U'l')) {
          emit(i, i + 3);
          i += 3;
          continue;
        }
      }
    }
    // ` ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+`: an optional ASCII space, then a run of one class.
    const size_t j = (c == U' ' && i + 1 < n) ? i + 1 : i;
    const CharClass cls = chars[j].cls;
    if (cls != CharClass::kSpace) {
      const size_t end = run_end(j, cls);
      emit(i, end);
      i = end;
      continue;
    }
    // `\s+(?!\S)|\s+`: a whitespace run; when a non-space follows, its last character is left for
    // the next pre-token (so " word" keeps its space), unless the run is that one character.
    const size_t end = run_end(i, CharClass::kSpace);
    const size_t cut = (end == n || end - i == 1) ? end : end - 1;
    emit(i, cut);
    i = cut;
  }
}

}  // namespace brickrt
