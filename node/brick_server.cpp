// BrickServer: one thread owns the brick versions (registry + served table), the ROUTER socket and an
// inproc control socket; it answers requests one at a time and every housekeeping_ms lets the brick
// versions follow the registry and unload what expired.
#include "node/brick_server.h"

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <set>
#include <thread>
#include <variant>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "bricks/experts.h"
#include "core/log.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "node/brick_versions.h"
#include "node/curve_keys.h"
#include "node/zap_handler.h"

namespace brickrt {
namespace {

constexpr const char* kModule = "node";
using Clock = ServedBricks::Clock;

// A 64-byte aligned F32 buffer that only grows (the node's per-request scratch).
class FloatBuffer {
 public:
  float* Get(size_t n) {
    if (n > cap_) {
      storage_ = AllocateAligned(n * sizeof(float), false);
      cap_ = n;
    }
    return reinterpret_cast<float*>(storage_.get());
  }

 private:
  std::shared_ptr<uint8_t> storage_;
  size_t cap_ = 0;
};

std::string Quoted(const std::string& s) { return "'" + s + "'"; }

}  // namespace

struct BrickServer::Impl {
  explicit Impl(const BrickServerOptions& o) : opts(o), housekeeping(std::chrono::milliseconds(o.housekeeping_ms)) {}

  BrickServerOptions opts;
  zmq::context_t ctx{1};
  std::string control_endpoint;
  std::string endpoint;
  std::thread thread;
  std::atomic<bool> stopped{false};
  // Made by the server thread before Start returns; changed by it only (its table() has snapshots
  // that are safe from any thread).
  std::unique_ptr<BrickVersions> versions;

  // Server thread only.
  std::unique_ptr<ZapHandler> zap_handler;
  std::unique_ptr<ThreadPool> pool;
  FloatBuffer in, out, scratch;
  const Clock::duration housekeeping;
  Clock::time_point next_housekeeping;

  Status Load();
  void Run(std::promise<Status>* ready);
  void Serve(zmq::socket_t& router, zmq::socket_t& control, zmq::socket_t* zap);
  void Handle(zmq::socket_t& router, std::vector<zmq::message_t>& parts);
  void OnHello(zmq::socket_t& router, zmq::message_t& identity, const wire::Hello& hello);
  std::optional<wire::Error> RunBatch(const wire::ExpertBatch& b, std::vector<uint32_t>* rows, size_t* out_floats);
  void Send(zmq::socket_t& router, zmq::message_t& identity, const wire::Message& m, std::span<const std::byte> tensor);
};

Status BrickServer::Impl::Load() {
  BRICK_ASSIGN_OR_RETURN(versions, BrickVersions::Open(opts.registry_path, opts.serve, opts.name,
                                                       std::chrono::milliseconds(opts.unload_grace_ms)));
  return Status::Ok();
}

void BrickServer::Impl::Run(std::promise<Status>* ready) {
  // Everything below may throw (zmq errors, allocation); nothing may escape the thread.
  bool reported = false;
  try {
    Status st = Load();
    zmq::socket_t router(ctx, zmq::socket_type::router);
    zmq::socket_t control(ctx, zmq::socket_type::pair);
    std::unique_ptr<zmq::socket_t> zap;
    if (st.ok()) {
      pool = std::make_unique<ThreadPool>(opts.threads);
      router.set(zmq::sockopt::linger, 0);
      if (opts.curve) {
        // The handler is bound before the router, so no handshake can happen without it (libzmq
        // would otherwise admit every CURVE client).
        zap = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::rep);
        zap->set(zmq::sockopt::linger, 0);
        zap->bind(kZapEndpoint);
        zap_handler = std::make_unique<ZapHandler>(opts.curve->allow, opts.name);
        router.set(zmq::sockopt::zap_domain, "brickrt");
        router.set(zmq::sockopt::curve_server, 1);
        router.set(zmq::sockopt::curve_secretkey, opts.curve->secret_key);
      }
      // A frame beyond what Decode would accept is refused by ZeroMQ before it is buffered whole.
      const uint64_t max_frame = std::max<uint64_t>(opts.limits.max_tensor_bytes, opts.limits.max_header_bytes);
      router.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(max_frame));
      try {
        router.bind(opts.listen);
        endpoint = router.get(zmq::sockopt::last_endpoint);
        control.bind(control_endpoint);
      } catch (const zmq::error_t& e) {
        st = Unavailable("node " + Quoted(opts.name) + " cannot bind " + Quoted(opts.listen) + ": " + e.what());
      }
    }
    reported = true;
    const bool ok = st.ok();
    ready->set_value(std::move(st));
    if (!ok) return;
    Serve(router, control, zap.get());
  } catch (const std::exception& e) {
    if (!reported) {
      ready->set_value(Internal("node " + Quoted(opts.name) + ": " + e.what()));
    } else {
      log::Error(kModule, "node " + Quoted(opts.name) + " stopped: " + e.what());
    }
  }
}

void BrickServer::Impl::Serve(zmq::socket_t& router, zmq::socket_t& control, zmq::socket_t* zap) {
  std::vector<zmq::message_t> parts;
  next_housekeeping = Clock::now() + housekeeping;
  for (;;) {
    zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0},
                               {control.handle(), 0, ZMQ_POLLIN, 0},
                               {zap != nullptr ? zap->handle() : nullptr, 0, ZMQ_POLLIN, 0}};
    // Blocks until a message or the next housekeeping (every housekeeping_ms): no busy polling.
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(next_housekeeping - Clock::now());
    try {
      zmq::poll(items, zap != nullptr ? 3 : 2, std::max(wait, std::chrono::milliseconds{0}));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      throw;
    }
    if (Clock::now() >= next_housekeeping) {
      try {
        versions->Housekeep(Clock::now());
        next_housekeeping = Clock::now() + housekeeping;
      } catch (const std::exception& e) {  // bad_alloc loading a new default: retried next time
        log::Error(kModule, "node " + Quoted(opts.name) + ": housekeeping failed: " + e.what());
        next_housekeeping = Clock::now() + housekeeping;
      }
    }
    if (items[1].revents & ZMQ_POLLIN) return;
    if (zap != nullptr && (items[2].revents & ZMQ_POLLIN)) {
      try {
        zap_handler->Answer(*zap);
      } catch (const zmq::error_t& e) {
        log::Error(kModule, "node " + Quoted(opts.name) + ": authentication failed: " + e.what());
      }
    }
    if (!(items[0].revents & ZMQ_POLLIN)) continue;
    // Drain what is queued, but look at the control socket at least every 64 messages.
    for (int i = 0; i < 64; ++i) {
      parts.clear();
      std::optional<size_t> got;
      try {
        got = zmq::recv_multipart(router, std::back_inserter(parts), zmq::recv_flags::dontwait);
      } catch (const zmq::error_t& e) {
        log::Warn(kModule, std::string("receive failed: ") + e.what());
        break;
      }
      if (!got) break;
      try {
        Handle(router, parts);
      } catch (const std::exception& e) {  // bad_alloc, a zmq error: this request fails, the loop goes on
        log::Error(kModule, "node " + Quoted(opts.name) + ": request failed: " + e.what());
      }
    }
  }
}

void BrickServer::Impl::Send(zmq::socket_t& router, zmq::message_t& identity, const wire::Message& m,
                             std::span<const std::byte> tensor) {
  const std::string header = wire::EncodeHeader(m);
  // dontwait: a peer that stopped reading (its queue at the high-water mark) loses this reply instead
  // of blocking every other peer; a peer that is gone is dropped by the ROUTER.
  if (!router.send(identity, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) return;
  const auto more = tensor.empty() ? zmq::send_flags::dontwait : zmq::send_flags::sndmore | zmq::send_flags::dontwait;
  router.send(zmq::buffer(header), more);
  if (!tensor.empty()) router.send(zmq::const_buffer(tensor.data(), tensor.size()), zmq::send_flags::dontwait);
}

void BrickServer::Impl::OnHello(zmq::socket_t& router, zmq::message_t& identity, const wire::Hello& hello) {
  const Clock::time_point now = Clock::now();
  const std::string peer = identity.to_string();
  std::set<BrickKey> wants;
  for (const wire::BrickInfo& b : hello.bricks) {
    std::variant<const ServedBrick*, Refusal> got =
        b.kind == wire::ExpertKind::kMlp
            ? versions->Acquire(b.name, b.digest, now)
            : Refusal{wire::ErrorCode::kUnsupported, "serves no attention experts yet (brick " + Quoted(b.name) + ")"};
    if (const auto* r = std::get_if<Refusal>(&got)) {
      // This Hello fails; the peer's earlier set stands, versions loaded for it expire unless asked for.
      versions->table().TouchPeer(peer, now);
      log::Warn(kModule, "node " + Quoted(opts.name) + ": refused the hello of " + Quoted(hello.name) + ": " + r->why);
      Send(router, identity, wire::MakeError(0, r->code, "node " + Quoted(opts.name) + ": " + r->why), {});
      return;
    }
    wants.emplace(b.name, b.digest);
  }
  log::Info(kModule, "node " + Quoted(opts.name) + ": hello from " + Quoted(hello.name) + " (" +
                         std::to_string(wants.size()) + " brick(s))");
  // One version per name (protocol 1 refuses a name listed twice): the one this Hello asked for.
  std::vector<wire::BrickInfo> infos = versions->table().OnePerName(wants);
  versions->table().SetPeerWants(peer, std::move(wants), now);
  Send(router, identity, wire::Welcome{opts.name, {"f32"}, std::move(infos)}, {});
}

void BrickServer::Impl::Handle(zmq::socket_t& router, std::vector<zmq::message_t>& parts) {
  if (parts.size() < 2) return;  // an identity with no message
  std::vector<std::string_view> frames;
  frames.reserve(parts.size() - 1);
  for (size_t i = 1; i < parts.size(); ++i) frames.push_back(parts[i].to_string_view());
  zmq::message_t& identity = parts[0];
  Result<wire::Message> decoded = wire::Decode(frames, opts.limits);
  if (!decoded.ok()) {
    log::Debug(kModule, "rejected a message: " + decoded.status().ToString());
    if (auto reply = wire::ErrorReplyFor(frames, decoded.status(), opts.limits)) Send(router, identity, *reply, {});
    return;
  }
  if (std::holds_alternative<wire::Hello>(*decoded)) {
    try {
      OnHello(router, identity, std::get<wire::Hello>(*decoded));
    } catch (const std::bad_alloc&) {  // loading a version: this Hello fails, what is served stays
      Send(router, identity,
           wire::MakeError(0, wire::ErrorCode::kUnavailable,
                           "node " + Quoted(opts.name) + " is out of memory loading the bricks of this hello"),
           {});
    }
    return;
  }
  if (!std::holds_alternative<wire::ExpertBatch>(*decoded)) return;  // a reply sent to a node: drop it
  const auto& batch = std::get<wire::ExpertBatch>(*decoded);
  versions->table().TouchPeer(identity.to_string(), Clock::now());
  std::vector<uint32_t> rows;
  size_t out_floats = 0;
  std::optional<wire::Error> error;
  try {
    error = RunBatch(batch, &rows, &out_floats);
  } catch (const std::bad_alloc&) {
    error = wire::MakeError(batch.request_id, wire::ErrorCode::kUnavailable,
                            "node " + Quoted(opts.name) + " is out of memory for this batch");
  }
  if (error) {
    Send(router, identity, *error, {});
    return;
  }
  const auto payload = std::as_bytes(std::span<const float>(out.Get(0), out_floats));
  wire::ExpertResult result{batch.request_id, wire::DType::kF32, batch.width, std::move(rows), payload};
  Send(router, identity, result, payload);
}

std::optional<wire::Error> BrickServer::Impl::RunBatch(const wire::ExpertBatch& b, std::vector<uint32_t>* rows,
                                                       size_t* out_floats) {
  auto fail = [&](wire::ErrorCode code, const std::string& msg) {
    return wire::MakeError(b.request_id, code, "node " + Quoted(opts.name) + ": " + msg);
  };
  if (b.kind != wire::ExpertKind::kMlp) return fail(wire::ErrorCode::kUnsupported, "serves no attention experts yet");
  // Check every brick before computing anything. A version the node does not hold is loaded on
  // demand, as for a Hello (a coordinator silent past the grace period finds it again).
  std::vector<const ServedBrick*> bricks;
  uint64_t total = 0, max_rows = 0;
  int64_t max_f = 0;
  const Clock::time_point now = Clock::now();
  for (const wire::BatchBrick& bb : b.bricks) {
    auto got = versions->Acquire(bb.name, bb.digest, now);
    if (const auto* r = std::get_if<Refusal>(&got)) return fail(r->code, r->why);
    const ServedBrick& s = *std::get<const ServedBrick*>(got);
    if (s.info.layer != b.layer) {
      return fail(wire::ErrorCode::kMalformed, "brick " + Quoted(bb.name) + " is in layer " +
                                                   std::to_string(s.info.layer) + ", the batch is for layer " +
                                                   std::to_string(b.layer));
    }
    if (s.d != static_cast<int64_t>(b.width)) {
      return fail(wire::ErrorCode::kMalformed, "brick " + Quoted(bb.name) + " takes rows of width " +
                                                   std::to_string(s.d) + ", the batch has width " +
                                                   std::to_string(b.width));
    }
    bricks.push_back(&s);
    total += bb.rows;
    max_rows = std::max<uint64_t>(max_rows, bb.rows);
    max_f = std::max(max_f, s.f);
  }
  // Decode checked rows x width x 4 == the tensor's bytes. The tensor may sit at any offset: copy it
  // into aligned memory once; each brick's forward then reads its rows in place.
  const size_t D = b.width;
  float* x = in.Get(static_cast<size_t>(total) * D);
  std::memcpy(x, b.rows.data(), b.rows.size());
  float* y = out.Get(static_cast<size_t>(total) * D);
  float* mid = scratch.Get(static_cast<size_t>(max_rows) * static_cast<size_t>(max_f));
  size_t row = 0;
  for (size_t i = 0; i < bricks.size(); ++i) {
    const int64_t m = b.bricks[i].rows;
    bricks[i]->expert->Forward(x + row * D, m, y + row * D, mid, nullptr, pool.get());
    row += static_cast<size_t>(m);
    rows->push_back(b.bricks[i].rows);
  }
  *out_floats = static_cast<size_t>(total) * D;
  return std::nullopt;
}

BrickServer::BrickServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<BrickServer>> BrickServer::Start(const BrickServerOptions& opts) {
  if (opts.registry_path.empty()) return InvalidArgument("brick server: no registry path");
  if (opts.listen.empty()) return InvalidArgument("brick server: no endpoint to listen on");
  if (opts.serve.empty()) return InvalidArgument("brick server: no serve globs (which bricks should it serve?)");
  if (opts.threads < 1)
    return InvalidArgument("brick server: threads must be >= 1, got " + std::to_string(opts.threads));
  if (opts.curve) {
    BRICK_RETURN_IF_ERROR(curve::CheckAvailable());
    BRICK_RETURN_IF_ERROR(curve::CheckZ85Key(opts.curve->secret_key, "brick server: CURVE secret key"));
    if (opts.curve->allow.empty()) return InvalidArgument("brick server: CURVE with no allowed client key");
    for (const std::string& key : opts.curve->allow) {
      BRICK_RETURN_IF_ERROR(curve::CheckZ85Key(key, "brick server: allowed client key"));
    }
  }
  if (opts.unload_grace_ms < 1 || opts.housekeeping_ms < 1) {
    return InvalidArgument("brick server: unload_grace_ms and housekeeping_ms must be >= 1, got " +
                           std::to_string(opts.unload_grace_ms) + " and " + std::to_string(opts.housekeeping_ms));
  }
  auto impl = std::make_unique<Impl>(opts);
  impl->control_endpoint = "inproc://brick-server-control-" + std::to_string(reinterpret_cast<uintptr_t>(impl.get()));
  std::promise<Status> ready;
  std::future<Status> started = ready.get_future();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw, &ready] { raw->Run(&ready); });
  Status st = started.get();
  if (!st.ok()) {
    impl->thread.join();  // it returned right after reporting
    return st;
  }
  return std::unique_ptr<BrickServer>(new BrickServer(std::move(impl)));
}

void BrickServer::Stop() {
  if (impl_->stopped.exchange(true)) return;
  if (!impl_->thread.joinable()) return;
  try {
    // Closed only after the join, so the message is read before its socket goes (no linger issue).
    zmq::socket_t poke(impl_->ctx, zmq::socket_type::pair);
    poke.connect(impl_->control_endpoint);
    poke.send(zmq::str_buffer("stop"), zmq::send_flags::none);
    impl_->thread.join();
  } catch (const zmq::error_t& e) {
    // The server thread died on an unexpected zmq error and has returned already.
    log::Error(kModule, std::string("stop: ") + e.what());
    impl_->thread.join();
  }
}

BrickServer::~BrickServer() {
  if (!impl_) return;
  Stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

const std::string& BrickServer::endpoint() const { return impl_->endpoint; }
std::vector<wire::BrickInfo> BrickServer::bricks() const { return impl_->versions->table().Infos(); }

BrickServer::Stats BrickServer::stats() const {
  const ServedBricks& t = impl_->versions->table();
  return Stats{t.versions(), t.peers(), t.loads(), t.unloads()};
}

std::weak_ptr<const MlpExpert> BrickServer::WatchExpertForTesting(const std::string& name,
                                                                  const std::string& digest) const {
  return impl_->versions->table().Watch(name, digest);
}

}  // namespace brickrt
