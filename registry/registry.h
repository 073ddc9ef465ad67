// The brick registry: one SQLite file holding versioned bricks (content-addressed payload blobs),
// model manifests (config + ordered brick versions), tags and an append-only event log (DESIGN.md §4).
// SQLite stays private to registry/*.cpp: no SQLite type appears here.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/brick_data.h"
#include "core/dtype.h"
#include "core/model_config.h"
#include "core/status.h"
#include "core/tensor.h"
#include "registry/profiles.h"
#include "registry/tokenizer_files.h"

namespace brickrt {

enum class Visibility { kShared, kPrivate };
// "shared" / "private".
const char* VisibilityName(Visibility v);
// Accepts exactly "shared" or "private".
std::optional<Visibility> ParseVisibility(std::string_view s);

// A manifest is a runnable model (imported, or a submodel composed from one) or a plugin: a set of
// lora bricks made for a base model, attached to submodels by their specs.
enum class ManifestKind { kModel, kPlugin };
// "model" / "plugin".
const char* ManifestKindName(ManifestKind k);
std::optional<ManifestKind> ParseManifestKind(std::string_view s);

// One tensor of a brick, located within the brick's payload.
struct TensorRecord {
  std::string name;  // "w1", "weight", ...
  DType dtype = DType::kF32;
  Shape shape;
  int64_t offset = 0;  // byte offset within the brick payload
  int64_t bytes = 0;
};

struct BrickRecord {
  int64_t id = 0;
  std::string name;     // full name "<model>/L3.mlp.E17"
  int64_t version = 0;  // 1, 2, ... per name; immutable once written
  BrickKind kind = BrickKind::kEmbedding;
  int layer = -1;
  int index = -1;
  std::string digest;  // SHA-256 hex of the payload (= the tensors' bytes concatenated in order)
  int64_t bytes = 0;
  Visibility visibility = Visibility::kShared;
  // Lineage: the previous version of the same name on re-import, or for a derived brick (a LoRA merged
  // into a base brick by `brick compose --save`) the brick it was derived from.
  std::optional<int64_t> parent_id;
  std::string created_at;            // ISO-8601 UTC, "2024-05-01T12:34:56.789Z"
  std::string metadata_json = "{}";
  std::vector<TensorRecord> tensors;  // in payload order

  std::string Ref() const;  // "name@version"
  // The name after "MODEL/": "L3.mlp.E17", or a lora's target "L3.mlp.E17.w1".
  std::string RelativeName() const;
};

// One file of a model's tokenizer, stored as a content-addressed blob like a brick payload (schema v5).
struct TokenizerFileRecord {
  std::string name;    // "tokenizer.json", "vocab.json", ... (TokenizerFileNames())
  std::string digest;  // SHA-256 hex of the file's bytes = the blob's key
  int64_t bytes = 0;

  bool operator==(const TokenizerFileRecord&) const = default;
};

struct ManifestRecord {
  int64_t id = 0;
  std::string name;
  int64_t version = 0;
  ModelConfig config;
  std::vector<int64_t> brick_ids;  // BrickRecord ids, ordered as the model lists them
  std::vector<std::string> tags;   // tags currently pointing at this manifest, sorted
  std::string created_at;
  std::string source;  // what was imported (a checkpoint directory) or composed (a spec file), free text
  ManifestKind kind = ManifestKind::kModel;
  std::string base;  // a submodel or plugin: the manifest ref it was made from ("molm-350m@1"); else empty
  // A submodel's lora bricks (ids in brick_ids) -> the scale each is applied with on the fly.
  std::map<int64_t, double> plugin_scales;
  // The model's tokenizer files, by name; empty: the model has no tokenizer. Imported with the
  // checkpoint; a submodel, grown or pruned model references its base's.
  std::vector<TokenizerFileRecord> tokenizer;

  std::string Ref() const;  // "name@version"
};

struct ImportResult {
  ManifestRecord manifest;     // the latest manifest of the model after the import
  bool new_manifest = false;   // false: config and brick list equal the previous latest manifest
  int new_bricks = 0;          // brick versions written
  int reused_bricks = 0;       // bricks whose latest version already had this content
  int64_t new_blob_bytes = 0;  // payload bytes written (0 when every payload was already stored)
  int repaired_blobs = 0;      // stored payloads that failed their digest and were rewritten from the import
};

// What Registry::Remove took out (refs "name@version", tags "name:tag"), in the order removed.
struct RemoveResult {
  std::vector<std::string> bricks;
  std::vector<std::string> manifests;
  std::vector<std::string> tags;
};

struct RemoveOptions {
  // A brick version that manifests use is refused without it; with it those manifests (and their
  // tags) are removed too, and listed in the result. Never needed to remove a manifest.
  bool force = false;
  bool dry_run = false;  // work out and return what would go, then roll back (no event either)
};

struct GcResult {
  int64_t blobs = 0;             // unreferenced blobs dropped
  int64_t bytes = 0;             // their payload bytes
  int64_t db_bytes_before = 0;   // page_count * page_size before the gc
  int64_t db_bytes_after = 0;    // after (shrinks only with vacuum; otherwise the pages become free)
  int64_t free_bytes_after = 0;  // free pages inside the file after the gc (0 after a vacuum)
};

struct VisibilityResult {
  std::vector<std::string> changed;  // brick refs whose visibility changed
  int unchanged = 0;                 // bricks that already had the requested visibility
};

struct ExportOptions {
  bool allow_private = false;    // export private bricks too (refused by default, DESIGN.md §5)
  uint64_t max_shard_bytes = 0;  // 0: one model.safetensors; else shards (WriteOptions::max_shard_bytes)
};

// A composed submodel to store (`brick compose --save`): existing bricks pinned as they are, plus new
// bricks derived from them (a LoRA merged into its target).
struct ManifestDraft {
  std::string name;  // the submodel's manifest name
  std::string base;  // the manifest ref it was composed from ("molm-350m@1")
  ModelConfig config;
  struct Entry {
    int64_t brick_id = 0;            // an existing brick, used as it is; ignored when data is set
    const BrickData* data = nullptr;  // a new brick, stored as name + "/" + data->Name()
    int64_t derived_from = 0;        // with data: the brick id it was derived from (its lineage parent);
                                     // 0: a brick new to the model, without lineage (a grown expert)
    Visibility visibility = Visibility::kShared;  // with data
    std::string metadata_json = "{}";  // with data: how it was derived (a JSON object)
    std::optional<double> scale;       // a lora brick attached on the fly: its scale
  };
  std::vector<Entry> entries;  // manifest order
  std::string source;          // the spec file
  std::string op = "compose";  // the event logged: "compose", or "grow" (registry/grow.h)
};

struct BrickFilter {
  std::string name_glob;  // '*' and '?' wildcards over the full name; empty matches everything
  std::optional<BrickKind> kind;
  bool all_versions = false;  // default: only the latest version of each name
};

struct OpenOptions {
  bool create = true;          // create the file (and its directory) and the schema when missing
  bool read_only = false;      // open without write access; Import/Tag then fail with IoError
  int busy_timeout_ms = 5000;  // how long a writer waits for another writer's lock before Unavailable
  // Check each payload on load: its CRC-32C over the bytes read (at memory speed; the SHA-256 digest is
  // the content address, checked at import and by VerifyBrick, and recomputed on load only when the
  // CRC fails, to tell a damaged payload from a damaged checksum). Off only for measurements that want
  // the raw read speed; a registry opened with it off trusts what was verified at write time.
  bool verify_on_load = true;
};

// A Registry is one SQLite connection: use it from one thread at a time (an Import's transaction is
// the connection's), and open one Registry per thread or process instead — WAL lets readers run
// while another connection imports. Each call sees committed data; there is no multi-call snapshot.
class Registry {
 public:
  // path may be ":memory:" (a private in-memory registry, gone on destruction). Creates the schema
  // on first use (opts.create). Errors, each naming the path:
  //   NotFound         the file does not exist and opts.create is false (or opts.read_only)
  //   InvalidArgument  the file is not a SQLite database, or a SQLite database that is not a registry
  //   Unsupported      the registry's schema is newer than this code ("upgrade brick"), or older and
  //                    opened read-only (it needs a migration)
  //   IoError          the location cannot be created or written (read-only directory, permissions)
  //   Unavailable      another process holds the write lock beyond busy_timeout_ms while migrating
  static Result<std::unique_ptr<Registry>> Open(const std::string& path, const OpenOptions& opts = {});
  // $BRICK_REGISTRY, else $XDG_DATA_HOME/brickrt/registry.db, else $HOME/.local/share/brickrt/registry.db
  // (Open creates the directory). Falls back to "./brickrt-registry.db" when HOME is unset.
  static std::string DefaultPath();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  const std::string& path() const;
  int schema_version() const;

  // Imports a model as one transaction: on any error (or a killed process) nothing is written.
  // Brick names are model_name + "/" + BrickData::Name(). Per brick: the payload digest; if the latest
  // version of that name has the same digest, tensor layout and visibility it is reused; otherwise a
  // new version (parent = the previous latest) and, if no blob with that digest exists, a new blob
  // (written in chunks with incremental blob I/O). A new manifest version only if the config or the
  // ordered brick list (or the tokenizer) differs from the latest manifest of that name. An "import"
  // event is logged. tokenizer: the model's tokenizer files (ReadTokenizerFiles), checked by the
  // caller with BuildTokenizer; stored as blobs (deduplicated by digest) referenced from the manifest.
  // Repair: every already-stored payload the import would reuse is hashed first (outside the write
  // lock); one that fails its digest is rewritten from the imported bytes, so "re-import the model"
  // fixes what `brick verify` reports. Costs one read of the reused payloads on a re-import.
  // Errors: InvalidArgument (model_name empty or containing '/', '@', ':' or whitespace; no bricks;
  // two bricks with one name), OutOfRange (a payload beyond SQLite's blob limit), IoError (read-only
  // registry, disk full), Unavailable (another writer holds the lock beyond the busy timeout).
  Result<ImportResult> Import(const std::string& model_name, const ModelConfig& cfg,
                              const std::vector<BrickData>& bricks, Visibility visibility, const std::string& source,
                              const TokenizerFiles& tokenizer = {});

  // Imports a plugin: lora bricks (kind kLora, each with a target) made for the model manifest `base`,
  // stored as plugin_name + "/" + target, versioned and deduplicated like Import, under a manifest of
  // kind kPlugin whose config is base's. Shapes are checked by the caller against base (see
  // ReadPeftAdapter). Errors: as Import; InvalidArgument when a brick is not a lora, base is a plugin,
  // or plugin_name is already a model.
  Result<ImportResult> ImportPlugin(const std::string& plugin_name, const ManifestRecord& base,
                                    const std::vector<BrickData>& bricks, Visibility visibility,
                                    const std::string& source);
  // Stores a composed submodel as a new manifest version of draft.name (none when nothing changed),
  // writing the derived bricks (a new version of draft.name + "/" + Name() unless its latest version
  // holds the same payload) in one transaction, and logs a "compose" event. The new manifest
  // references the tokenizer of draft.base (when it resolves and has one). Errors: InvalidArgument
  // for a bad name, a name that is the base model's own or already a plugin or an imported model,
  // an unknown brick id; as Import otherwise. Nothing is written on error.
  Result<ImportResult> SaveManifest(const ManifestDraft& draft);

  // Ordered by name, then version.
  Result<std::vector<BrickRecord>> ListBricks(const BrickFilter& filter) const;
  // "NAME" (latest version) or "NAME@VERSION". A NAME without '/' that is not a full name is looked
  // up as a model-relative name ("L3.mlp.E17") when exactly one model has it.
  // Errors: NotFound naming the ref; InvalidArgument for a malformed version or an ambiguous name
  // (listing the candidates).
  Result<BrickRecord> GetBrick(const std::string& ref) const;
  // Every manifest version of every model, ordered by name then version, with their tags.
  Result<std::vector<ManifestRecord>> ListModels() const;
  // NAME (latest version) | NAME@VERSION | NAME:TAG. Errors: NotFound naming the ref (and the latest
  // version when only the version is missing); InvalidArgument for a malformed ref.
  Result<ManifestRecord> ResolveModel(const std::string& ref) const;
  // Points tag at the manifest model_ref resolves to; moves the tag if it already exists. Logs a
  // "tag" event. Errors: as ResolveModel; InvalidArgument for a tag that is empty, all digits or
  // contains '/', '@', ':' or whitespace.
  Status Tag(const std::string& model_ref, const std::string& tag);

  // Reads the payload with incremental blob I/O straight into 64-byte aligned Tensor storage and
  // checks its CRC-32C (unless OpenOptions::verify_on_load is off). Errors: kCorrupt
  // "brick NAME@V: payload digest mismatch (stored X, computed Y); run `brick verify`, then re-import
  // the model" (also for a missing blob or a size that disagrees with the tensor records).
  Result<BrickData> LoadBrick(const BrickRecord& brick) const;
  // Every brick of the manifest, in manifest order. Bricks with the same digest and tensor layout
  // (a tied lm_head and embedding) are read once and share storage.
  Result<std::vector<BrickData>> LoadBricks(const ManifestRecord& manifest) const;
  // The given bricks, in order, with the same sharing (a submodel loads only the bricks it keeps).
  Result<std::vector<BrickData>> LoadBricks(const std::vector<BrickRecord>& records) const;
  // The manifest's tokenizer files, each checked against its SHA-256 digest and CRC-32C (they are
  // small); empty when the model has none. Errors: Corrupt "model NAME@V: tokenizer file F: ..." for
  // a missing or damaged blob.
  Result<TokenizerFiles> LoadTokenizerFiles(const ManifestRecord& manifest) const;
  // The model's tokenizer built from those files (BuildTokenizer), or nullopt when it has none.
  Result<std::optional<Tokenizer>> LoadTokenizer(const ManifestRecord& manifest) const;
  // Recomputes the SHA-256 digest (and the CRC-32C) of one brick's stored payload without keeping it:
  // OK, or the kCorrupt error LoadBrick would return. For `brick verify`.
  Status VerifyBrick(const BrickRecord& brick) const;

  // --- Expert profiles (profiles.cpp, registry/profiles.h; schema v4).

  // Stores p under p.name, replacing a profile of that name, in one transaction, and logs a "profile"
  // event; returns it as stored (created_at set, manifest = the manifest's current ref). A profile is
  // removed with the manifest it was measured on. Errors: InvalidArgument for a bad name or an unknown
  // manifest_id; IoError/Unavailable as Import.
  Result<ExpertProfile> SaveProfile(const ExpertProfile& p);
  // Errors: NotFound naming the profile and the registry; Corrupt for an unreadable stored row.
  Result<ExpertProfile> GetProfile(const std::string& name) const;
  // Every profile, by name.
  Result<std::vector<ExpertProfile>> ListProfiles() const;

  // --- Administration (registry_admin.cpp). Each write is one transaction: on error nothing changes.

  // The brick records of a manifest, in manifest order.
  Result<std::vector<BrickRecord>> ManifestBricks(const ManifestRecord& manifest) const;

  // ref: a brick "NAME@VERSION" (one version) or "NAME" (every version of that name), where NAME is a
  // full brick name (contains '/'); or a manifest "MODEL@VERSION" (removed with its tags; its bricks
  // stay). A bare MODEL or MODEL:TAG is refused (say which version). A removed brick that is the
  // parent of another version passes its own parent on (lineage skips it). Payload blobs are kept
  // (CollectGarbage drops them). Logs an "rm" event.
  // Errors: NotFound naming the ref; InvalidArgument for a malformed ref, or a brick that manifests
  // use when !opts.force (naming them); IoError/Unavailable as Import.
  Result<RemoveResult> Remove(const std::string& ref, const RemoveOptions& opts = {});

  // Drops every blob no brick references, in one transaction, and logs a "gc" event. vacuum: then
  // rewrites the file (VACUUM + WAL checkpoint) so it shrinks; that needs the write lock and free
  // disk space of about the file's size. Errors: IoError/Unavailable.
  Result<GcResult> CollectGarbage(bool vacuum);

  // ref: a brick (contains '/': "NAME" = latest version, or "NAME@VERSION") or a model ("NAME",
  // "NAME@VERSION", "NAME:TAG"; every brick of that manifest). Changes the visibility column in place
  // (the payload and version stay) and logs a "visibility" event. Errors: as GetBrick/ResolveModel.
  Result<VisibilityResult> SetVisibility(const std::string& ref, Visibility visibility);

  // Writes the manifest's model to dir in HF layout (config.json + model.safetensors or shards), each
  // payload checked as LoadBricks checks it; tensors are byte-identical to the imported checkpoint. The dead
  // attn.mask / attn.cum_weight buffers are not written (their size is not stored; HF rebuilds them).
  // The model's tokenizer files (if any) are written next to config.json.
  // A submodel is written as the plain model it runs: removed experts deleted, the rest renumbered,
  // routers without their rows (CompactRemovedExperts). Refused for a plugin and for a submodel that
  // attaches loras on the fly (save it with `merge: true` first).
  // Errors: InvalidArgument when a brick is private and !opts.allow_private (naming it) or dir exists
  // and is not empty; Corrupt as LoadBrick; IoError naming the path.
  Status ExportModel(const ManifestRecord& manifest, const std::string& dir, const ExportOptions& opts = {}) const;

  struct Event {
    int64_t id = 0;
    std::string at, kind, subject, detail;  // detail: a JSON object
  };
  // The most recent `limit` events, newest first.
  Result<std::vector<Event>> Events(int64_t limit = 100) const;

  struct Impl;  // registry/registry_internal.h

 private:
  explicit Registry(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace brickrt
