// BrickServer: loads the served bricks, then one thread owns the registry connection, the ROUTER
// socket and an inproc control socket, and answers requests one at a time until told to stop.
#include "node/brick_server.h"

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <map>
#include <set>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "bricks/experts.h"
#include "core/log.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "node/curve_keys.h"
#include "registry/registry.h"

namespace brickrt {
namespace {

constexpr const char* kModule = "node";

struct Served {
  wire::BrickInfo info;
  std::shared_ptr<const MlpExpert> expert;
  int64_t d = 0, f = 0;  // width D and hidden width F
};

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

// ZeroMQ's authentication protocol (ZAP, RFC 27): the endpoint a handler binds on the context.
constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";

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

struct BrickServer::Impl {
  BrickServerOptions opts;
  zmq::context_t ctx{1};
  std::string control_endpoint;
  std::string endpoint;
  std::vector<wire::BrickInfo> infos;
  std::thread thread;
  std::atomic<bool> stopped{false};

  // Server thread only.
  std::unique_ptr<Registry> registry;
  std::map<std::string, Served, std::less<>> served;
  std::set<std::string, std::less<>> allowed;  // CURVE client public keys, 32 raw bytes each
  std::set<std::string, std::less<>> refused;  // refused keys already logged (32 raw bytes)
  std::unique_ptr<ThreadPool> pool;
  FloatBuffer in, out, scratch;

  Status Load();
  void Run(std::promise<Status>* ready);
  void Serve(zmq::socket_t& router, zmq::socket_t& control, zmq::socket_t* zap);
  void Authenticate(zmq::socket_t& zap);
  void Handle(zmq::socket_t& router, std::vector<zmq::message_t>& parts);
  std::optional<wire::Error> RunBatch(const wire::ExpertBatch& b, std::vector<uint32_t>* rows, size_t* out_floats);
  void Send(zmq::socket_t& router, zmq::message_t& identity, const wire::Message& m,
            std::span<const std::byte> tensor);
};

Status BrickServer::Impl::Load() {
  OpenOptions oo;
  oo.create = false;
  oo.read_only = true;
  BRICK_ASSIGN_OR_RETURN(registry, Registry::Open(opts.registry_path, oo));
  for (const std::string& glob : opts.serve) {
    BrickFilter filter;
    filter.name_glob = glob;
    BRICK_ASSIGN_OR_RETURN(const std::vector<BrickRecord> records, registry->ListBricks(filter));
    int taken = 0, private_mlp = 0, attention = 0, other = 0;
    for (const BrickRecord& rec : records) {
      if (rec.kind != BrickKind::kMlpExpert) {
        (rec.kind == BrickKind::kAttnExpert ? attention : other) += 1;
        continue;
      }
      if (rec.visibility == Visibility::kPrivate) {
        ++private_mlp;
        log::Warn(kModule, "node " + Quoted(opts.name) + ": brick " + rec.Ref() +
                               " is private and is never served (glob " + Quoted(glob) + ")");
        continue;
      }
      ++taken;
      if (served.count(rec.name)) continue;  // selected by an earlier glob too
      BRICK_ASSIGN_OR_RETURN(const BrickData data, registry->LoadBrick(rec));
      const Tensor* w1 = data.Find("w1");
      if (w1 == nullptr || w1->rank() != 2) return Corrupt("brick " + rec.Ref() + ": no 2-D tensor w1");
      ModelConfig cfg;  // only the two widths MlpExpert::FromData checks the tensors against
      cfg.n_embd = w1->dim(0);
      cfg.ffd_hidden = w1->dim(1);
      auto expert = MlpExpert::FromData(data, cfg);
      if (!expert.ok()) return expert.status().WithContext("brick " + rec.Ref());
      Served s;
      s.info = {rec.name, rec.digest, wire::ExpertKind::kMlp, static_cast<uint32_t>(rec.layer),
                static_cast<uint32_t>(rec.index)};
      s.expert = *expert;
      s.d = cfg.n_embd;
      s.f = cfg.ffd_hidden;
      served.emplace(rec.name, std::move(s));
    }
    if (attention > 0) {
      log::Warn(kModule, "node " + Quoted(opts.name) + ": glob " + Quoted(glob) + " matches " +
                             std::to_string(attention) + " attention expert(s); they are not served yet");
    }
    if (taken == 0) {
      std::string why = records.empty() ? "matches no brick in " + opts.registry_path
                        : private_mlp > 0 ? "matches only private MLP experts (" + std::to_string(private_mlp) +
                                                "), which never leave their device"
                        : attention > 0 ? "matches only attention experts, which a node cannot serve yet"
                                        : "matches no MLP expert brick";
      return (attention > 0 && private_mlp == 0 ? Unsupported : InvalidArgument)(
          "serve glob " + Quoted(glob) + " " + why);
    }
  }
  for (const auto& [name, s] : served) infos.push_back(s.info);
  log::Info(kModule, "node " + Quoted(opts.name) + " serves " + std::to_string(infos.size()) + " brick(s)");
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
        for (const std::string& key : opts.curve->allow) allowed.insert(Z85Decode(key));
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

void BrickServer::Impl::Authenticate(zmq::socket_t& zap) {
  // Request: version, request id, domain, address, routing id, mechanism, then the credentials (for
  // CURVE: the client's 32-byte public key). Reply: version, request id, status, text, user id, metadata.
  std::vector<zmq::message_t> req;
  if (!zmq::recv_multipart(zap, std::back_inserter(req), zmq::recv_flags::dontwait)) return;
  const auto frame = [&](size_t i) { return i < req.size() ? req[i].to_string_view() : std::string_view(); };
  const std::string_view mechanism = frame(5), key = frame(6);
  const bool ok = req.size() >= 7 && frame(0) == "1.0" && mechanism == "CURVE" && allowed.count(key) > 0;
  if (!ok) {
    const std::string who = mechanism == "CURVE" ? "client key " + Z85Encode(key) : std::string(mechanism) + " peer";
    if (refused.insert(mechanism == "CURVE" ? std::string(key) : std::string(mechanism)).second) {
      log::Warn(kModule, "node " + Quoted(opts.name) + ": refused " + who + " from " + std::string(frame(3)) +
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

void BrickServer::Impl::Serve(zmq::socket_t& router, zmq::socket_t& control, zmq::socket_t* zap) {
  std::vector<zmq::message_t> parts;
  for (;;) {
    zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0},
                               {control.handle(), 0, ZMQ_POLLIN, 0},
                               {zap != nullptr ? zap->handle() : nullptr, 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, zap != nullptr ? 3 : 2, std::chrono::milliseconds{-1});  // blocks: no busy polling
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      throw;
    }
    if (items[1].revents & ZMQ_POLLIN) return;
    if (zap != nullptr && (items[2].revents & ZMQ_POLLIN)) {
      try {
        Authenticate(*zap);
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
    const auto& hello = std::get<wire::Hello>(*decoded);
    log::Info(kModule, "node " + Quoted(opts.name) + ": hello from " + Quoted(hello.name));
    Send(router, identity, wire::Welcome{opts.name, {"f32"}, infos}, {});
    return;
  }
  if (!std::holds_alternative<wire::ExpertBatch>(*decoded)) return;  // a reply sent to a node: drop it
  const auto& batch = std::get<wire::ExpertBatch>(*decoded);
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
  // Check every brick before computing anything.
  std::vector<const Served*> bricks;
  uint64_t total = 0, max_rows = 0;
  int64_t max_f = 0;
  for (const wire::BatchBrick& bb : b.bricks) {
    auto it = served.find(bb.name);
    if (it == served.end()) return fail(wire::ErrorCode::kUnknownBrick, "does not serve brick " + Quoted(bb.name));
    const Served& s = it->second;
    if (s.info.digest != bb.digest) {
      return fail(wire::ErrorCode::kDigestMismatch, "serves brick " + Quoted(bb.name) + " with digest " +
                                                        s.info.digest + ", not " + bb.digest);
    }
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
  if (opts.threads < 1) return InvalidArgument("brick server: threads must be >= 1, got " + std::to_string(opts.threads));
  if (opts.curve) {
    BRICK_RETURN_IF_ERROR(curve::CheckAvailable());
    BRICK_RETURN_IF_ERROR(curve::CheckZ85Key(opts.curve->secret_key, "brick server: CURVE secret key"));
    if (opts.curve->allow.empty()) return InvalidArgument("brick server: CURVE with no allowed client key");
    for (const std::string& key : opts.curve->allow) {
      BRICK_RETURN_IF_ERROR(curve::CheckZ85Key(key, "brick server: allowed client key"));
    }
  }
  auto impl = std::make_unique<Impl>();
  impl->opts = opts;
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
const std::vector<wire::BrickInfo>& BrickServer::bricks() const { return impl_->infos; }

}  // namespace brickrt
