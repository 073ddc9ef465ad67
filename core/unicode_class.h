// The Unicode character classes the GPT-2 pre-tokenizer needs (\p{L}, \p{N}, White_Space) and a
// lenient UTF-8 decoder. The class table is generated (core/unicode_class_table.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace brickrt {

enum class CharClass : uint8_t {
  kOther = 0,   // none of the below (punctuation, symbols, marks, controls, unassigned)
  kLetter = 1,  // general category L* (\p{L})
  kNumber = 2,  // general category N* (\p{N}: Nd, Nl, No)
  kSpace = 3,   // property White_Space (what \s means in Oniguruma, Rust regex and HF tokenizers)
};

// The class of one code point; code points beyond U+10FFFF are kOther.
CharClass ClassifyCodePoint(char32_t cp);

// Decodes the UTF-8 sequence at s[pos]. Returns its length in bytes (1..4) and sets *cp. A byte
// that does not start a valid, complete, shortest-form sequence decodes as one byte with
// *cp = 0xFFFD, so every input is consumed and classified (as kOther). REQUIRES: pos < s.size().
size_t DecodeUtf8(std::string_view s, size_t pos, char32_t* cp);

// The length of the longest prefix of s that ends on a UTF-8 boundary such that the rest could
// still become a valid sequence with more bytes (0..3 bytes held back). Used by streaming decode.
size_t CompleteUtf8Prefix(std::string_view s);

// Appends cp as UTF-8. REQUIRES: cp <= 0x10FFFF.
void AppendUtf8(char32_t cp, std::string* out);

// s with every byte that is not part of a valid UTF-8 sequence replaced by U+FFFD (one per byte).
std::string ToValidUtf8(std::string_view s);

namespace unicode_internal {
struct CharRange {
  char32_t lo, hi;  // inclusive
  CharClass cls;
};
extern const CharRange kCharRanges[];  // sorted by lo, disjoint
extern const int kCharRangeCount;
}  // namespace unicode_internal

}  // namespace brickrt
