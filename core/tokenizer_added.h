// Finds added tokens in text before BPE: at each position the longest added token that starts
// there wins, scanning left to right (HF's leftmost-longest). Internal to the tokenizer.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace brickrt {

class AddedTokenMatcher {
 public:
  // REQUIRES: content non-empty and unique across calls.
  void Add(std::string_view content, int32_t id, bool special);

  struct Match {
    size_t begin = 0, end = 0;  // byte range in the text
    int32_t id = -1;
  };
  // The first match at or after `from` (specials skipped unless match_special); id -1 if none.
  Match Find(std::string_view text, size_t from, bool match_special) const;
  bool empty() const { return nodes_.size() == 1; }

 private:
  struct Node {
    int32_t id = -1;  // token ending here, or -1
    bool special = false;
  };
  std::vector<Node> nodes_{Node{}};                  // node 0 is the root
  std::unordered_map<uint64_t, int32_t> children_;  // (node << 8 | byte) -> child node
  std::array<bool, 256> first_byte_{};              // bytes some token starts with
};

}  // namespace brickrt
