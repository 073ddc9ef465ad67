// Tests for core/npy: round trips of several ranks, the exact header bytes NumPy expects, and clear
// errors for other dtypes, Fortran order and truncated files.
#include "core/npy.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace brickrt {
namespace {

class NpyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/npy_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  static std::string Slurp(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  }
  static void Spit(const std::string& p, const std::string& bytes) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  // A hand-made v1.0 file with the given header dict and data bytes.
  static std::string MakeNpy(const std::string& dict, const std::string& data) {
    std::string h = dict;
    while ((10 + h.size() + 1) % 64 != 0) h.push_back(' ');
    h.push_back('\n');
    std::string out("\x93NUMPY\x01\x00", 8);
    out.push_back(static_cast<char>(h.size() & 0xff));
    out.push_back(static_cast<char>(h.size() >> 8));
    return out + h + data;
  }
  std::string dir_;
};

TEST_F(NpyTest, RoundTripsRanks0To4) {
  for (const Shape& shape : {Shape{}, Shape{5}, Shape{2, 3}, Shape{2, 1, 3}, Shape{1, 2, 2, 2}, Shape{0, 4}}) {
    std::vector<float> v(static_cast<size_t>(NumElements(shape)));
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) * 0.5f - 1.25f;
    const std::string p = Path("a.npy");
    ASSERT_TRUE(WriteNpyF32(p, v.data(), shape).ok());
    auto r = ReadNpyF32(p);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->first, shape);
    EXPECT_EQ(r->second, v);
  }
}

TEST_F(NpyTest, HeaderBytesMatchNumPy) {
  const float v[6] = {1, 2, 3, 4, 5, 6};
  ASSERT_TRUE(WriteNpyF32(Path("h.npy"), v, {2, 3}).ok());
  const std::string b = Slurp(Path("h.npy"));
  // np.save(f, np.arange(1, 7, dtype='<f4').reshape(2, 3)) writes exactly this 128-byte prefix.
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  dict.append(128 - 10 - dict.size() - 1, ' ');  // data starts 64-byte aligned
  dict.push_back('\n');
  const std::string expect = std::string("\x93NUMPY\x01\x00\x76\x00", 10) + dict;  // header length 118
  ASSERT_EQ(b.size(), 128u + 24u);
  EXPECT_EQ(b.substr(0, 128), expect);
  float got[6];
  std::memcpy(got, b.data() + 128, 24);
  EXPECT_EQ(got[5], 6.0f);
  // Rank 1 needs the trailing comma of a Python 1-tuple.
  ASSERT_TRUE(WriteNpyF32(Path("r1.npy"), v, {6}).ok());
  EXPECT_NE(Slurp(Path("r1.npy")).find("'shape': (6,), }"), std::string::npos);
}

TEST_F(NpyTest, RejectsOtherDtypes) {
  Spit(Path("f8.npy"), MakeNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", std::string(8, '\0')));
  auto r = ReadNpyF32(Path("f8.npy"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(r.status().message().find("expected '<f4'"), std::string::npos);
  EXPECT_NE(r.status().message().find("found '<f8'"), std::string::npos);
  Spit(Path("be.npy"), MakeNpy("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", std::string(4, '\0')));
  EXPECT_EQ(ReadNpyF32(Path("be.npy")).status().code(), StatusCode::kUnsupported);
}

TEST_F(NpyTest, RejectsFortranOrder) {
  Spit(Path("f.npy"), MakeNpy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", std::string(16, '\0')));
  auto r = ReadNpyF32(Path("f.npy"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(r.status().message().find("Fortran"), std::string::npos);
}

TEST_F(NpyTest, RejectsTruncatedAndMalformed) {
  const float v[6] = {1, 2, 3, 4, 5, 6};
  ASSERT_TRUE(WriteNpyF32(Path("t.npy"), v, {2, 3}).ok());
  std::string b = Slurp(Path("t.npy"));
  Spit(Path("t.npy"), b.substr(0, b.size() - 4));
  auto r = ReadNpyF32(Path("t.npy"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(r.status().message().find("expected 24 bytes, found 20 (truncated)"), std::string::npos)
      << r.status().message();
  Spit(Path("h.npy"), b.substr(0, 40));  // header cut short
  EXPECT_EQ(ReadNpyF32(Path("h.npy")).status().code(), StatusCode::kCorrupt);
  Spit(Path("m.npy"), "PK\x03\x04 not npy at all");
  EXPECT_EQ(ReadNpyF32(Path("m.npy")).status().code(), StatusCode::kCorrupt);
  Spit(Path("d.npy"), MakeNpy("{'descr': '<f4', 'shape': (1,), }", std::string(4, '\0')));
  EXPECT_EQ(ReadNpyF32(Path("d.npy")).status().code(), StatusCode::kCorrupt);  // no fortran_order
  Spit(Path("s.npy"), MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", ""));
  EXPECT_EQ(ReadNpyF32(Path("s.npy")).status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(ReadNpyF32(Path("absent.npy")).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace brickrt
