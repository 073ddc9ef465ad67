// Safetensors files: a validating reader that preads only the bytes asked for (checkpoints are many
// GB; nothing reads a whole file), and an atomic writer compatible with the reference implementation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"

namespace brickrt {

// Every dtype the safetensors format defines (so a header naming one of them is well-formed even
// when brickrt cannot compute with it). Only F32/F16/BF16 map to a core DType.
enum class StDType { kBool, kU8, kI8, kF8E4M3, kF8E5M2, kI16, kU16, kF16, kBF16, kI32, kU32, kF32, kF64, kI64, kU64 };

// "F32", "BF16", "I8", "BOOL", "F8_E4M3", ...
const char* StDTypeName(StDType t);
std::optional<StDType> ParseStDType(std::string_view s);
size_t StDTypeSize(StDType t);
// The core dtype for F32/F16/BF16; nullopt for the others.
std::optional<DType> ToDType(StDType t);
StDType FromDType(DType t);

// One tensor in a file's header. Offsets are absolute file offsets of its bytes.
struct StTensorInfo {
  std::string name;
  StDType dtype = StDType::kF32;
  Shape shape;
  uint64_t begin = 0;  // first byte in the file
  uint64_t end = 0;    // one past the last byte
  uint64_t nbytes() const { return end - begin; }
};

// An open, validated safetensors file. Move-only; owns its file descriptor. Reads are pread calls,
// so one SafetensorsFile may be read from several threads at once.
class SafetensorsFile {
 public:
  // Opens path and validates the header: 8-byte little-endian length N (8 <= ... <= 100 MB and
  // within the file), N bytes of JSON object (optionally padded with trailing spaces), each tensor
  // {"dtype","shape","data_offsets":[b,e]} with a known dtype, non-negative shape, e - b ==
  // numel * element size, and the tensors tiling the data section exactly (sorted by offset, no
  // overlap, no gap, ending at the end of the file); "__metadata__" must map strings to strings.
  // Errors: NotFound (no file), IoError (open/read failed), Corrupt (anything malformed; the
  // message names the file, the tensor and expected vs found).
  static Result<SafetensorsFile> Open(const std::string& path);

  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  uint64_t file_size() const { return file_size_; }
  // In header order.
  const std::vector<StTensorInfo>& tensors() const { return tensors_; }
  const std::vector<std::pair<std::string, std::string>>& metadata() const { return metadata_; }
  // nullptr when absent.
  const StTensorInfo* Find(std::string_view name) const;

  // Reads a whole tensor. Errors: NotFound (no such tensor), Unsupported (dtype other than
  // F32/F16/BF16), IoError/Corrupt (the read failed or came up short).
  Result<Tensor> Read(std::string_view name) const;
  // Reads rows [first, first + count) of dim 0 as a tensor of shape [count, dims 1...]; the bytes are
  // contiguous, so this is one pread (e.g. one expert of an [E, in, out] tensor). REQUIRES nothing:
  // a rank-0 tensor or a range beyond dim 0 returns OutOfRange naming the tensor.
  Result<Tensor> ReadRows(std::string_view name, int64_t first, int64_t count) const;
  // Copies n bytes starting `offset` bytes into tensor `info` to dst (any dtype).
  Status ReadBytes(const StTensorInfo& info, uint64_t offset, size_t n, void* dst) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  int fd_ = -1;
  uint64_t file_size_ = 0;
  std::vector<StTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> by_name_;  // index into tensors_ (Find is called per expert)
  std::vector<std::pair<std::string, std::string>> metadata_;
};

// One tensor to write. Its bytes are the concatenation of `parts` (so stacked expert tensors can be
// written from per-expert buffers without a copy); their total must equal numel * element size.
struct StWriteTensor {
  std::string name;
  StDType dtype = StDType::kF32;
  Shape shape;
  std::vector<std::pair<const void*, size_t>> parts;  // (pointer, bytes), not owned
};

// Writes tensors (in the given order, contiguous) to path via a temporary file in the same folder
// and rename, so a reader never sees half a file. The JSON header is padded with spaces to a
// multiple of 8 bytes, like the reference implementation. Errors: InvalidArgument (duplicate name,
// parts not matching the shape, unknown name "__metadata__"), IoError (naming the path).
Status WriteSafetensors(const std::string& path, const std::vector<StWriteTensor>& tensors,
                        const std::vector<std::pair<std::string, std::string>>& metadata = {});

// Writes `bytes` to path atomically (temporary file + rename); for small files such as config.json.
Status WriteFileAtomic(const std::string& path, std::string_view bytes);

}  // namespace brickrt
