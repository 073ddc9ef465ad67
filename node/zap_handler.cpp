// ZapHandler: the CURVE allow list of a brick node, answering ZeroMQ's handshake requests.
#include "node/zap_handler.h"

#include <array>
#include <string_view>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "core/log.h"

namespace brickrt {
namespace {

constexpr const char* kModule = "node";

std::string Z85Decode(const std::string& key) {
  std::string raw(32, '\0');
  zmq_z85_decode(reinterpret_cast<uint8_t*>(raw.data()), key.c_str());
  return raw;
}

std::string Z85Encode(std::string_view raw) {
  if (raw.size() != 32) return "(" + std::to_string(raw.size()) + "-byte key)";
  char z85[41] = {};
  zmq_z85_encode(z85, reinterpret_cast<const uint8_t*>(raw.data()), raw.size());
  return z85;
}

}  // namespace

ZapHandler::ZapHandler(const std::vector<std::string>& allow, std::string node_name)
    : node_name_(std::move(node_name)) {
  for (const std::string& key : allow) allowed_.insert(Z85Decode(key));
}

void ZapHandler::Answer(zmq::socket_t& zap) {
  // Request: version, request id, domain, address, routing id, mechanism, then the credentials (for
  // CURVE: the client's 32-byte public key). Reply: version, request id, status, text, user id, metadata.
  std::vector<zmq::message_t> req;
  if (!zmq::recv_multipart(zap, std::back_inserter(req), zmq::recv_flags::dontwait)) return;
  const auto frame = [&](size_t i) { return i < req.size() ? req[i].to_string_view() : std::string_view(); };
  const std::string_view mechanism = frame(5), key = frame(6);
  const bool ok = req.size() >= 7 && frame(0) == "1.0" && mechanism == "CURVE" && allowed_.count(key) > 0;
  if (!ok) {
    const std::string who = mechanism == "CURVE" ? "client key " + Z85Encode(key) : std::string(mechanism) + " peer";
    if (refused_.insert(mechanism == "CURVE" ? std::string(key) : std::string(mechanism)).second) {
      log::Warn(kModule, "node '" + node_name_ + "': refused " + who + " from " + std::string(frame(3)) +
                             " (not on the allow list; logged once per key)");
    }
  }
  std::array<zmq::const_buffer, 6> reply = {zmq::buffer(frame(0).empty() ? std::string_view("1.0") : frame(0)),
                                            zmq::buffer(frame(1)),
                                            zmq::buffer(ok ? std::string_view("200") : std::string_view("400")),
                                            zmq::buffer(ok ? std::string_view("OK") : std::string_view("not allowed")),
                                            zmq::buffer(std::string_view()),
                                            zmq::buffer(std::string_view())};
  zmq::send_multipart(zap, reply);
}

}  // namespace brickrt
