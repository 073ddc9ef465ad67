// Byte-level BPE: applies merges by rank to the bytes of one pre-token, with a bounded cache of
// recent words. Internal to the tokenizer (core/tokenizer.h is the API).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace brickrt {

class BpeModel {
 public:
  struct Merge {
    int32_t rank;
    int32_t id;  // the id of the merged token
  };

  // byte_ids[b]: the id of the one-byte token b; merges: PairKey(left, right) -> merge.
  void Init(const std::array<int32_t, 256>& byte_ids, std::unordered_map<uint64_t, Merge> merges) {
    byte_ids_ = byte_ids;
    merges_ = std::move(merges);
  }

  static uint64_t PairKey(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  // Appends the ids of word (one pre-token's bytes, non-empty) to *out. Thread-safe.
  void Encode(std::string_view word, std::vector<int32_t>* out) const;

 private:
  void EncodeUncached(std::string_view word, std::vector<int32_t>* out) const;

  static constexpr size_t kCacheEntries = 16384;  // cleared when full: bounded memory
  static constexpr size_t kCacheMaxWord = 64;     // longer words are rare; not cached

  std::array<int32_t, 256> byte_ids_{};
  std::unordered_map<uint64_t, Merge> merges_;  // PairKey(left, right) -> merge
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;  // guarded by cache_mu_
};

}  // namespace brickrt
