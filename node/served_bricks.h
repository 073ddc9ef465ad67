// The versions of MLP expert bricks a node holds in memory, keyed by (name, digest), and who still
// needs each: the node's default set (pinned) and the versions coordinators asked for in their Hello.
// Internal to node/ (BrickServer); no ZeroMQ or SQLite here, so it is tested on its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bricks/experts.h"
#include "node/wire.h"

namespace brickrt {

// One loaded brick version: immutable once built; the table owns it (and so its weights).
struct ServedBrick {
  wire::BrickInfo info;  // name, digest, kind kMlp, layer, index
  int64_t version = 0;   // the registry's version number, for messages ("NAME@3")
  std::shared_ptr<const MlpExpert> expert;
  int64_t d = 0, f = 0;  // width D and hidden width F
};

// (name, digest): one version of one brick.
using BrickKey = std::pair<std::string, std::string>;

// Single writer: the node's server thread calls every mutating method and may read without locking.
// Other threads only call the const snapshot accessors, which take the mutex the writer holds while
// it changes the table.
//
// Lifetime rule (docs/protocol.md, "Brick versions on a node"): a version stays loaded while it is
// pinned (the default set), or listed by the latest Hello of a live peer, or named by a Hello or a
// batch less than `grace` ago. A peer is live until it has been silent for `grace`. Everything else is
// dropped by Sweep, which releases its weights as soon as no batch in progress holds them (batches
// run on the writer's thread between sweeps, so in practice at once).
class ServedBricks {
 public:
  using Clock = std::chrono::steady_clock;

  explicit ServedBricks(Clock::duration grace) : grace_(grace) {}

  // The loaded version, or nullptr. Marks it used at `now` when found.
  const ServedBrick* Find(const std::string& name, const std::string& digest, Clock::time_point now);
  // Whether any version of `name` is loaded (to tell UnknownBrick from DigestMismatch).
  bool HasName(const std::string& name) const;
  // Adds a loaded version (used at `now`); replaces nothing: a key already present keeps its brick.
  const ServedBrick* Add(ServedBrick brick, Clock::time_point now);

  // The default set: these keys are pinned, every other key is not (loaded keys only; the caller
  // loads first, then pins, then the old default versions expire like any other).
  void Pin(const std::set<BrickKey>& keys);
  bool IsPinned(const BrickKey& key) const { return pinned_.count(key) > 0; }

  // `peer` (a ROUTER identity) said Hello listing `keys` (already loaded): they replace its set.
  void SetPeerWants(const std::string& peer, std::set<BrickKey> keys, Clock::time_point now);
  // `peer` sent something at `now`: it stays live.
  void TouchPeer(const std::string& peer, Clock::time_point now);

  // Forgets peers silent for `grace` and unloads every version nothing keeps (see above). Returns the
  // dropped versions' refs ("NAME@V (digest prefix)") for the log.
  std::vector<std::string> Sweep(Clock::time_point now);
  // Unloads one version at once, whoever wants it (a brick made private in the registry).
  bool Drop(const BrickKey& key);

  // Snapshots, safe from any thread.
  // Every loaded version, ordered by name, then load order.
  std::vector<wire::BrickInfo> Infos() const;
  // One version per loaded name, ordered by name: the one `asked` lists, else the pinned one, else the
  // last loaded. What a protocol-1 Welcome carries (its decoder refuses a name listed twice).
  std::vector<wire::BrickInfo> OnePerName(const std::set<BrickKey>& asked) const;
  size_t versions() const;
  size_t peers() const;
  uint64_t loads() const;    // versions added since start
  uint64_t unloads() const;  // versions dropped since start
  // The expert of a loaded version, to watch its lifetime (tests: memory is released on unload).
  std::weak_ptr<const MlpExpert> Watch(const std::string& name, const std::string& digest) const;

 private:
  struct Entry {
    ServedBrick brick;
    uint64_t seq = 0;  // load order
    Clock::time_point last_used;
  };
  struct Peer {
    std::set<BrickKey> wants;
    Clock::time_point last_seen;
  };

  const Clock::duration grace_;
  mutable std::mutex mu_;  // held by the writer while it changes entries_/peers_; by readers always
  std::map<BrickKey, Entry> entries_;
  std::map<std::string, Peer> peers_;
  std::set<BrickKey> pinned_;
  uint64_t next_seq_ = 0, loads_ = 0, unloads_ = 0;
};

}  // namespace brickrt
