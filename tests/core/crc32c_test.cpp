// CRC-32C against published check values (RFC 3720 §B.4 iSCSI vectors, the "123456789" check value),
// chunked against one-shot, and the SSE4.2 path against the portable one over many lengths and
// alignments (the 3-way interleave and its joins are where a hardware CRC goes wrong).
#include "core/crc32c.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace brickrt {
namespace {

uint32_t Crc(const std::vector<uint8_t>& v) { return Crc32c(0, v.data(), v.size()); }

// Runs every check on the run-time choice and on the forced portable path.
class Crc32cTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { Crc32cForcePortableForTesting(GetParam()); }
  void TearDown() override { Crc32cForcePortableForTesting(false); }
};

TEST_P(Crc32cTest, KnownVectors) {
  const std::string check = "123456789";
  EXPECT_EQ(Crc32c(0, check.data(), check.size()), 0xE3069283u);
  EXPECT_EQ(Crc32c(0, nullptr, 0), 0u);
  // RFC 3720 §B.4.
  EXPECT_EQ(Crc(std::vector<uint8_t>(32, 0x00)), 0x8A9136AAu);
  EXPECT_EQ(Crc(std::vector<uint8_t>(32, 0xff)), 0x62A8AB43u);
  std::vector<uint8_t> inc(32), dec(32);
  for (int i = 0; i < 32; ++i) {
    inc[static_cast<size_t>(i)] = static_cast<uint8_t>(i);
    dec[static_cast<size_t>(i)] = static_cast<uint8_t>(31 - i);
  }
  EXPECT_EQ(Crc(inc), 0x46DD794Eu);
  EXPECT_EQ(Crc(dec), 0x113FDB5Cu);
}

TEST_P(Crc32cTest, ChunkedEqualsOneShot) {
  std::vector<uint8_t> data(100000);
  std::mt19937 rng(1);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  const uint32_t whole = Crc(data);
  for (size_t chunk : {1u, 7u, 64u, 1000u, 24577u}) {
    uint32_t c = 0;
    for (size_t off = 0; off < data.size(); off += chunk) c = Crc32c(c, data.data() + off, std::min(chunk, data.size() - off));
    EXPECT_EQ(c, whole) << "chunk " << chunk;
  }
}

TEST(Crc32c, HardwareMatchesPortableOverLengthsAndAlignments) {
  if (!Crc32cAccelerated()) GTEST_SKIP() << "no SSE4.2 here: only the portable path runs";
  std::vector<uint8_t> data(3 * 8192 * 2 + 3 * 256 * 3 + 64);
  std::mt19937 rng(2);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  std::vector<size_t> lengths = {0, 1, 7, 8, 9, 255, 767, 768, 769, 3 * 8192 - 1, 3 * 8192, 3 * 8192 + 1,
                                 3 * 8192 + 3 * 256 + 5, data.size() - 7};
  for (size_t len = 1; len < 2000; len += 37) lengths.push_back(len);
  for (size_t align = 0; align < 8; ++align) {
    for (size_t len : lengths) {
      const uint8_t* p = data.data() + align;
      const uint32_t hw = Crc32c(0x12345678, p, len);
      Crc32cForcePortableForTesting(true);
      const uint32_t sw = Crc32c(0x12345678, p, len);
      Crc32cForcePortableForTesting(false);
      ASSERT_EQ(hw, sw) << "len " << len << " align " << align;
    }
  }
}

TEST_P(Crc32cTest, EverySingleBitFlipChangesTheValue) {
  std::vector<uint8_t> data(4096 + 13);
  std::mt19937 rng(3);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  const uint32_t ref = Crc(data);
  for (size_t i = 0; i < data.size(); i += 97) {
    for (int bit = 0; bit < 8; bit += 3) {
      data[i] ^= static_cast<uint8_t>(1 << bit);
      EXPECT_NE(Crc(data), ref) << "byte " << i << " bit " << bit;
      data[i] ^= static_cast<uint8_t>(1 << bit);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, Crc32cTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "Portable" : "RunTimeChoice"; });

}  // namespace
}  // namespace brickrt
