// ParseSubmodelSpec: YAML text -> SubmodelSpec, with every error pointing at PATH:LINE:COL.
// yaml-cpp stays inside this file; its exceptions are caught here and become InvalidArgument.
#include "core/submodel_spec.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <exception>
#include <initializer_list>
#include <set>

#include "core/file.h"
#include "core/yaml_reader_internal.h"

namespace brickrt {

using yaml_internal::Describe;
using yaml_internal::Entry;
using yaml_internal::Join;
using yaml_internal::ParseYaml;
using yaml_internal::YamlReader;

bool IndexRanges::Contains(int64_t index) const {
  return std::any_of(ranges.begin(), ranges.end(),
                     [index](const auto& r) { return r.first <= index && index <= r.second; });
}

namespace {

constexpr size_t kMaxSpecBytes = 1 << 20;

class SpecParser : public YamlReader {
 public:
  using YamlReader::YamlReader;

  // "3" or "0-7" (inclusive) -> [first, last].
  Result<std::pair<int64_t, int64_t>> Range(const YAML::Node& n, const std::string& path) const {
    const std::string& s = n.Scalar();
    const char* b = s.data();
    const char* e = b + s.size();
    auto bad = [&](const std::string& why) { return Error(n.Mark(), path, why); };
    if (!s.empty() && s[0] == '-') return bad("negative index '" + s + "'; indices start at 0");
    int64_t lo = 0, hi = 0;
    auto r1 = std::from_chars(b, e, lo);
    if (r1.ec == std::errc() && r1.ptr == e) return std::make_pair(lo, lo);
    if (r1.ec == std::errc() && *r1.ptr == '-') {
      if (r1.ptr + 1 < e && r1.ptr[1] == '-') return bad("negative index in '" + s + "'; indices start at 0");
      auto r2 = std::from_chars(r1.ptr + 1, e, hi);
      if (r2.ec == std::errc() && r2.ptr == e) {
        if (hi < lo) {
          return bad("range '" + s + "' ends before it starts; write " + std::to_string(hi) + "-" + std::to_string(lo));
        }
        return std::make_pair(lo, hi);
      }
    }
    return bad("expected an index or an inclusive range like \"0-7\", got '" + s + "'");
  }

  // 3, "0-7", or a list of those.
  Result<IndexRanges> Ranges(const YAML::Node& n, const YAML::Mark& at, const std::string& path) const {
    IndexRanges out;
    if (n.IsScalar()) {
      BRICK_ASSIGN_OR_RETURN(auto r, Range(n, path));
      out.ranges.push_back(r);
      return out;
    }
    if (!n.IsSequence()) {
      return Error(at, path, "expected an index, a range like \"0-7\" or a list of those, got " + Describe(n));
    }
    for (const YAML::Node& item : n) {
      if (!item.IsScalar()) {
        return Error(item.Mark(), path, "expected an index or a range like \"0-7\" in the list, got " + Describe(item));
      }
      BRICK_ASSIGN_OR_RETURN(auto r, Range(item, path));
      out.ranges.push_back(r);
    }
    if (out.ranges.empty()) return Error(at, path, "an empty list selects no expert; list at least one index");
    return out;
  }

  // {0: [3, 5], "8-11": "0-3"}: layer ranges -> expert ranges; no layer under two keys.
  Result<std::vector<std::pair<IndexRanges, IndexRanges>>> LayerMap(const Entry& e) const {
    if (!e.value.IsMap()) {
      return Error(
          ValueMark(e), e.path,
          "expected a mapping from layers to experts, like {0: [3, 5], \"0-23\": \"0-7\"}, got " + Describe(e.value));
    }
    if (e.value.size() == 0) {
      return Error(ValueMark(e), e.path, "an empty mapping selects nothing; list layers, like {0: [3, 5]}");
    }
    std::vector<std::pair<IndexRanges, IndexRanges>> out;
    std::vector<std::string> key_text;
    for (auto it = e.value.begin(); it != e.value.end(); ++it) {
      const YAML::Node& k = it->first;
      if (!k.IsScalar()) return Error(k.Mark(), e.path, "a layer key must be an index or a range like \"0-23\"");
      BRICK_ASSIGN_OR_RETURN(auto layers, Range(k, e.path));
      for (size_t i = 0; i < out.size(); ++i) {
        const auto& prev = out[i].first.ranges[0];
        if (layers.first <= prev.second && prev.first <= layers.second) {
          const int64_t layer = std::max(layers.first, prev.first);
          return Error(k.Mark(), e.path,
                       "duplicate layer key: layer " + std::to_string(layer) + " is listed under both '" + key_text[i] +
                           "' and '" + k.Scalar() + "'");
        }
      }
      const std::string child = e.path + "." + k.Scalar();
      BRICK_ASSIGN_OR_RETURN(auto experts,
                             Ranges(it->second, it->second.IsNull() ? k.Mark() : it->second.Mark(), child));
      IndexRanges layer_ranges;
      layer_ranges.ranges.push_back(layers);
      out.emplace_back(std::move(layer_ranges), std::move(experts));
      key_text.push_back(k.Scalar());
    }
    return out;
  }

  // keep: {profile: NAME, threshold: T}, both required, T in [0, 1].
  Status ProfileKeep(const Entry& e, ExpertSelection* sel) const {
    BRICK_ASSIGN_OR_RETURN(auto entries, Map(e.value, ValueMark(e), e.path, {"profile", "threshold"}));
    bool has_profile = false, has_threshold = false;
    for (const Entry& x : entries) {
      if (x.key.Scalar() == "profile") {
        BRICK_ASSIGN_OR_RETURN(sel->profile, String(x));
        has_profile = true;
      } else {
        BRICK_ASSIGN_OR_RETURN(sel->threshold, Double(x));
        if (sel->threshold < 0.0 || sel->threshold > 1.0) {
          return Error(ValueMark(x), x.path,
                       "expected a threshold in [0, 1] (a share of the layer's busiest expert), got " + Describe(x.value));
        }
        has_threshold = true;
      }
    }
    if (!has_profile) return Error(ValueMark(e), e.path + ".profile", "missing; name a stored profile (brick profile --save)");
    if (!has_threshold) return Error(ValueMark(e), e.path + ".threshold", "missing; give a threshold in [0, 1]");
    sel->mode = ExpertSelection::Mode::kProfile;
    return Status::Ok();
  }

  Result<ExpertSelection> Experts(const Entry& kind) const {
    ExpertSelection sel;
    BRICK_ASSIGN_OR_RETURN(auto entries, Map(kind.value, ValueMark(kind), kind.path, {"top_k", "drop", "keep"}));
    const Entry* chosen = nullptr;
    for (const Entry& e : entries) {
      const std::string name = e.key.Scalar();
      if (name == "top_k") {
        BRICK_ASSIGN_OR_RETURN(int64_t k, Int(e, 1));
        if (k > 1'000'000) return Error(ValueMark(e), e.path, "expected an integer >= 1, got " + Describe(e.value));
        sel.top_k = static_cast<int>(k);
        continue;
      }
      if (chosen != nullptr) {
        return Error(e.key.Mark(), e.path,
                     "'drop' and 'keep' cannot both be given for " + kind.path + "; use one of them");
      }
      chosen = &e;
      if (name == "keep" && e.value.IsMap() && (e.value["profile"] || e.value["threshold"])) {
        BRICK_RETURN_IF_ERROR(ProfileKeep(e, &sel));
        continue;
      }
      sel.mode = name == "drop" ? ExpertSelection::Mode::kDrop : ExpertSelection::Mode::kKeep;
      BRICK_ASSIGN_OR_RETURN(sel.layers, LayerMap(e));
    }
    return sel;
  }

  Result<PluginSpec> Plugin(const YAML::Node& n, const std::string& path) const {
    BRICK_ASSIGN_OR_RETURN(auto entries, Map(n, n.Mark(), path, {"lora", "scale", "merge"}));
    PluginSpec p;
    bool has_lora = false;
    for (const Entry& e : entries) {
      const std::string name = e.key.Scalar();
      if (name == "lora") {
        BRICK_ASSIGN_OR_RETURN(p.lora_ref, String(e));
        has_lora = true;
      } else if (name == "scale") {
        BRICK_ASSIGN_OR_RETURN(p.scale, Double(e));
      } else {
        BRICK_ASSIGN_OR_RETURN(p.merge, Bool(e));
      }
    }
    if (!has_lora) return Error(n.Mark(), path + ".lora", "missing; a plugin needs `lora: NAME[@VERSION]`");
    return p;
  }

  Result<PlacementSpec> Placement(const Entry& pe) const {
    PlacementSpec out;
    BRICK_ASSIGN_OR_RETURN(auto entries, Map(pe.value, ValueMark(pe), pe.path, {"device", "nodes", "rules", "on_failure"}));
    const Entry* rules = nullptr;
    for (const Entry& e : entries) {
      const std::string name = e.key.Scalar();
      if (name == "nodes") {
        BRICK_RETURN_IF_ERROR(Nodes(e, &out.nodes));
      } else if (name == "rules") {
        rules = &e;  // checked after all nodes are known, wherever `nodes` appears
      } else if (name == "device") {
        BRICK_ASSIGN_OR_RETURN(std::string device, String(e));
        const std::optional<DeviceRef> d = ParseDeviceRef(device);
        if (!d) return Error(ValueMark(e), e.path, "expected cpu or cuda:N (a GPU of this machine), got " + Describe(e.value));
        out.device = *d;
      } else {
        BRICK_ASSIGN_OR_RETURN(out.on_failure, String(e));
        if (out.on_failure != "fail" && out.on_failure != "local-fallback" && out.on_failure != "skip-expert") {
          return Error(ValueMark(e), e.path, "expected fail, local-fallback or skip-expert, got " + Describe(e.value));
        }
      }
    }
    if (rules != nullptr) BRICK_RETURN_IF_ERROR(Rules(*rules, out.nodes, &out.rules));
    return out;
  }

  Status Nodes(const Entry& e, std::vector<NodeSpec>* nodes) const {
    if (!e.value.IsMap()) {
      return Error(ValueMark(e), e.path,
                   "expected a mapping NAME: {endpoint: ..., timeout_ms: ...}, got " + Describe(e.value));
    }
    std::set<std::string> seen;
    for (auto it = e.value.begin(); it != e.value.end(); ++it) {
      const YAML::Node& k = it->first;
      if (!k.IsScalar() || k.Scalar().empty()) return Error(k.Mark(), e.path, "a node name must be a plain name");
      NodeSpec node;
      node.name = k.Scalar();
      const std::string path = e.path + "." + node.name;
      if (node.name == "local") return Error(k.Mark(), path, "'local' is reserved for this process; rename the node");
      if (LooksLikeDevice(node.name))
        return Error(k.Mark(), path, "'" + node.name + "' names a device of this machine; rename the node");
      if (!seen.insert(node.name).second) return Error(k.Mark(), path, "duplicate node name");
      const YAML::Mark at = it->second.IsNull() ? k.Mark() : it->second.Mark();
      BRICK_ASSIGN_OR_RETURN(auto fields, Map(it->second, at, path, {"endpoint", "timeout_ms", "server_key", "client_key"}));
      bool has_endpoint = false;
      for (const Entry& f : fields) {
        if (f.key.Scalar() == "endpoint") {
          BRICK_ASSIGN_OR_RETURN(node.endpoint, String(f));
          if (node.endpoint.find("://") == std::string::npos) {
            return Error(ValueMark(f), f.path,
                         "expected an endpoint like \"tcp://HOST:PORT\", got " + Describe(f.value));
          }
          has_endpoint = true;
        } else if (f.key.Scalar() == "server_key" || f.key.Scalar() == "client_key") {
          BRICK_ASSIGN_OR_RETURN(std::string file, String(f));
          (f.key.Scalar() == "server_key" ? node.server_key : node.client_key) = std::move(file);
        } else {
          BRICK_ASSIGN_OR_RETURN(int64_t ms, Int(f, 1));
          if (ms > 3'600'000)
            return Error(ValueMark(f), f.path, "expected at most 3600000 (one hour), got " + Describe(f.value));
          node.timeout_ms = static_cast<int>(ms);
        }
      }
      if (!has_endpoint) return Error(at, path + ".endpoint", "missing; a node needs `endpoint: \"tcp://HOST:PORT\"`");
      if (node.server_key.empty() != node.client_key.empty()) {
        return Error(at, path + (node.server_key.empty() ? ".server_key" : ".client_key"),
                     "missing; CURVE needs both server_key (the node's NAME.pub) and client_key (this "
                     "coordinator's NAME.key)");
      }
      nodes->push_back(std::move(node));
    }
    return Status::Ok();
  }

  Status Rules(const Entry& e, const std::vector<NodeSpec>& nodes, std::vector<PlacementRule>* rules) const {
    if (!e.value.IsSequence()) {
      return Error(ValueMark(e), e.path, "expected a list of {match: GLOB, on: NODE}, got " + Describe(e.value));
    }
    size_t i = 0;
    for (const YAML::Node& item : e.value) {
      const std::string path = e.path + "[" + std::to_string(i++) + "]";
      BRICK_ASSIGN_OR_RETURN(auto fields, Map(item, item.Mark(), path, {"match", "on"}));
      PlacementRule rule;
      for (const Entry& f : fields) {
        BRICK_ASSIGN_OR_RETURN(std::string s, String(f));
        if (f.key.Scalar() == "match") {
          rule.match = std::move(s);
          continue;
        }
        const bool known = s == "local" || ParseDeviceRef(s).has_value() ||
                           std::any_of(nodes.begin(), nodes.end(), [&](const NodeSpec& n) { return n.name == s; });
        if (!known) {
          std::string names = "local, cpu, cuda:N";
          for (const NodeSpec& n : nodes) names += ", " + n.name;
          return Error(ValueMark(f), f.path, "unknown node '" + s + "'; expected one of: " + names);
        }
        rule.on = std::move(s);
      }
      if (rule.match.empty()) return Error(item.Mark(), path + ".match", "missing; a rule needs `match: GLOB`");
      if (rule.on.empty()) return Error(item.Mark(), path + ".on", "missing; a rule needs `on: local`, a device (cpu, cuda:N) or a node name");
      rules->push_back(std::move(rule));
    }
    return Status::Ok();
  }

  Result<SubmodelSpec> Spec(const YAML::Node& root) const {
    SubmodelSpec spec;
    spec.source_path = path_;
    if (root.IsNull()) return Error(root.Mark(), "model", "the file is empty; a spec needs at least `model: NAME`");
    BRICK_ASSIGN_OR_RETURN(auto entries,
                           Map(root, root.Mark(), "", {"model", "name", "experts", "plugins", "placement"}));
    bool has_model = false;
    for (const Entry& e : entries) {
      const std::string name = e.key.Scalar();
      if (name == "model") {
        BRICK_ASSIGN_OR_RETURN(spec.model, String(e));
        has_model = true;
      } else if (name == "name") {
        BRICK_ASSIGN_OR_RETURN(spec.name, String(e));
      } else if (name == "experts") {
        BRICK_ASSIGN_OR_RETURN(auto kinds, Map(e.value, ValueMark(e), e.path, {"mlp", "attention"}));
        for (const Entry& k : kinds) {
          BRICK_ASSIGN_OR_RETURN(auto sel, Experts(k));
          (k.key.Scalar() == "mlp" ? spec.mlp : spec.attention) = std::move(sel);
        }
      } else if (name == "plugins") {
        if (!e.value.IsSequence()) {
          return Error(ValueMark(e), e.path,
                       "expected a list of {lora: REF, scale: 1.0, merge: false}, got " + Describe(e.value));
        }
        size_t i = 0;
        for (const YAML::Node& item : e.value) {
          BRICK_ASSIGN_OR_RETURN(auto p, Plugin(item, e.path + "[" + std::to_string(i++) + "]"));
          spec.plugins.push_back(std::move(p));
        }
      } else {
        BRICK_ASSIGN_OR_RETURN(spec.placement, Placement(e));
      }
    }
    if (!has_model) return Error(root.Mark(), "model", "missing; a spec needs `model: NAME`, NAME@VERSION or NAME:TAG");
    return spec;
  }
};

}  // namespace

Result<SubmodelSpec> ParseSubmodelSpec(std::string_view yaml_text, const std::string& source_path) {
  const SpecParser parser(source_path);
  return ParseYaml(yaml_text, parser, [&](const YAML::Node& root) { return parser.Spec(root); });
}

void SetPlacementDevice(SubmodelSpec* spec, const DeviceRef& device) {
  if (!spec->placement) spec->placement.emplace();
  spec->placement->device = device;
}

Result<SubmodelSpec> ReadSubmodelSpec(const std::string& path) {
  BRICK_ASSIGN_OR_RETURN(std::string text, ReadFileCapped(path, kMaxSpecBytes));
  return ParseSubmodelSpec(text, path);
}

}  // namespace brickrt
