// Registry::Import and ImportPlugin: bricks become content-addressed blobs and versioned brick rows,
// and the model (or plugin) a manifest version — all in one transaction, so a failed or killed import
// leaves no trace.
#include <set>

#include "core/json.h"
#include "registry/registry_internal.h"

namespace brickrt {

using namespace registry_internal;

namespace {

// What distinguishes a model import from a plugin import; the steps are the same.
struct ImportTarget {
  std::string name;
  ManifestKind kind = ManifestKind::kModel;
  std::string base;  // plugins: the model manifest they were made for
};

Result<ImportResult> ImportManifest(const sqlite::Db& db, const ImportTarget& target, const ModelConfig& cfg,
                                    const std::vector<BrickData>& bricks, Visibility visibility,
                                    const std::string& source, const TokenizerFiles& tokenizer) {
  std::vector<const BrickData*> ptrs;
  for (const BrickData& b : bricks) ptrs.push_back(&b);
  BRICK_ASSIGN_OR_RETURN(std::vector<PreparedBrick> prepared, PrepareBricks(target.name, ptrs, db.MaxBlobBytes()));

  // Stored payloads this import would reuse are checked before taking the write lock (reads only);
  // a damaged one is rewritten below from the imported bytes, which carry the same digest.
  std::set<std::string> damaged;
  for (const PreparedBrick& p : prepared) {
    if (damaged.count(p.digest) != 0) continue;
    BRICK_ASSIGN_OR_RETURN(std::optional<bool> intact, CheckStoredBlob(db, p.digest, p.bytes));
    if (intact && !*intact) damaged.insert(p.digest);
  }

  ImportResult res;
  BRICK_ASSIGN_OR_RETURN(sqlite::Transaction tx, sqlite::Transaction::Begin(db));
  const std::string now = NowUtc();
  ManifestContent content{target.kind, target.base, ConfigToJson(cfg), {}, {}, {}};
  int64_t tokenizer_bytes = 0;
  BRICK_ASSIGN_OR_RETURN(content.tokenizer, StoreTokenizerFiles(db, tokenizer, &tokenizer_bytes));
  res.new_blob_bytes += tokenizer_bytes;
  for (const PreparedBrick& p : prepared) {
    int64_t written = 0;
    const bool repair = damaged.erase(p.digest) != 0;  // once per digest
    if (repair) {
      BRICK_RETURN_IF_ERROR(EnsureBlob(db, p, /*repair=*/true, &written));
      res.new_blob_bytes += written;
      ++res.repaired_blobs;
    }
    BRICK_ASSIGN_OR_RETURN(std::optional<BrickRecord> latest, LatestBrick(db, p.name));
    // Visibility is part of the identity: re-importing as private must not leave a shared latest version.
    if (latest && latest->digest == p.digest && latest->visibility == visibility && SameLayout(*latest, *p.data)) {
      content.brick_ids.push_back(latest->id);
      ++res.reused_bricks;
      continue;
    }
    BRICK_RETURN_IF_ERROR(EnsureBlob(db, p, /*repair=*/false, &written));
    res.new_blob_bytes += written;
    NewBrickRow row;
    row.version = latest ? latest->version + 1 : 1;
    if (latest) row.parent_id = latest->id;
    row.visibility = visibility;
    row.now = now;
    BRICK_ASSIGN_OR_RETURN(int64_t brick_id, InsertBrick(db, p, row));
    content.brick_ids.push_back(brick_id);
    ++res.new_bricks;
  }

  BRICK_RETURN_IF_ERROR(StoreManifest(db, target.name, content, source, now, &res));

  JsonValue detail = JsonValue::MakeObject();
  detail.Set("source", JsonValue::String(source));
  detail.Set("kind", JsonValue::String(ManifestKindName(target.kind)));
  detail.Set("visibility", JsonValue::String(VisibilityName(visibility)));
  detail.Set("new_manifest", JsonValue::Bool(res.new_manifest));
  detail.Set("new_bricks", JsonValue::Int(res.new_bricks));
  detail.Set("reused_bricks", JsonValue::Int(res.reused_bricks));
  detail.Set("new_blob_bytes", JsonValue::Int(res.new_blob_bytes));
  detail.Set("repaired_blobs", JsonValue::Int(res.repaired_blobs));
  detail.Set("tokenizer_files", JsonValue::Int(static_cast<int64_t>(content.tokenizer.size())));
  BRICK_RETURN_IF_ERROR(LogEvent(db, "import", res.manifest.Ref(), DumpJson(detail)));
  BRICK_RETURN_IF_ERROR(tx.Commit());
  return res;
}

// A name already used by a manifest of another kind cannot take a new version of this kind: `brick run
// NAME` would otherwise switch between a model and a plugin.
Status CheckKindFree(const Registry& reg, const std::string& name, ManifestKind kind) {
  auto latest = reg.ResolveModel(name);
  if (!latest.ok()) return latest.status().code() == StatusCode::kNotFound ? Status::Ok() : latest.status();
  if (latest->kind != kind) {
    return InvalidArgument(std::string("'") + name + "' is already a " + ManifestKindName(latest->kind) +
                           " in this registry; choose another name");
  }
  // A submodel's bricks are its base's; importing under its name would version them as if derived.
  if (kind == ManifestKind::kModel && !latest->base.empty()) {
    return InvalidArgument("'" + name + "' is a submodel composed from " + latest->base +
                           " in this registry; choose another name");
  }
  return Status::Ok();
}

}  // namespace

Result<ImportResult> Registry::Import(const std::string& model_name, const ModelConfig& cfg,
                                      const std::vector<BrickData>& bricks, Visibility visibility,
                                      const std::string& source, const TokenizerFiles& tokenizer) {
  BRICK_RETURN_IF_ERROR(CheckName(model_name, "model name"));
  if (bricks.empty()) return InvalidArgument("model " + model_name + ": nothing to import (no bricks)");
  for (const BrickData& b : bricks) {
    if (b.kind == BrickKind::kLora)
      return InvalidArgument("model " + model_name + ": lora brick " + b.Name() + " belongs in a plugin import");
  }
  BRICK_RETURN_IF_ERROR(CheckKindFree(*this, model_name, ManifestKind::kModel));
  return ImportManifest(impl_->db, {model_name, ManifestKind::kModel, ""}, cfg, bricks, visibility, source, tokenizer);
}

Result<ImportResult> Registry::ImportPlugin(const std::string& plugin_name, const ManifestRecord& base,
                                            const std::vector<BrickData>& bricks, Visibility visibility,
                                            const std::string& source) {
  BRICK_RETURN_IF_ERROR(CheckName(plugin_name, "plugin name"));
  if (bricks.empty()) return InvalidArgument("plugin " + plugin_name + ": nothing to import (no bricks)");
  if (base.kind != ManifestKind::kModel) return InvalidArgument("plugin base " + base.Ref() + " is not a model");
  for (const BrickData& b : bricks) {
    if (b.kind != BrickKind::kLora || b.target.empty())
      return InvalidArgument("plugin " + plugin_name + ": brick " + b.Name() + " is not a lora brick with a target");
  }
  BRICK_RETURN_IF_ERROR(CheckKindFree(*this, plugin_name, ManifestKind::kPlugin));
  return ImportManifest(impl_->db, {plugin_name, ManifestKind::kPlugin, base.Ref()}, base.config, bricks, visibility,
                        source, /*tokenizer=*/{});
}

}  // namespace brickrt
