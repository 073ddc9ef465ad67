// Code point classification by binary search over the generated ranges, with an ASCII table, and
// the UTF-8 helpers the tokenizer uses.
#include "core/unicode_class.h"

#include <array>

namespace brickrt {

namespace {

std::array<CharClass, 128> MakeAsciiTable() {
  std::array<CharClass, 128> t{};
  for (char32_t c = 0; c < 128; ++c) {
    CharClass cls = CharClass::kOther;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) cls = CharClass::kLetter;
    if (c >= '0' && c <= '9') cls = CharClass::kNumber;
    if (c == ' ' || (c >= 0x09 && c <= 0x0D)) cls = CharClass::kSpace;
    t[c] = cls;
  }
  return t;
}

const std::array<CharClass, 128> kAscii = MakeAsciiTable();

// Expected length of a sequence from its lead byte; 0 for a byte that cannot lead.
int LeadLength(unsigned char b) {
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 0;
}

// Whether byte b can follow at index i (1-based) of a sequence led by `lead` (shortest form, no
// surrogates, no code point above U+10FFFF).
bool ValidContinuation(unsigned char lead, int i, unsigned char b) {
  if ((b & 0xC0) != 0x80) return false;
  if (i != 1) return true;
  if (lead == 0xE0) return b >= 0xA0;
  if (lead == 0xED) return b <= 0x9F;
  if (lead == 0xF0) return b >= 0x90;
  if (lead == 0xF4) return b <= 0x8F;
  return true;
}

}  // namespace

CharClass ClassifyCodePoint(char32_t cp) {
  if (cp < 128) return kAscii[cp];
  int lo = 0, hi = unicode_internal::kCharRangeCount - 1;
  while (lo <= hi) {
    const int mid = (lo + hi) / 2;
    const auto& r = unicode_internal::kCharRanges[mid];
    if (cp < r.lo) {
      hi = mid - 1;
    } else if (cp > r.hi) {
      lo = mid + 1;
    } else {
      return r.cls;
    }
  }
  return CharClass::kOther;
}

size_t DecodeUtf8(std::string_view s, size_t pos, char32_t* cp) {
  const auto lead = static_cast<unsigned char>(s[pos]);
  const int len = LeadLength(lead);
  if (len == 1) {
    *cp = lead;
    return 1;
  }
  if (len == 0 || pos + static_cast<size_t>(len) > s.size()) {
    *cp = 0xFFFD;
    return 1;
  }
  char32_t v = lead & (0xFF >> (len + 1));
  for (int i = 1; i < len; ++i) {
    const auto b = static_cast<unsigned char>(s[pos + i]);
    if (!ValidContinuation(lead, i, b)) {
      *cp = 0xFFFD;
      return 1;
    }
    v = (v << 6) | (b & 0x3F);
  }
  *cp = v;
  return static_cast<size_t>(len);
}

size_t CompleteUtf8Prefix(std::string_view s) {
  // Only the last 3 bytes can be the start of an unfinished sequence.
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto lead = static_cast<unsigned char>(s[n - back]);
    if ((lead & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    const int len = LeadLength(lead);
    if (len <= static_cast<int>(back)) return n;  // complete (or invalid: nothing to wait for)
    for (size_t i = 1; i < back; ++i) {
      if (!ValidContinuation(lead, static_cast<int>(i), static_cast<unsigned char>(s[n - back + i]))) return n;
    }
    return n - back;
  }
  return n;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string ToValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    char32_t cp;
    const size_t len = DecodeUtf8(s, pos, &cp);
    if (cp == 0xFFFD && len == 1) {
      AppendUtf8(0xFFFD, &out);
    } else {
      out.append(s.substr(pos, len));
    }
    pos += len;
  }
  return out;
}

}  // namespace brickrt
