// ReadTokenFile: .ids / .tokens text files and 1-D integer .npy arrays -> one stream of token ids.
#include "core/token_data.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <filesystem>

#include "core/file.h"
#include "core/sha256.h"

namespace brickrt {
namespace {

constexpr int64_t kMaxId = INT32_MAX;

Status ParseText(const std::string& text, TokenData* out) {
  int32_t line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      line_start = ++i;
      continue;
    }
    if (c == ' ' || c == '\t' || c == ',' || c == '\r') {
      ++i;
      continue;
    }
    if (c == '#') {
      while (i < text.size() && text[i] != '\n') ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && std::strchr(" \t,\r\n#", text[j]) == nullptr) ++j;
    const std::string_view word(text.data() + i, j - i);
    const int32_t col = static_cast<int32_t>(i - line_start + 1);
    const std::string at = out->path + ":" + std::to_string(line) + ":" + std::to_string(col) + ": ";
    int64_t v = 0;
    const auto r = std::from_chars(word.data(), word.data() + word.size(), v);
    if (r.ec == std::errc::result_out_of_range || (r.ec == std::errc() && r.ptr == word.data() + word.size() &&
                                                   (v < 0 || v > kMaxId))) {
      return InvalidArgument(at + "token id " + std::string(word) + " is out of range (ids are 0-" +
                             std::to_string(kMaxId) + ")");
    }
    if (r.ec != std::errc() || r.ptr != word.data() + word.size()) {
      std::string shown(word.substr(0, 40));
      return InvalidArgument(at + "expected a token id (a non-negative integer), got '" + shown +
                             "'; a text file needs a tokenizer: give token ids as .ids, .tokens or .npy");
    }
    out->ids.push_back(static_cast<int32_t>(v));
    out->where.emplace_back(line, col);
    i = j;
  }
  return Status::Ok();
}

// The value of 'key' in a NumPy header dict, as written (a quoted string, True/False, or a tuple).
std::string HeaderValue(const std::string& h, const std::string& key) {
  const size_t k = h.find("'" + key + "'");
  if (k == std::string::npos) return "";
  size_t p = h.find(':', k);
  if (p == std::string::npos) return "";
  ++p;
  while (p < h.size() && h[p] == ' ') ++p;
  if (p >= h.size()) return "";
  size_t e = p;
  if (h[p] == '\'') {
    e = h.find('\'', p + 1);
    return e == std::string::npos ? "" : h.substr(p + 1, e - p - 1);
  }
  if (h[p] == '(') {
    e = h.find(')', p);
    return e == std::string::npos ? "" : h.substr(p, e - p + 1);
  }
  while (e < h.size() && h[e] != ',' && h[e] != '}') ++e;
  return h.substr(p, e - p);
}

Status ParseNpy(const std::string& bytes, TokenData* out) {
  auto bad = [&](const std::string& why) { return Corrupt(out->path + ": not a 1-D integer .npy array: " + why); };
  if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0) return bad("bad magic");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, header_at = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8;
    header_at = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return bad("truncated header");
    for (int i = 0; i < 4; ++i) header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    header_at = 12;
  } else {
    return bad("format version " + std::to_string(major) + " (1, 2 or 3 expected)");
  }
  if (header_len > bytes.size() - header_at) return bad("header longer than the file");
  const std::string h = bytes.substr(header_at, header_len);
  const std::string descr = HeaderValue(h, "descr"), order = HeaderValue(h, "fortran_order");
  const std::string shape = HeaderValue(h, "shape");
  size_t width = 0;
  if (descr == "<i4") width = 4;
  else if (descr == "<i8") width = 8;
  else if (descr == "<i2") width = 2;
  else if (descr == "|i1") width = 1;
  else return bad("dtype '" + descr + "' (int32 '<i4' or int64 '<i8' expected)");
  if (order != "False") return bad("fortran_order '" + order + "' (C order expected)");
  // "(N,)" is the only 1-D shape; "()" (a scalar) and "(a, b)" are refused.
  int64_t n = -1;
  if (shape.size() >= 4 && shape.front() == '(' && shape.substr(shape.size() - 2) == ",)") {
    const auto r = std::from_chars(shape.data() + 1, shape.data() + shape.size() - 2, n);
    if (r.ec != std::errc() || r.ptr != shape.data() + shape.size() - 2) n = -1;
  }
  if (n < 0) return bad("shape '" + shape + "' (a 1-D shape like (N,) expected)");
  const size_t data_at = header_at + header_len;
  const uint64_t have = bytes.size() - data_at, need = static_cast<uint64_t>(n) * width;
  if (static_cast<uint64_t>(n) > have / width || have != need) {
    return bad("shape (" + std::to_string(n) + ",) needs " + std::to_string(need) +
               " data bytes, the file has " + std::to_string(bytes.size() - data_at));
  }
  out->ids.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const char* p = bytes.data() + data_at + static_cast<size_t>(i) * width;
    int64_t v = 0;
    if (width == 8) std::memcpy(&v, p, 8);
    else if (width == 4) { int32_t x; std::memcpy(&x, p, 4); v = x; }
    else if (width == 2) { int16_t x; std::memcpy(&x, p, 2); v = x; }
    else v = static_cast<signed char>(*p);
    if (v < 0 || v > kMaxId) {
      return InvalidArgument(out->path + ": element " + std::to_string(i) + ": token id " + std::to_string(v) +
                             " is out of range (ids are 0-" + std::to_string(kMaxId) + ")");
    }
    out->ids.push_back(static_cast<int32_t>(v));
    out->where.emplace_back(0, static_cast<int32_t>(std::min<int64_t>(i, INT32_MAX)));
  }
  return Status::Ok();
}

}  // namespace

Result<TokenData> ReadTokenFile(const std::string& path, size_t max_bytes) {
  const std::string ext = std::filesystem::path(path).extension().string();
  const bool npy = ext == ".npy", text_ids = ext == ".ids" || ext == ".tokens";
  if (!npy && !text_ids) {
    return Unsupported(path + ": reading text needs a tokenizer, which this model does not carry yet; give token ids "
                              "as .ids or .tokens (whitespace- or comma-separated) or a 1-D int32/int64 .npy");
  }
  auto bytes = ReadFileCapped(path, max_bytes);
  if (!bytes.ok()) return bytes.status();
  TokenData out;
  out.path = path;
  out.digest = Sha256Hex(bytes->data(), bytes->size());
  BRICK_RETURN_IF_ERROR(npy ? ParseNpy(*bytes, &out) : ParseText(*bytes, &out));
  if (out.ids.empty()) return InvalidArgument(path + ": holds no token ids (the data is empty)");
  return out;
}

Status CheckVocabulary(const TokenData& data, int64_t vocab_size) {
  for (size_t i = 0; i < data.ids.size(); ++i) {
    if (data.ids[i] < vocab_size) continue;
    const auto [line, col] = i < data.where.size() ? data.where[i] : std::pair<int32_t, int32_t>{0, 0};
    const std::string at = line > 0 ? data.path + ":" + std::to_string(line) + ":" + std::to_string(col)
                                    : data.path + ": element " + std::to_string(col);
    return InvalidArgument(at + ": token id " + std::to_string(data.ids[i]) + " is outside the vocabulary of " +
                           std::to_string(vocab_size) + " ids (0-" + std::to_string(vocab_size - 1) + ")");
  }
  return Status::Ok();
}

}  // namespace brickrt
