// Brick payload loads: incremental blob reads straight into aligned Tensor storage, checked chunk by
// chunk while the bytes are still in cache, so verification costs no second pass over memory.
#include <cstdio>
#include <map>
#include <optional>
#include <vector>

#include "core/crc32c.h"
#include "core/sha256.h"
#include "registry/registry_internal.h"

namespace brickrt {

using namespace registry_internal;

namespace {

// 1 MiB: small enough to stay in L2 between the copy and the hash, large enough that the per-call
// overhead of sqlite3_blob_read is negligible.
constexpr int64_t kReadChunk = int64_t{1} << 20;

// A lora brick is stored as PLUGIN/TARGET ("my-lora/L3.mlp.E5.w1"): its target is the name's tail.
std::string LoraTarget(const BrickRecord& b) { return b.kind == BrickKind::kLora ? b.RelativeName() : std::string(); }

std::string RepairHint() { return "; run `brick verify`, then re-import the model"; }

// The tensor records must tile the payload exactly: tensor i starts where i-1 ended and holds
// numel * dtype-size bytes. Anything else means the metadata rows were damaged.
Status CheckLayout(const BrickRecord& b) {
  int64_t offset = 0;
  for (const TensorRecord& t : b.tensors) {
    // Checked: the shape comes from the file, and a damaged one must not overflow into a match.
    const std::optional<int64_t> numel = CheckedNumElements(t.shape);
    const auto size = static_cast<int64_t>(DTypeSize(t.dtype));
    if (!numel || *numel > (int64_t{1} << 62) / size || t.offset != offset || t.bytes != *numel * size) {
      return Corrupt("brick " + b.Ref() + ": tensor '" + t.name + "' record disagrees with its shape or offset" +
                     RepairHint());
    }
    offset += t.bytes;
    if (offset > b.bytes) break;  // reported below; stops a damaged record list from overflowing the sum
  }
  if (b.tensors.empty() || offset != b.bytes) {
    return Corrupt("brick " + b.Ref() + ": tensor records cover " + std::to_string(offset) + " bytes, payload is " +
                   std::to_string(b.bytes) + RepairHint());
  }
  return Status::Ok();
}

Status CheckDigest(const BrickRecord& b, Sha256& h) {
  const auto d = h.Finish();
  const std::string computed = ToHex(d.data(), d.size());
  if (computed != b.digest) {
    return Corrupt("brick " + b.Ref() + ": payload digest mismatch (stored " + b.digest + ", computed " + computed +
                   ")" + RepairHint());
  }
  return Status::Ok();
}

struct Payload {
  sqlite::Blob blob;
  std::optional<uint32_t> crc32c;  // absent only for a blob whose checksum row was lost
};

Result<Payload> OpenPayload(const sqlite::Db& db, const BrickRecord& b) {
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st, db.Prepare("SELECT b.id, c.crc32c FROM blobs b LEFT JOIN blob_checksums c "
                                                     "ON c.blob_id = b.id WHERE b.digest = ?"));
  st.Bind(1, b.digest);
  BRICK_ASSIGN_OR_RETURN(bool found, st.Step());
  if (!found) return Corrupt("brick " + b.Ref() + ": payload blob " + b.digest + " is missing" + RepairHint());
  Payload p;
  if (!st.IsNull(1)) p.crc32c = static_cast<uint32_t>(st.Int64(1));
  auto blob = sqlite::Blob::Open(db, "blobs", "data", st.Int64(0), /*writable=*/false);
  if (!blob.ok()) return blob.status().WithContext("brick " + b.Ref());
  if (blob->size() != b.bytes) {
    return Corrupt("brick " + b.Ref() + ": payload is " + std::to_string(blob->size()) + " bytes, expected " +
                   std::to_string(b.bytes) + RepairHint());
  }
  p.blob = std::move(blob).value();
  return p;
}

// What to compute over the bytes as they are read; either may be null.
struct Checks {
  Sha256* sha = nullptr;
  uint32_t* crc = nullptr;
};

// Reads n bytes at offset into dst in chunks, feeding each chunk to the checks right after it lands.
Status ReadChecked(const sqlite::Blob& blob, uint8_t* dst, int64_t n, int64_t offset, Checks checks) {
  for (int64_t done = 0; done < n; done += kReadChunk) {
    const int64_t c = std::min(kReadChunk, n - done);
    BRICK_RETURN_IF_ERROR(blob.Read(dst + done, c, offset + done));
    if (checks.sha != nullptr) checks.sha->Update(dst + done, static_cast<size_t>(c));
    if (checks.crc != nullptr) *checks.crc = Crc32c(*checks.crc, dst + done, static_cast<size_t>(c));
  }
  return Status::Ok();
}

// Runs the checks over the first n bytes of a blob through a small reusable buffer (nothing is kept).
Status CheckBlobBytes(const sqlite::Blob& blob, int64_t n, Checks checks) {
  std::vector<uint8_t> buf(static_cast<size_t>(std::min(kReadChunk, std::max<int64_t>(n, 1))));
  for (int64_t done = 0; done < n; done += kReadChunk) {
    BRICK_RETURN_IF_ERROR(ReadChecked(blob, buf.data(), std::min(kReadChunk, n - done), done, checks));
  }
  return Status::Ok();
}

std::string Hex32(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof(buf), "%08x", v);
  return buf;
}

// A CRC mismatch on load: SHA-256 of the bytes already in memory tells a damaged payload (reported
// exactly as a digest mismatch) from a damaged checksum row. Rare path, so the full hash is affordable.
Status CrcMismatch(const BrickRecord& b, const BrickData& loaded, uint32_t stored, uint32_t computed) {
  Sha256 h;
  for (const auto& [name, t] : loaded.tensors) h.Update(t.data(), t.nbytes());
  BRICK_RETURN_IF_ERROR(CheckDigest(b, h));
  return Corrupt("brick " + b.Ref() + ": stored payload checksum " + Hex32(stored) +
                 " disagrees with the payload (crc32c " + Hex32(computed) + ", digest intact)" + RepairHint());
}

bool SameTensorLayout(const BrickRecord& a, const BrickRecord& b) {
  if (a.tensors.size() != b.tensors.size()) return false;
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const TensorRecord& x = a.tensors[i];
    const TensorRecord& y = b.tensors[i];
    if (x.name != y.name || x.dtype != y.dtype || x.shape != y.shape) return false;
  }
  return true;
}

}  // namespace

// Integrity on load (DESIGN.md §4, docs/registry.md "Integrity"): every load checks the CRC-32C
// stored beside the blob at import over exactly the bytes read into the tensors. SHA-256 remains the
// content address (blob key, brick digest, cache keys); it is checked when the payload is written
// (Import hashes what it stores, and re-checks reused blobs) and by VerifyBrick (`brick verify`).
// CRC-32C runs at memory speed with the SSE4.2 instruction where SHA-256 tops out near 1.2 GB/s,
// and detects any accidental damage (all burst errors up to 32 bits, random damage but 1 in 2^32).
// A blob without a checksum row falls back to SHA-256 here.
Result<BrickData> Registry::LoadBrick(const BrickRecord& brick) const {
  BRICK_RETURN_IF_ERROR(CheckLayout(brick));
  BRICK_ASSIGN_OR_RETURN(Payload payload, OpenPayload(impl_->db, brick));
  BrickData out;
  out.kind = brick.kind;
  out.layer = brick.layer;
  out.index = brick.index;
  out.target = LoraTarget(brick);
  const bool verify = impl_->opts.verify_on_load;
  Sha256 h;
  uint32_t crc = 0;
  Checks checks;
  if (verify && payload.crc32c) checks.crc = &crc;
  if (verify && !payload.crc32c) checks.sha = &h;
  for (const TensorRecord& t : brick.tensors) {
    Tensor tensor = Tensor::Uninitialized(t.dtype, t.shape);  // every byte is read below
    Status st = ReadChecked(payload.blob, static_cast<uint8_t*>(tensor.mutable_data()), t.bytes, t.offset, checks);
    if (!st.ok()) return st.WithContext("brick " + brick.Ref());
    out.tensors.emplace_back(t.name, std::move(tensor));
  }
  if (checks.crc != nullptr && crc != *payload.crc32c) return CrcMismatch(brick, out, *payload.crc32c, crc);
  if (checks.sha != nullptr) BRICK_RETURN_IF_ERROR(CheckDigest(brick, h));
  return out;
}

Result<std::vector<BrickData>> Registry::LoadBricks(const ManifestRecord& manifest) const {
  std::vector<BrickRecord> records;
  records.reserve(manifest.brick_ids.size());
  for (int64_t id : manifest.brick_ids) {
    auto rec = ReadBrickById(impl_->db, id);
    if (!rec.ok()) return rec.status().WithContext("model " + manifest.Ref());
    records.push_back(std::move(rec).value());
  }
  return LoadBricks(records);
}

Result<std::vector<BrickData>> Registry::LoadBricks(const std::vector<BrickRecord>& records) const {
  std::vector<BrickData> out;
  out.reserve(records.size());
  // digest -> position in records/out of the first brick loaded with that payload.
  std::map<std::string, size_t> loaded;
  for (const BrickRecord& rec : records) {
    auto it = loaded.find(rec.digest);
    if (it != loaded.end() && SameTensorLayout(records[it->second], rec)) {
      // Same bytes and layout (a tied lm_head and its embedding): share the storage, read it once.
      BrickData copy = out[it->second];
      copy.kind = rec.kind;
      copy.target = LoraTarget(rec);
      copy.layer = rec.layer;
      copy.index = rec.index;
      out.push_back(std::move(copy));
      continue;
    }
    BRICK_ASSIGN_OR_RETURN(BrickData b, LoadBrick(rec));
    loaded.emplace(rec.digest, out.size());
    out.push_back(std::move(b));
  }
  return out;
}

// The full SHA-256 of the stored payload, and in the same pass its CRC-32C, so that `brick verify`
// passes exactly the bricks LoadBrick accepts.
Status Registry::VerifyBrick(const BrickRecord& brick) const {
  BRICK_RETURN_IF_ERROR(CheckLayout(brick));
  BRICK_ASSIGN_OR_RETURN(Payload payload, OpenPayload(impl_->db, brick));
  Sha256 h;
  uint32_t crc = 0;
  Status st = CheckBlobBytes(payload.blob, brick.bytes, Checks{&h, &crc});
  if (!st.ok()) return st.WithContext("brick " + brick.Ref());
  BRICK_RETURN_IF_ERROR(CheckDigest(brick, h));
  if (payload.crc32c && crc != *payload.crc32c) {
    return Corrupt("brick " + brick.Ref() + ": stored payload checksum " + Hex32(*payload.crc32c) +
                   " disagrees with the payload (crc32c " + Hex32(crc) + ", digest intact)" + RepairHint());
  }
  return Status::Ok();
}

namespace registry_internal {

Result<std::optional<bool>> CheckStoredBlob(const sqlite::Db& db, const std::string& digest, int64_t bytes) {
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st, db.Prepare("SELECT b.id, c.crc32c FROM blobs b LEFT JOIN blob_checksums c "
                                                     "ON c.blob_id = b.id WHERE b.digest = ?"));
  st.Bind(1, digest);
  BRICK_ASSIGN_OR_RETURN(bool found, st.Step());
  if (!found) return std::optional<bool>();
  BRICK_ASSIGN_OR_RETURN(sqlite::Blob blob, sqlite::Blob::Open(db, "blobs", "data", st.Int64(0), /*writable=*/false));
  if (blob.size() != bytes) return std::optional<bool>(false);
  Sha256 h;
  uint32_t crc = 0;
  BRICK_RETURN_IF_ERROR(CheckBlobBytes(blob, bytes, Checks{&h, &crc}));
  const auto d = h.Finish();
  // A missing or wrong checksum row counts as damage too: the repair rewrites it with the blob.
  const bool crc_ok = !st.IsNull(1) && static_cast<uint32_t>(st.Int64(1)) == crc;
  return std::optional<bool>(ToHex(d.data(), d.size()) == digest && crc_ok);
}

Result<uint32_t> BlobCrc32c(const sqlite::Db& db, int64_t blob_id) {
  BRICK_ASSIGN_OR_RETURN(sqlite::Blob blob, sqlite::Blob::Open(db, "blobs", "data", blob_id, /*writable=*/false));
  uint32_t crc = 0;
  BRICK_RETURN_IF_ERROR(CheckBlobBytes(blob, blob.size(), Checks{nullptr, &crc}));
  return crc;
}

}  // namespace registry_internal
}  // namespace brickrt
