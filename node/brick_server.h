// BrickServer: a brick node (issue #5). It serves the shared MLP expert bricks of its own registry
// that its globs select, over a ZeroMQ ROUTER socket, to any number of coordinators at once.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "node/wire.h"

namespace brickrt {

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
};

// Lifetime: Start binds and serves on a thread of its own until Stop or destruction.
// Per request (docs/protocol.md, "Node and coordinator behaviour"):
//   Hello       -> Welcome listing every served brick (or Error VersionMismatch from another version);
//   ExpertBatch -> ExpertResult, or an Error naming the brick: UnknownBrick, DigestMismatch,
//                  Malformed (width or layer that do not fit the brick), Unsupported (attention);
//   anything Decode rejects -> the Error of wire::ErrorReplyFor, or nothing (unreadable header).
// Bad input never stops the loop; every other peer keeps being served.
class BrickServer {
 public:
  // Loads every brick a glob matches that is a shared mlp_expert (latest version), checks its
  // payload, binds `listen` and starts serving. A matched private brick is never served (skipped and
  // logged); matched attention experts are skipped (not served yet), other kinds too.
  // Errors: InvalidArgument for empty options, a glob that selects no servable brick (naming it and
  // why: nothing matches, only private bricks, only other kinds), threads < 1 or a malformed CURVE key
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
  // Every brick it serves (what Welcome lists), ordered by name.
  const std::vector<wire::BrickInfo>& bricks() const;

  struct Impl;  // node/brick_server.cpp

 private:
  explicit BrickServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace brickrt
