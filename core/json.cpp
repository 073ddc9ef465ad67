// Strict recursive-descent JSON parser with line:col errors, and the value-tree writer.
// Recursion depth is bounded by JsonParseOptions::max_depth so hostile headers cannot blow the stack.
#include "core/json.h"

#include "core/utf8.h"

#include <new>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <unordered_set>

namespace brickrt {

std::optional<int64_t> JsonValue::as_int64() const {
  if (!is_number()) return std::nullopt;
  if (has_int_) return int_;
  // 2^63 is exactly representable; anything >= it does not fit.
  if (std::isfinite(num_) && std::trunc(num_) == num_ && num_ >= -9223372036854775808.0 && num_ < 9223372036854775808.0)
    return static_cast<int64_t>(num_);
  return std::nullopt;
}

const JsonValue* JsonValue::Find(std::string_view key) const {
  if (!is_object()) return nullptr;
  for (const auto& [k, v] : obj_)
    if (k == key) return &v;
  return nullptr;
}

void JsonValue::Set(std::string key, JsonValue value) {
  BRICK_ASSERT(is_object(), "JsonValue::Set on a non-object");
  for (auto& [k, v] : obj_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  obj_.emplace_back(std::move(key), std::move(value));
}

void JsonValue::Append(JsonValue value) {
  BRICK_ASSERT(is_array(), "JsonValue::Append on a non-array");
  arr_.push_back(std::move(value));
}

const char* JsonValue::TypeName(Type t) {
  switch (t) {
    case Type::kNull:
      return "null";
    case Type::kBool:
      return "bool";
    case Type::kNumber:
      return "number";
    case Type::kString:
      return "string";
    case Type::kArray:
      return "array";
    case Type::kObject:
      return "object";
  }
  return "?";
}

namespace {

class Parser {
 public:
  Parser(std::string_view text, const JsonParseOptions& opts) : s_(text), opts_(opts) {}

  Result<JsonValue> ParseDocument() {
    SkipWs();
    JsonValue v;
    BRICK_RETURN_IF_ERROR(ParseValue(0, &v));
    SkipWs();
    if (pos_ != s_.size()) return Error("end of input");
    return v;
  }

 private:
  // Describes what sits at pos_ for "found ..." in messages.
  std::string Found() const {
    if (pos_ >= s_.size()) return "end of input";
    const unsigned char c = static_cast<unsigned char>(s_[pos_]);
    char buf[32];
    if (c >= 0x20 && c < 0x7f) {
      std::snprintf(buf, sizeof buf, "'%c'", c);
    } else {
      std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
    }
    return buf;
  }

  Status ErrorAt(size_t at, const std::string& expected, const std::string& found) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return InvalidArgument("line " + std::to_string(line) + ":" + std::to_string(col) + ": expected " + expected +
                           ", found " + found);
  }
  Status Error(const std::string& expected) const { return ErrorAt(pos_, expected, Found()); }

  void SkipWs() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }

  bool Literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  Status ParseValue(int depth, JsonValue* out) {
    if (pos_ >= s_.size()) return Error("a value");
    switch (s_[pos_]) {
      case '{':
        return ParseObject(depth + 1, out);
      case '[':
        return ParseArray(depth + 1, out);
      case '"': {
        std::string str;
        BRICK_RETURN_IF_ERROR(ParseString(&str));
        *out = JsonValue::String(std::move(str));
        return Status::Ok();
      }
      case 't':
        if (Literal("true")) {
          *out = JsonValue::Bool(true);
          return Status::Ok();
        }
        break;
      case 'f':
        if (Literal("false")) {
          *out = JsonValue::Bool(false);
          return Status::Ok();
        }
        break;
      case 'n':
        if (Literal("null")) {
          *out = JsonValue();
          return Status::Ok();
        }
        break;
      default:
        if (s_[pos_] == '-' || (s_[pos_] >= '0' && s_[pos_] <= '9')) return ParseNumber(out);
    }
    return Error("a value");
  }

  Status CheckDepth(int depth) const {
    if (depth > opts_.max_depth)
      return ErrorAt(pos_, "at most " + std::to_string(opts_.max_depth) + " levels of nesting", "deeper nesting");
    return Status::Ok();
  }

  Status ParseObject(int depth, JsonValue* out) {
    BRICK_RETURN_IF_ERROR(CheckDepth(depth));
    ++pos_;  // '{'
    JsonValue obj = JsonValue::MakeObject();
    std::unordered_set<std::string> keys;  // duplicate check in O(1): headers can hold many thousand keys
    SkipWs();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      *out = std::move(obj);
      return Status::Ok();
    }
    while (true) {
      SkipWs();
      if (pos_ >= s_.size() || s_[pos_] != '"') return Error("a string key");
      const size_t key_pos = pos_;
      std::string key;
      BRICK_RETURN_IF_ERROR(ParseString(&key));
      if (!keys.insert(key).second)
        return ErrorAt(key_pos, "a unique key", "duplicate key \"" + JsonEscape(key) + "\"");
      SkipWs();
      if (pos_ >= s_.size() || s_[pos_] != ':') return Error("':'");
      ++pos_;
      SkipWs();
      JsonValue v;
      BRICK_RETURN_IF_ERROR(ParseValue(depth, &v));
      obj.mutable_object().emplace_back(std::move(key), std::move(v));
      SkipWs();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        *out = std::move(obj);
        return Status::Ok();
      }
      return Error("',' or '}'");
    }
  }

  Status ParseArray(int depth, JsonValue* out) {
    BRICK_RETURN_IF_ERROR(CheckDepth(depth));
    ++pos_;  // '['
    JsonValue arr = JsonValue::MakeArray();
    SkipWs();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      *out = std::move(arr);
      return Status::Ok();
    }
    while (true) {
      SkipWs();
      JsonValue v;
      BRICK_RETURN_IF_ERROR(ParseValue(depth, &v));
      arr.Append(std::move(v));
      SkipWs();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        *out = std::move(arr);
        return Status::Ok();
      }
      return Error("',' or ']'");
    }
  }

  static bool IsDigit(char c) { return c >= '0' && c <= '9'; }

  Status ParseNumber(JsonValue* out) {
    const size_t start = pos_;
    bool integral = true;
    if (s_[pos_] == '-') ++pos_;
    if (pos_ >= s_.size() || !IsDigit(s_[pos_])) return Error("a digit");
    if (s_[pos_] == '0') {
      ++pos_;
      if (pos_ < s_.size() && IsDigit(s_[pos_])) return Error("no leading zero ('.', 'e' or end of number)");
    } else {
      while (pos_ < s_.size() && IsDigit(s_[pos_])) ++pos_;
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      integral = false;
      ++pos_;
      if (pos_ >= s_.size() || !IsDigit(s_[pos_])) return Error("a digit after '.'");
      while (pos_ < s_.size() && IsDigit(s_[pos_])) ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      integral = false;
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (pos_ >= s_.size() || !IsDigit(s_[pos_])) return Error("a digit in the exponent");
      while (pos_ < s_.size() && IsDigit(s_[pos_])) ++pos_;
    }
    const char* first = s_.data() + start;
    const char* last = s_.data() + pos_;
    if (integral) {
      int64_t i = 0;
      auto r = std::from_chars(first, last, i);
      if (r.ec == std::errc() && r.ptr == last) {
        *out = JsonValue::Int(i);
        return Status::Ok();
      }
    }
    double d = 0;
    auto r = std::from_chars(first, last, d);
    if (r.ec == std::errc::result_out_of_range) {
      // Huge magnitudes overflow to infinity, which JSON cannot carry; tiny ones underflow to 0.
      bool tiny = false;
      for (const char* p = first; p < last; ++p)
        if (*p == 'e' || *p == 'E') tiny = p + 1 < last && p[1] == '-';
      if (!tiny) return ErrorAt(start, "a number within the range of a double", std::string(first, last));
      d = 0;
    } else if (r.ec != std::errc() || r.ptr != last) {
      return ErrorAt(start, "a number", std::string(first, last));
    }
    *out = JsonValue::Number(d);
    return Status::Ok();
  }

  int HexDigit(char c) const {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // Reads the 4 hex digits after "\u" at pos_.
  Status ParseHex4(uint32_t* out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      if (pos_ >= s_.size() || HexDigit(s_[pos_]) < 0) return Error("a hex digit in \\u escape");
      v = v * 16 + static_cast<uint32_t>(HexDigit(s_[pos_]));
      ++pos_;
    }
    *out = v;
    return Status::Ok();
  }

  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }

  // Length of the valid UTF-8 sequence at pos_ (rejecting overlongs and surrogates), 0 if invalid.
  size_t Utf8Length() const { return Utf8SequenceLength(s_, pos_); }

  Status ParseString(std::string* out) {
    ++pos_;  // opening quote
    while (true) {
      if (pos_ >= s_.size()) return Error("'\"' closing the string");
      const unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return Status::Ok();
      }
      if (c < 0x20) return Error("an escaped control character (\\n, \\t, \\u00XX)");
      if (c >= 0x80) {
        const size_t n = Utf8Length();
        if (n == 0) return Error("valid UTF-8");
        out->append(s_.substr(pos_, n));
        pos_ += n;
        continue;
      }
      if (c != '\\') {
        out->push_back(static_cast<char>(c));
        ++pos_;
        continue;
      }
      ++pos_;
      if (pos_ >= s_.size()) return Error("an escape character");
      const char e = s_[pos_++];
      switch (e) {
        case '"':
          out->push_back('"');
          break;
        case '\\':
          out->push_back('\\');
          break;
        case '/':
          out->push_back('/');
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          const size_t esc_pos = pos_ - 2;
          uint32_t cp = 0;
          BRICK_RETURN_IF_ERROR(ParseHex4(&cp));
          if (cp >= 0xdc00 && cp <= 0xdfff)
            return ErrorAt(esc_pos, "a high surrogate before a low one",
                           "lone low surrogate \\u" + std::string(s_.substr(esc_pos + 2, 4)));
          if (cp >= 0xd800 && cp <= 0xdbff) {
            if (s_.substr(pos_, 2) != "\\u") return Error("\\u low surrogate after high surrogate");
            pos_ += 2;
            uint32_t lo = 0;
            BRICK_RETURN_IF_ERROR(ParseHex4(&lo));
            if (lo < 0xdc00 || lo > 0xdfff)
              return ErrorAt(pos_ - 6, "a low surrogate (\\uDC00-\\uDFFF)",
                             "\\u" + std::string(s_.substr(pos_ - 4, 4)));
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          }
          AppendUtf8(cp, out);
          break;
        }
        default:
          --pos_;
          return Error("a valid escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u)");
      }
    }
  }

  std::string_view s_;
  JsonParseOptions opts_;
  size_t pos_ = 0;
};

void DumpTo(const JsonValue& v, int indent, int level, std::string* out) {
  const auto newline = [&](int lvl) {
    if (indent < 0) return;
    out->push_back('\n');
    out->append(static_cast<size_t>(indent * lvl), ' ');
  };
  switch (v.type()) {
    case JsonValue::Type::kNull:
      out->append("null");
      return;
    case JsonValue::Type::kBool:
      out->append(v.as_bool() ? "true" : "false");
      return;
    case JsonValue::Type::kNumber: {
      char buf[40];
      std::to_chars_result r;
      if (!std::isfinite(v.as_double())) {
        out->append("null");
        return;
      }
      // Integral values print as integers (exactly, even beyond 2^53 when built with Int()).
      if (auto i = v.as_int64()) {
        r = std::to_chars(buf, buf + sizeof buf, *i);
      } else {
        r = std::to_chars(buf, buf + sizeof buf, v.as_double());
      }
      out->append(buf, r.ptr);
      return;
    }
    case JsonValue::Type::kString:
      out->append(JsonQuote(v.as_string()));
      return;
    case JsonValue::Type::kArray: {
      const auto& a = v.as_array();
      out->push_back('[');
      for (size_t i = 0; i < a.size(); ++i) {
        if (i) out->push_back(',');
        newline(level + 1);
        DumpTo(a[i], indent, level + 1, out);
      }
      if (!a.empty()) newline(level);
      out->push_back(']');
      return;
    }
    case JsonValue::Type::kObject: {
      const auto& o = v.as_object();
      out->push_back('{');
      for (size_t i = 0; i < o.size(); ++i) {
        if (i) out->push_back(',');
        newline(level + 1);
        out->append(JsonQuote(o[i].first));
        out->append(indent < 0 ? ":" : ": ");
        DumpTo(o[i].second, indent, level + 1, out);
      }
      if (!o.empty()) newline(level);
      out->push_back('}');
      return;
    }
  }
}

}  // namespace

Result<JsonValue> ParseJson(std::string_view text, const JsonParseOptions& options) {
  // A value tree costs ~100 bytes a node, so a large hostile document ("[0,0,0,...]") can exhaust
  // memory: that is an error about the input, not a crash.
  try {
    return Parser(text, options).ParseDocument();
  } catch (const std::bad_alloc&) {
    return InvalidArgument("JSON document of " + std::to_string(text.size()) + " bytes is too large to parse");
  }
}

std::string JsonEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out.append(buf);
        } else {
          out.push_back(ch);
        }
    }
  }
  return out;
}

std::string JsonQuote(std::string_view s) { return "\"" + JsonEscape(s) + "\""; }

std::string DumpJson(const JsonValue& value, int indent) {
  std::string out;
  DumpTo(value, indent, 0, &out);
  return out;
}

}  // namespace brickrt
