// Brick payload loads: incremental blob reads straight into aligned Tensor storage, hashed chunk by
// chunk while the bytes are still in cache, so verification costs no second pass over memory.
#include <map>
#include <optional>
#include <vector>

#include "core/sha256.h"
#include "registry/registry_internal.h"

namespace brickrt {

using namespace registry_internal;

namespace {

// 1 MiB: small enough to stay in L2 between the copy and the hash, large enough that the per-call
// overhead of sqlite3_blob_read is negligible.
constexpr int64_t kReadChunk = int64_t{1} << 20;

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

Result<sqlite::Blob> OpenPayload(const sqlite::Db& db, const BrickRecord& b) {
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st, db.Prepare("SELECT id FROM blobs WHERE digest = ?"));
  st.Bind(1, b.digest);
  BRICK_ASSIGN_OR_RETURN(bool found, st.Step());
  if (!found) return Corrupt("brick " + b.Ref() + ": payload blob " + b.digest + " is missing" + RepairHint());
  auto blob = sqlite::Blob::Open(db, "blobs", "data", st.Int64(0), /*writable=*/false);
  if (!blob.ok()) return blob.status().WithContext("brick " + b.Ref());
  if (blob->size() != b.bytes) {
    return Corrupt("brick " + b.Ref() + ": payload is " + std::to_string(blob->size()) + " bytes, expected " +
                   std::to_string(b.bytes) + RepairHint());
  }
  return blob;
}

// Reads n bytes at offset into dst in chunks, feeding each chunk to h (when given) right after it lands.
Status ReadHashed(const sqlite::Blob& blob, uint8_t* dst, int64_t n, int64_t offset, Sha256* h) {
  for (int64_t done = 0; done < n; done += kReadChunk) {
    const int64_t c = std::min(kReadChunk, n - done);
    BRICK_RETURN_IF_ERROR(blob.Read(dst + done, c, offset + done));
    if (h != nullptr) h->Update(dst + done, static_cast<size_t>(c));
  }
  return Status::Ok();
}

// Hashes the first n bytes of a blob through a small reusable buffer (nothing is kept).
Status HashBlob(const sqlite::Blob& blob, int64_t n, Sha256* h) {
  std::vector<uint8_t> buf(static_cast<size_t>(std::min(kReadChunk, std::max<int64_t>(n, 1))));
  for (int64_t done = 0; done < n; done += kReadChunk) {
    BRICK_RETURN_IF_ERROR(ReadHashed(blob, buf.data(), std::min(kReadChunk, n - done), done, h));
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

Result<BrickData> Registry::LoadBrick(const BrickRecord& brick) const {
  BRICK_RETURN_IF_ERROR(CheckLayout(brick));
  BRICK_ASSIGN_OR_RETURN(sqlite::Blob blob, OpenPayload(impl_->db, brick));
  BrickData out;
  out.kind = brick.kind;
  out.layer = brick.layer;
  out.index = brick.index;
  Sha256 h;
  Sha256* hp = impl_->opts.verify_on_load ? &h : nullptr;
  for (const TensorRecord& t : brick.tensors) {
    Tensor tensor(t.dtype, t.shape);  // 64-byte aligned, pre-faulted
    Status st = ReadHashed(blob, static_cast<uint8_t*>(tensor.mutable_data()), t.bytes, t.offset, hp);
    if (!st.ok()) return st.WithContext("brick " + brick.Ref());
    out.tensors.emplace_back(t.name, std::move(tensor));
  }
  if (hp != nullptr) BRICK_RETURN_IF_ERROR(CheckDigest(brick, h));
  return out;
}

Result<std::vector<BrickData>> Registry::LoadBricks(const ManifestRecord& manifest) const {
  std::vector<BrickData> out;
  out.reserve(manifest.brick_ids.size());
  // digest -> (record, position in out) of the first brick loaded with that payload.
  std::map<std::string, std::pair<BrickRecord, size_t>> loaded;
  for (int64_t id : manifest.brick_ids) {
    auto rec = ReadBrickById(impl_->db, id);
    if (!rec.ok()) return rec.status().WithContext("model " + manifest.Ref());
    auto it = loaded.find(rec->digest);
    if (it != loaded.end() && SameTensorLayout(it->second.first, *rec)) {
      // Same bytes and layout (a tied lm_head and its embedding): share the storage, read it once.
      BrickData copy = out[it->second.second];
      copy.kind = rec->kind;
      copy.layer = rec->layer;
      copy.index = rec->index;
      out.push_back(std::move(copy));
      continue;
    }
    BRICK_ASSIGN_OR_RETURN(BrickData b, LoadBrick(*rec));
    loaded.emplace(rec->digest, std::make_pair(*rec, out.size()));
    out.push_back(std::move(b));
  }
  return out;
}

Status Registry::VerifyBrick(const BrickRecord& brick) const {
  BRICK_RETURN_IF_ERROR(CheckLayout(brick));
  BRICK_ASSIGN_OR_RETURN(sqlite::Blob blob, OpenPayload(impl_->db, brick));
  Sha256 h;
  Status st = HashBlob(blob, brick.bytes, &h);
  if (!st.ok()) return st.WithContext("brick " + brick.Ref());
  return CheckDigest(brick, h);
}

namespace registry_internal {

Result<std::optional<bool>> CheckStoredBlob(const sqlite::Db& db, const std::string& digest, int64_t bytes) {
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st, db.Prepare("SELECT id FROM blobs WHERE digest = ?"));
  st.Bind(1, digest);
  BRICK_ASSIGN_OR_RETURN(bool found, st.Step());
  if (!found) return std::optional<bool>();
  BRICK_ASSIGN_OR_RETURN(sqlite::Blob blob, sqlite::Blob::Open(db, "blobs", "data", st.Int64(0), /*writable=*/false));
  if (blob.size() != bytes) return std::optional<bool>(false);
  Sha256 h;
  BRICK_RETURN_IF_ERROR(HashBlob(blob, bytes, &h));
  const auto d = h.Finish();
  return std::optional<bool>(ToHex(d.data(), d.size()) == digest);
}

}  // namespace registry_internal
}  // namespace brickrt
