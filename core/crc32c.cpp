// CRC-32C: a portable slicing-by-8 table implementation, and the x86 SSE4.2 one chosen at run time.
// The hardware path runs three independent crc32 streams over adjacent blocks (the instruction has a
// 3-cycle latency and 1-cycle throughput) and joins them with precomputed "append N zero bytes"
// operators (the GF(2) matrix method of zlib's crc32_combine, as in Mark Adler's crc32c.c).
#include "core/crc32c.h"

#include <array>
#include <atomic>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define BRICK_CRC32C_SSE42 1
#endif

namespace brickrt {
namespace {

constexpr uint32_t kPoly = 0x82f63b78;  // 0x1EDC6F41 bit-reversed

struct Tables {
  std::array<std::array<uint32_t, 256>, 8> slice;  // slicing-by-8, portable path
};

Tables MakeTables() {
  Tables t{};
  for (uint32_t n = 0; n < 256; ++n) {
    uint32_t c = n;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t.slice[0][n] = c;
  }
  for (uint32_t n = 0; n < 256; ++n) {
    uint32_t c = t.slice[0][n];
    for (size_t k = 1; k < 8; ++k) {
      c = t.slice[0][c & 0xff] ^ (c >> 8);
      t.slice[k][n] = c;
    }
  }
  return t;
}

const Tables& GetTables() {
  static const Tables t = MakeTables();
  return t;
}

// crc here is the raw register (pre/post inversion done by the caller).
uint32_t Portable(uint32_t crc, const uint8_t* p, size_t n) {
  const auto& s = GetTables().slice;
  while (n >= 8) {
    // Byte-wise composition keeps this independent of the host's byte order.
    const uint32_t lo = crc ^ (uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24);
    crc = s[7][lo & 0xff] ^ s[6][(lo >> 8) & 0xff] ^ s[5][(lo >> 16) & 0xff] ^ s[4][lo >> 24] ^ s[3][p[4]] ^
          s[2][p[5]] ^ s[1][p[6]] ^ s[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = s[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return crc;
}

#ifdef BRICK_CRC32C_SSE42

// GF(2) 32x32 matrices as 32 column vectors: applying one to a CRC register appends zero bytes.
uint32_t MatTimes(const uint32_t* mat, uint32_t vec) {
  uint32_t sum = 0;
  for (; vec != 0; vec >>= 1, ++mat)
    if (vec & 1) sum ^= *mat;
  return sum;
}

void MatSquare(uint32_t* square, const uint32_t* mat) {
  for (int n = 0; n < 32; ++n) square[n] = MatTimes(mat, mat[n]);
}

// The operator appending len zero bytes. REQUIRES: len a power of two, >= 1.
void ZerosOp(uint32_t* even, size_t len) {
  uint32_t odd[32];
  odd[0] = kPoly;  // one zero bit
  uint32_t row = 1;
  for (int n = 1; n < 32; ++n, row <<= 1) odd[n] = row;
  MatSquare(even, odd);  // two zero bits
  MatSquare(odd, even);  // four zero bits
  do {
    MatSquare(even, odd);  // 1, 4, 16, ... bytes
    len >>= 1;
    if (len == 0) return;
    MatSquare(odd, even);  // 2, 8, 32, ... bytes
    len >>= 1;
  } while (len != 0);
  std::memcpy(even, odd, sizeof(odd));
}

// The operator as four byte-indexed tables, so applying it is four lookups.
struct Shift {
  uint32_t t[4][256];
  explicit Shift(size_t len) {
    uint32_t op[32];
    ZerosOp(op, len);
    for (uint32_t n = 0; n < 256; ++n)
      for (int k = 0; k < 4; ++k) t[k][n] = MatTimes(op, n << (8 * k));
  }
  uint32_t operator()(uint32_t crc) const {
    return t[0][crc & 0xff] ^ t[1][(crc >> 8) & 0xff] ^ t[2][(crc >> 16) & 0xff] ^ t[3][crc >> 24];
  }
};

// Block sizes of the 3-way interleave: long blocks amortize the join, short ones the tail.
constexpr size_t kLong = 8192;
constexpr size_t kShort = 256;

const Shift& LongShift() {
  static const Shift s(kLong);
  return s;
}
const Shift& ShortShift() {
  static const Shift s(kShort);
  return s;
}

inline uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Three streams over blocks [0, B), [B, 2B), [2B, 3B); crc0 then absorbs the other two.
template <size_t B>
__attribute__((target("sse4.2"))) inline uint64_t ThreeWay(uint64_t crc0, const uint8_t* p, const Shift& shift) {
  uint64_t crc1 = 0, crc2 = 0;
  for (const uint8_t* end = p + B; p < end; p += 8) {
    crc0 = _mm_crc32_u64(crc0, Load64(p));
    crc1 = _mm_crc32_u64(crc1, Load64(p + B));
    crc2 = _mm_crc32_u64(crc2, Load64(p + 2 * B));
  }
  crc0 = shift(static_cast<uint32_t>(crc0)) ^ crc1;
  return shift(static_cast<uint32_t>(crc0)) ^ crc2;
}

__attribute__((target("sse4.2"))) uint32_t Hardware(uint32_t crc, const uint8_t* p, size_t n) {
  uint64_t c = crc;
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
    --n;
  }
  const Shift& long_shift = LongShift();
  for (; n >= 3 * kLong; p += 3 * kLong, n -= 3 * kLong) c = ThreeWay<kLong>(c, p, long_shift);
  const Shift& short_shift = ShortShift();
  for (; n >= 3 * kShort; p += 3 * kShort, n -= 3 * kShort) c = ThreeWay<kShort>(c, p, short_shift);
  for (; n >= 8; p += 8, n -= 8) c = _mm_crc32_u64(c, Load64(p));
  while (n-- > 0) c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
  return static_cast<uint32_t>(c);
}

bool CpuHasSse42() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2) != 0;
}

#endif  // BRICK_CRC32C_SSE42

std::atomic<bool> g_force_portable{false};

bool UseHardware() {
#ifdef BRICK_CRC32C_SSE42
  static const bool has = CpuHasSse42();
  return has && !g_force_portable.load(std::memory_order_relaxed);
#else
  return false;
#endif
}

}  // namespace

uint32_t Crc32c(uint32_t crc, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
#ifdef BRICK_CRC32C_SSE42
  if (UseHardware()) return ~Hardware(crc, p, n);
#endif
  return ~Portable(crc, p, n);
}

bool Crc32cAccelerated() { return UseHardware(); }

void Crc32cForcePortableForTesting(bool force) { g_force_portable.store(force, std::memory_order_relaxed); }

}  // namespace brickrt
