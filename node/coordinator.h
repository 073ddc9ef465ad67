// Coordinator (issue #6): `brick serve` with role: coordinator. It holds a model from the registry,
// answers generate requests from many clients over ZeroMQ (schemas/serve.fbs), batching every running
// sequence into one step, and swaps the model it serves while it serves:
//   - `brick swap ENDPOINT --to REF`: load REF, then serve new requests from it;
//   - model: NAME:TAG in the config: follow the tag, switching within a second of `brick tag`.
// Semantics (docs/serving.md): load before unload — a model is loaded on a thread of its own while the
// old one serves, and a failed load (missing brick, digest or shape mismatch) leaves the old one
// serving and is reported to whoever asked; the switch happens between steps; a running sequence
// finishes on the manifest it started on (its reply names it), unless the swap says `now`, which
// replays running sequences on the new model; a deployment is freed when its last sequence ends.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/device_ref.h"
#include "core/status.h"

namespace brickrt {

// One step of one deployment, as the on_step hook sees it.
struct CoordinatorStep {
  const std::string* manifest = nullptr;  // the deployment's NAME@VERSION
  int sequences = 0;                      // sequences the step advanced
  int64_t tokens = 0;                     // tokens it fed: == sequences for a pure decode step
  double seconds = 0;                     // the step's forward pass and sampling
};

struct CoordinatorOptions {
  std::string registry_path;  // opened read-only by the coordinator's loader
  std::string listen;         // ZeroMQ endpoint to bind; "tcp://127.0.0.1:*" picks a port
  std::string name = "coordinator";
  // What to serve: a model reference (NAME, NAME@VERSION, or NAME:TAG, which the coordinator follows),
  // or a submodel spec file (composed once at start; its placement is executed).
  std::string model;
  std::string spec_path;
  // Where the models it serves run (a spec: its placement.device); unset: the CPU, or what the spec says.
  std::optional<DeviceRef> device;
  int max_batch = 8;                            // sequences decoded together
  int64_t max_context = 2048;                   // tokens per sequence
  int max_queue = 1024;                         // requests waiting for a slot; more are refused (Unavailable)
  int threads = 1;                              // compute threads
  std::chrono::milliseconds follow_every{200};  // how often a followed tag is looked up
  // Called on the serving thread after every step (metrics, benchmarks); must be quick. Optional.
  std::function<void(const CoordinatorStep&)> on_step;
};

class Coordinator {
 public:
  // Loads the model (errors: as the registry and model loading, naming the reference), binds
  // `listen` and starts serving. Errors: InvalidArgument for options (neither or both of model and
  // spec_path, max_batch < 1, ...), Unavailable when the endpoint cannot be bound.
  static Result<std::unique_ptr<Coordinator>> Start(const CoordinatorOptions& opts);
  // Stops and joins; requests in flight get no reply.
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  const std::string& endpoint() const;  // the bound endpoint, port resolved
  const std::string& manifest_at_start() const;
  // The NAME:TAG reference the coordinator follows (model: NAME:TAG), or empty.
  const std::string& following() const;
  void Stop();

  struct Impl;  // node/coordinator.cpp

 private:
  explicit Coordinator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace brickrt
