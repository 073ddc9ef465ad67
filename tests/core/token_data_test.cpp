// ReadTokenFile / CheckVocabulary: .ids/.tokens text, .npy int32/int64, and each bad input named by
// file and position.
#include "core/token_data.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

namespace brickrt {
namespace {

class TokenDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("token_data_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  // A v1.0 .npy with the given descr and shape text, and raw data bytes.
  std::string Npy(const std::string& name, const std::string& descr, const std::string& shape, const std::string& data,
                  const std::string& order = "False") {
    std::string h = "{'descr': '" + descr + "', 'fortran_order': " + order + ", 'shape': " + shape + ", }";
    while ((10 + h.size() + 1) % 64 != 0) h += ' ';
    h += '\n';
    std::string f = "\x93NUMPY";
    f += '\x01';
    f += '\x00';
    f += static_cast<char>(h.size() & 0xff);
    f += static_cast<char>(h.size() >> 8);
    return Write(name, f + h + data);
  }
  std::filesystem::path dir_;
};

template <typename T>
std::string Raw(std::initializer_list<T> v) {
  std::string s(v.size() * sizeof(T), '\0');
  std::memcpy(s.data(), std::data(v), s.size());
  return s;
}

TEST_F(TokenDataTest, TextIdsAreConcatenatedAcrossLinesWithPositions) {
  auto d = ReadTokenFile(Write("a.ids", "1 2,3\n\n# a comment 99\n 4\t5  ,6\r\n7"));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->ids, (std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(d->where[3], (std::pair<int32_t, int32_t>{4, 2}));
  EXPECT_EQ(d->digest.size(), 64u);
  auto t = ReadTokenFile(Write("b.tokens", "10 20"));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->ids, (std::vector<int32_t>{10, 20}));
}

TEST_F(TokenDataTest, NpyInt32AndInt64) {
  auto a = ReadTokenFile(Npy("a.npy", "<i4", "(3,)", Raw<int32_t>({5, 0, 299})));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->ids, (std::vector<int32_t>{5, 0, 299}));
  auto b = ReadTokenFile(Npy("b.npy", "<i8", "(2,)", Raw<int64_t>({7, 8})));
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->ids, (std::vector<int32_t>{7, 8}));
}

TEST_F(TokenDataTest, MalformedNpyIsCorruptNamingTheFile) {
  const std::vector<std::string> bad = {
      Write("magic.npy", "NUMPY not really"),
      Npy("f4.npy", "<f4", "(2,)", Raw<float>({1, 2})),
      Npy("2d.npy", "<i4", "(1, 2)", Raw<int32_t>({1, 2})),
      Npy("short.npy", "<i4", "(3,)", Raw<int32_t>({1, 2})),
      Npy("long.npy", "<i4", "(1,)", Raw<int32_t>({1, 2})),
      Npy("fortran.npy", "<i4", "(2,)", Raw<int32_t>({1, 2}), "True"),
      Npy("big.npy", ">i4", "(1,)", Raw<int32_t>({1})),
  };
  for (const std::string& p : bad) {
    auto r = ReadTokenFile(p);
    ASSERT_FALSE(r.ok()) << p;
    EXPECT_EQ(r.status().code(), StatusCode::kCorrupt) << r.status().ToString();
    EXPECT_EQ(r.status().message().rfind(p + ": not a 1-D integer .npy array", 0), 0u) << r.status().message();
  }
  auto neg = ReadTokenFile(Npy("neg.npy", "<i8", "(2,)", Raw<int64_t>({1, -3})));
  ASSERT_FALSE(neg.ok());
  EXPECT_NE(neg.status().message().find("element 1: token id -3"), std::string::npos) << neg.status().message();
}

TEST_F(TokenDataTest, BadTextNamesLineAndColumn) {
  const std::string p = Write("bad.ids", "1 2\n3 x7 4\n");
  auto r = ReadTokenFile(p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message().rfind(p + ":2:3: expected a token id", 0), 0u) << r.status().message();
  auto neg = ReadTokenFile(Write("neg.ids", "1 -2"));
  ASSERT_FALSE(neg.ok());
  EXPECT_NE(neg.status().message().find(":1:3: token id -2 is out of range"), std::string::npos)
      << neg.status().message();
}

TEST_F(TokenDataTest, EmptyDataTextAndMissingFilesAreErrors) {
  for (const std::string& p : {Write("e.ids", "\n\n  # nothing\n"), Write("e2.tokens", ""),
                               Npy("e.npy", "<i4", "(0,)", "")}) {
    auto r = ReadTokenFile(p);
    ASSERT_FALSE(r.ok()) << p;
    EXPECT_EQ(r.status().message(), p + ": holds no token ids (the data is empty)");
  }
  const std::string txt = Write("prose.txt", "hello world");
  auto t = ReadTokenFile(txt);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(t.status().message().find("needs a tokenizer"), std::string::npos) << t.status().message();
  auto missing = ReadTokenFile((dir_ / "nope.ids").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST_F(TokenDataTest, VocabularyCheckNamesFileAndPosition) {
  const std::string p = Write("v.ids", "1 2\n3 300 4\n");
  auto d = ReadTokenFile(p);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(CheckVocabulary(*d, 301).ok());
  Status st = CheckVocabulary(*d, 300);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), p + ":2:3: token id 300 is outside the vocabulary of 300 ids (0-299)");
  const std::string q = Npy("v.npy", "<i4", "(3,)", Raw<int32_t>({1, 2, 500}));
  auto n = ReadTokenFile(q);
  ASSERT_TRUE(n.ok());
  st = CheckVocabulary(*n, 300);
  EXPECT_EQ(st.message(), q + ": element 2: token id 500 is outside the vocabulary of 300 ids (0-299)");
}

}  // namespace
}  // namespace brickrt
