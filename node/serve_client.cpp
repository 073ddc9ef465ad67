// ServeClient: a DEALER socket, request ids, and a deadline per request.
#include "node/serve_client.h"

#include <zmq.hpp>
#include <zmq_addon.hpp>

namespace brickrt {

struct ServeClient::Impl {
  zmq::context_t ctx{1};
  std::unique_ptr<zmq::socket_t> socket;
  std::string endpoint;
  std::chrono::milliseconds timeout{0};
  uint64_t next_id = 1;
  serve::ServeLimits limits;

  std::string Who() const { return "coordinator at " + endpoint; }

  Result<serve::Message> Call(serve::Message m) {
    const uint64_t id = next_id++;
    std::visit([id](auto& x) { x.request_id = id; }, m);
    const std::string frame = serve::Encode(m);
    try {
      socket->send(zmq::buffer(frame), zmq::send_flags::none);
      const auto deadline = std::chrono::steady_clock::now() + timeout;
      while (true) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        zmq::pollitem_t item{socket->handle(), 0, ZMQ_POLLIN, 0};
        if (left.count() <= 0 || zmq::poll(&item, 1, left) == 0) {
          return Unavailable(Who() + " did not answer within " + std::to_string(timeout.count()) + " ms");
        }
        zmq::message_t reply;
        if (!socket->recv(reply, zmq::recv_flags::dontwait)) continue;
        auto decoded = serve::Decode(reply.to_string_view(), limits);
        if (!decoded.ok()) return decoded.status().WithContext(Who() + " sent a reply that does not decode");
        if (serve::RequestIdOf(*decoded) != id) continue;  // a reply to an earlier, timed-out request
        if (const auto* e = std::get_if<serve::Error>(&*decoded)) return serve::ToStatus(*e, Who());
        return decoded;
      }
    } catch (const zmq::error_t& e) {
      return Unavailable(Who() + ": " + e.what());
    }
  }

  template <typename Reply>
  Result<Reply> CallFor(serve::Message m, const char* what) {
    BRICK_ASSIGN_OR_RETURN(serve::Message reply, Call(std::move(m)));
    if (auto* r = std::get_if<Reply>(&reply)) return std::move(*r);
    return InvalidArgument(Who() + " answered a " + what + " request with another kind of reply");
  }
};

Result<std::unique_ptr<ServeClient>> ServeClient::Connect(const std::string& endpoint,
                                                          std::chrono::milliseconds timeout) {
  if (endpoint.find("://") == std::string::npos) {
    return InvalidArgument("'" + endpoint + "' is not a ZeroMQ endpoint (like tcp://127.0.0.1:7100)");
  }
  auto impl = std::make_unique<Impl>();
  impl->endpoint = endpoint;
  impl->timeout = timeout;
  try {
    impl->socket = std::make_unique<zmq::socket_t>(impl->ctx, zmq::socket_type::dealer);
    impl->socket->set(zmq::sockopt::linger, 0);
    impl->socket->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(impl->limits.max_frame_bytes));
    impl->socket->connect(endpoint);
  } catch (const zmq::error_t& e) {
    return InvalidArgument("cannot connect to '" + endpoint + "': " + e.what());
  }
  return std::unique_ptr<ServeClient>(new ServeClient(std::move(impl)));
}

ServeClient::ServeClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ServeClient::~ServeClient() = default;

Result<serve::GenerateReply> ServeClient::Generate(serve::GenerateRequest req) {
  return impl_->CallFor<serve::GenerateReply>(std::move(req), "generate");
}
Result<serve::SwapReply> ServeClient::Swap(serve::SwapRequest req) {
  return impl_->CallFor<serve::SwapReply>(std::move(req), "swap");
}
Result<serve::StatusReply> ServeClient::Status() {
  return impl_->CallFor<serve::StatusReply>(serve::StatusRequest{}, "status");
}

}  // namespace brickrt
