// GPT-2 pre-tokenization: the split that regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// makes, written out by hand over code points (no regex engine), and GPT-2's byte<->unicode map.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace brickrt {

// Appends the pre-tokens of text to *out, in order; they concatenate back to text. Bytes that are
// not valid UTF-8 count as one "other" character each (they never occur in text from a str).
void SplitGpt2(std::string_view text, std::vector<std::string_view>* out);

// GPT-2's bytes_to_unicode(): each byte maps to a printable code point (bytes 33..126, 161..172,
// 174..255 to themselves; the rest to 256, 257, ... in byte order), so token strings in vocab.json
// and merges.txt are printable. kByteToCodePoint[b] is that code point.
extern const std::array<char32_t, 256> kByteToCodePoint;
// The inverse: the byte for code point cp, or -1 when cp is not in the map.
int CodePointToByte(char32_t cp);

// "Ġhello" (the byte-level form in vocab files) <-> " hello" (the raw bytes).
std::string BytesToByteLevel(std::string_view bytes);
// False (and *bytes unspecified) when s holds a character outside the map or invalid UTF-8.
bool ByteLevelToBytes(std::string_view s, std::string* bytes);

}  // namespace brickrt
