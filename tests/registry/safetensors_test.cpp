// Tests for registry/safetensors: write -> read round trips for every dtype, header layout, sub-range
// reads of one expert slice, and the header validation errors (one per kind of damage).
#include "registry/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <numeric>

#include "test_files.h"

namespace brickrt {
namespace {

using testing::ReadBytes;
using testing::RewriteHeader;
using testing::WriteBytes;

class SafetensorsTest : public testing::TempDirTest {
 protected:
  // Writes a file with an F32 [2, 3], a BF16 [4, 2, 3] "experts" tensor, an I8 [5] and a rank-0 I64.
  std::string WriteSample() {
    f32_.resize(6);
    std::iota(f32_.begin(), f32_.end(), 1.0f);
    experts_.resize(24);
    for (size_t i = 0; i < experts_.size(); ++i) experts_[i] = static_cast<uint16_t>(0x3f80 + i);
    i8_ = {-1, 2, -3, 4, -5};
    i64_ = -42;
    const std::string p = Path("s.safetensors");
    Status st =
        WriteSafetensors(p,
                         {{"a", StDType::kF32, {2, 3}, {{f32_.data(), 24}}},
                          {"experts", StDType::kBF16, {4, 2, 3}, {{experts_.data(), 24}, {experts_.data() + 12, 24}}},
                          {"i8", StDType::kI8, {5}, {{i8_.data(), 5}}},
                          {"scalar", StDType::kI64, {}, {{&i64_, 8}}}},
                         {{"format", "pt"}});
    EXPECT_TRUE(st.ok()) << st.ToString();
    return p;
  }
  std::vector<float> f32_;
  std::vector<uint16_t> experts_;
  std::vector<int8_t> i8_;
  int64_t i64_ = 0;
};

TEST_F(SafetensorsTest, RoundTripTensorsAndMetadata) {
  auto f = SafetensorsFile::Open(WriteSample());
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_EQ(f->tensors().size(), 4u);
  EXPECT_EQ(f->tensors()[0].name, "a");  // header order kept
  ASSERT_EQ(f->metadata().size(), 1u);
  EXPECT_EQ(f->metadata()[0], (std::pair<std::string, std::string>{"format", "pt"}));

  auto a = f->Read("a");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->dtype(), DType::kF32);
  EXPECT_EQ(a->shape(), (Shape{2, 3}));
  EXPECT_EQ(std::memcmp(a->data(), f32_.data(), 24), 0);
  auto e = f->Read("experts");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->dtype(), DType::kBF16);
  EXPECT_EQ(std::memcmp(e->data(), experts_.data(), 48), 0);

  const StTensorInfo* i8 = f->Find("i8");
  ASSERT_NE(i8, nullptr);
  EXPECT_EQ(i8->dtype, StDType::kI8);
  int8_t got[5];
  ASSERT_TRUE(f->ReadBytes(*i8, 0, 5, got).ok());
  EXPECT_EQ(std::memcmp(got, i8_.data(), 5), 0);
  int64_t scalar = 0;
  ASSERT_TRUE(f->ReadBytes(*f->Find("scalar"), 0, 8, &scalar).ok());
  EXPECT_EQ(scalar, -42);
  EXPECT_TRUE(f->Find("scalar")->shape.empty());
  // Integer dtypes are readable as bytes but are not Tensors.
  EXPECT_EQ(f->Read("i8").status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(f->Read("nope").status().code(), StatusCode::kNotFound);
}

TEST_F(SafetensorsTest, HeaderIsPaddedToEightBytesWithSpaces) {
  const std::string bytes = ReadBytes(WriteSample());
  const uint64_t n = testing::HeaderLength(bytes);
  EXPECT_EQ(n % 8, 0u);
  const std::string header = bytes.substr(8, n);
  const size_t close = header.find_last_of('}');
  EXPECT_EQ(header.find_first_not_of(' ', close + 1), std::string::npos);  // only spaces after '}'
  EXPECT_EQ(header.substr(0, 30), R"({"__metadata__":{"format":"pt")");
  EXPECT_NE(header.find(R"("experts":{"dtype":"BF16","shape":[4,2,3],"data_offsets":[24,72]})"), std::string::npos);
  EXPECT_EQ(bytes.size(), 8 + n + 24 + 48 + 5 + 8);
  // No temporary file is left behind.
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) files += entry.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST_F(SafetensorsTest, ReadRowsReadsOneExpertSlice) {
  auto f = SafetensorsFile::Open(WriteSample());
  ASSERT_TRUE(f.ok());
  for (int64_t e = 0; e < 4; ++e) {
    auto t = f->ReadRows("experts", e, 1);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_EQ(t->shape(), (Shape{1, 2, 3}));
    EXPECT_EQ(std::memcmp(t->data(), experts_.data() + e * 6, 12), 0) << "expert " << e;
  }
  auto mid = f->ReadRows("experts", 1, 2);
  ASSERT_TRUE(mid.ok());
  EXPECT_EQ(std::memcmp(mid->data(), experts_.data() + 6, 24), 0);
  EXPECT_EQ(f->ReadRows("experts", 3, 2).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(f->ReadRows("experts", -1, 1).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(f->ReadBytes(*f->Find("a"), 20, 8, nullptr).code(), StatusCode::kOutOfRange);
}

TEST_F(SafetensorsTest, EmptyHeaderAndZeroSizedTensors) {
  ASSERT_TRUE(WriteSafetensors(Path("e.safetensors"), {}).ok());
  auto e = SafetensorsFile::Open(Path("e.safetensors"));
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_TRUE(e->tensors().empty());
  float x = 1;
  ASSERT_TRUE(
      WriteSafetensors(Path("z.safetensors"), {{"z", StDType::kF32, {0, 4}, {}}, {"x", StDType::kF32, {1}, {{&x, 4}}}})
          .ok());
  auto z = SafetensorsFile::Open(Path("z.safetensors"));
  ASSERT_TRUE(z.ok()) << z.status().ToString();
  EXPECT_EQ(z->Read("z")->numel(), 0);
  EXPECT_EQ(z->Read("x")->data_as<float>()[0], 1.0f);
}

TEST_F(SafetensorsTest, WriterRejectsBadInput) {
  float x[2] = {1, 2};
  Status st = WriteSafetensors(Path("w.safetensors"), {{"x", StDType::kF32, {3}, {{x, 8}}}});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("8 bytes given, expected 12"), std::string::npos) << st.message();
  st = WriteSafetensors(Path("w.safetensors"),
                        {{"x", StDType::kF32, {1}, {{x, 4}}}, {"x", StDType::kF32, {1}, {{x, 4}}}});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  st = WriteSafetensors(Path("no/such/dir/w.safetensors"), {});
  EXPECT_EQ(st.code(), StatusCode::kIoError);
  EXPECT_NE(st.message().find("no/such/dir/w.safetensors"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(Path("w.safetensors")));
}

// --- header validation: each kind of damage gets its own clear error ---

Status OpenStatus(const std::string& p) { return SafetensorsFile::Open(p).status(); }

void ExpectCorrupt(const Status& st, const std::vector<std::string>& needles) {
  EXPECT_EQ(st.code(), StatusCode::kCorrupt) << st.ToString();
  for (const std::string& n : needles)
    EXPECT_NE(st.message().find(n), std::string::npos) << "'" << n << "' not in: " << st.message();
}

TEST_F(SafetensorsTest, RejectsFileShorterThanLengthField) {
  WriteBytes(Path("x.safetensors"), "abc");
  ExpectCorrupt(OpenStatus(Path("x.safetensors")), {"x.safetensors", "3 bytes", "at least 8"});
  EXPECT_EQ(OpenStatus(Path("missing.safetensors")).code(), StatusCode::kNotFound);
}

TEST_F(SafetensorsTest, RejectsHeaderLengthBeyondFile) {
  const std::string p = WriteSample();
  const std::string b = ReadBytes(p);
  WriteBytes(p, testing::WithHeaderLength(b, b.size()));
  ExpectCorrupt(OpenStatus(p), {"s.safetensors", "header length " + std::to_string(b.size()), "larger than the file"});
  WriteBytes(p, testing::WithHeaderLength(b, uint64_t{1} << 40));
  ExpectCorrupt(OpenStatus(p), {"exceeds the limit"});
}

TEST_F(SafetensorsTest, RejectsInvalidJsonHeader) {
  const std::string p = WriteSample();
  std::string b = ReadBytes(p);
  b[8 + 1] = '\'';  // {'__metadata__"...
  WriteBytes(p, b);
  ExpectCorrupt(OpenStatus(p), {"s.safetensors", "invalid JSON header", "line 1:2", "expected a string key"});
}

TEST_F(SafetensorsTest, RejectsOffsetsPastTheEnd) {
  const std::string p = WriteSample();
  WriteBytes(p, ReadBytes(p).substr(0, ReadBytes(p).size() - 3));  // truncated: the scalar ends past the end
  ExpectCorrupt(OpenStatus(p), {"tensor 'scalar'", "past the end of the data section", "truncated"});
}

TEST_F(SafetensorsTest, RejectsOverlappingOffsets) {
  const std::string p = WriteSample();
  RewriteHeader(p, [](JsonValue& h) {
    auto& offs = testing::Member(testing::Member(h, "i8"), "data_offsets").mutable_array();
    offs[0] = JsonValue::Int(*offs[0].as_int64() - 2);
    offs[1] = JsonValue::Int(*offs[1].as_int64() - 2);
  });
  ExpectCorrupt(OpenStatus(p), {"tensor 'i8'", "overlap tensor 'experts'"});
}

TEST_F(SafetensorsTest, RejectsGapsAndTrailingBytes) {
  const std::string p = WriteSample();
  WriteBytes(p, ReadBytes(p) + "xx");
  ExpectCorrupt(OpenStatus(p), {"trailing bytes"});
  WriteSample();
  RewriteHeader(p, [](JsonValue& h) {  // i8 shrinks to 4 bytes, leaving one unused byte before 'scalar'
    auto& i8 = testing::Member(h, "i8");
    i8.Set("shape", JsonValue::MakeArray({JsonValue::Int(4)}));
    auto& o8 = testing::Member(i8, "data_offsets").mutable_array();
    o8[1] = JsonValue::Int(*o8[1].as_int64() - 1);
  });
  ExpectCorrupt(OpenStatus(p), {"tensor 'scalar'", "a gap"});
}

TEST_F(SafetensorsTest, RejectsSizeThatDisagreesWithShape) {
  const std::string p = WriteSample();
  RewriteHeader(p, [](JsonValue& h) {
    testing::Member(h, "a").Set("shape", JsonValue::MakeArray({JsonValue::Int(2), JsonValue::Int(4)}));
  });
  ExpectCorrupt(OpenStatus(p), {"tensor 'a'", "span 24 bytes, expected 32", "F32 [2, 4]"});
}

TEST_F(SafetensorsTest, RejectsUnknownDtypeAndBadMetadata) {
  const std::string p = WriteSample();
  RewriteHeader(p, [](JsonValue& h) { testing::Member(h, "i8").Set("dtype", JsonValue::String("Q4")); });
  Status st = OpenStatus(p);
  EXPECT_EQ(st.code(), StatusCode::kUnsupported);
  EXPECT_NE(st.message().find("tensor 'i8': unknown dtype 'Q4'"), std::string::npos) << st.message();
  WriteSample();
  RewriteHeader(p, [](JsonValue& h) { testing::Member(h, "__metadata__").Set("n", JsonValue::Int(3)); });
  ExpectCorrupt(OpenStatus(p), {"__metadata__", "'n' must be a string"});
  WriteSample();
  RewriteHeader(p, [](JsonValue& h) { testing::Member(h, "a").Set("data_offsets", JsonValue::MakeArray()); });
  ExpectCorrupt(OpenStatus(p), {"tensor 'a'", "data_offsets"});
}

TEST(StDType, NamesSizesAndMapping) {
  EXPECT_EQ(ParseStDType("BF16"), StDType::kBF16);
  EXPECT_EQ(ParseStDType("F8_E4M3"), StDType::kF8E4M3);
  EXPECT_EQ(ParseStDType("BOOL"), StDType::kBool);
  EXPECT_FALSE(ParseStDType("bf16").has_value());  // safetensors spelling is upper case
  EXPECT_EQ(StDTypeSize(StDType::kI64), 8u);
  EXPECT_EQ(StDTypeSize(StDType::kBF16), 2u);
  EXPECT_STREQ(StDTypeName(StDType::kU8), "U8");
  EXPECT_EQ(ToDType(StDType::kF16), DType::kF16);
  EXPECT_FALSE(ToDType(StDType::kF64).has_value());
  EXPECT_EQ(FromDType(DType::kBF16), StDType::kBF16);
}

}  // namespace
}  // namespace brickrt
