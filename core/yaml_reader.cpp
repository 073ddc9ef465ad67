// YamlReader: the checks every config file reader shares.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include "core/yaml_reader_internal.h"

namespace brickrt::yaml_internal {

std::string Join(std::initializer_list<const char*> names) {
  std::string s;
  for (const char* n : names) s += (s.empty() ? "" : ", ") + std::string(n);
  return s;
}

std::string Describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      return "'" + n.Scalar() + "'";
    default:
      return "nothing";
  }
}

std::string YamlReader::At(const YAML::Mark& m) const {
  if (m.is_null()) return path_ + ":1:1";
  return path_ + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}
Status YamlReader::Error(const YAML::Mark& m, const std::string& key_path, const std::string& msg) const {
  return InvalidArgument(At(m) + ": " + key_path + ": " + msg);
}

Result<std::vector<Entry>> YamlReader::Map(const YAML::Node& node, const YAML::Mark& at, const std::string& path,
                                           std::initializer_list<const char*> allowed) const {
  if (!node.IsMap())
    return Error(at, path, "expected a mapping with keys " + Join(allowed) + ", got " + Describe(node));
  std::vector<Entry> out;
  std::set<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node& k = it->first;
    if (!k.IsScalar()) return Error(k.Mark(), path, "a key must be a plain name, got " + Describe(k));
    const std::string name = k.Scalar();
    const std::string child = path.empty() ? name : path + "." + name;
    if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return name == a; })) {
      return Error(k.Mark(), child,
                   "unknown key; allowed " + std::string(path.empty() ? "at the top level" : "in " + path) + ": " +
                       Join(allowed));
    }
    if (!seen.insert(name).second) return Error(k.Mark(), child, "duplicate key");
    out.push_back({k, it->second, child});
  }
  return out;
}

Result<std::string> YamlReader::String(const Entry& e) const {
  if (!e.value.IsScalar() || e.value.Scalar().empty()) {
    return Error(ValueMark(e), e.path, "expected a non-empty string, got " + Describe(e.value));
  }
  return e.value.Scalar();
}

Result<int64_t> YamlReader::Int(const Entry& e, int64_t min) const {
  const std::string want = "expected an integer >= " + std::to_string(min);
  if (!e.value.IsScalar()) return Error(ValueMark(e), e.path, want + ", got " + Describe(e.value));
  const std::string& s = e.value.Scalar();
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < min) {
    return Error(ValueMark(e), e.path, want + ", got " + Describe(e.value));
  }
  return v;
}

Result<double> YamlReader::Double(const Entry& e) const {
  double v = 0;
  if (e.value.IsScalar()) {
    const std::string& s = e.value.Scalar();
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && end == s.data() + s.size() && std::isfinite(v)) return v;
  }
  return Error(ValueMark(e), e.path, "expected a finite number, got " + Describe(e.value));
}

Result<bool> YamlReader::Bool(const Entry& e) const {
  if (e.value.IsScalar()) {
    const std::string& s = e.value.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  return Error(ValueMark(e), e.path, "expected true or false, got " + Describe(e.value));
}

Result<std::vector<std::string>> YamlReader::Strings(const Entry& e) const {
  std::vector<std::string> out;
  if (e.value.IsScalar() && !e.value.Scalar().empty()) {
    out.push_back(e.value.Scalar());
    return out;
  }
  if (e.value.IsSequence()) {
    for (const YAML::Node& item : e.value) {
      if (!item.IsScalar() || item.Scalar().empty()) {
        return Error(item.Mark(), e.path, "expected a non-empty string in the list, got " + Describe(item));
      }
      out.push_back(item.Scalar());
    }
    if (!out.empty()) return out;
  }
  return Error(ValueMark(e), e.path, "expected a non-empty list of strings, got " + Describe(e.value));
}

}  // namespace brickrt::yaml_internal
