// The brick versions a node serves over time: its default set (the newest shared version of every
// name its globs select, following the registry) and the versions coordinators ask for, loaded from
// the registry on demand and unloaded once nobody needs them. Internal to node/ (BrickServer).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "core/status.h"
#include "node/brick_source.h"
#include "node/served_bricks.h"

namespace brickrt {

// Used from the node's server thread only, except table()'s snapshot accessors (see ServedBricks).
// Loading a version happens on that thread, between requests: other coordinators wait for it (an
// MLP expert of a few MiB loads in milliseconds from a warm registry).
class BrickVersions {
 public:
  using Clock = ServedBricks::Clock;

  // Opens the registry read-only and loads the default set (BrickSource::ScanGlobs strict).
  // Errors: the registry's; a glob that selects no servable brick; a default version that fails to
  // load (Corrupt naming it).
  static Result<std::unique_ptr<BrickVersions>> Open(const std::string& registry_path, std::vector<std::string> globs,
                                                     std::string node_name, Clock::duration grace);

  // The served version (name, digest), loaded from the registry first when it is not held yet and
  // may be served (BrickSource::LoadVersion); else why not. A refusal is remembered until the
  // registry changes, so a peer repeating a bad request costs a map lookup, not a registry query.
  std::variant<const ServedBrick*, Refusal> Acquire(const std::string& name, const std::string& digest,
                                                    Clock::time_point now);

  // When the registry changed since the last look (its newest event id moved): drops served versions
  // made private, loads the registry's newest shared versions and pins them as the default set (load
  // before unload: a newest version that fails to load leaves the previous default of that name
  // pinned; the previous default loses its pin and stays while a coordinator asks for it). Then
  // unloads what expired (ServedBricks::Sweep). Errors are logged; the node serves on.
  void Housekeep(Clock::time_point now);

  ServedBricks& table() { return table_; }
  const ServedBricks& table() const { return table_; }

 private:
  BrickVersions(std::unique_ptr<BrickSource> source, std::string node_name, Clock::duration grace);
  Status LoadDefaults();
  bool RegistryChanged();
  void RefreshDefaults();

  std::unique_ptr<BrickSource> source_;
  std::string node_name_;
  ServedBricks table_;
  int64_t generation_ = -1;              // the registry's newest event id at the last look
  bool defaults_stale_ = false;          // the generation moved since the default set was last refreshed
  std::map<BrickKey, Refusal> refused_;  // since the registry last changed; bounded
};

}  // namespace brickrt
