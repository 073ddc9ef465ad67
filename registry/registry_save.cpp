// Registry::SaveManifest: a composed submodel becomes a manifest version that pins the base model's
// bricks it keeps, plus the bricks derived for it (LoRA merged into a target), in one transaction.
#include <set>

#include "core/json.h"
#include "registry/registry_internal.h"

namespace brickrt {

using namespace registry_internal;

namespace {

// The model name of a ref "NAME@V" / "NAME:TAG" / "NAME".
std::string ModelNameOf(const std::string& ref) { return ref.substr(0, ref.find_first_of("@:")); }

Status CheckSubmodelName(const Registry& reg, const ManifestDraft& draft) {
  BRICK_RETURN_IF_ERROR(CheckName(draft.name, "submodel name"));
  if (draft.name == ModelNameOf(draft.base)) {
    return InvalidArgument("submodel name '" + draft.name + "' is the base model's own name; choose another `name:`");
  }
  auto latest = reg.ResolveModel(draft.name);
  if (!latest.ok()) return latest.status().code() == StatusCode::kNotFound ? Status::Ok() : latest.status();
  // A new version may replace an earlier submodel, never an imported model or a plugin.
  if (latest->kind != ManifestKind::kModel || latest->base.empty()) {
    return InvalidArgument("'" + draft.name + "' is already " +
                           (latest->kind == ManifestKind::kPlugin ? "a plugin" : "an imported model") +
                           " in this registry; choose another `name:`");
  }
  return Status::Ok();
}

}  // namespace

Result<ImportResult> Registry::SaveManifest(const ManifestDraft& draft) {
  BRICK_RETURN_IF_ERROR(CheckSubmodelName(*this, draft));
  if (draft.entries.empty()) return InvalidArgument("submodel " + draft.name + " has no bricks");
  const sqlite::Db& db = impl_->db;
  std::vector<const BrickData*> derived;
  for (const ManifestDraft::Entry& e : draft.entries)
    if (e.data != nullptr) derived.push_back(e.data);
  BRICK_ASSIGN_OR_RETURN(std::vector<PreparedBrick> prepared, PrepareBricks(draft.name, derived, db.MaxBlobBytes()));
  // A submodel, grown or pruned model reads text as its base does: it references the base's tokenizer.
  std::vector<TokenizerFileRecord> tokenizer;
  if (!draft.base.empty()) {
    auto base = ResolveModel(draft.base);
    if (base.ok()) {
      tokenizer = base->tokenizer;
    } else if (base.status().code() != StatusCode::kNotFound) {
      return base.status();
    }
  }

  ImportResult res;
  BRICK_ASSIGN_OR_RETURN(sqlite::Transaction tx, sqlite::Transaction::Begin(db));
  const std::string now = NowUtc();
  ManifestContent content{ManifestKind::kModel, draft.base, ConfigToJson(draft.config), {}, {}, std::move(tokenizer)};
  size_t next_derived = 0;
  for (const ManifestDraft::Entry& e : draft.entries) {
    int64_t id = e.brick_id;
    if (e.data != nullptr) {
      const PreparedBrick& p = prepared[next_derived++];
      std::optional<int64_t> parent_id;
      if (e.derived_from != 0) {
        auto parent = ReadBrickById(db, e.derived_from);
        if (!parent.ok()) return parent.status().WithContext("brick " + p.name + " derives from a missing brick");
        parent_id = e.derived_from;
      }
      BRICK_ASSIGN_OR_RETURN(std::optional<BrickRecord> latest, LatestBrick(db, p.name));
      if (latest && latest->digest == p.digest && latest->visibility == e.visibility &&
          latest->parent_id == parent_id && SameLayout(*latest, *p.data)) {
        id = latest->id;
        ++res.reused_bricks;
      } else {
        int64_t written = 0;
        BRICK_RETURN_IF_ERROR(EnsureBlob(db, p, /*repair=*/false, &written));
        res.new_blob_bytes += written;
        NewBrickRow row;
        row.version = latest ? latest->version + 1 : 1;
        row.parent_id = parent_id;
        row.visibility = e.visibility;
        row.now = now;
        row.metadata_json = e.metadata_json;
        BRICK_ASSIGN_OR_RETURN(id, InsertBrick(db, p, row));
        ++res.new_bricks;
      }
    } else {
      // Checks the id exists (a foreign key would too, with a less helpful message).
      auto rec = ReadBrickById(db, id);
      if (!rec.ok()) return rec.status().WithContext("submodel " + draft.name);
      ++res.reused_bricks;
    }
    content.brick_ids.push_back(id);
    if (e.scale) content.plugin_scales[id] = *e.scale;
  }

  BRICK_RETURN_IF_ERROR(StoreManifest(db, draft.name, content, draft.source, now, &res));
  JsonValue detail = JsonValue::MakeObject();
  detail.Set("source", JsonValue::String(draft.source));
  detail.Set("base", JsonValue::String(draft.base));
  detail.Set("new_manifest", JsonValue::Bool(res.new_manifest));
  detail.Set("new_bricks", JsonValue::Int(res.new_bricks));
  detail.Set("new_blob_bytes", JsonValue::Int(res.new_blob_bytes));
  BRICK_RETURN_IF_ERROR(LogEvent(db, draft.op, res.manifest.Ref(), DumpJson(detail)));
  BRICK_RETURN_IF_ERROR(tx.Commit());
  return res;
}

}  // namespace brickrt
