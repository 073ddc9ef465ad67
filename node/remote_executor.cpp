// RemoteExecutor: one DEALER socket to one node; Start encodes and sends a call's rows, Finish waits
// (polling, never spinning) for the reply with the call's request id. A timed-out socket is replaced.
#include "node/remote_executor.h"

#include <chrono>
#include <cstring>
#include <map>
#include <utility>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "core/log.h"
#include "node/curve_keys.h"

namespace brickrt {
namespace {

constexpr const char* kModule = "node";
using Clock = std::chrono::steady_clock;

Status StatusFromError(const wire::Error& e, const std::string& prefix) {
  std::string msg = prefix + ": " + wire::ErrorCodeName(e.code) + ": " + e.message;
  switch (e.code) {
    case wire::ErrorCode::kMalformed: return InvalidArgument(std::move(msg));
    case wire::ErrorCode::kVersionMismatch: return Unsupported(std::move(msg));
    case wire::ErrorCode::kTooLarge: return OutOfRange(std::move(msg));
    case wire::ErrorCode::kUnsupported: return Unsupported(std::move(msg));
    case wire::ErrorCode::kUnknownBrick: return NotFound(std::move(msg));
    case wire::ErrorCode::kDigestMismatch: return Corrupt(std::move(msg));
    case wire::ErrorCode::kUnavailable: return Unavailable(std::move(msg));
    case wire::ErrorCode::kInternal: break;
  }
  return Internal(std::move(msg));
}

uint64_t RequestIdOf(const wire::Message& m) {
  if (const auto* r = std::get_if<wire::ExpertResult>(&m)) return r->request_id;
  if (const auto* e = std::get_if<wire::Error>(&m)) return e->request_id;
  return 0;  // Welcome (and requests, which a node never sends)
}

}  // namespace

struct RemoteExecutor::Impl {
  RemoteExecutorOptions opts;
  zmq::context_t ctx{1};
  std::unique_ptr<zmq::socket_t> socket;
  std::map<std::pair<int64_t, int64_t>, const wire::BrickInfo*> by_position;  // (layer, index)
  wire::Welcome welcome;
  bool connected = false;
  uint64_t next_id = 1;
  // The call in flight.
  bool in_flight = false;
  uint64_t request_id = 0;
  ExpertCall call;
  std::vector<wire::BatchBrick> batch_bricks;  // reused: no per-step allocation once warm
  std::vector<zmq::message_t> parts;           // the last reply's frames; decoded views point here

  std::string Who() const { return "node '" + opts.node_name + "' (" + opts.endpoint + ")"; }
  void Reset();
  // Receives until the message with request id `want` arrives (others are stale: dropped) or the
  // deadline passes (*timed_out). Errors: a reply that does not decode.
  Status Await(uint64_t want, Clock::time_point deadline, wire::Message* out, bool* timed_out);
  Status FinishCall();
};

void RemoteExecutor::Impl::Reset() {
  // Linger 0: a request still queued for a dead node is dropped with the socket, and a late reply to
  // it arrives (if ever) on a socket that no longer exists.
  socket.reset();
  socket = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
  socket->set(zmq::sockopt::linger, 0);
  const uint64_t max_frame = std::max<uint64_t>(opts.limits.max_tensor_bytes, opts.limits.max_header_bytes);
  socket->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(max_frame));
  if (opts.curve) {  // set before connect: the handshake authenticates both ends before any frame
    socket->set(zmq::sockopt::curve_serverkey, opts.curve->server_key);
    socket->set(zmq::sockopt::curve_publickey, opts.curve->public_key);
    socket->set(zmq::sockopt::curve_secretkey, opts.curve->secret_key);
  }
  socket->connect(opts.endpoint);
}

Status RemoteExecutor::Impl::Await(uint64_t want, Clock::time_point deadline, wire::Message* out, bool* timed_out) {
  *timed_out = false;
  for (;;) {
    const auto left = deadline - Clock::now();
    if (left <= Clock::duration::zero()) {
      *timed_out = true;
      return Status::Ok();
    }
    // Rounded up, so the last fraction of a millisecond is waited for, not spun on.
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left);
    zmq::pollitem_t item{socket->handle(), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, ms);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      throw;
    }
    if (!(item.revents & ZMQ_POLLIN)) continue;
    parts.clear();
    if (!zmq::recv_multipart(*socket, std::back_inserter(parts), zmq::recv_flags::dontwait)) continue;
    std::vector<std::string_view> frames;
    frames.reserve(parts.size());
    for (const zmq::message_t& p : parts) frames.push_back(p.to_string_view());
    Result<wire::Message> m = wire::Decode(frames, opts.limits);
    if (!m.ok()) {
      // Another protocol version reads "node speaks protocol 2, this brickrt speaks protocol 1 (...)".
      return m.status().WithContext(m.status().code() == StatusCode::kUnsupported ? Who()
                                                                                  : Who() + " sent a malformed reply");
    }
    if (RequestIdOf(*m) != want) {
      log::Debug(kModule, Who() + ": dropped a stale reply to request " + std::to_string(RequestIdOf(*m)));
      continue;
    }
    *out = std::move(*m);
    return Status::Ok();
  }
}

RemoteExecutor::RemoteExecutor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RemoteExecutor::~RemoteExecutor() = default;

Result<std::unique_ptr<RemoteExecutor>> RemoteExecutor::Create(const RemoteExecutorOptions& opts) {
  if (opts.endpoint.empty()) return InvalidArgument("remote executor for node '" + opts.node_name + "': no endpoint");
  if (opts.timeout_ms < 1) {
    return InvalidArgument("remote executor for node '" + opts.node_name + "': timeout_ms must be >= 1, got " +
                           std::to_string(opts.timeout_ms));
  }
  if (opts.curve) {
    BRICK_RETURN_IF_ERROR(curve::CheckAvailable());
    const std::string who = "remote executor for node '" + opts.node_name + "': CURVE ";
    BRICK_RETURN_IF_ERROR(curve::CheckZ85Key(opts.curve->server_key, who + "server key"));
    BRICK_RETURN_IF_ERROR(curve::CheckZ85Key(opts.curve->public_key, who + "public key"));
    BRICK_RETURN_IF_ERROR(curve::CheckZ85Key(opts.curve->secret_key, who + "secret key"));
  }
  auto impl = std::make_unique<Impl>();
  impl->opts = opts;
  for (const wire::BrickInfo& b : impl->opts.bricks) {
    const auto key = std::make_pair(int64_t{b.layer}, int64_t{b.index});
    if (!impl->by_position.emplace(key, &b).second) {
      return InvalidArgument("remote executor for node '" + opts.node_name + "': two bricks for layer " +
                             std::to_string(b.layer) + " expert " + std::to_string(b.index) + " ('" +
                             impl->by_position[key]->name + "' and '" + b.name + "')");
    }
  }
  return std::unique_ptr<RemoteExecutor>(new RemoteExecutor(std::move(impl)));
}

Status RemoteExecutor::Connect() {
  Impl& s = *impl_;
  try {
    s.connected = false;
    s.in_flight = false;
    s.Reset();
    const wire::Hello hello{s.opts.client_name, {"f32"}, s.opts.bricks};
    const std::string header = wire::EncodeHeader(hello);
    if (!s.socket->send(zmq::buffer(header), zmq::send_flags::dontwait)) {
      return Unavailable(s.Who() + ": cannot queue the hello");
    }
    wire::Message reply;
    bool timed_out = false;
    BRICK_RETURN_IF_ERROR(s.Await(0, Clock::now() + std::chrono::milliseconds(s.opts.timeout_ms), &reply, &timed_out));
    if (timed_out) {
      s.Reset();
      return Unavailable(s.Who() + " did not answer the hello within " + std::to_string(s.opts.timeout_ms) + " ms" +
                         (s.opts.curve ? " (CURVE: is this client's public key on the node's allow list, and is "
                                         "the server key the node's?)"
                                       : ""));
    }
    if (const auto* e = std::get_if<wire::Error>(&reply)) return StatusFromError(*e, s.Who() + " refused the hello");
    const auto* w = std::get_if<wire::Welcome>(&reply);
    if (w == nullptr) return InvalidArgument(s.Who() + " answered the hello with something else than a Welcome");
    std::map<std::string_view, const wire::BrickInfo*> served;
    for (const wire::BrickInfo& b : w->bricks) served.emplace(b.name, &b);
    for (const wire::BrickInfo& b : s.opts.bricks) {
      auto it = served.find(b.name);
      if (it == served.end()) {
        return NotFound(s.Who() + " does not serve brick '" + b.name + "' (check its serve globs and the brick's visibility)");
      }
      if (it->second->digest != b.digest) {
        return Corrupt(s.Who() + " serves brick '" + b.name + "' with digest " + it->second->digest +
                       ", this placement expects " + b.digest + " (run the same brick version on both ends)");
      }
      if (it->second->layer != b.layer || it->second->index != b.index || it->second->kind != b.kind) {
        return InvalidArgument(s.Who() + " serves brick '" + b.name + "' as layer " +
                               std::to_string(it->second->layer) + " expert " + std::to_string(it->second->index) +
                               ", this placement has it as layer " + std::to_string(b.layer) + " expert " +
                               std::to_string(b.index));
      }
    }
    s.welcome = *w;
    s.connected = true;
    log::Info(kModule, s.Who() + ": connected, " + std::to_string(w->bricks.size()) + " brick(s) served");
    return Status::Ok();
  } catch (const zmq::error_t& e) {
    return Unavailable(s.Who() + ": " + e.what());
  }
}

Status RemoteExecutor::Start(const ExpertCall& call) {
  Impl& s = *impl_;
  BRICK_ASSERT(!s.in_flight, "RemoteExecutor::Start with a call in flight");
  if (!s.connected) return Unavailable(s.Who() + " is not connected");
  if (call.experts.size() != call.counts.size() || call.experts.empty()) {
    return InvalidArgument(s.Who() + ": a call needs one row count per expert and at least one expert");
  }
  s.batch_bricks.resize(call.experts.size());
  uint64_t total = 0;
  for (size_t i = 0; i < call.experts.size(); ++i) {
    auto it = s.by_position.find({call.layer, call.experts[i]});
    if (it == s.by_position.end()) {
      return InvalidArgument("the placement sends layer " + std::to_string(call.layer) + " expert " +
                             std::to_string(call.experts[i]) + " to " + s.Who() + ", which has no brick listed for it");
    }
    wire::BatchBrick& bb = s.batch_bricks[i];
    bb.name = it->second->name;  // assign: reuses the string's capacity
    bb.digest = it->second->digest;
    bb.rows = static_cast<uint32_t>(call.counts[i]);
    total += static_cast<uint64_t>(call.counts[i]);
  }
  const size_t bytes = static_cast<size_t>(total) * static_cast<size_t>(call.width) * sizeof(float);
  wire::ExpertBatch batch;
  batch.request_id = s.next_id++;
  batch.layer = static_cast<uint32_t>(call.layer);
  batch.width = static_cast<uint32_t>(call.width);
  batch.bricks = std::move(s.batch_bricks);
  batch.rows = {reinterpret_cast<const std::byte*>(call.rows), bytes};
  const std::string header = wire::EncodeHeader(batch);
  s.batch_bricks = std::move(batch.bricks);
  try {
    // One copy of the rows into the message: the rows are the caller's only until Finish returns,
    // and after a timeout ZeroMQ may still hold the unsent frame (socket close is asynchronous), so
    // a zero-copy frame could be read after the session reused or freed that memory.
    if (!s.socket->send(zmq::buffer(header), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      return Unavailable(s.Who() + ": cannot queue layer " + std::to_string(call.layer) + " (send queue full)");
    }
    s.socket->send(zmq::message_t(call.rows, bytes), zmq::send_flags::none);
  } catch (const zmq::error_t& e) {
    return Unavailable(s.Who() + ": cannot send layer " + std::to_string(call.layer) + ": " + e.what());
  }
  s.request_id = batch.request_id;
  s.call = call;
  s.in_flight = true;
  return Status::Ok();
}

Status RemoteExecutor::Finish() {
  Impl& s = *impl_;
  BRICK_ASSERT(s.in_flight, "RemoteExecutor::Finish without Start");
  s.in_flight = false;
  try {
    return s.FinishCall();
  } catch (const zmq::error_t& e) {
    s.Reset();
    return Unavailable(s.Who() + ": layer " + std::to_string(s.call.layer) + ": " + e.what());
  }
}

Status RemoteExecutor::Impl::FinishCall() {
  const std::string layer = "layer " + std::to_string(call.layer);
  wire::Message reply;
  bool timed_out = false;
  BRICK_RETURN_IF_ERROR(Await(request_id, Clock::now() + std::chrono::milliseconds(opts.timeout_ms), &reply, &timed_out));
  if (timed_out) {
    Reset();
    return Unavailable(Who() + " did not answer " + layer + " within " + std::to_string(opts.timeout_ms) + " ms");
  }
  if (const auto* e = std::get_if<wire::Error>(&reply)) return StatusFromError(*e, Who() + " answered " + layer);
  const auto* r = std::get_if<wire::ExpertResult>(&reply);
  if (r == nullptr) return InvalidArgument(Who() + " answered " + layer + " with something else than a result");
  bool same_rows = r->rows.size() == call.counts.size();
  for (size_t i = 0; same_rows && i < call.counts.size(); ++i) {
    same_rows = r->rows[i] == static_cast<uint32_t>(call.counts[i]);
  }
  if (!same_rows || r->width != static_cast<uint32_t>(call.width)) {
    return InvalidArgument(Who() + " answered " + layer + " with " + std::to_string(r->rows.size()) +
                           " row counts of width " + std::to_string(r->width) + ", not the " +
                           std::to_string(call.counts.size()) + " of width " + std::to_string(call.width) + " sent");
  }
  // Decode checked Σ rows x width x 4 == the frame's bytes; the frame may be unaligned: memcpy.
  std::memcpy(call.out, r->out.data(), r->out.size());
  return Status::Ok();
}

const wire::Welcome& RemoteExecutor::welcome() const { return impl_->welcome; }

}  // namespace brickrt
