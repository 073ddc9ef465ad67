// Tests for core/json: values, strictness, error positions, escapes and \u handling, nesting limit,
// and writer round trips.
#include "core/json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>

namespace brickrt {
namespace {

JsonValue MustParse(std::string_view s) {
  auto r = ParseJson(s);
  EXPECT_TRUE(r.ok()) << s << " -> " << r.status().ToString();
  return r.ok() ? r.value() : JsonValue();
}

std::string ErrorOf(std::string_view s) {
  auto r = ParseJson(s);
  EXPECT_FALSE(r.ok()) << "parsed but should not: " << s;
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  return r.status().message();
}

TEST(Json, ParsesScalarsAndKeepsKeyOrder) {
  JsonValue v = MustParse(R"( {"z": 1, "a": [true, false, null], "m": "s", "f": -2.5e2} )");
  ASSERT_TRUE(v.is_object());
  const auto& o = v.as_object();
  ASSERT_EQ(o.size(), 4u);
  EXPECT_EQ(o[0].first, "z");
  EXPECT_EQ(o[1].first, "a");
  EXPECT_EQ(o[2].first, "m");
  EXPECT_EQ(o[3].first, "f");
  EXPECT_EQ(v.Find("z")->as_int64(), 1);
  const auto& a = v.Find("a")->as_array();
  ASSERT_EQ(a.size(), 3u);
  EXPECT_TRUE(a[0].as_bool());
  EXPECT_FALSE(a[1].as_bool());
  EXPECT_TRUE(a[2].is_null());
  EXPECT_EQ(v.Find("m")->as_string(), "s");
  EXPECT_DOUBLE_EQ(v.Find("f")->as_double(), -250.0);
  EXPECT_EQ(v.Find("f")->as_int64(), -250);  // integral double
  EXPECT_EQ(v.Find("missing"), nullptr);
}

TEST(Json, Int64IsExactBeyondDoublePrecision) {
  JsonValue v = MustParse("[9007199254740993, -9223372036854775808, 9223372036854775807, 1.5, 1e300]");
  const auto& a = v.as_array();
  EXPECT_EQ(a[0].as_int64(), int64_t{9007199254740993});  // 2^53 + 1: a double would round it
  EXPECT_EQ(a[1].as_int64(), INT64_MIN);
  EXPECT_EQ(a[2].as_int64(), INT64_MAX);
  EXPECT_FALSE(a[3].as_int64().has_value());
  EXPECT_FALSE(a[4].as_int64().has_value());
  // Beyond int64: still a number, but no exact integer.
  JsonValue big = MustParse("18446744073709551616");
  EXPECT_TRUE(big.is_number());
  EXPECT_FALSE(big.as_int64().has_value());
}

TEST(Json, ErrorsCarryLineColumnAndExpectation) {
  EXPECT_EQ(ErrorOf("{\n  \"a\": 1,\n  \"b\" 2\n}"), "line 3:7: expected ':', found '2'");
  EXPECT_EQ(ErrorOf("[1, 2,]"), "line 1:7: expected a value, found ']'");
  EXPECT_EQ(ErrorOf("{\"a\": 1,}"), "line 1:9: expected a string key, found '}'");
  EXPECT_EQ(ErrorOf(""), "line 1:1: expected a value, found end of input");
  EXPECT_EQ(ErrorOf("[1 2]"), "line 1:4: expected ',' or ']', found '2'");
  EXPECT_EQ(ErrorOf("{} x"), "line 1:4: expected end of input, found 'x'");
  EXPECT_EQ(ErrorOf("\"abc"), "line 1:5: expected '\"' closing the string, found end of input");
}

TEST(Json, RejectsNonStandardInput) {
  for (const char* bad : {"01", "1.", ".5", "+1", "NaN", "Infinity", "-", "1e", "tru", "nul", "[1,]", "// c\n1", "'s'",
                          "{\"a\":1 \"b\":2}", "\"tab\there\"", "1e400", "{\"k\":1,\"k\":2}"}) {
    auto r = ParseJson(bad);
    EXPECT_FALSE(r.ok()) << "accepted: " << bad;
  }
  EXPECT_NE(ErrorOf("{\"k\":1,\"k\":2}").find("duplicate key \"k\""), std::string::npos);
}

TEST(Json, EscapesAndUnicode) {
  JsonValue v = MustParse(R"(["a\"b\\c\/d\b\f\n\r\t", "\u00e9\u4e2d", "\ud83d\ude00", "\u0000x"])");
  const auto& a = v.as_array();
  EXPECT_EQ(a[0].as_string(), "a\"b\\c/d\b\f\n\r\t");
  EXPECT_EQ(a[1].as_string(), "\xc3\xa9\xe4\xb8\xad");  // é 中
  EXPECT_EQ(a[2].as_string(), "\xf0\x9f\x98\x80");      // U+1F600 via a surrogate pair
  EXPECT_EQ(a[3].as_string(), std::string("\0x", 2));   // embedded NUL survives
  // Raw UTF-8 passes through; invalid UTF-8 and lone surrogates are rejected.
  EXPECT_EQ(MustParse("\"\xc3\xa9\"").as_string(), "\xc3\xa9");
  EXPECT_NE(ErrorOf("\"\xc3\"").find("valid UTF-8"), std::string::npos);
  EXPECT_NE(ErrorOf("\"\xc0\xaf\"").find("valid UTF-8"), std::string::npos);  // overlong '/'
  EXPECT_NE(ErrorOf(R"("\ud83d")").find("low surrogate"), std::string::npos);
  EXPECT_NE(ErrorOf(R"("\ude00")").find("lone low surrogate"), std::string::npos);
  EXPECT_NE(ErrorOf(R"("\ud83d\u0041")").find("low surrogate"), std::string::npos);
  EXPECT_NE(ErrorOf(R"("\x")").find("valid escape"), std::string::npos);
  EXPECT_NE(ErrorOf(R"("\u12G4")").find("hex digit"), std::string::npos);
}

TEST(Json, NestingLimit) {
  const std::string ok = std::string(128, '[') + std::string(128, ']');
  EXPECT_TRUE(ParseJson(ok).ok());
  const std::string deep = std::string(129, '[') + std::string(129, ']');
  const std::string msg = ErrorOf(deep);
  EXPECT_NE(msg.find("at most 128 levels of nesting"), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 1:129"), std::string::npos) << msg;
  // Hostile depth must fail cleanly, not overflow the stack.
  EXPECT_FALSE(ParseJson(std::string(1000000, '[')).ok());
  JsonParseOptions small;
  small.max_depth = 2;
  EXPECT_TRUE(ParseJson("[[1]]", small).ok());
  EXPECT_FALSE(ParseJson("[[[1]]]", small).ok());
  EXPECT_FALSE(ParseJson("{\"a\":{\"b\":{}}}", small).ok());
}

TEST(Json, EscapeAndQuote) {
  EXPECT_EQ(JsonEscape("plain"), "plain");
  EXPECT_EQ(JsonEscape("q\"b\\n\nt\t\x01"), "q\\\"b\\\\n\\nt\\t\\u0001");
  EXPECT_EQ(JsonQuote("\xc3\xa9"), "\"\xc3\xa9\"");
  // Whatever we escape parses back to the same bytes.
  std::string all;
  for (int c = 1; c < 128; ++c) all.push_back(static_cast<char>(c));
  EXPECT_EQ(MustParse(JsonQuote(all)).as_string(), all);
}

TEST(Json, DumpCompactPrettyAndRoundTrip) {
  JsonValue o = JsonValue::MakeObject();
  o.Set("b", JsonValue::Int(9007199254740993));
  o.Set("a", JsonValue::MakeArray({JsonValue::Number(0.1), JsonValue::Bool(true), JsonValue()}));
  o.Set("s", JsonValue::String("x\"y"));
  o.Set("e", JsonValue::MakeObject());
  o.Set("b", JsonValue::Int(7));  // replaces in place, keeps position
  EXPECT_EQ(DumpJson(o), R"({"b":7,"a":[0.1,true,null],"s":"x\"y","e":{}})");
  EXPECT_EQ(DumpJson(o, 2),
            "{\n  \"b\": 7,\n  \"a\": [\n    0.1,\n    true,\n    null\n  ],\n"
            "  \"s\": \"x\\\"y\",\n  \"e\": {}\n}");
  EXPECT_EQ(DumpJson(MustParse(DumpJson(o, 2))), DumpJson(o));
  EXPECT_EQ(DumpJson(JsonValue::Int(9007199254740993)), "9007199254740993");
  EXPECT_EQ(DumpJson(JsonValue::Number(1e-5)), "1e-05");
  EXPECT_EQ(DumpJson(JsonValue::Number(std::nan(""))), "null");
  EXPECT_EQ(MustParse(DumpJson(JsonValue::Number(0.1))).as_double(), 0.1);
}

}  // namespace
}  // namespace brickrt
