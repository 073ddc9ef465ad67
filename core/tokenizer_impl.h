// Internals shared by the tokenizer's files: the parsed form of the files (TokenizerSpec) and the
// built tables (Tokenizer::Impl). Not part of the API.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/tokenizer.h"
#include "core/tokenizer_added.h"
#include "core/tokenizer_bpe.h"

namespace brickrt {

// What the loaders read, before any cross-checking. Strings are as written in the files: vocab and
// merges in byte-level form ("Ġthe"), added tokens as raw text.
struct TokenizerSpec {
  std::vector<std::pair<std::string, int64_t>> vocab;
  std::string vocab_source;  // "tokenizer.json: model.vocab", "vocab.json"
  std::vector<std::pair<std::string, std::string>> merges;
  std::vector<int64_t> merge_lines;  // where each merge was written (line number or array index)
  std::string merges_source;         // "merges.txt line" / "tokenizer.json: model.merges entry"
  std::vector<AddedToken> added;
  std::string added_source;
  bool add_prefix_space = false;  // ByteLevel pre-tokenizer option
  bool ignore_merges = false;     // BPE option: a pre-token that is itself in the vocab is one id
  bool endoftext_special = false;  // vocab.json + merges.txt: make "<|endoftext|>" special
};

struct Tokenizer::Impl {
  std::vector<std::string> token_bytes;  // by id: the raw bytes
  std::vector<bool> is_added;            // by id
  std::unordered_map<std::string, int32_t> vocab_by_bytes;  // the BPE vocab (added tokens excluded)
  std::vector<AddedToken> added;
  AddedTokenMatcher matcher;
  BpeModel bpe;
  bool add_prefix_space = false;
  bool ignore_merges = false;
};

}  // namespace brickrt
