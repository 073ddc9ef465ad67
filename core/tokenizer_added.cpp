// A byte trie over added-token contents; positions whose byte starts no token are skipped at once.
#include "core/tokenizer_added.h"

namespace brickrt {

void AddedTokenMatcher::Add(std::string_view content, int32_t id, bool special) {
  int32_t node = 0;
  for (char c : content) {
    const uint64_t key = (static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(c);
    auto it = children_.find(key);
    if (it == children_.end()) {
      nodes_.push_back(Node{});
      it = children_.emplace(key, static_cast<int32_t>(nodes_.size() - 1)).first;
    }
    node = it->second;
  }
  nodes_[node].id = id;
  nodes_[node].special = special;
  first_byte_[static_cast<unsigned char>(content[0])] = true;
}

AddedTokenMatcher::Match AddedTokenMatcher::Find(std::string_view text, size_t from, bool match_special) const {
  if (empty()) return {};
  for (size_t begin = from; begin < text.size(); ++begin) {
    if (!first_byte_[static_cast<unsigned char>(text[begin])]) continue;
    Match best;
    int32_t node = 0;
    for (size_t i = begin; i < text.size(); ++i) {
      const uint64_t key = (static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(text[i]);
      auto it = children_.find(key);
      if (it == children_.end()) break;
      node = it->second;
      const Node& nd = nodes_[node];
      if (nd.id >= 0 && (match_special || !nd.special)) best = {begin, i + 1, nd.id};
    }
    if (best.id >= 0) return best;
  }
  return {};
}

}  // namespace brickrt
