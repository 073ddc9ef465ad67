// A model's tokenizer as the files it came in (tokenizer.json, or vocab.json + merges.txt
// [+ added_tokens.json], plus HF's tokenizer_config.json / special_tokens_map.json when present):
// read from a checkpoint directory, checked by building the Tokenizer, stored with the manifest
// (Registry::Import, schema v5) and written back by export. See docs/registry.md "Tokenizers".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tokenizer.h"

namespace brickrt {

struct TokenizerFile {
  std::string name;   // one of TokenizerFileNames(), e.g. "tokenizer.json"
  std::string bytes;  // the file's content, unchanged

  bool operator==(const TokenizerFile&) const = default;
};

// The files of one tokenizer, ordered by name (each name once). Empty: no tokenizer.
using TokenizerFiles = std::vector<TokenizerFile>;

// The names a stored tokenizer may have, in the order they are looked for.
const std::vector<std::string>& TokenizerFileNames();

// path: a directory (a checkpoint, or a tokenizer's own directory) or a tokenizer.json file (stored
// as "tokenizer.json"). A directory with tokenizer.json gives it (vocab.json / merges.txt there are
// not taken); else vocab.json + merges.txt (+ added_tokens.json); either way with
// tokenizer_config.json and special_tokens_map.json when present. nullopt: a directory without
// tokenizer files. Errors, naming the file: NotFound (path missing), InvalidArgument (vocab.json
// without merges.txt or the reverse; a file above 256 MiB), IoError. The files are not parsed here:
// BuildTokenizer does that.
Result<std::optional<TokenizerFiles>> ReadTokenizerFiles(const std::string& path);

// Parses files with Tokenizer::FromTokenizerJson or FromVocabMerges; `where` (a directory, or a
// model ref) prefixes the file names in errors ("DIR/tokenizer.json: ..."). tokenizer_config.json and
// special_tokens_map.json must be JSON objects. InvalidArgument/Unsupported as those functions, and
// InvalidArgument for an empty set, a name outside TokenizerFileNames() or an incomplete set.
Result<Tokenizer> BuildTokenizer(const TokenizerFiles& files, const std::string& where);

// Writes each file into dir (which must exist), replacing files of the same name. IoError naming
// the path.
Status WriteTokenizerFiles(const std::string& dir, const TokenizerFiles& files);

}  // namespace brickrt
