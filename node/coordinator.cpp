// Coordinator: one serving thread owns the ROUTER socket and the deployments and runs the steps; the
// ModelLoader thread loads models and wakes it over an inproc socket when one is ready.
#include "node/coordinator.h"

#include <atomic>
#include <deque>
#include <thread>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "core/log.h"
#include "core/node_config.h"
#include "core/thread_pool.h"
#include "node/deployment.h"
#include "node/model_loader.h"
#include "node/serve_wire.h"

namespace brickrt {
namespace {

constexpr const char* kModule = "coordinator";
using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

serve::ErrorCode CodeOf(const Status& st) {
  switch (st.code()) {
    case StatusCode::kInvalidArgument: return serve::ErrorCode::kInvalidArgument;
    case StatusCode::kNotFound: return serve::ErrorCode::kNotFound;
    case StatusCode::kUnavailable: return serve::ErrorCode::kUnavailable;
    case StatusCode::kOutOfRange: return serve::ErrorCode::kTooLarge;
    default: return serve::ErrorCode::kInternal;
  }
}

}  // namespace

struct Coordinator::Impl {
  CoordinatorOptions opts;
  zmq::context_t ctx{1};
  std::string endpoint, first_manifest;
  std::string following;  // opts.model when it names a tag
  std::string wake_endpoint;
  std::unique_ptr<ModelLoader> loader;
  std::unique_ptr<ThreadPool> pool;
  std::thread thread;
  std::atomic<bool> stop{false};

  // Serving thread only.
  std::unique_ptr<zmq::socket_t> router, wake_in;
  std::vector<std::unique_ptr<Deployment>> deployments;  // [0] serves new requests; older ones drain
  std::deque<std::unique_ptr<ActiveRequest>> queue;      // waiting for a slot on deployments[0]
  std::vector<std::unique_ptr<ActiveRequest>> done;      // finished in the last step
  // Reused every loop iteration, so an idle or decoding loop does not allocate.
  std::vector<zmq::message_t> parts;
  std::vector<ModelLoader::Done> loaded;
  uint64_t swaps = 0;
  serve::ServeLimits limits;

  void Serve();
  void Handle(const std::string& peer, std::string_view frame);
  void Reply(const std::string& peer, const serve::Message& m);
  void Fail(const std::string& peer, uint64_t id, const Status& st);
  void Install(ModelLoader::Done d);
  void Admit();
  void StepAll();
  void Retire();
  serve::StatusReply StatusNow(uint64_t id) const;
};

void Coordinator::Impl::Reply(const std::string& peer, const serve::Message& m) {
  const std::string frame = serve::Encode(m);
  try {
    router->send(zmq::buffer(peer), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    router->send(zmq::buffer(frame), zmq::send_flags::dontwait);
  } catch (const zmq::error_t& e) {
    log::Warn(kModule, std::string("cannot reply to a client: ") + e.what());  // it went away
  }
}

void Coordinator::Impl::Fail(const std::string& peer, uint64_t id, const Status& st) {
  Reply(peer, serve::MakeError(id, CodeOf(st), st.message()));
}

serve::StatusReply Coordinator::Impl::StatusNow(uint64_t id) const {
  serve::StatusReply s;
  s.request_id = id;
  s.manifest = deployments.front()->manifest();
  s.following = following;
  for (const auto& d : deployments) {
    if (!d->idle()) s.running.push_back(d->manifest());
    s.sequences += static_cast<uint32_t>(d->sequences());
  }
  s.queued = static_cast<uint32_t>(queue.size());
  s.swaps = swaps;
  return s;
}

void Coordinator::Impl::Handle(const std::string& peer, std::string_view frame) {
  auto decoded = serve::Decode(frame, limits);
  if (!decoded.ok()) {
    if (auto e = serve::ErrorReplyFor(frame, decoded.status(), limits)) Reply(peer, *e);
    return;  // garbage gets nothing
  }
  serve::Message& m = *decoded;
  if (auto* g = std::get_if<serve::GenerateRequest>(&m)) {
    if (Status st = deployments.front()->Check(*g); !st.ok()) return Fail(peer, g->request_id, st);
    if (static_cast<int>(queue.size()) >= opts.max_queue) {
      return Fail(peer, g->request_id,
                  Unavailable("the queue is full (" + std::to_string(opts.max_queue) + " requests); try again"));
    }
    auto r = std::make_unique<ActiveRequest>();
    r->peer = peer;
    r->req = std::move(*g);
    r->received = Clock::now();
    r->pending = r->req.prompt;
    if (r->req.max_new_tokens == 0) {  // nothing to generate: the model that would have run answers
      serve::GenerateReply reply;
      reply.request_id = r->req.request_id;
      reply.manifest = deployments.front()->manifest();
      return Reply(peer, reply);
    }
    queue.push_back(std::move(r));
  } else if (auto* s = std::get_if<serve::SwapRequest>(&m)) {
    loader->Submit({s->to, peer, s->request_id, s->now});
  } else if (auto* q = std::get_if<serve::StatusRequest>(&m)) {
    Reply(peer, StatusNow(q->request_id));
  } else {
    Fail(peer, serve::RequestIdOf(m), InvalidArgument("a coordinator takes requests, not replies"));
  }
}

void Coordinator::Impl::Install(ModelLoader::Done d) {
  const ModelLoader::Job& job = d.job;
  if (!d.loaded.ok()) {
    const Status st = d.loaded.status().WithContext("swap to " + job.ref + " failed; still serving " +
                                                     deployments.front()->manifest());
    log::Warn(kModule, st.message());
    if (!job.peer.empty()) {
      Reply(job.peer, serve::MakeError(job.request_id,
                                       st.code() == StatusCode::kNotFound ? serve::ErrorCode::kNotFound
                                                                          : serve::ErrorCode::kLoadFailed,
                                       st.message()));
    }
    return;
  }
  const double load_seconds = d.loaded->load_seconds;
  auto made = Deployment::Create(std::move(d.loaded).value(), opts.max_batch, opts.max_context, pool.get());
  if (!made.ok()) {
    const Status st = made.status().WithContext("swap to " + job.ref + " failed; still serving " +
                                                 deployments.front()->manifest());
    log::Warn(kModule, st.message());
    if (!job.peer.empty()) Reply(job.peer, serve::MakeError(job.request_id, serve::ErrorCode::kLoadFailed, st.message()));
    return;
  }
  const std::string previous = deployments.front()->manifest();
  deployments.insert(deployments.begin(), std::move(made).value());
  ++swaps;
  log::Info(kModule, "serving " + deployments.front()->manifest() + " (was " + previous + ")");
  if (job.now) {
    // Running sequences continue on the new model: each replays its history there (queued first, in
    // the order they were admitted, ahead of requests that have not started).
    std::vector<std::unique_ptr<ActiveRequest>> moved;
    for (size_t i = 1; i < deployments.size(); ++i) {
      for (auto& r : deployments[i]->TakeAll()) moved.push_back(std::move(r));
    }
    for (auto it = moved.rbegin(); it != moved.rend(); ++it) queue.push_front(std::move(*it));
  }
  if (!job.peer.empty()) {
    serve::SwapReply reply;
    reply.request_id = job.request_id;
    reply.manifest = deployments.front()->manifest();
    reply.previous = previous;
    reply.load_seconds = load_seconds;
    Reply(job.peer, reply);
  }
}

void Coordinator::Impl::Admit() {
  Deployment& current = *deployments.front();
  while (!queue.empty()) {
    ActiveRequest& r = *queue.front();
    if (!current.HasRoomFor(static_cast<int64_t>(r.pending.size()))) break;
    // Checked again: a swap since receipt may serve a model with another vocabulary or context.
    if (Status st = current.Check(r.req); !st.ok()) {
      Fail(r.peer, r.req.request_id, st);
      queue.pop_front();
      continue;
    }
    if (!r.sampler) r.queue_seconds = Since(r.received);  // a request moved by a swap has started
    current.Admit(std::move(queue.front()));
    queue.pop_front();
  }
}

void Coordinator::Impl::StepAll() {
  for (auto& d : deployments) {
    if (d->idle()) continue;
    done.clear();
    const int sequences = d->sequences();
    const int64_t tokens = d->step_tokens();
    const auto t0 = Clock::now();
    Status st = d->Step(&done);
    if (opts.on_step) opts.on_step({&d->manifest(), sequences, tokens, Since(t0)});
    if (!st.ok()) {
      log::Warn(kModule, d->manifest() + ": " + st.message());
      for (auto& r : d->TakeAll()) Fail(r->peer, r->req.request_id, st.WithContext(d->manifest()));
      continue;
    }
    for (auto& r : done) {
      serve::GenerateReply reply;
      reply.request_id = r->req.request_id;
      reply.manifest = d->manifest();
      reply.generated = std::move(r->generated);
      reply.queue_seconds = r->queue_seconds;
      reply.prefill_seconds = r->prefill_seconds;
      reply.decode_seconds = r->decode_seconds;
      Reply(r->peer, reply);
    }
  }
}

void Coordinator::Impl::Retire() {
  // Older deployments go once their last sequence has finished (load before unload).
  for (size_t i = deployments.size(); i-- > 1;) {
    if (deployments[i]->idle()) {
      log::Info(kModule, "unloaded " + deployments[i]->manifest());
      deployments.erase(deployments.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
}

void Coordinator::Impl::Serve() {
  while (!stop.load()) {
    bool busy = !queue.empty();
    for (const auto& d : deployments) busy = busy || !d->idle();
    zmq::pollitem_t items[] = {{router->handle(), 0, ZMQ_POLLIN, 0}, {wake_in->handle(), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 2, std::chrono::milliseconds(busy ? 0 : 50));
      // Every request that arrived joins this step (bounded, so a flood cannot starve the step).
      for (int i = 0; i < 4096; ++i) {
        parts.clear();
        if (!zmq::recv_multipart(*router, std::back_inserter(parts), zmq::recv_flags::dontwait)) break;
        if (parts.size() != 2) continue;  // a client sends exactly one frame
        Handle(parts[0].to_string(), parts[1].to_string_view());
      }
      zmq::message_t ping;
      while (wake_in->recv(ping, zmq::recv_flags::dontwait)) {
      }
    } catch (const zmq::error_t& e) {
      if (stop.load()) return;
      log::Warn(kModule, std::string("socket: ") + e.what());
    }
    loader->TakeDone(&loaded);
    for (auto& d : loaded) Install(std::move(d));
    Admit();
    StepAll();
    Retire();
  }
}

Result<std::unique_ptr<Coordinator>> Coordinator::Start(const CoordinatorOptions& opts) {
  if (opts.model.empty() == opts.spec_path.empty())
    return InvalidArgument("a coordinator serves either a model reference or a spec file (model: or spec:)");
  if (opts.max_batch < 1) return InvalidArgument("max_batch must be >= 1");
  if (opts.max_context < 1) return InvalidArgument("max_context must be >= 1");
  if (opts.threads < 1) return InvalidArgument("threads must be >= 1");
  if (opts.max_queue < 1) return InvalidArgument("max_queue must be >= 1");
  auto impl = std::make_unique<Impl>();
  impl->opts = opts;
  if (opts.model.find(':') != std::string::npos) impl->following = opts.model;
  BRICK_ASSIGN_OR_RETURN(impl->loader,
                         ModelLoader::Create(opts.registry_path, impl->following, opts.follow_every, opts.device));
  impl->pool = std::make_unique<ThreadPool>(opts.threads);
  BRICK_ASSIGN_OR_RETURN(LoadedManifest first, impl->loader->LoadFirst(opts.model, opts.spec_path));
  BRICK_ASSIGN_OR_RETURN(std::unique_ptr<Deployment> d,
                         Deployment::Create(std::move(first), opts.max_batch, opts.max_context, impl->pool.get()));
  impl->first_manifest = d->manifest();
  impl->deployments.push_back(std::move(d));
  try {
    impl->router = std::make_unique<zmq::socket_t>(impl->ctx, zmq::socket_type::router);
    impl->router->set(zmq::sockopt::linger, 0);
    impl->router->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(impl->limits.max_frame_bytes));
    impl->router->bind(opts.listen);
    impl->endpoint = impl->router->get(zmq::sockopt::last_endpoint);
    impl->wake_endpoint = "inproc://coordinator-wake";
    impl->wake_in = std::make_unique<zmq::socket_t>(impl->ctx, zmq::socket_type::pull);
    impl->wake_in->bind(impl->wake_endpoint);
  } catch (const zmq::error_t& e) {
    return Unavailable("cannot listen on " + opts.listen + ": " + e.what());
  }
  Impl* raw = impl.get();
  // The loader's end of the wake socket lives on the loader thread only (ZeroMQ sockets are not
  // thread-safe); it is made on first use there.
  auto wake_out = std::make_shared<std::unique_ptr<zmq::socket_t>>();
  raw->loader->Run([raw, wake_out] {
    try {
      if (!*wake_out) {
        *wake_out = std::make_unique<zmq::socket_t>(raw->ctx, zmq::socket_type::push);
        (*wake_out)->set(zmq::sockopt::linger, 0);
        (*wake_out)->connect(raw->wake_endpoint);
      }
      (*wake_out)->send(zmq::str_buffer("w"), zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
      // The serving loop also looks for finished loads every 50 ms.
    }
  });
  raw->thread = std::thread([raw] { raw->Serve(); });
  return std::unique_ptr<Coordinator>(new Coordinator(std::move(impl)));
}

Coordinator::Coordinator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Coordinator::~Coordinator() { Stop(); }

void Coordinator::Stop() {
  if (!impl_) return;
  impl_->stop.store(true);
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->loader.reset();  // joins the loader (its wake socket closes with its thread's last use)
}

const std::string& Coordinator::endpoint() const { return impl_->endpoint; }
const std::string& Coordinator::manifest_at_start() const { return impl_->first_manifest; }
const std::string& Coordinator::following() const { return impl_->following; }

}  // namespace brickrt
