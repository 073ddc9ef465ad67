// BrickVersions: the default set that follows the registry, versions loaded for coordinators, and
// the housekeeping that unloads what nobody asks for.
#include "node/brick_versions.h"

#include <set>

#include "core/log.h"

namespace brickrt {
namespace {

constexpr const char* kModule = "node";

std::string Quoted(const std::string& s) { return "'" + s + "'"; }

}  // namespace

BrickVersions::BrickVersions(std::unique_ptr<BrickSource> source, std::string node_name, Clock::duration grace)
    : source_(std::move(source)), node_name_(std::move(node_name)), table_(grace) {}

Result<std::unique_ptr<BrickVersions>> BrickVersions::Open(const std::string& registry_path,
                                                           std::vector<std::string> globs, std::string node_name,
                                                           Clock::duration grace) {
  BRICK_ASSIGN_OR_RETURN(std::unique_ptr<BrickSource> source,
                         BrickSource::Open(registry_path, std::move(globs), node_name));
  std::unique_ptr<BrickVersions> v(new BrickVersions(std::move(source), std::move(node_name), grace));
  BRICK_RETURN_IF_ERROR(v->LoadDefaults());
  return v;
}

Status BrickVersions::LoadDefaults() {
  // Read before the scan: a write that lands during it is seen at the first housekeeping.
  BRICK_ASSIGN_OR_RETURN(generation_, source_->Generation());
  BRICK_ASSIGN_OR_RETURN(const BrickSource::Scan scan, source_->ScanGlobs(/*strict=*/true));
  const Clock::time_point now = Clock::now();
  std::set<BrickKey> pins;
  for (const BrickRecord& rec : scan.newest) {
    BRICK_ASSIGN_OR_RETURN(ServedBrick brick, source_->Load(rec));
    pins.emplace(rec.name, rec.digest);
    table_.Add(std::move(brick), now);
  }
  table_.Pin(pins);
  log::Info(kModule, "node " + Quoted(node_name_) + " serves " + std::to_string(pins.size()) + " brick(s)");
  return Status::Ok();
}

bool BrickVersions::RegistryChanged() {
  auto gen = source_->Generation();
  if (!gen.ok()) {
    log::Warn(kModule, "node " + Quoted(node_name_) + ": cannot read its registry: " + gen.status().ToString());
    return false;
  }
  if (*gen == generation_) return false;
  generation_ = *gen;
  refused_.clear();
  defaults_stale_ = true;
  return true;
}

void BrickVersions::RefreshDefaults() {
  auto scan = source_->ScanGlobs(/*strict=*/false);
  if (!scan.ok()) {
    log::Warn(kModule, "node " + Quoted(node_name_) + ": cannot scan its registry: " + scan.status().ToString());
    return;
  }
  // Private bricks never leave their device: a served version made private goes now, in use or not.
  for (const BrickKey& key : scan->private_keys) {
    if (table_.Drop(key)) {
      log::Warn(kModule, "node " + Quoted(node_name_) + ": brick " + Quoted(key.first) + " (" +
                             key.second.substr(0, 12) + ") was made private in the registry; no longer served");
    }
  }
  // Load before unload: the new newest version is loaded and pinned; the previous one loses its pin
  // and stays while a coordinator still asks for it. A newest version that fails to load leaves the
  // previous default of that name pinned.
  const Clock::time_point now = Clock::now();
  std::set<BrickKey> pins;
  std::set<std::string> failed;
  for (const BrickRecord& rec : scan->newest) {
    BrickKey key(rec.name, rec.digest);
    if (table_.Find(rec.name, rec.digest, now) == nullptr) {
      auto brick = source_->Load(rec);
      if (!brick.ok()) {
        log::Error(kModule, "node " + Quoted(node_name_) + ": keeps the previous version of " + Quoted(rec.name) +
                                ": " + brick.status().ToString());
        failed.insert(rec.name);
        continue;
      }
      table_.Add(std::move(*brick), now);
      log::Info(kModule, "node " + Quoted(node_name_) + " loaded " + rec.Ref() + " (newest in its registry)");
    }
    pins.insert(std::move(key));
  }
  for (const std::string& name : failed) {
    for (const wire::BrickInfo& b : table_.Infos()) {
      if (b.name == name && table_.IsPinned({b.name, b.digest})) pins.emplace(b.name, b.digest);
    }
  }
  table_.Pin(pins);
}

void BrickVersions::Housekeep(Clock::time_point now) {
  RegistryChanged();
  if (defaults_stale_) {
    defaults_stale_ = false;
    RefreshDefaults();
  }
  for (const std::string& ref : table_.Sweep(now)) {
    log::Info(kModule, "node " + Quoted(node_name_) + " unloaded " + ref + " (no coordinator asks for it)");
  }
}

std::variant<const ServedBrick*, Refusal> BrickVersions::Acquire(const std::string& name, const std::string& digest,
                                                                 Clock::time_point now) {
  if (const ServedBrick* s = table_.Find(name, digest, now)) return s;
  BrickKey key(name, digest);
  auto it = refused_.find(key);
  // A refusal stands until the registry changes (an import may have added that version since).
  if (it != refused_.end() && !RegistryChanged()) return it->second;
  auto loaded = source_->LoadVersion(name, digest);
  if (auto* r = std::get_if<Refusal>(&loaded)) {
    if (refused_.size() >= 4096) refused_.clear();  // bounded, whatever a peer sends
    refused_[key] = *r;
    return *r;
  }
  auto& brick = std::get<ServedBrick>(loaded);
  log::Info(kModule, "node " + Quoted(node_name_) + " loaded " + name + "@" + std::to_string(brick.version) +
                         " for a coordinator");
  return table_.Add(std::move(brick), now);
}

}  // namespace brickrt
