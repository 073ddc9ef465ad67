// ModelLoader: the coordinator's thread that reads models from the registry (node/coordinator.h), so a
// swap's load never stalls the steps of the model being served. It owns its own read-only registry
// connection, takes load jobs in order, and — when the coordinator follows a tag — looks the tag up
// every `follow_every` and loads what it points at when that changes.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/device_ref.h"
#include "core/status.h"
#include "node/deployment.h"
#include "registry/registry.h"

namespace brickrt {

class ModelLoader {
 public:
  struct Job {
    std::string ref;   // model reference to load
    std::string peer;  // who asked (ROUTER identity); empty for a tag move
    uint64_t request_id = 0;
    bool now = false;  // move running sequences too
  };
  struct Done {
    Job job;
    Result<LoadedManifest> loaded;
  };

  // Opens the registry read-only. follow: "NAME:TAG" to follow, or empty. wake: called on the loader
  // thread after each Done is queued (the coordinator wakes its serving loop).
  // device: where every model it loads runs (a spec: its placement.device), or unset.
  static Result<std::unique_ptr<ModelLoader>> Create(const std::string& registry_path, std::string follow,
                                                     std::chrono::milliseconds follow_every,
                                                     std::optional<DeviceRef> device = std::nullopt);
  ~ModelLoader();

  // On the calling thread, before Run: the first model — a reference, or a spec file composed now.
  Result<LoadedManifest> LoadFirst(const std::string& ref, const std::string& spec_path);
  // Starts the thread.
  void Run(std::function<void()> wake);
  void Submit(Job job);
  // Moves every finished job into *out (cleared first), in submission order (tag moves in between).
  // The serving loop asks every step: with nothing finished it is one atomic load, no lock, no
  // allocation.
  void TakeDone(std::vector<Done>* out);

 private:
  ModelLoader(std::unique_ptr<Registry> reg, std::string follow, std::chrono::milliseconds follow_every,
              std::optional<DeviceRef> device);
  Result<LoadedManifest> Load(const std::string& ref);
  void Loop();

  std::unique_ptr<Registry> reg_;  // loader thread only (after LoadFirst)
  std::optional<DeviceRef> device_;
  std::string follow_;
  std::chrono::milliseconds follow_every_;
  int64_t followed_id_ = 0;  // the manifest the tag pointed at when last looked up
  std::function<void()> wake_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  std::vector<Done> done_;
  std::atomic<bool> has_done_{false};
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace brickrt
