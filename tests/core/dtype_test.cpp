// Tests for the scalar dtype conversions in core/dtype: exact F16/BF16 round trips, subnormals,
// infinities, NaN and round-to-nearest-even at the halfway points.
#include "core/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>

namespace brickrt {
namespace {

float Bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

TEST(DType, F16EveryValueRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = F16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(F16ToF32(F32ToF16(f)))) << std::hex << h;
      continue;
    }
    EXPECT_EQ(F32ToF16(f), h) << std::hex << h;
  }
}

TEST(DType, Bf16EveryValueRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = Bf16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(Bf16ToF32(F32ToBf16(f)))) << std::hex << h;
      continue;
    }
    EXPECT_EQ(F32ToBf16(f), h) << std::hex << h;
  }
}

TEST(DType, F16SpecialValuesAndSubnormals) {
  EXPECT_EQ(F16ToF32(0x0001), std::ldexp(1.0f, -24));     // smallest subnormal
  EXPECT_EQ(F16ToF32(0x03ff), std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(F16ToF32(0x0400), std::ldexp(1.0f, -14));     // smallest normal
  EXPECT_EQ(F16ToF32(0x7bff), 65504.0f);
  EXPECT_EQ(F16ToF32(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(F16ToF32(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(F16ToF32(0x7e00)));
  EXPECT_EQ(F16ToF32(0x8000), -0.0f);
  EXPECT_TRUE(std::signbit(F16ToF32(0x8000)));
  EXPECT_EQ(F32ToF16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(F32ToF16(1e6f), 0x7c00);                   // overflow -> inf
  EXPECT_EQ(F32ToF16(65519.0f), 0x7bff);               // below the rounding boundary stays finite
  EXPECT_EQ(F32ToF16(65520.0f), 0x7c00);               // halfway to 2^16 rounds (to even) up to inf
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -25)), 0x0000);  // exactly half the smallest subnormal: ties to even 0
  EXPECT_EQ(F32ToF16(std::ldexp(1.5f, -25)), 0x0001);  // above half rounds up
  EXPECT_EQ(F32ToF16(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 ulp: tie -> even (2)
  EXPECT_EQ(F32ToF16(-std::ldexp(1.0f, -24)), 0x8001);
  const uint16_t nan = F32ToF16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
}

TEST(DType, RoundToNearestEvenAtHalfway) {
  // F16: 1 + 2^-11 is halfway between 1 and 1 + 2^-10 -> even (1.0); 1 + 3·2^-11 -> 1 + 2^-9.
  EXPECT_EQ(F32ToF16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(F32ToF16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(F32ToF16(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3c01);  // just above half
  // BF16: halfway cases of the dropped 16 bits.
  EXPECT_EQ(F32ToBf16(Bits(0x3f808000)), 0x3f80);                   // tie, even stays
  EXPECT_EQ(F32ToBf16(Bits(0x3f818000)), 0x3f82);                   // tie, odd rounds up
  EXPECT_EQ(F32ToBf16(Bits(0x3f808001)), 0x3f81);                   // above half
  EXPECT_EQ(F32ToBf16(Bits(0x7f7fffff)), 0x7f80);                   // FLT_MAX rounds to inf
  EXPECT_EQ(F32ToBf16(Bits(0x00010000)), 0x0001);                   // subnormal kept
  EXPECT_TRUE(std::isnan(Bf16ToF32(F32ToBf16(Bits(0x7f800001)))));  // NaN with low payload stays NaN
  EXPECT_EQ(F32ToBf16(-std::numeric_limits<float>::infinity()), 0xff80);
}

TEST(DType, BulkConversionsMatchScalar) {
  const float src[6] = {0.0f, -1.5f, 3.14159f, 65504.0f, 1e-6f, -2e-8f};
  uint16_t h[6], b[6];
  float back[6];
  ConvertFromF32(src, 6, DType::kF16, h);
  ConvertFromF32(src, 6, DType::kBF16, b);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(h[i], F32ToF16(src[i]));
    EXPECT_EQ(b[i], F32ToBf16(src[i]));
  }
  ConvertToF32(h, DType::kF16, 6, back);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(back[i], F16ToF32(h[i]));
  ConvertToF32(b, DType::kBF16, 6, back);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(back[i], Bf16ToF32(b[i]));
  EXPECT_EQ(ParseDType("bfloat16"), DType::kBF16);
  EXPECT_EQ(ParseDType("F16"), DType::kF16);
  EXPECT_FALSE(ParseDType("F64").has_value());
  EXPECT_STREQ(DTypeName(DType::kBF16), "BF16");
}

}  // namespace
}  // namespace brickrt
