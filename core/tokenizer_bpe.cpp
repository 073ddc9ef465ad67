// BPE merging with a heap over adjacent pairs (lowest rank first, then leftmost), which gives the
// same result as GPT-2's "merge every occurrence of the best pair" loop in O(n log n).
#include "core/tokenizer_bpe.h"

#include <queue>
#include <tuple>

namespace brickrt {

void BpeModel::Encode(std::string_view word, std::vector<int32_t>* out) const {
  if (word.size() == 1) {
    out->push_back(byte_ids_[static_cast<unsigned char>(word[0])]);
    return;
  }
  const bool cacheable = word.size() <= kCacheMaxWord;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(std::string(word));
    if (it != cache_.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t start = out->size();
  EncodeUncached(word, out);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() >= kCacheEntries) cache_.clear();
    cache_.emplace(std::string(word), std::vector<int32_t>(out->begin() + static_cast<ptrdiff_t>(start), out->end()));
  }
}

void BpeModel::EncodeUncached(std::string_view word, std::vector<int32_t>* out) const {
  const int n = static_cast<int>(word.size());
  std::vector<int32_t> id(n), prev(n), next(n);
  for (int i = 0; i < n; ++i) {
    id[i] = byte_ids_[static_cast<unsigned char>(word[i])];
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  // (rank, left position, left id, right id): stale entries are recognised by the ids.
  using Entry = std::tuple<int32_t, int32_t, int32_t, int32_t>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap;
  auto push = [&](int left) {
    const int right = left >= 0 ? next[left] : -1;
    if (left < 0 || right < 0) return;
    auto it = merges_.find(PairKey(id[left], id[right]));
    if (it != merges_.end()) heap.emplace(it->second.rank, left, id[left], id[right]);
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  std::vector<bool> dead(n, false);
  while (!heap.empty()) {
    const auto [rank, left, left_id, right_id] = heap.top();
    heap.pop();
    if (dead[left] || id[left] != left_id) continue;
    const int right = next[left];
    if (right < 0 || id[right] != right_id) continue;
    id[left] = merges_.at(PairKey(left_id, right_id)).id;
    dead[right] = true;
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    push(prev[left]);
    push(left);
  }
  for (int i = 0; i >= 0; i = next[i]) out->push_back(id[i]);
}

}  // namespace brickrt
