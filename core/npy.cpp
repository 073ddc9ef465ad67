// .npy reader/writer for float32 arrays. The header is a Python dict literal; we parse exactly the
// subset NumPy writes ('descr', 'fortran_order', 'shape') and reject anything else clearly.
#include "core/npy.h"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>

namespace brickrt {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;

// A parsed header value: a string, a bool, or a tuple of integers.
struct PyValue {
  enum Kind { kString, kBool, kTuple } kind = kString;
  std::string str;
  bool b = false;
  Shape tuple;
};

class HeaderParser {
 public:
  explicit HeaderParser(std::string_view s) : s_(s) {}

  Status Parse(std::map<std::string, PyValue>* out) {
    Ws();
    if (!Eat('{')) return Err("'{'");
    while (true) {
      Ws();
      if (Eat('}')) break;
      std::string key;
      BRICK_RETURN_IF_ERROR(Quoted(&key));
      Ws();
      if (!Eat(':')) return Err("':'");
      Ws();
      PyValue v;
      BRICK_RETURN_IF_ERROR(Value(&v));
      (*out)[key] = std::move(v);
      Ws();
      if (Eat(',')) continue;
      if (Eat('}')) break;
      return Err("',' or '}'");
    }
    Ws();
    if (pos_ != s_.size()) return Err("end of header");
    return Status::Ok();
  }

 private:
  void Ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n')) ++pos_;
  }
  bool Eat(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  Status Err(const std::string& expected) const {
    return Corrupt("malformed .npy header at offset " + std::to_string(pos_) + ": expected " + expected + " in \"" +
                   std::string(s_) + "\"");
  }
  Status Quoted(std::string* out) {
    if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"')) return Err("a quoted string");
    const char q = s_[pos_++];
    const size_t end = s_.find(q, pos_);
    if (end == std::string_view::npos) return Err("a closing quote");
    *out = std::string(s_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return Status::Ok();
  }
  Status Value(PyValue* v) {
    if (s_.substr(pos_, 4) == "True") {
      pos_ += 4, v->kind = PyValue::kBool, v->b = true;
      return Status::Ok();
    }
    if (s_.substr(pos_, 5) == "False") {
      pos_ += 5, v->kind = PyValue::kBool, v->b = false;
      return Status::Ok();
    }
    if (Eat('(')) {
      v->kind = PyValue::kTuple;
      while (true) {
        Ws();
        if (Eat(')')) return Status::Ok();
        int64_t d = 0;
        const size_t start = pos_;
        while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
          if (d > (int64_t{1} << 50)) return Err("a dimension below 2^50");
          d = d * 10 + (s_[pos_++] - '0');
        }
        if (pos_ == start) return Err("a dimension");
        if (pos_ < s_.size() && s_[pos_] == 'L') ++pos_;  // Python 2 longs
        v->tuple.push_back(d);
        Ws();
        if (Eat(',')) continue;
        if (Eat(')')) return Status::Ok();
        return Err("',' or ')'");
      }
    }
    v->kind = PyValue::kString;
    return Quoted(&v->str);
  }

  std::string_view s_;
  size_t pos_ = 0;
};

void PutLe16(uint16_t v, std::string* out) {
  out->push_back(static_cast<char>(v & 0xff));
  out->push_back(static_cast<char>(v >> 8));
}

}  // namespace

Status WriteNpyF32(const std::string& path, const float* data, const Shape& shape) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i) dict += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) dict += ",";
  dict += "), }";
  // magic(6) + version(2) + header length(2) + dict + padding + '\n', total a multiple of 64.
  const size_t unpadded = kMagicLen + 2 + 2 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict.push_back('\n');
  if (dict.size() > 0xffff)
    return InvalidArgument(path + ": .npy header too long for format 1.0 (rank " + std::to_string(shape.size()) + ")");
  std::string head(kMagic, kMagicLen);
  head.push_back('\x01');
  head.push_back('\x00');
  PutLe16(static_cast<uint16_t>(dict.size()), &head);
  head += dict;

  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return IoError(path + ": cannot open for writing: " + std::strerror(errno));
  f.write(head.data(), static_cast<std::streamsize>(head.size()));
  // The host is little-endian (x86-64/aarch64), so the floats are already '<f4'.
  static_assert(sizeof(float) == 4);
  f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(NumElements(shape) * 4));
  f.close();
  if (!f) return IoError(path + ": write failed: " + std::strerror(errno));
  return Status::Ok();
}

Result<std::pair<Shape, std::vector<float>>> ReadNpyF32(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return NotFound(path + ": cannot open .npy file: " + std::strerror(errno));
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (bytes.size() < 10 || bytes.compare(0, kMagicLen, kMagic, kMagicLen) != 0)
    return Corrupt(path + ": not a .npy file (expected the magic \"\\x93NUMPY\" and a 10-byte preamble)");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len =
        static_cast<unsigned char>(bytes[8]) | (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return Corrupt(path + ": truncated .npy preamble");
    for (int i = 3; i >= 0; --i) header_len = (header_len << 8) | static_cast<unsigned char>(bytes[8 + i]);
    header_start = 12;
  } else {
    return Unsupported(path + ": .npy format version " + std::to_string(major) + " (expected 1, 2 or 3)");
  }
  if (bytes.size() < header_start + header_len)
    return Corrupt(path + ": truncated .npy header: expected " + std::to_string(header_len) + " bytes, found " +
                   std::to_string(bytes.size() - header_start));

  std::map<std::string, PyValue> dict;
  BRICK_RETURN_IF_ERROR(
      HeaderParser(std::string_view(bytes).substr(header_start, header_len)).Parse(&dict).WithContext(path));
  const auto descr = dict.find("descr");
  const auto fortran = dict.find("fortran_order");
  const auto shape_it = dict.find("shape");
  if (descr == dict.end() || fortran == dict.end() || shape_it == dict.end() ||
      descr->second.kind != PyValue::kString || fortran->second.kind != PyValue::kBool ||
      shape_it->second.kind != PyValue::kTuple)
    return Corrupt(path + ": .npy header must have 'descr' (string), 'fortran_order' (bool) and 'shape' (tuple)");
  if (descr->second.str != "<f4")
    return Unsupported(path + ": .npy dtype: expected '<f4' (little-endian float32), found '" + descr->second.str +
                       "'");
  if (fortran->second.b) return Unsupported(path + ": .npy array is in Fortran order; expected C order");

  Shape shape = shape_it->second.tuple;
  int64_t elems = 1;  // guarded product: a hostile shape must not overflow the size check below
  for (int64_t d : shape) {
    if (d != 0 && elems > (int64_t{1} << 60) / d)
      return Corrupt(path + ": .npy shape " + ShapeToString(shape) + " is too large");
    elems *= d;
  }
  const size_t data_start = header_start + header_len;
  const size_t need = static_cast<size_t>(NumElements(shape)) * 4;
  const size_t have = bytes.size() - data_start;
  if (have != need)
    return Corrupt(path + ": .npy data of shape " + ShapeToString(shape) + ": expected " + std::to_string(need) +
                   " bytes, found " + std::to_string(have) + (have < need ? " (truncated)" : " (trailing bytes)"));
  std::vector<float> values(static_cast<size_t>(NumElements(shape)));
  if (need) std::memcpy(values.data(), bytes.data() + data_start, need);
  return std::make_pair(std::move(shape), std::move(values));
}

}  // namespace brickrt
