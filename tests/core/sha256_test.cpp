// SHA-256 against the FIPS 180-4 / NIST example vectors, and incremental hashing across odd chunkings
// against one-shot hashing (block-boundary and padding edge cases are where implementations break).
#include "core/sha256.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace brickrt {
namespace {

std::string Hex(const std::string& s) { return Sha256Hex(s.data(), s.size()); }

TEST(Sha256, FipsVectors) {
  EXPECT_EQ(Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
                "mnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

TEST(Sha256, OneMillionA) {
  const std::string a(1000000, 'a');
  EXPECT_EQ(Hex(a), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // The same through 1000 updates of 1000 bytes (not a multiple of the 64-byte block).
  Sha256 h;
  for (int i = 0; i < 1000; ++i) h.Update(a.data(), 1000);
  const auto d = h.Finish();
  EXPECT_EQ(ToHex(d.data(), d.size()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, IncrementalEqualsOneShotAcrossChunkings) {
  // Lengths around the padding boundaries (55, 56, 63, 64, 119, 120) and a few blocks beyond.
  for (size_t len : {0u, 1u, 55u, 56u, 57u, 63u, 64u, 65u, 119u, 120u, 128u, 1000u, 4097u}) {
    std::string msg(len, '\0');
    for (size_t i = 0; i < len; ++i) msg[i] = static_cast<char>((i * 131 + 7) & 0xff);
    const std::string want = Hex(msg);
    for (size_t chunk : {1u, 3u, 7u, 63u, 64u, 65u, 200u}) {
      Sha256 h;
      for (size_t pos = 0; pos < len; pos += chunk) h.Update(msg.data() + pos, std::min(chunk, len - pos));
      const auto d = h.Finish();
      EXPECT_EQ(ToHex(d.data(), d.size()), want) << "len " << len << " chunk " << chunk;
    }
  }
}

// Runs the FIPS vectors and the chunking test again on the portable code, and checks that it agrees
// with the run-time choice (SHA-NI where the CPU has it) on pseudo-random data of many lengths.
class Sha256PortableTest : public ::testing::Test {
 protected:
  void SetUp() override { Sha256ForcePortableForTesting(true); }
  void TearDown() override { Sha256ForcePortableForTesting(false); }
};

TEST_F(Sha256PortableTest, FipsVectors) {
  ASSERT_FALSE(Sha256Accelerated());
  EXPECT_EQ(Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_F(Sha256PortableTest, AgreesWithTheRunTimeChoice) {
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  std::string data(70000, '\0');
  for (char& c : data) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<char>(x);
  }
  for (size_t len : {0u, 1u, 63u, 64u, 65u, 128u, 1000u, 4096u, 65537u, 70000u}) {
    const std::string portable = Sha256Hex(data.data(), len);
    Sha256ForcePortableForTesting(false);
    const std::string chosen = Sha256Hex(data.data(), len);
    Sha256ForcePortableForTesting(true);
    EXPECT_EQ(portable, chosen) << "len " << len;
  }
}

TEST(Sha256, ToHexIsLowercaseTwoDigitsPerByte) {
  const uint8_t bytes[] = {0x00, 0x0f, 0xa0, 0xff};
  EXPECT_EQ(ToHex(bytes, 4), "000fa0ff");
  EXPECT_EQ(ToHex(bytes, 0), "");
}

}  // namespace
}  // namespace brickrt
