// Where a node's brick versions come from: its own registry, opened read-only, and its serve globs.
// Internal to node/ (BrickServer); used from the server thread only (one SQLite connection).
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "core/status.h"
#include "node/served_bricks.h"
#include "node/wire.h"
#include "registry/registry.h"

namespace brickrt {

// Why a requested version cannot be served: the wire code a node answers with and a message that
// names the brick (without the node's name; the server prefixes it).
struct Refusal {
  wire::ErrorCode code = wire::ErrorCode::kInternal;
  std::string why;
};

class BrickSource {
 public:
  // Opens the registry read-only. Errors: those of Registry::Open (NotFound, InvalidArgument, ...).
  static Result<std::unique_ptr<BrickSource>> Open(const std::string& registry_path, std::vector<std::string> globs,
                                                   std::string node_name);

  // What the globs select now.
  struct Scan {
    // Per selected name: its newest shared mlp_expert version (the node's default set).
    std::vector<BrickRecord> newest;
    // Every private version of a selected name (a loaded version listed here must go at once).
    std::set<BrickKey> private_keys;
  };
  // strict (at start): a glob that selects no servable brick is an error naming it and why (nothing
  // matches: InvalidArgument; only private MLP experts: InvalidArgument; only attention experts:
  // Unsupported); matched private-only names and attention experts are logged. Not strict (a
  // refresh): such globs are fine. Errors: the registry's.
  Result<Scan> ScanGlobs(bool strict) const;

  // The version `digest` of brick `name`, loaded, if it may be served: the name has no wildcard, a
  // serve glob selects it, the registry (as committed now: each call reads afresh) has that version,
  // it is shared and an mlp_expert, and its payload loads and checks. Otherwise the refusal:
  // UnknownBrick (no glob, no such name, private), DigestMismatch (no version with that digest; the
  // message lists the versions there are), Unsupported (another kind), Internal (the stored payload
  // fails its check, or the registry cannot be read).
  std::variant<ServedBrick, Refusal> LoadVersion(const std::string& name, const std::string& digest) const;
  // A record's brick, built as an MLP expert. Errors: Corrupt (payload check, no 2-D w1) naming it.
  Result<ServedBrick> Load(const BrickRecord& rec) const;

  // The id of the registry's newest event: every write (import, visibility, removal, ...) logs one,
  // so a different value means the globs may select something else now. One indexed read.
  Result<int64_t> Generation() const;

  const std::string& path() const { return registry_->path(); }

 private:
  BrickSource(std::unique_ptr<Registry> registry, std::vector<std::string> globs, std::string node_name);

  std::unique_ptr<Registry> registry_;
  std::vector<std::string> globs_;
  std::string node_name_;
};

}  // namespace brickrt
