// RemoteExecutor: runs a layer's MLP experts on a brick node (node/brick_server.h) over ZeroMQ, one
// ExpertBatch per (layer, node) per forward step: the ExpertExecutor of the edge–cloud split.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bricks/executor.h"
#include "core/status.h"
#include "node/wire.h"

namespace brickrt {

struct RemoteExecutorOptions {
  std::string endpoint;           // the node's endpoint: "tcp://127.0.0.1:7001"
  int timeout_ms = 500;           // per Connect and per call, >= 1
  std::string node_name = "node";  // the placement's name for the node, used in error messages
  std::string client_name = "brickrt";  // this coordinator's name in the Hello
  // Every brick the placement sends to this node (name, digest, layer, index). A call may only name
  // experts listed here; Connect checks that the node serves each of them with the same digest.
  std::vector<wire::BrickInfo> bricks;
  wire::WireLimits limits;  // what it accepts from the node
  // ZeroMQ CURVE (docs/protocol.md, "CURVE"): when set, the socket is a CURVE client that talks only
  // to the node holding the secret key of `server_key`, authenticating with this coordinator's key
  // pair. A node that does not admit `public_key` never answers: Connect fails with Unavailable.
  struct Curve {
    std::string server_key;  // the node's public key, Z85 (40 characters)
    std::string public_key;  // this coordinator's key pair, Z85
    std::string secret_key;
  };
  std::optional<Curve> curve;
};

// Use from one thread at a time (the session's). At most one call in flight (ExpertExecutor).
class RemoteExecutor : public ExpertExecutor {
 public:
  // Validates the options (endpoint, timeout, no two bricks for one (layer, index), well-formed CURVE
  // keys; Unsupported for `curve` with a libzmq without CURVE); connects nothing.
  static Result<std::unique_ptr<RemoteExecutor>> Create(const RemoteExecutorOptions& opts);
  ~RemoteExecutor() override;
  RemoteExecutor(const RemoteExecutor&) = delete;
  RemoteExecutor& operator=(const RemoteExecutor&) = delete;

  // Sends Hello and waits up to timeout_ms for Welcome. Errors (each naming node and endpoint):
  // Unavailable (no answer in time; with CURVE, also a node that refuses this client's key or has
  // another key than `server_key`), Unsupported (the node speaks another protocol version),
  // NotFound (the node does not serve a listed brick, naming the first), Corrupt (it serves one with
  // another digest, naming it and both digests), the node's own Error otherwise. Calls before a
  // successful Connect fail with Unavailable.
  Status Connect();

  // Encodes every row of the call into one ExpertBatch (one copy of the rows) and sends it.
  // Errors: InvalidArgument for an expert of the call not in opts.bricks; Unavailable when not
  // connected or the message cannot be queued.
  Status Start(const ExpertCall& call) override;
  // Waits up to timeout_ms for the answer to the started call (replies to earlier, timed-out calls are
  // discarded) and copies the outputs into call.out. Errors: Unavailable "node 'NAME' (ENDPOINT) did
  // not answer layer L within T ms" — the socket is then replaced, so a late reply can never be
  // taken for a later call's; the node's Error as a Status naming the node (NotFound for an unknown
  // brick, Corrupt for a digest mismatch, ...); InvalidArgument for a reply that does not fit the call.
  Status Finish() override;

  // The Welcome of the last successful Connect (node name, bricks it serves).
  const wire::Welcome& welcome() const;

  struct Impl;  // node/remote_executor.cpp

 private:
  explicit RemoteExecutor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace brickrt
