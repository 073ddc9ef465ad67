// The node's ZeroMQ authentication handler (ZAP, RFC 27) for CURVE: admits only allow-listed client
// public keys. Internal to node/ (BrickServer); owned and called by the server thread only.
#pragma once

#include <set>
#include <string>
#include <vector>

namespace zmq {
class socket_t;
}

namespace brickrt {

// ZeroMQ's authentication protocol: the endpoint a handler binds on the context.
inline constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";

class ZapHandler {
 public:
  // allow: client public keys, Z85 (checked by the caller); node_name: for the log.
  ZapHandler(const std::vector<std::string>& allow, std::string node_name);
  // Answers one queued handshake request on `zap` (a REP socket bound to kZapEndpoint): status 200
  // for a CURVE client whose key is allowed, 400 for anything else; each refused key is logged once.
  // Does nothing when no request is queued. Throws zmq::error_t on a socket error.
  void Answer(zmq::socket_t& zap);

 private:
  std::set<std::string, std::less<>> allowed_;  // 32 raw bytes each
  std::set<std::string, std::less<>> refused_;  // refused keys already logged (32 raw bytes)
  std::string node_name_;
};

}  // namespace brickrt
