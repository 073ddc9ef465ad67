// A model's tokenizer in the registry (schema v5): its files are content-addressed blobs, like brick
// payloads, referenced from the manifest by file name; loading checks every byte (the files are small).
#include "core/crc32c.h"
#include "core/sha256.h"
#include "registry/registry_internal.h"

namespace brickrt {

using namespace registry_internal;

namespace registry_internal {

Result<std::vector<TokenizerFileRecord>> StoreTokenizerFiles(const sqlite::Db& db, const TokenizerFiles& files,
                                                             int64_t* written) {
  std::vector<TokenizerFileRecord> out;
  for (const TokenizerFile& f : files) {
    const auto* data = reinterpret_cast<const uint8_t*>(f.bytes.data());
    const auto n = static_cast<int64_t>(f.bytes.size());
    Sha256 h;
    h.Update(data, f.bytes.size());
    const auto d = h.Finish();
    BlobPayload p{ToHex(d.data(), d.size()), Crc32c(0, data, f.bytes.size()), n, {{data, n}}};
    // A stored copy that fails its digest is rewritten, as Import repairs brick payloads.
    BRICK_ASSIGN_OR_RETURN(std::optional<bool> intact, CheckStoredBlob(db, p.digest, n));
    int64_t w = 0;
    BRICK_RETURN_IF_ERROR(EnsureBlobPayload(db, p, /*repair=*/intact && !*intact, &w));
    *written += w;
    out.push_back({f.name, p.digest, n});
  }
  return out;
}

Result<std::vector<TokenizerFileRecord>> ReadTokenizerRows(const sqlite::Db& db, int64_t manifest_id) {
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st, db.Prepare("SELECT name, digest, bytes FROM tokenizer_files "
                                                     "WHERE manifest_id = ? ORDER BY name"));
  st.Bind(1, manifest_id);
  std::vector<TokenizerFileRecord> out;
  for (;;) {
    BRICK_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return out;
    out.push_back({st.Text(0), st.Text(1), st.Int64(2)});
  }
}

}  // namespace registry_internal

Result<TokenizerFiles> Registry::LoadTokenizerFiles(const ManifestRecord& manifest) const {
  const sqlite::Db& db = impl_->db;
  TokenizerFiles out;
  for (const TokenizerFileRecord& f : manifest.tokenizer) {
    const std::string what = "model " + manifest.Ref() + ": tokenizer file " + f.name;
    const std::string hint = "; run `brick verify`, then re-import the model";
    BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st, db.Prepare("SELECT b.id, c.crc32c FROM blobs b LEFT JOIN blob_checksums c "
                                                       "ON c.blob_id = b.id WHERE b.digest = ?"));
    st.Bind(1, f.digest);
    BRICK_ASSIGN_OR_RETURN(bool found, st.Step());
    if (!found) return Corrupt(what + ": blob " + f.digest + " is missing" + hint);
    BRICK_ASSIGN_OR_RETURN(sqlite::Blob blob, sqlite::Blob::Open(db, "blobs", "data", st.Int64(0), /*writable=*/false));
    if (blob.size() != f.bytes) {
      return Corrupt(what + " is " + std::to_string(blob.size()) + " bytes, expected " + std::to_string(f.bytes) + hint);
    }
    std::string bytes(static_cast<size_t>(f.bytes), '\0');
    BRICK_RETURN_IF_ERROR(blob.Read(bytes.data(), f.bytes, 0));
    // Both checks: SHA-256 of a few MB costs milliseconds, and it is the content address.
    Sha256 h;
    h.Update(bytes.data(), bytes.size());
    const auto d = h.Finish();
    const std::string computed = ToHex(d.data(), d.size());
    if (computed != f.digest) {
      return Corrupt(what + ": digest mismatch (stored " + f.digest + ", computed " + computed + ")" + hint);
    }
    if (!st.IsNull(1) && static_cast<uint32_t>(st.Int64(1)) != Crc32c(0, bytes.data(), bytes.size())) {
      return Corrupt(what + ": stored checksum disagrees with the file (digest intact)" + hint);
    }
    out.push_back({f.name, std::move(bytes)});
  }
  return out;
}

Result<std::optional<Tokenizer>> Registry::LoadTokenizer(const ManifestRecord& manifest) const {
  if (manifest.tokenizer.empty()) return std::optional<Tokenizer>();
  BRICK_ASSIGN_OR_RETURN(TokenizerFiles files, LoadTokenizerFiles(manifest));
  auto tok = BuildTokenizer(files, "model " + manifest.Ref());
  if (!tok.ok()) return tok.status();
  return std::optional<Tokenizer>(std::move(tok).value());
}

}  // namespace brickrt
