// Token data files for brick eval / profile (docs/profiling.md): whitespace- or comma-separated token
// ids (.ids, .tokens) or a 1-D int32/int64 NumPy array (.npy), read into one stream of ids.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace brickrt {

struct TokenData {
  std::string path;
  std::vector<int32_t> ids;  // every document's ids, concatenated in file order
  // Where each id came from, for error messages: 1-based line and column of a text file's token,
  // or (line 0) the element index of an .npy array.
  std::vector<std::pair<int32_t, int32_t>> where;
  std::string digest;  // SHA-256 hex of the file's bytes
};

// Reads a token file, chosen by extension: ".npy" (format 1.0-3.0, '<i4' or '<i8' (also '|i1',
// '<i2'), C order, 1-D; every value in [0, 2^31)), ".ids" / ".tokens" (ids separated by spaces, tabs,
// commas or newlines; one document per line, concatenated; '#' starts a comment to the end of the
// line). Errors (each naming the file): NotFound; Unsupported for any other extension (a text file
// needs a tokenizer: "...; give token ids as .ids, .tokens or .npy"); InvalidArgument for a bad id
// ("FILE:LINE:COL: ..." or "FILE: element N: ...") or a file without any id; Corrupt for a malformed
// .npy; InvalidArgument for a file larger than max_bytes.
Result<TokenData> ReadTokenFile(const std::string& path, size_t max_bytes = size_t{1} << 32);

// InvalidArgument "FILE:LINE:COL: token id X is outside the vocabulary of N ids (0-(N-1))" (or "FILE:
// element I: ...") for the first id >= vocab_size; Ok otherwise.
Status CheckVocabulary(const TokenData& data, int64_t vocab_size);

}  // namespace brickrt
