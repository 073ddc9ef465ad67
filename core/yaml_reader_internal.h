// Internal to core/*.cpp: reading YAML config files (submodel specs, node configs) into plain structs
// with errors "PATH:LINE:COL: KEY: what was expected". yaml-cpp stays inside core: no other module
// includes this header.
#pragma once

// GCC 12 reports -Wdangling-pointer false positives inside yaml-cpp's node/impl.h once its inline
// functions are instantiated from our code; the pragma covers the header's lines only.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
#include <yaml-cpp/yaml.h>
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic pop
#endif

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace brickrt::yaml_internal {

// One key/value pair of a mapping, with the dotted path of the key for messages.
struct Entry {
  YAML::Node key, value;
  std::string path;  // "experts.mlp.top_k"
};

std::string Join(std::initializer_list<const char*> names);

// "a list", "nothing", "'abc'": what the user wrote where something else was expected.
std::string Describe(const YAML::Node& n);

// The generic checks of a config reader; a parser for one file kind derives from it.
class YamlReader {
 public:
  explicit YamlReader(const std::string& source_path) : path_(source_path) {}

  std::string At(const YAML::Mark& m) const;
  Status Error(const YAML::Mark& m, const std::string& key_path, const std::string& msg) const;
  // An empty value (`key:`) has its mark on the next token; point at the key instead.
  static YAML::Mark ValueMark(const Entry& e) { return e.value.IsNull() ? e.key.Mark() : e.value.Mark(); }

  // Checks that `node` is a mapping whose keys are distinct scalars from `allowed` and returns its
  // entries in file order. `at` is where to point if it is not a mapping.
  Result<std::vector<Entry>> Map(const YAML::Node& node, const YAML::Mark& at, const std::string& path,
                                 std::initializer_list<const char*> allowed) const;
  Result<std::string> String(const Entry& e) const;  // non-empty
  Result<int64_t> Int(const Entry& e, int64_t min) const;
  Result<double> Double(const Entry& e) const;  // finite
  Result<bool> Bool(const Entry& e) const;
  // A non-empty list of non-empty strings (or one string, as a list of one).
  Result<std::vector<std::string>> Strings(const Entry& e) const;

  const std::string& source_path() const { return path_; }

 protected:
  std::string path_;
};

// Loads `text` and calls parse(root), turning yaml-cpp's exceptions into "PATH:LINE:COL: malformed
// YAML: ..." errors.
template <typename Fn>
auto ParseYaml(std::string_view text, const YamlReader& reader, Fn parse) -> decltype(parse(YAML::Node())) {
  try {
    const YAML::Node root = YAML::Load(std::string(text));
    return parse(root);
  } catch (const YAML::Exception& e) {
    // ParserException and DeepRecursion carry the position; e.msg is the message without it.
    return InvalidArgument(reader.At(e.mark) + ": malformed YAML: " + e.msg);
  } catch (const std::exception& e) {
    return InvalidArgument(reader.source_path() + ": could not read the file: " + e.what());
  }
}

}  // namespace brickrt::yaml_internal
