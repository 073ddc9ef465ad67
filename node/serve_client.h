// ServeClient: talks to a coordinator (node/coordinator.h) — what `brick run --server` and
// `brick swap` use. One request at a time, each waiting up to the client's timeout.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/status.h"
#include "node/serve_wire.h"

namespace brickrt {

class ServeClient {
 public:
  // Connects (ZeroMQ connects lazily: an endpoint nobody listens on shows as a timeout on the first
  // request). Errors: InvalidArgument for an endpoint without "://".
  static Result<std::unique_ptr<ServeClient>> Connect(const std::string& endpoint, std::chrono::milliseconds timeout);
  ~ServeClient();
  ServeClient(const ServeClient&) = delete;
  ServeClient& operator=(const ServeClient&) = delete;

  // Each sends the request and waits for its reply. Errors: Unavailable "coordinator at ENDPOINT did
  // not answer within T ms"; the coordinator's Error as a Status (serve::ToStatus) naming the endpoint;
  // InvalidArgument for a reply of another kind.
  Result<serve::GenerateReply> Generate(serve::GenerateRequest req);
  Result<serve::SwapReply> Swap(serve::SwapRequest req);
  Result<serve::StatusReply> Status();

  struct Impl;  // node/serve_client.cpp

 private:
  explicit ServeClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace brickrt
