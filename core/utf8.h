// UTF-8 validation shared by the JSON parser and the wire codecs (names echoed in log lines and
// errors must be valid text).
#pragma once

#include <cstddef>
#include <string_view>

namespace brickrt {

// Length (2-4) of the valid multi-byte UTF-8 sequence starting at s[pos], rejecting overlong forms,
// UTF-16 surrogates and code points above U+10FFFF; 0 if there is none (an ASCII byte included).
size_t Utf8SequenceLength(std::string_view s, size_t pos);

// Whether every byte of s belongs to a valid UTF-8 sequence (ASCII included).
bool IsValidUtf8(std::string_view s);

// The longest prefix of s of at most max_bytes that does not end inside a multi-byte sequence.
std::string_view TruncateUtf8(std::string_view s, size_t max_bytes);

}  // namespace brickrt
