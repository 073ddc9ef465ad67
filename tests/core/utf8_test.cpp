// UTF-8 validation and truncation (core/utf8.h).
#include "core/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace brickrt {
namespace {

TEST(Utf8, ValidAndInvalidSequences) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80"));  // é 日本 😀
  EXPECT_FALSE(IsValidUtf8("\x80"));              // a lone continuation byte
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // UTF-16 surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("no\xebuch"));
  EXPECT_EQ(Utf8SequenceLength("\xf0\x9f\x98\x80", 0), 4u);
  EXPECT_EQ(Utf8SequenceLength("a", 0), 0u);
}

TEST(Utf8, TruncationNeverSplitsACharacter) {
  const std::string s = "ab\xe6\x97\xa5" "c";  // a b 日 c
  EXPECT_EQ(TruncateUtf8(s, 10), s);
  EXPECT_EQ(TruncateUtf8(s, 6), s);
  EXPECT_EQ(TruncateUtf8(s, 5), "ab\xe6\x97\xa5");  // the character ends exactly at the limit
  EXPECT_EQ(TruncateUtf8(s, 4), "ab");
  EXPECT_EQ(TruncateUtf8(s, 3), "ab");
  EXPECT_EQ(TruncateUtf8(s, 2), "ab");
  EXPECT_EQ(TruncateUtf8(s, 0), "");
  for (size_t n = 0; n <= s.size(); ++n) EXPECT_TRUE(IsValidUtf8(TruncateUtf8(s, n))) << n;
}

}  // namespace
}  // namespace brickrt
