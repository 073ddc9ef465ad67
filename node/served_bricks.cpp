// ServedBricks: the node's table of loaded brick versions, the peers that asked for them, and the
// sweep that unloads what nobody needs any more.
#include "node/served_bricks.h"

#include <algorithm>

namespace brickrt {

const ServedBrick* ServedBricks::Find(const std::string& name, const std::string& digest, Clock::time_point now) {
  auto it = entries_.find(BrickKey(name, digest));
  if (it == entries_.end()) return nullptr;
  it->second.last_used = std::max(it->second.last_used, now);  // only the writer reads it: no lock
  return &it->second.brick;
}

bool ServedBricks::HasName(const std::string& name) const {
  auto it = entries_.lower_bound(BrickKey(name, std::string()));
  return it != entries_.end() && it->first.first == name;
}

const ServedBrick* ServedBricks::Add(ServedBrick brick, Clock::time_point now) {
  BrickKey key(brick.info.name, brick.info.digest);
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, added] = entries_.try_emplace(std::move(key), Entry{std::move(brick), next_seq_, now});
  if (added) {
    ++next_seq_;
    ++loads_;
  }
  return &it->second.brick;
}

void ServedBricks::Pin(const std::set<BrickKey>& keys) {
  std::lock_guard<std::mutex> lock(mu_);
  pinned_.clear();
  for (const BrickKey& k : keys) {
    if (entries_.count(k)) pinned_.insert(k);
  }
}

void ServedBricks::SetPeerWants(const std::string& peer, std::set<BrickKey> keys, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const BrickKey& k : keys) {
    auto it = entries_.find(k);
    if (it != entries_.end()) it->second.last_used = std::max(it->second.last_used, now);
  }
  Peer& p = peers_[peer];
  p.wants = std::move(keys);
  p.last_seen = now;
}

void ServedBricks::TouchPeer(const std::string& peer, Clock::time_point now) {
  auto it = peers_.find(peer);
  if (it != peers_.end()) it->second.last_seen = now;  // a peer that never said Hello wants nothing
}

std::vector<std::string> ServedBricks::Sweep(Clock::time_point now) {
  std::vector<std::string> dropped;
  std::vector<std::shared_ptr<const MlpExpert>> release;  // destroyed after the lock is let go
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::set<BrickKey> wanted;
    for (auto it = peers_.begin(); it != peers_.end();) {
      if (now - it->second.last_seen >= grace_) {
        it = peers_.erase(it);  // silent for the grace period: gone
        continue;
      }
      wanted.insert(it->second.wants.begin(), it->second.wants.end());
      ++it;
    }
    for (auto it = entries_.begin(); it != entries_.end();) {
      const bool keep =
          pinned_.count(it->first) > 0 || wanted.count(it->first) > 0 || now - it->second.last_used < grace_;
      if (keep) {
        ++it;
        continue;
      }
      const ServedBrick& b = it->second.brick;
      dropped.push_back(b.info.name + "@" + std::to_string(b.version) + " (" + b.info.digest.substr(0, 12) + ")");
      release.push_back(std::move(it->second.brick.expert));
      it = entries_.erase(it);
      ++unloads_;
    }
  }
  return dropped;
}

bool ServedBricks::Drop(const BrickKey& key) {
  std::shared_ptr<const MlpExpert> release;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return false;
  release = std::move(it->second.brick.expert);
  entries_.erase(it);
  pinned_.erase(key);
  for (auto& [id, peer] : peers_) peer.wants.erase(key);
  ++unloads_;
  return true;
}

std::vector<wire::BrickInfo> ServedBricks::Infos() const {
  std::vector<std::pair<std::pair<std::string, uint64_t>, wire::BrickInfo>> order;
  {
    std::lock_guard<std::mutex> lock(mu_);
    order.reserve(entries_.size());
    for (const auto& [key, e] : entries_) order.push_back({{key.first, e.seq}, e.brick.info});
  }
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<wire::BrickInfo> out;
  out.reserve(order.size());
  for (auto& o : order) out.push_back(std::move(o.second));
  return out;
}

std::vector<wire::BrickInfo> ServedBricks::OnePerName(const std::set<BrickKey>& asked) const {
  std::vector<wire::BrickInfo> out;
  std::lock_guard<std::mutex> lock(mu_);
  // entries_ is ordered by (name, digest): one run per name.
  for (auto it = entries_.begin(); it != entries_.end();) {
    const std::string name = it->first.first;
    const Entry* best = nullptr;
    int best_rank = -1;
    for (; it != entries_.end() && it->first.first == name; ++it) {
      const int rank = asked.count(it->first) ? 2 : pinned_.count(it->first) ? 1 : 0;
      if (rank > best_rank || (rank == best_rank && it->second.seq > best->seq)) {
        best = &it->second;
        best_rank = rank;
      }
    }
    out.push_back(best->brick.info);
  }
  return out;
}

size_t ServedBricks::versions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

size_t ServedBricks::peers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peers_.size();
}

uint64_t ServedBricks::loads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return loads_;
}

uint64_t ServedBricks::unloads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unloads_;
}

std::weak_ptr<const MlpExpert> ServedBricks::Watch(const std::string& name, const std::string& digest) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(BrickKey(name, digest));
  if (it == entries_.end()) return {};
  return it->second.brick.expert;
}

}  // namespace brickrt
