// Safetensors reader (header validation + pread of byte ranges) and atomic writer.
// Validation follows the reference implementation (huggingface/safetensors): the tensors must tile
// the data section exactly, so a truncated or padded file is caught at open, not at first read.
#include "registry/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <numeric>

#include "core/json.h"

namespace brickrt {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // the reference implementation's limit

struct DTypeRow {
  StDType t;
  const char* name;
  size_t size;
};
constexpr DTypeRow kDTypes[] = {
    {StDType::kBool, "BOOL", 1},      {StDType::kU8, "U8", 1},          {StDType::kI8, "I8", 1},
    {StDType::kF8E4M3, "F8_E4M3", 1}, {StDType::kF8E5M2, "F8_E5M2", 1}, {StDType::kI16, "I16", 2},
    {StDType::kU16, "U16", 2},        {StDType::kF16, "F16", 2},        {StDType::kBF16, "BF16", 2},
    {StDType::kI32, "I32", 4},        {StDType::kU32, "U32", 4},        {StDType::kF32, "F32", 4},
    {StDType::kF64, "F64", 8},        {StDType::kI64, "I64", 8},        {StDType::kU64, "U64", 8},
};

std::string ErrnoText() { return std::strerror(errno); }

Status WriteAll(int fd, const void* data, size_t n, const std::string& path) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, std::min<size_t>(n, size_t{1} << 30));
    if (w < 0) {
      if (errno == EINTR) continue;
      return IoError(path + ": write failed: " + ErrnoText());
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

// Opens a temporary file next to `path`; fill it with `fill(fd, tmp_path)`; then fdatasync + rename.
// The temporary file is removed on any failure.
template <typename Fill>
Status WriteAtomically(const std::string& path, Fill&& fill) {
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError(path + ": cannot create temporary file " + tmp + ": " + ErrnoText());
  Status st = fill(fd);
  // Sync before rename so a crash leaves either the old file or the complete new one.
  if (st.ok() && ::fdatasync(fd) != 0) st = IoError(path + ": fdatasync failed: " + ErrnoText());
  if (::close(fd) != 0 && st.ok()) st = IoError(path + ": close failed: " + ErrnoText());
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0)
    st = IoError(path + ": cannot rename " + tmp + " into place: " + ErrnoText());
  if (!st.ok()) ::unlink(tmp.c_str());
  return st;
}

// Reads a non-negative integer array of exactly `n` entries (n < 0: any length).
Status ReadUintArray(const JsonValue* v, int n, const std::string& where, std::vector<int64_t>* out) {
  if (v == nullptr || !v->is_array() || (n >= 0 && v->as_array().size() != static_cast<size_t>(n)))
    return Corrupt(where + ": expected an array of " + (n >= 0 ? std::to_string(n) + " " : "") +
                   "non-negative integers");
  for (const JsonValue& e : v->as_array()) {
    const auto i = e.as_int64();
    if (!i || *i < 0) return Corrupt(where + ": expected non-negative integers, found " + DumpJson(e));
    out->push_back(*i);
  }
  return Status::Ok();
}

Status ParseTensorInfo(const std::string& file, const std::string& name, const JsonValue& v, StTensorInfo* info) {
  const std::string where = file + ": tensor '" + name + "'";
  if (!v.is_object())
    return Corrupt(where + ": expected an object in the header, found " + JsonValue::TypeName(v.type()));
  const JsonValue* dt = v.Find("dtype");
  if (dt == nullptr || !dt->is_string()) return Corrupt(where + ": missing string field \"dtype\"");
  const auto st = ParseStDType(dt->as_string());
  if (!st) return Unsupported(where + ": unknown dtype '" + dt->as_string() + "'");
  info->name = name;
  info->dtype = *st;
  BRICK_RETURN_IF_ERROR(ReadUintArray(v.Find("shape"), -1, where + ": \"shape\"", &info->shape));
  std::vector<int64_t> offs;
  BRICK_RETURN_IF_ERROR(ReadUintArray(v.Find("data_offsets"), 2, where + ": \"data_offsets\"", &offs));
  if (offs[1] < offs[0])
    return Corrupt(where + ": data_offsets [" + std::to_string(offs[0]) + ", " + std::to_string(offs[1]) +
                   "] end before they begin");
  uint64_t numel = 1;
  for (int64_t d : info->shape) {
    if (d != 0 && numel > (uint64_t{1} << 56) / static_cast<uint64_t>(d))
      return Corrupt(where + ": shape " + ShapeToString(info->shape) + " is too large");
    numel *= static_cast<uint64_t>(d);
  }
  const uint64_t expect = numel * StDTypeSize(*st);
  const uint64_t found = static_cast<uint64_t>(offs[1] - offs[0]);
  if (expect != found)
    return Corrupt(where + ": data_offsets [" + std::to_string(offs[0]) + ", " + std::to_string(offs[1]) + "] span " +
                   std::to_string(found) + " bytes, expected " + std::to_string(expect) + " for " + StDTypeName(*st) +
                   " " + ShapeToString(info->shape));
  info->begin = static_cast<uint64_t>(offs[0]);  // relative to the data section until Open adjusts
  info->end = static_cast<uint64_t>(offs[1]);
  return Status::Ok();
}

}  // namespace

const char* StDTypeName(StDType t) {
  for (const auto& r : kDTypes)
    if (r.t == t) return r.name;
  return "?";
}
std::optional<StDType> ParseStDType(std::string_view s) {
  for (const auto& r : kDTypes)
    if (s == r.name) return r.t;
  return std::nullopt;
}
size_t StDTypeSize(StDType t) {
  for (const auto& r : kDTypes)
    if (r.t == t) return r.size;
  return 0;
}
std::optional<DType> ToDType(StDType t) {
  switch (t) {
    case StDType::kF32:
      return DType::kF32;
    case StDType::kF16:
      return DType::kF16;
    case StDType::kBF16:
      return DType::kBF16;
    default:
      return std::nullopt;
  }
}
StDType FromDType(DType t) {
  switch (t) {
    case DType::kF32:
      return StDType::kF32;
    case DType::kF16:
      return StDType::kF16;
    case DType::kBF16:
      return StDType::kBF16;
  }
  return StDType::kF32;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& o) noexcept { *this = std::move(o); }
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(o.path_);
    fd_ = std::exchange(o.fd_, -1);
    file_size_ = o.file_size_;
    tensors_ = std::move(o.tensors_);
    by_name_ = std::move(o.by_name_);
    metadata_ = std::move(o.metadata_);
  }
  return *this;
}
SafetensorsFile::~SafetensorsFile() {
  if (fd_ >= 0) ::close(fd_);
}

Result<SafetensorsFile> SafetensorsFile::Open(const std::string& path) {
  SafetensorsFile f;
  f.path_ = path;
  f.fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd_ < 0) {
    if (errno == ENOENT) return NotFound(path + ": no such safetensors file");
    return IoError(path + ": cannot open: " + ErrnoText());
  }
  struct stat sb {};
  if (::fstat(f.fd_, &sb) != 0) return IoError(path + ": fstat failed: " + ErrnoText());
  if (!S_ISREG(sb.st_mode)) return IoError(path + ": not a regular file");
  f.file_size_ = static_cast<uint64_t>(sb.st_size);
  if (f.file_size_ < 8)
    return Corrupt(path + ": file is " + std::to_string(f.file_size_) +
                   " bytes, expected at least 8 (the header length); truncated?");

  uint8_t len_bytes[8];
  StTensorInfo whole{"(header length)", StDType::kU8, {8}, 0, 8};
  BRICK_RETURN_IF_ERROR(f.ReadBytes(whole, 0, 8, len_bytes));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len_bytes[i];
  if (n > kMaxHeaderBytes)
    return Corrupt(path + ": header length " + std::to_string(n) + " exceeds the limit of " +
                   std::to_string(kMaxHeaderBytes) + " bytes; not a safetensors file?");
  if (n > f.file_size_ - 8)
    return Corrupt(path + ": header length " + std::to_string(n) + " is larger than the file allows (" +
                   std::to_string(f.file_size_ - 8) + " bytes after the length field); truncated?");

  std::string header(n, '\0');
  StTensorInfo hdr{"(header)", StDType::kU8, {static_cast<int64_t>(n)}, 8, 8 + n};
  BRICK_RETURN_IF_ERROR(f.ReadBytes(hdr, 0, n, header.data()));
  auto parsed = ParseJson(header);
  if (!parsed.ok()) return Corrupt(path + ": invalid JSON header: " + parsed.status().message());
  const JsonValue& root = parsed.value();
  if (!root.is_object())
    return Corrupt(path + ": header must be a JSON object, found " + JsonValue::TypeName(root.type()));

  const uint64_t data_start = 8 + n;
  const uint64_t data_len = f.file_size_ - data_start;
  for (const auto& [key, value] : root.as_object()) {
    if (key == "__metadata__") {
      if (!value.is_object()) return Corrupt(path + ": \"__metadata__\" must be an object of strings");
      for (const auto& [mk, mv] : value.as_object()) {
        if (!mv.is_string()) return Corrupt(path + ": \"__metadata__\" entry '" + mk + "' must be a string");
        f.metadata_.emplace_back(mk, mv.as_string());
      }
      continue;
    }
    StTensorInfo info;
    BRICK_RETURN_IF_ERROR(ParseTensorInfo(path, key, value, &info));
    if (info.end > data_len)
      return Corrupt(path + ": tensor '" + key + "': data_offsets [" + std::to_string(info.begin) + ", " +
                     std::to_string(info.end) + "] go past the end of the data section (" + std::to_string(data_len) +
                     " bytes; file size " + std::to_string(f.file_size_) + "); truncated?");
    f.tensors_.push_back(std::move(info));
  }

  // The tensors must tile [0, data_len) exactly: sorted by offset, each starts where the last ended.
  std::vector<size_t> order(f.tensors_.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const auto& x = f.tensors_[a];
    const auto& y = f.tensors_[b];
    return x.begin != y.begin ? x.begin < y.begin : x.end < y.end;
  });
  uint64_t next = 0;
  const StTensorInfo* prev = nullptr;
  for (size_t i : order) {
    const StTensorInfo& t = f.tensors_[i];
    if (t.begin < next)
      return Corrupt(path + ": tensor '" + t.name + "': data_offsets [" + std::to_string(t.begin) + ", " +
                     std::to_string(t.end) + "] overlap tensor '" + prev->name + "' [" + std::to_string(prev->begin) +
                     ", " + std::to_string(prev->end) + "]");
    if (t.begin > next)
      return Corrupt(path + ": tensor '" + t.name + "': data_offsets begin at " + std::to_string(t.begin) +
                     ", expected " + std::to_string(next) + " (a gap in the data section)");
    next = t.end;
    prev = &t;
  }
  if (next != data_len)
    return Corrupt(path + ": the tensors cover " + std::to_string(next) + " bytes of data, but the file holds " +
                   std::to_string(data_len) + " after the header (trailing bytes)");
  for (size_t i = 0; i < f.tensors_.size(); ++i) {
    f.tensors_[i].begin += data_start, f.tensors_[i].end += data_start;
    f.by_name_.emplace(f.tensors_[i].name, i);
  }
  return f;
}

const StTensorInfo* SafetensorsFile::Find(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

Status SafetensorsFile::ReadBytes(const StTensorInfo& info, uint64_t offset, size_t n, void* dst) const {
  if (offset > info.nbytes() || n > info.nbytes() - offset)
    return OutOfRange(path_ + ": tensor '" + info.name + "': read of " + std::to_string(n) + " bytes at offset " +
                      std::to_string(offset) + " is outside its " + std::to_string(info.nbytes()) + " bytes");
  auto* p = static_cast<uint8_t*>(dst);
  uint64_t pos = info.begin + offset;
  while (n > 0) {
    const ssize_t r = ::pread(fd_, p, std::min<size_t>(n, size_t{1} << 30), static_cast<off_t>(pos));
    if (r < 0) {
      if (errno == EINTR) continue;
      return IoError(path_ + ": tensor '" + info.name + "': read failed: " + ErrnoText());
    }
    if (r == 0)
      return Corrupt(path_ + ": tensor '" + info.name + "': unexpected end of file at byte " + std::to_string(pos) +
                     " (the file shrank after it was opened?)");
    p += r;
    pos += static_cast<uint64_t>(r);
    n -= static_cast<size_t>(r);
  }
  return Status::Ok();
}

Result<Tensor> SafetensorsFile::Read(std::string_view name) const {
  const StTensorInfo* info = Find(name);
  if (info == nullptr) return NotFound(path_ + ": no tensor '" + std::string(name) + "'");
  if (info->shape.empty()) {
    const auto dt = ToDType(info->dtype);
    if (!dt)
      return Unsupported(path_ + ": tensor '" + info->name + "': dtype " + StDTypeName(info->dtype) +
                         " is not one of F32, F16, BF16");
    Tensor t(*dt, {});
    BRICK_RETURN_IF_ERROR(ReadBytes(*info, 0, info->nbytes(), t.mutable_data()));
    return t;
  }
  return ReadRows(name, 0, info->shape[0]);
}

Result<Tensor> SafetensorsFile::ReadRows(std::string_view name, int64_t first, int64_t count) const {
  const StTensorInfo* info = Find(name);
  if (info == nullptr) return NotFound(path_ + ": no tensor '" + std::string(name) + "'");
  const auto dt = ToDType(info->dtype);
  if (!dt)
    return Unsupported(path_ + ": tensor '" + info->name + "': dtype " + StDTypeName(info->dtype) +
                       " is not one of F32, F16, BF16");
  if (info->shape.empty() || first < 0 || count < 0 || first + count > info->shape[0])
    return OutOfRange(path_ + ": tensor '" + info->name + "' " + ShapeToString(info->shape) + ": rows [" +
                      std::to_string(first) + ", " + std::to_string(first + count) + ") out of range");
  Shape shape = info->shape;
  shape[0] = count;
  Tensor t = Tensor::Uninitialized(*dt, shape);  // ReadBytes fills every byte
  const uint64_t row_bytes = info->shape[0] == 0 ? 0 : info->nbytes() / static_cast<uint64_t>(info->shape[0]);
  BRICK_RETURN_IF_ERROR(ReadBytes(*info, static_cast<uint64_t>(first) * row_bytes, t.nbytes(), t.mutable_data()));
  return t;
}

Status WriteSafetensors(const std::string& path, const std::vector<StWriteTensor>& tensors,
                        const std::vector<std::pair<std::string, std::string>>& metadata) {
  JsonValue header = JsonValue::MakeObject();
  if (!metadata.empty()) {
    JsonValue meta = JsonValue::MakeObject();
    for (const auto& [k, v] : metadata) meta.Set(k, JsonValue::String(v));
    header.Set("__metadata__", std::move(meta));
  }
  uint64_t offset = 0;
  for (const StWriteTensor& t : tensors) {
    if (t.name == "__metadata__" || header.Find(t.name) != nullptr)
      return InvalidArgument(path + ": tensor name '" + t.name + "' is reserved or used twice");
    uint64_t bytes = 0;
    for (const auto& part : t.parts) bytes += part.second;
    const uint64_t expect = static_cast<uint64_t>(NumElements(t.shape)) * StDTypeSize(t.dtype);
    if (bytes != expect)
      return InvalidArgument(path + ": tensor '" + t.name + "': " + std::to_string(bytes) + " bytes given, expected " +
                             std::to_string(expect) + " for " + StDTypeName(t.dtype) + " " + ShapeToString(t.shape));
    JsonValue shape = JsonValue::MakeArray();
    for (int64_t d : t.shape) shape.Append(JsonValue::Int(d));
    JsonValue offs = JsonValue::MakeArray(
        {JsonValue::Int(static_cast<int64_t>(offset)), JsonValue::Int(static_cast<int64_t>(offset + bytes))});
    header.Set(t.name, JsonValue::MakeObject({{"dtype", JsonValue::String(StDTypeName(t.dtype))},
                                              {"shape", std::move(shape)},
                                              {"data_offsets", std::move(offs)}}));
    offset += bytes;
  }
  std::string json = DumpJson(header);
  json.append((8 - json.size() % 8) % 8, ' ');  // data section starts 8-byte aligned
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(json.size()) >> (8 * i));

  return WriteAtomically(path, [&](int fd) -> Status {
    BRICK_RETURN_IF_ERROR(WriteAll(fd, len, 8, path));
    BRICK_RETURN_IF_ERROR(WriteAll(fd, json.data(), json.size(), path));
    for (const StWriteTensor& t : tensors)
      for (const auto& [ptr, n] : t.parts) BRICK_RETURN_IF_ERROR(WriteAll(fd, ptr, n, path));
    return Status::Ok();
  });
}

Status WriteFileAtomic(const std::string& path, std::string_view bytes) {
  return WriteAtomically(path, [&](int fd) { return WriteAll(fd, bytes.data(), bytes.size(), path); });
}

}  // namespace brickrt
