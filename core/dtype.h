// Element types of stored and computed tensors, and exact scalar conversions between them.
// Activations are always F32; weights may be F32, F16 or BF16 (kernels widen them to F32).
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace brickrt {

enum class DType : uint8_t { kF32 = 0, kF16 = 1, kBF16 = 2 };

inline constexpr size_t DTypeSize(DType t) { return t == DType::kF32 ? 4 : 2; }
// Safetensors spelling: "F32", "F16", "BF16".
const char* DTypeName(DType t);
// Accepts the safetensors spelling and lower-case ("bf16"); nullopt for anything else.
std::optional<DType> ParseDType(std::string_view s);

inline float Bf16ToF32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even, like PyTorch; NaN stays NaN.
inline uint16_t F32ToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

float F16ToF32(uint16_t h);
// Round to nearest even; overflow becomes infinity.
uint16_t F32ToF16(float f);

// Widens n elements of type t at src to F32.
void ConvertToF32(const void* src, DType t, size_t n, float* dst);
// Narrows n F32 values to type t at dst.
void ConvertFromF32(const float* src, size_t n, DType t, void* dst);

}  // namespace brickrt
