// A small, strict JSON parser into a value tree (objects keep key order) and a writer for value
// trees. Used for checkpoint headers (safetensors, config.json) and the CLI's --json output.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace brickrt {

class JsonValue {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  using Array = std::vector<JsonValue>;
  using Object = std::vector<std::pair<std::string, JsonValue>>;  // key order as written

  JsonValue() = default;  // null
  static JsonValue Bool(bool b) {
    return Make(Type::kBool, [&](JsonValue& v) { v.bool_ = b; });
  }
  static JsonValue Number(double d) {
    return Make(Type::kNumber, [&](JsonValue& v) { v.num_ = d; });
  }
  // An integer kept exactly (as_int64() returns it even beyond 2^53).
  static JsonValue Int(int64_t i) {
    return Make(Type::kNumber, [&](JsonValue& v) { v.num_ = static_cast<double>(i), v.int_ = i, v.has_int_ = true; });
  }
  static JsonValue String(std::string s) {
    return Make(Type::kString, [&](JsonValue& v) { v.str_ = std::move(s); });
  }
  static JsonValue MakeArray(Array items = {}) {
    return Make(Type::kArray, [&](JsonValue& v) { v.arr_ = std::move(items); });
  }
  static JsonValue MakeObject(Object members = {}) {
    return Make(Type::kObject, [&](JsonValue& v) { v.obj_ = std::move(members); });
  }

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  // REQUIRES: the matching type (BRICK_ASSERT otherwise).
  bool as_bool() const {
    BRICK_ASSERT(is_bool(), "JSON value is not a bool");
    return bool_;
  }
  double as_double() const {
    BRICK_ASSERT(is_number(), "JSON value is not a number");
    return num_;
  }
  const std::string& as_string() const {
    BRICK_ASSERT(is_string(), "JSON value is not a string");
    return str_;
  }
  const Array& as_array() const {
    BRICK_ASSERT(is_array(), "JSON value is not an array");
    return arr_;
  }
  const Object& as_object() const {
    BRICK_ASSERT(is_object(), "JSON value is not an object");
    return obj_;
  }
  Array& mutable_array() {
    BRICK_ASSERT(is_array(), "JSON value is not an array");
    return arr_;
  }
  Object& mutable_object() {
    BRICK_ASSERT(is_object(), "JSON value is not an object");
    return obj_;
  }

  // The exact integer when this is a number written without fraction/exponent that fits int64, or
  // a double with an integral value that int64 represents exactly; nullopt otherwise (also for
  // non-numbers), so "3.5" or 1e300 is never silently truncated.
  std::optional<int64_t> as_int64() const;

  // Object member lookup; nullptr when this is not an object or the key is absent.
  const JsonValue* Find(std::string_view key) const;
  // Object: replaces the member with this key or appends it. REQUIRES: is_object().
  void Set(std::string key, JsonValue value);
  // Array append. REQUIRES: is_array().
  void Append(JsonValue value);

  // Name of a type for error messages: "null", "bool", "number", "string", "array", "object".
  static const char* TypeName(Type t);

 private:
  template <typename Fill>
  static JsonValue Make(Type type, Fill&& fill) {
    JsonValue v;
    v.type_ = type;
    fill(v);
    return v;
  }

  Type type_ = Type::kNull;
  bool bool_ = false;
  bool has_int_ = false;
  double num_ = 0;
  int64_t int_ = 0;
  std::string str_;
  Array arr_;
  Object obj_;
};

struct JsonParseOptions {
  int max_depth = 128;  // nesting of arrays/objects; deeper input is rejected, not a stack overflow
};

// Parses one JSON document (RFC 8259; whitespace around it allowed, nothing else after it).
// Strict: no comments, trailing commas, NaN/Infinity, leading zeros, unescaped control characters,
// invalid UTF-8, lone surrogates or duplicate object keys. On failure returns InvalidArgument with
// "line L:C: expected <what>, found <what>" (1-based; C counts bytes).
Result<JsonValue> ParseJson(std::string_view text, const JsonParseOptions& options = {});

// Escapes s for use inside a JSON string literal (no surrounding quotes): ", \, control characters
// (as \n, \t, ... or \u00XX). Non-ASCII UTF-8 passes through unchanged.
std::string JsonEscape(std::string_view s);
// "\"" + JsonEscape(s) + "\"".
std::string JsonQuote(std::string_view s);

// Serialises a value tree. indent < 0: compact one line ({"a":1,"b":[1,2]}); indent >= 0: one
// member per line with that many spaces per level. Doubles use the shortest form that round-trips;
// NaN and infinities (which JSON lacks) are written as null.
std::string DumpJson(const JsonValue& value, int indent = -1);

}  // namespace brickrt
