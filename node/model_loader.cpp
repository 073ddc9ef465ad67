// ModelLoader: load jobs and tag following on a thread of its own.
#include "node/model_loader.h"

#include "core/log.h"
#include "core/submodel_spec.h"
#include "node/submodel.h"

namespace brickrt {
namespace {
double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

Result<std::unique_ptr<ModelLoader>> ModelLoader::Create(const std::string& registry_path, std::string follow,
                                                         std::chrono::milliseconds follow_every,
                                                         std::optional<DeviceRef> device) {
  OpenOptions oo;
  oo.create = false;
  oo.read_only = true;
  BRICK_ASSIGN_OR_RETURN(std::unique_ptr<Registry> reg, Registry::Open(registry_path, oo));
  return std::unique_ptr<ModelLoader>(new ModelLoader(std::move(reg), std::move(follow), follow_every, device));
}

ModelLoader::ModelLoader(std::unique_ptr<Registry> reg, std::string follow, std::chrono::milliseconds follow_every,
                         std::optional<DeviceRef> device)
    : reg_(std::move(reg)), device_(device), follow_(std::move(follow)), follow_every_(follow_every) {}

ModelLoader::~ModelLoader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<LoadedManifest> ModelLoader::Load(const std::string& ref) {
  const auto t0 = std::chrono::steady_clock::now();
  BRICK_ASSIGN_OR_RETURN(const ManifestRecord m, reg_->ResolveModel(ref));
  BRICK_ASSIGN_OR_RETURN(LoadedModel loaded, LoadManifestModel(*reg_, m));
  if (!follow_.empty() && ref == follow_) followed_id_ = m.id;
  return LoadedManifest{m.Ref(), std::move(loaded.model), WholeModelOn(device_), Since(t0)};
}

Result<LoadedManifest> ModelLoader::LoadFirst(const std::string& ref, const std::string& spec_path) {
  if (spec_path.empty()) return Load(ref);
  const auto t0 = std::chrono::steady_clock::now();
  BRICK_ASSIGN_OR_RETURN(SubmodelSpec spec, ReadSubmodelSpec(spec_path));
  if (device_) SetPlacementDevice(&spec, *device_);
  BRICK_ASSIGN_OR_RETURN(const Composition c, Compose(*reg_, spec));
  BRICK_ASSIGN_OR_RETURN(LoadedModel loaded, LoadComposition(*reg_, c));
  BRICK_ASSIGN_OR_RETURN(std::unique_ptr<SplitPlan> plan, PlanSplit(c, loaded.model));
  const std::string name = c.name.empty() ? spec_path : c.name;
  return LoadedManifest{name, std::move(loaded.model), std::move(plan), Since(t0)};
}

void ModelLoader::Run(std::function<void()> wake) {
  wake_ = std::move(wake);
  thread_ = std::thread([this] { Loop(); });
}

void ModelLoader::Submit(Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_all();
}

void ModelLoader::TakeDone(std::vector<Done>* out) {
  out->clear();
  if (!has_done_.load(std::memory_order_acquire)) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (Done& d : done_) out->push_back(std::move(d));
  done_.clear();
  has_done_.store(false, std::memory_order_release);
}

void ModelLoader::Loop() {
  auto next_look = std::chrono::steady_clock::now() + follow_every_;
  while (true) {
    std::optional<Job> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_until(lock, next_look, [&] { return stop_ || !jobs_.empty(); });
      if (stop_) return;
      if (!jobs_.empty()) {
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
    }
    if (!job && !follow_.empty() && std::chrono::steady_clock::now() >= next_look) {
      next_look = std::chrono::steady_clock::now() + follow_every_;
      // A tag that moved: load what it points at now. A lookup that fails (the tag removed) keeps
      // serving what is loaded, and is looked up again.
      auto m = reg_->ResolveModel(follow_);
      if (m.ok() && m->id != followed_id_) {
        log::Info("coordinator", follow_ + " moved to " + m->Ref() + "; loading it");
        job = Job{follow_, "", 0, false};
      }
    }
    if (!job) continue;
    Result<LoadedManifest> loaded = Load(job->ref);
    Done d{std::move(*job), std::move(loaded)};
    if (!d.loaded.ok() && d.job.ref == follow_ && d.job.peer.empty()) {
      // Do not retry a broken tag target every look; the next move of the tag tries again.
      if (auto m = reg_->ResolveModel(follow_); m.ok()) followed_id_ = m->id;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_.push_back(std::move(d));
      has_done_.store(true, std::memory_order_release);
    }
    wake_();
  }
}

}  // namespace brickrt
