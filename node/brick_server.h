// BrickServer: a brick node (issues #5, #6). It serves the shared MLP expert bricks of its own
// registry that its globs select, over a ZeroMQ ROUTER socket, to any number of coordinators at once,
// several versions of one brick side by side while coordinators still ask for them.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "node/wire.h"

namespace brickrt {

class MlpExpert;

struct BrickServerOptions {
  std::string registry_path;  // opened read-only; the server thread owns the connection
  // ZeroMQ endpoint to bind: "tcp://127.0.0.1:7001"; "tcp://127.0.0.1:*" picks a free port (see
  // BrickServer::endpoint()). Without `curve`, bind loopback or a trusted network only.
  std::string listen;
  std::vector<std::string> serve;  // globs over full brick names ("molm-350m/L*.mlp.E*"), >= 1
  std::string name = "node";       // the node's name in Welcome and in its error messages
  wire::WireLimits limits;         // what it accepts from a peer
  int threads = 1;                 // compute threads of the expert forward (>= 1)
  // ZeroMQ CURVE (docs/protocol.md, "CURVE"): when set, the socket is a CURVE server with this
  // secret key, and a ZAP handler on the server's own context admits only the client public keys of
  // `allow`; any other peer (another key, or no CURVE at all) fails the handshake, so none of its
  // frames is ever delivered, let alone decoded. Each refused key is logged once.
  struct Curve {
    std::string secret_key;          // the node's secret key, Z85 (40 characters)
    std::vector<std::string> allow;  // allowed client public keys, Z85; >= 1
  };
  std::optional<Curve> curve;
  // Brick versions (docs/protocol.md, "Brick versions on a node"). A version a coordinator asked for
  // and that is not in the default set is unloaded once no live coordinator's latest Hello lists it
  // and nothing named it for this long; a coordinator silent this long counts as gone. >= 1.
  int unload_grace_ms = 30000;
  // How often the node looks at its registry (a new newest version joins the default set, a version
  // made private is dropped) and unloads expired versions; the server thread wakes this often. >= 1.
  int housekeeping_ms = 1000;
};

// Lifetime: Start binds and serves on a thread of its own until Stop or destruction.
// Per request (docs/protocol.md, "Node and coordinator behaviour"):
//   Hello       -> Welcome listing every served brick version, after loading from the registry each
//                  listed version the node does not hold yet; or an Error naming the first listed
//                  brick it cannot serve and why (UnknownBrick: no glob, no such brick, private;
//                  DigestMismatch: no such version; Unsupported: not an MLP expert; Internal: its
//                  stored payload fails its check); or Error VersionMismatch from another version;
//   ExpertBatch -> ExpertResult, or an Error naming the brick: UnknownBrick, DigestMismatch (as for a
//                  Hello: a version the registry holds is loaded on demand), Malformed (width or layer
//                  that do not fit the brick), Unsupported (attention);
//   anything Decode rejects -> the Error of wire::ErrorReplyFor, or nothing (unreadable header).
// Bad input never stops the loop; every other peer keeps being served.
class BrickServer {
 public:
  // Loads the default set: for every name a glob matches that is an mlp_expert, its newest shared
  // version; checks each payload, binds `listen` and starts serving. A name with only private versions
  // is never served (skipped and logged); matched attention experts are skipped (not served yet), other
  // kinds too. Errors: InvalidArgument for empty options, a glob that selects no servable brick (naming
  // it and why: nothing matches, only private bricks, only other kinds), threads, unload_grace_ms or
  // housekeeping_ms < 1, or a malformed CURVE key
  // (or an empty allow list); Unsupported for `curve` with a libzmq without CURVE; the registry's open
  // and load errors (NotFound, Corrupt, ...); Unavailable when the endpoint cannot be bound.
  static Result<std::unique_ptr<BrickServer>> Start(const BrickServerOptions& opts);
  // Stops and joins the server thread.
  ~BrickServer();
  BrickServer(const BrickServer&) = delete;
  BrickServer& operator=(const BrickServer&) = delete;

  // Stops serving: the thread is told over an inproc socket, finishes the request at hand and exits;
  // the socket is closed. Idempotent. Replies not yet written to the network may be dropped.
  void Stop();

  // The bound endpoint, with the actual port when `listen` asked for '*'.
  const std::string& endpoint() const;
  // Every brick version it serves now (what a Welcome lists), ordered by name then load order. A
  // snapshot: safe from any thread while the node serves.
  std::vector<wire::BrickInfo> bricks() const;

  struct Stats {
    size_t versions = 0;   // brick versions loaded now
    size_t peers = 0;      // coordinators whose Hello is remembered (not yet silent for the grace period)
    uint64_t loads = 0;    // versions loaded since start (the default set included)
    uint64_t unloads = 0;  // versions unloaded since start
  };
  Stats stats() const;  // a snapshot, safe from any thread
  // The expert of a served version (expired once the node unloaded it and no batch holds it): for
  // tests that check memory is released. Empty when the version is not served.
  std::weak_ptr<const MlpExpert> WatchExpertForTesting(const std::string& name, const std::string& digest) const;

  struct Impl;  // node/brick_server.cpp

 private:
  explicit BrickServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace brickrt
