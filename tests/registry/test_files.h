// Helpers for registry tests: a temporary directory per test, whole-file byte access, and rewriting
// a safetensors header in place (keeping the data) to build malformed checkpoints from good ones.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>

#include "core/json.h"

namespace brickrt::testing {

class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/brick_registry_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

inline std::string ReadBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

inline void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline uint64_t HeaderLength(const std::string& file_bytes) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(file_bytes[static_cast<size_t>(i)]);
  return n;
}

inline std::string WithHeaderLength(std::string file_bytes, uint64_t n) {
  for (int i = 0; i < 8; ++i) file_bytes[static_cast<size_t>(i)] = static_cast<char>(n >> (8 * i));
  return file_bytes;
}

// Parses the header of a safetensors file, lets `edit` change it, and writes the file back with the
// new header and the original data section.
inline void RewriteHeader(const std::string& path, const std::function<void(JsonValue&)>& edit) {
  const std::string bytes = ReadBytes(path);
  const uint64_t n = HeaderLength(bytes);
  auto header = ParseJson(std::string_view(bytes).substr(8, n));
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  JsonValue h = header.value();
  edit(h);
  const std::string json = DumpJson(h);
  WriteBytes(path, WithHeaderLength(std::string(8, '\0'), json.size()) + json + bytes.substr(8 + n));
}

// The mutable member `name` of a header object (test bug if absent).
inline JsonValue& Member(JsonValue& obj, const std::string& name) {
  for (auto& [k, v] : obj.mutable_object())
    if (k == name) return v;
  ADD_FAILURE() << "no member " << name;
  static JsonValue dummy;
  return dummy;
}

// Replaces the value of a top-level key in a JSON file (config.json).
inline void EditJsonFile(const std::string& path, const std::string& key, JsonValue value) {
  auto parsed = ParseJson(ReadBytes(path));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  JsonValue v = parsed.value();
  v.Set(key, std::move(value));
  WriteBytes(path, DumpJson(v, 2));
}

}  // namespace brickrt::testing
