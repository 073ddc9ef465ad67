// Tokenizer: checks a parsed spec into tables (Build), and encodes/decodes with them.
#include "core/tokenizer.h"

#include <algorithm>
#include <cstdio>

#include "core/tokenizer_impl.h"
#include "core/tokenizer_pretokenize.h"
#include "core/unicode_class.h"

namespace brickrt {

namespace {

// Token text for error messages: quoted, escaped, cut at 40 bytes.
std::string Show(std::string_view s) {
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < 40; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F || c == '\'' || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > 40) out += "...";
  return out + "'";
}

constexpr int64_t kMaxTokens = 16 * 1024 * 1024;

}  // namespace

Result<Tokenizer> Tokenizer::Build(TokenizerSpec spec) {
  auto impl = std::make_shared<Impl>();
  if (spec.vocab.size() + spec.added.size() > static_cast<size_t>(kMaxTokens)) {
    return InvalidArgument(spec.vocab_source + ": more than " + std::to_string(kMaxTokens) + " tokens");
  }
  // The id space is 0..max id; with no gaps it cannot be larger than the number of entries.
  int64_t max_id = -1;
  for (const auto& entry : spec.vocab) max_id = std::max(max_id, entry.second);
  for (const AddedToken& t : spec.added) max_id = std::max<int64_t>(max_id, t.id);
  const size_t entries = spec.vocab.size() + spec.added.size() + (spec.endoftext_special ? 1 : 0);
  const size_t total = std::min<size_t>(static_cast<size_t>(max_id + 1), entries);
  // Every id in [0, total) must be named exactly once, by the vocab or by an added token (an added
  // token may repeat a vocab entry with the same bytes, like GPT-2's <|endoftext|>).
  impl->token_bytes.assign(total, std::string());
  std::vector<bool> assigned(total, false);
  impl->is_added.assign(total, false);
  std::string bytes;
  for (const auto& [token, id] : spec.vocab) {
    if (id < 0 || id >= static_cast<int64_t>(total)) {
      return InvalidArgument(spec.vocab_source + ": token " + Show(token) + " has id " + std::to_string(id) +
                             ", outside [0, " + std::to_string(total) + ") (ids must be 0..N-1 with no gaps)");
    }
    if (token.empty()) return InvalidArgument(spec.vocab_source + ": id " + std::to_string(id) + " has an empty token");
    if (!ByteLevelToBytes(token, &bytes)) {
      return InvalidArgument(spec.vocab_source + ": token " + Show(token) + " (id " + std::to_string(id) +
                             ") is not in GPT-2's byte-level form (a character outside the 256-byte map)");
    }
    if (assigned[id]) {
      return InvalidArgument(spec.vocab_source + ": id " + std::to_string(id) + " is given to both " +
                             Show(BytesToByteLevel(impl->token_bytes[id])) + " and " + Show(token));
    }
    assigned[id] = true;
    impl->token_bytes[id] = bytes;
    impl->vocab_by_bytes.emplace(bytes, static_cast<int32_t>(id));
  }
  if (spec.endoftext_special) {
    auto it = impl->vocab_by_bytes.find("<|endoftext|>");
    const bool listed = std::any_of(spec.added.begin(), spec.added.end(),
                                    [](const AddedToken& t) { return t.content == "<|endoftext|>"; });
    if (it != impl->vocab_by_bytes.end() && !listed) spec.added.push_back({it->second, "<|endoftext|>", true});
  }
  std::unordered_map<std::string, int32_t> added_ids;
  for (const AddedToken& t : spec.added) {
    if (t.content.empty()) return InvalidArgument(spec.added_source + ": added token " + std::to_string(t.id) + " is empty");
    if (t.id < 0 || t.id >= static_cast<int64_t>(total)) {
      return InvalidArgument(spec.added_source + ": added token " + Show(t.content) + " has id " + std::to_string(t.id) +
                             ", outside [0, " + std::to_string(total) + ")");
    }
    if (!added_ids.emplace(t.content, t.id).second) {
      return InvalidArgument(spec.added_source + ": added token " + Show(t.content) + " is listed twice");
    }
    if (assigned[t.id]) {
      if (impl->is_added[t.id] || impl->token_bytes[t.id] != t.content) {
        return InvalidArgument(spec.added_source + ": added token " + Show(t.content) + " has id " +
                               std::to_string(t.id) + ", which is already " + Show(impl->token_bytes[t.id]));
      }
      impl->vocab_by_bytes.erase(t.content);  // matched as an added token, never produced by BPE
    }
    assigned[t.id] = true;
    impl->is_added[t.id] = true;
    impl->token_bytes[t.id] = t.content;
    impl->matcher.Add(t.content, t.id, t.special);
    impl->added.push_back(t);
  }
  // Duplicates inside the vocab leave a hole; report the first.
  const auto hole = std::find(assigned.begin(), assigned.end(), false);
  if (hole != assigned.end()) {
    return InvalidArgument(spec.vocab_source + ": no token has id " + std::to_string(hole - assigned.begin()) +
                           " (ids must be 0..N-1 with no gaps; a token listed twice leaves one)");
  }
  std::array<int32_t, 256> byte_ids{};
  for (int b = 0; b < 256; ++b) {
    auto it = impl->vocab_by_bytes.find(std::string(1, static_cast<char>(b)));
    if (it == impl->vocab_by_bytes.end()) {
      char buf[64];
      std::snprintf(buf, sizeof buf, ": no token for byte 0x%02X (byte-level BPE needs all 256)", b);
      return InvalidArgument(spec.vocab_source + buf);
    }
    byte_ids[b] = it->second;
  }
  std::unordered_map<uint64_t, BpeModel::Merge> merges;
  merges.reserve(spec.merges.size());
  std::string a_bytes, b_bytes;
  for (size_t i = 0; i < spec.merges.size(); ++i) {
    const auto& [a, b] = spec.merges[i];
    const std::string where = spec.merges_source + " " + std::to_string(spec.merge_lines[i]);
    int32_t ids[2];
    const std::string* parts[2] = {&a, &b};
    std::string* part_bytes[2] = {&a_bytes, &b_bytes};
    for (int k = 0; k < 2; ++k) {
      auto it = ByteLevelToBytes(*parts[k], part_bytes[k]) ? impl->vocab_by_bytes.find(*part_bytes[k])
                                                           : impl->vocab_by_bytes.end();
      if (it == impl->vocab_by_bytes.end()) {
        return InvalidArgument(where + ": " + Show(*parts[k]) + " is not in the vocab");
      }
      ids[k] = it->second;
    }
    auto merged = impl->vocab_by_bytes.find(a_bytes + b_bytes);
    if (merged == impl->vocab_by_bytes.end()) {
      return InvalidArgument(where + ": the merge of " + Show(a) + " and " + Show(b) + " is not in the vocab");
    }
    if (!merges.emplace(BpeModel::PairKey(ids[0], ids[1]), BpeModel::Merge{static_cast<int32_t>(i), merged->second})
             .second) {
      return InvalidArgument(where + ": duplicate merge " + Show(a) + " " + Show(b));
    }
  }
  impl->bpe.Init(byte_ids, std::move(merges));
  impl->add_prefix_space = spec.add_prefix_space;
  impl->ignore_merges = spec.ignore_merges;
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, const EncodeOptions& options) const {
  const Impl& im = *impl_;
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<std::string_view> words;
  std::string prefixed;
  auto encode_segment = [&](std::string_view seg) {
    if (seg.empty()) return;
    if (im.add_prefix_space && seg[0] != ' ') {
      prefixed = " ";
      prefixed.append(seg);
      seg = prefixed;
    }
    words.clear();
    SplitGpt2(seg, &words);
    for (std::string_view w : words) {
      if (im.ignore_merges) {
        auto it = im.vocab_by_bytes.find(std::string(w));
        if (it != im.vocab_by_bytes.end()) {
          ids.push_back(it->second);
          continue;
        }
      }
      im.bpe.Encode(w, &ids);
    }
  };
  size_t pos = 0;
  while (pos < text.size()) {
    const AddedTokenMatcher::Match m = im.matcher.Find(text, pos, options.match_special);
    if (m.id < 0) {
      encode_segment(text.substr(pos));
      break;
    }
    encode_segment(text.substr(pos, m.begin - pos));
    ids.push_back(m.id);
    pos = m.end;
  }
  return ids;
}

Result<std::string> Tokenizer::Decode(std::span<const int32_t> ids) const {
  std::string out;
  for (int32_t id : ids) {
    if (!IsValidId(id)) {
      return OutOfRange("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                        std::to_string(vocab_size()) + ")");
    }
    out += impl_->token_bytes[id];
  }
  return out;
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->token_bytes.size()); }

const std::string& Tokenizer::TokenBytes(int32_t id) const {
  BRICK_ASSERT(IsValidId(id), "token id out of range");
  return impl_->token_bytes[id];
}

std::string Tokenizer::Piece(int32_t id) const { return ToValidUtf8(TokenBytes(id)); }

std::string Tokenizer::TokenString(int32_t id) const {
  return impl_->is_added[id] ? TokenBytes(id) : BytesToByteLevel(TokenBytes(id));
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  for (const AddedToken& t : impl_->added) {
    if (t.content == token) return t.id;
  }
  std::string bytes;
  if (!ByteLevelToBytes(token, &bytes)) return std::nullopt;
  auto it = impl_->vocab_by_bytes.find(bytes);
  if (it == impl_->vocab_by_bytes.end()) return std::nullopt;
  return it->second;
}

const std::vector<AddedToken>& Tokenizer::added_tokens() const { return impl_->added; }

Result<std::string> StreamDecoder::Next(int32_t id) {
  if (!tokenizer_->IsValidId(id)) {
    return OutOfRange("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                      std::to_string(tokenizer_->vocab_size()) + ")");
  }
  pending_ += tokenizer_->TokenBytes(id);
  const size_t complete = CompleteUtf8Prefix(pending_);
  std::string out = ToValidUtf8(std::string_view(pending_).substr(0, complete));
  pending_.erase(0, complete);
  return out;
}

std::string StreamDecoder::Finish() {
  std::string out = ToValidUtf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace brickrt
