// BrickSource: the node's registry and serve globs -> the default set and on-demand brick versions,
// with a reason naming the brick for every version it will not serve.
#include "node/brick_source.h"

#include <algorithm>
#include <map>

#include "core/glob.h"
#include "core/log.h"
#include "node/brick_info.h"

namespace brickrt {
namespace {

constexpr const char* kModule = "node";

std::string Quoted(const std::string& s) { return "'" + s + "'"; }

}  // namespace

BrickSource::BrickSource(std::unique_ptr<Registry> registry, std::vector<std::string> globs, std::string node_name)
    : registry_(std::move(registry)), globs_(std::move(globs)), node_name_(std::move(node_name)) {}

Result<std::unique_ptr<BrickSource>> BrickSource::Open(const std::string& registry_path, std::vector<std::string> globs,
                                                       std::string node_name) {
  OpenOptions oo;
  oo.create = false;
  oo.read_only = true;
  BRICK_ASSIGN_OR_RETURN(std::unique_ptr<Registry> registry, Registry::Open(registry_path, oo));
  return std::unique_ptr<BrickSource>(new BrickSource(std::move(registry), std::move(globs), std::move(node_name)));
}

Result<BrickSource::Scan> BrickSource::ScanGlobs(bool strict) const {
  Scan scan;
  std::set<std::string> taken_names;
  for (const std::string& glob : globs_) {
    BrickFilter filter;
    filter.name_glob = glob;
    filter.all_versions = true;
    BRICK_ASSIGN_OR_RETURN(const std::vector<BrickRecord> records, registry_->ListBricks(filter));
    int taken = 0, private_mlp = 0, attention = 0, other = 0;
    // Records come ordered by name, then version: one run per name.
    for (size_t i = 0; i < records.size();) {
      size_t end = i;
      const BrickRecord* newest_shared = nullptr;
      bool mlp = false;
      for (; end < records.size() && records[end].name == records[i].name; ++end) {
        const BrickRecord& rec = records[end];
        if (rec.kind != BrickKind::kMlpExpert) continue;
        mlp = true;
        if (rec.visibility == Visibility::kPrivate) {
          scan.private_keys.emplace(rec.name, rec.digest);
        } else {
          newest_shared = &rec;
        }
      }
      const BrickRecord& first = records[i];
      i = end;
      if (!mlp) {
        (first.kind == BrickKind::kAttnExpert ? attention : other) += 1;
        continue;
      }
      if (newest_shared == nullptr) {
        ++private_mlp;
        if (strict) {
          log::Warn(kModule, "node " + Quoted(node_name_) + ": brick " + Quoted(first.name) +
                                 " is private and is never served (glob " + Quoted(glob) + ")");
        }
        continue;
      }
      ++taken;
      if (taken_names.insert(newest_shared->name).second) scan.newest.push_back(*newest_shared);
    }
    if (!strict) continue;
    if (attention > 0) {
      log::Warn(kModule, "node " + Quoted(node_name_) + ": glob " + Quoted(glob) + " matches " +
                             std::to_string(attention) + " attention expert(s); they are not served yet");
    }
    if (taken == 0) {
      std::string why = records.empty()   ? "matches no brick in " + registry_->path()
                        : private_mlp > 0 ? "matches only private MLP experts (" + std::to_string(private_mlp) +
                                                "), which never leave their device"
                        : attention > 0 ? "matches only attention experts, which a node cannot serve yet"
                                        : "matches no MLP expert brick";
      return (attention > 0 && private_mlp == 0 ? Unsupported
                                                : InvalidArgument)("serve glob " + Quoted(glob) + " " + why);
    }
  }
  return scan;
}

Result<ServedBrick> BrickSource::Load(const BrickRecord& rec) const {
  BRICK_ASSIGN_OR_RETURN(const BrickData data, registry_->LoadBrick(rec));
  const Tensor* w1 = data.Find("w1");
  if (w1 == nullptr || w1->rank() != 2) return Corrupt("brick " + rec.Ref() + ": no 2-D tensor w1");
  ModelConfig cfg;  // only the two widths MlpExpert::FromData checks the tensors against
  cfg.n_embd = w1->dim(0);
  cfg.ffd_hidden = w1->dim(1);
  auto expert = MlpExpert::FromData(data, cfg);
  if (!expert.ok()) return expert.status().WithContext("brick " + rec.Ref());
  ServedBrick s;
  s.info = MlpBrickInfo(rec);
  s.version = rec.version;
  s.expert = std::move(*expert);
  s.d = cfg.n_embd;
  s.f = cfg.ffd_hidden;
  return s;
}

std::variant<ServedBrick, Refusal> BrickSource::LoadVersion(const std::string& name, const std::string& digest) const {
  const std::string brick = "brick " + Quoted(name);
  if (name.find_first_of("*?") != std::string::npos) {
    return Refusal{wire::ErrorCode::kUnknownBrick, Quoted(name) + " is a pattern, not a brick name"};
  }
  if (std::none_of(globs_.begin(), globs_.end(), [&](const std::string& g) { return GlobMatch(g, name); })) {
    return Refusal{wire::ErrorCode::kUnknownBrick, "does not serve " + brick + " (no serve glob selects it)"};
  }
  BrickFilter filter;
  filter.name_glob = name;  // no wildcard (checked above): this name only
  filter.all_versions = true;
  auto records = registry_->ListBricks(filter);
  if (!records.ok()) {
    return Refusal{wire::ErrorCode::kInternal, "cannot look up " + brick + ": " + records.status().message()};
  }
  if (records->empty()) {
    return Refusal{wire::ErrorCode::kUnknownBrick, "has no " + brick + " in its registry"};
  }
  auto rec = std::find_if(records->begin(), records->end(), [&](const BrickRecord& r) { return r.digest == digest; });
  const bool all_private = std::all_of(records->begin(), records->end(),
                                       [](const BrickRecord& r) { return r.visibility == Visibility::kPrivate; });
  if (rec == records->end() && all_private) {
    return Refusal{wire::ErrorCode::kUnknownBrick, brick + " is private: it never leaves its device"};
  }
  if (rec == records->end()) {
    // The newest few shared versions, so the message says what the node could serve (private ones
    // are not mentioned: nothing about them leaves the device).
    std::vector<const BrickRecord*> shared;
    for (const BrickRecord& r : *records) {
      if (r.visibility == Visibility::kShared) shared.push_back(&r);
    }
    std::string have;
    for (size_t i = shared.size() > 4 ? shared.size() - 4 : 0; i < shared.size(); ++i) {
      have += (have.empty() ? "@" : ", @") + std::to_string(shared[i]->version) + " " +
              shared[i]->digest.substr(0, 12) + "...";
    }
    return Refusal{wire::ErrorCode::kDigestMismatch, "has no version of " + brick + " with digest " + digest +
                                                         " (its registry has " + have +
                                                         "; import that version into the node's registry)"};
  }
  if (rec->visibility == Visibility::kPrivate) {
    return Refusal{wire::ErrorCode::kUnknownBrick, "brick " + rec->Ref() + " is private: it never leaves its device"};
  }
  if (rec->kind != BrickKind::kMlpExpert) {
    return Refusal{wire::ErrorCode::kUnsupported, "brick " + rec->Ref() + " is of kind " +
                                                      std::string(BrickKindName(rec->kind)) +
                                                      "; a node serves MLP experts only"};
  }
  auto loaded = Load(*rec);
  if (!loaded.ok()) {
    return Refusal{wire::ErrorCode::kInternal, "cannot load " + brick + ": " + loaded.status().message()};
  }
  return std::move(*loaded);
}

Result<int64_t> BrickSource::Generation() const {
  BRICK_ASSIGN_OR_RETURN(const std::vector<Registry::Event> events, registry_->Events(1));
  return events.empty() ? int64_t{0} : events.front().id;
}

}  // namespace brickrt
