// A GPT-2 style byte-level BPE tokenizer (what MoLM/ModuleFormer, GPT-2 and CodeGen use): added
// and special tokens matched first (longest match), then the GPT-2 pre-tokenizer, then BPE merges
// by rank over bytes. Built from HF tokenizer.json, or vocab.json + merges.txt (+ added_tokens.json),
// given as bytes in memory or as files. See docs/tokenizer.md.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace brickrt {

struct TokenizerSpec;  // core/tokenizer_impl.h

struct AddedToken {
  int32_t id = 0;
  std::string content;   // the literal text it matches (raw UTF-8, not byte-level)
  bool special = false;  // e.g. <|endoftext|>; EncodeOptions::match_special decides if text may produce it
};

struct EncodeOptions {
  // Whether special added tokens written in the text (e.g. "<|endoftext|>") become their ids, as HF
  // tokenizers do by default. When false they are encoded as ordinary text; non-special added
  // tokens (MoLM's whitespace runs) are matched either way.
  bool match_special = true;
};

class Tokenizer {
 public:
  // From the text of an HF tokenizer.json (model.type "BPE" with a ByteLevel pre-tokenizer).
  // `source` names it in errors. InvalidArgument for malformed input, Unsupported for a valid file
  // outside what is implemented (another model type, a normalizer, continuing_subword_prefix, ...).
  static Result<Tokenizer> FromTokenizerJson(std::string_view json, std::string_view source = "tokenizer.json");
  // From the texts of vocab.json, merges.txt and (optional, may be empty) added_tokens.json. A vocab
  // entry "<|endoftext|>" is registered as a special token, as HF's GPT2Tokenizer does.
  // `dir` prefixes the file names in errors.
  static Result<Tokenizer> FromVocabMerges(std::string_view vocab_json, std::string_view merges_txt,
                                           std::string_view added_tokens_json = {}, std::string_view dir = "");
  // path: a tokenizer.json file, or a directory holding tokenizer.json, or else vocab.json +
  // merges.txt (+ added_tokens.json if present). NotFound when none is there.
  static Result<Tokenizer> Load(const std::string& path);

  // Token ids of text. Never fails: every byte sequence, valid UTF-8 or not, has an encoding.
  std::vector<int32_t> Encode(std::string_view text, const EncodeOptions& options = {}) const;
  // The bytes the ids stand for, concatenated (may end inside a UTF-8 sequence). OutOfRange naming
  // the first id outside [0, vocab_size()).
  Result<std::string> Decode(std::span<const int32_t> ids) const;

  // Number of ids, added tokens included (50295 for MoLM).
  int32_t vocab_size() const;
  bool IsValidId(int32_t id) const { return id >= 0 && id < vocab_size(); }
  // The raw bytes of one token. REQUIRES: IsValidId(id).
  const std::string& TokenBytes(int32_t id) const;
  // The token as text for people and JSON (traces, --json): its bytes, with each byte that is not
  // part of valid UTF-8 (half of a multi-byte character) shown as U+FFFD. REQUIRES: IsValidId(id).
  std::string Piece(int32_t id) const;
  // The token as HF writes it in vocab.json ("Ġthe"); added tokens as their content.
  // REQUIRES: IsValidId(id).
  std::string TokenString(int32_t id) const;
  // The id of an added token's content or of a vocab entry in its byte-level form; nullopt if none.
  std::optional<int32_t> TokenToId(std::string_view token) const;
  const std::vector<AddedToken>& added_tokens() const;

  struct Impl;  // defined in core/tokenizer_impl.h

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  // Checks a parsed spec (ids, bytes, merges, added tokens) and builds the tables.
  static Result<Tokenizer> Build(TokenizerSpec spec);
  std::shared_ptr<const Impl> impl_;  // shared by copies; Impl is immutable but for a locked cache
};

// Turns ids into text one at a time for streaming output: Next() returns only complete UTF-8,
// holding back the start of a multi-byte character until the ids that finish it arrive.
class StreamDecoder {
 public:
  // REQUIRES: tokenizer outlives this decoder.
  explicit StreamDecoder(const Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}
  // The text that the id completes (possibly empty); bytes that can never become valid UTF-8 come
  // out as U+FFFD, one per byte. OutOfRange for an unknown id (nothing is consumed).
  Result<std::string> Next(int32_t id);
  // The end of the stream: what is still held back (an unfinished character) as U+FFFD, one per
  // byte; the decoder is then empty and can be reused.
  std::string Finish();
  // Bytes held back now (0..3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer* tokenizer_;
  std::string pending_;
};

}  // namespace brickrt
