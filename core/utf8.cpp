// UTF-8 validation (RFC 3629).
#include "core/utf8.h"

namespace brickrt {

size_t Utf8SequenceLength(std::string_view s, size_t pos) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(pos + i < s.size() ? s[pos + i] : 0); };
  const unsigned char c = b(0);
  const auto cont = [&](size_t i) { return (b(i) & 0xc0) == 0x80; };
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xe0 && b(1) < 0xa0) return 0;   // overlong
    if (c == 0xed && b(1) >= 0xa0) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xf0 && b(1) < 0x90) return 0;   // overlong
    if (c == 0xf4 && b(1) >= 0x90) return 0;  // > U+10FFFF
    return 4;
  }
  return 0;
}

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string_view TruncateUtf8(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(s[end - 1]) & 0xc0) == 0x80) --end;  // continuation bytes
  if (end > 0 && static_cast<unsigned char>(s[end - 1]) >= 0xc0) --end;              // their lead byte
  // Keep a sequence that ends exactly at max_bytes.
  if (end < max_bytes && Utf8SequenceLength(s, end) == max_bytes - end) end = max_bytes;
  return s.substr(0, end);
}

}  // namespace brickrt
