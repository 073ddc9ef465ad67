// ParseNodeConfig: YAML -> NodeConfig, errors pointing at PATH:LINE:COL.
#include "core/node_config.h"

#include "core/file.h"
#include "core/yaml_reader_internal.h"

namespace brickrt {
namespace {

using yaml_internal::Describe;
using yaml_internal::Entry;
using yaml_internal::YamlReader;

class NodeConfigParser : public YamlReader {
 public:
  NodeConfigParser(const std::string& path, bool allow_insecure) : YamlReader(path), insecure_(allow_insecure) {}

  Result<NodeConfig> Config(const YAML::Node& root) const {
    NodeConfig c;
    c.source_path = path_;
    if (root.IsNull())
      return Error(root.Mark(), "role", "the file is empty; a node config needs role, listen and serve");
    BRICK_ASSIGN_OR_RETURN(auto entries, Map(root, root.Mark(), "",
                                             {"role", "name", "registry", "listen", "serve", "curve", "threads",
                                              "model", "spec", "max_batch", "max_context", "max_queue", "device"}));
    std::vector<std::pair<std::string, YAML::Mark>> seen;  // keys given, for the role checks
    YAML::Mark listen_mark = root.Mark();
    for (const Entry& e : entries) {
      const std::string key = e.key.Scalar();
      seen.emplace_back(key, e.key.Mark());
      if (key == "role") {
        BRICK_ASSIGN_OR_RETURN(c.role, String(e));
        if (c.role != "bricks" && c.role != "coordinator")
          return Error(ValueMark(e), e.path,
                       "expected \"bricks\" (a node serving expert bricks) or \"coordinator\" (serving generate "
                       "requests), got " +
                           Describe(e.value));
      } else if (key == "model") {
        BRICK_ASSIGN_OR_RETURN(c.model, String(e));
      } else if (key == "spec") {
        BRICK_ASSIGN_OR_RETURN(c.spec, String(e));
      } else if (key == "max_batch" || key == "max_queue") {
        BRICK_ASSIGN_OR_RETURN(int64_t n, Int(e, 1));
        if (n > 65536) return Error(ValueMark(e), e.path, "expected at most 65536");
        (key == "max_batch" ? c.max_batch : c.max_queue) = static_cast<int>(n);
      } else if (key == "device") {
        BRICK_ASSIGN_OR_RETURN(const std::string d, String(e));
        c.device = ParseDeviceRef(d);
        if (!c.device)
          return Error(ValueMark(e), e.path,
                       "expected cpu or cuda:N (a GPU of this machine), got " + Describe(e.value));
      } else if (key == "max_context") {
        BRICK_ASSIGN_OR_RETURN(c.max_context, Int(e, 1));
      } else if (key == "name") {
        BRICK_ASSIGN_OR_RETURN(c.name, String(e));
      } else if (key == "registry") {
        BRICK_ASSIGN_OR_RETURN(c.registry, String(e));
      } else if (key == "listen") {
        BRICK_ASSIGN_OR_RETURN(c.listen, String(e));
        listen_mark = ValueMark(e);
        if (c.listen.find("://") == std::string::npos)
          return Error(listen_mark, e.path,
                       "expected an endpoint like \"tcp://127.0.0.1:7001\", got " + Describe(e.value));
      } else if (key == "serve") {
        BRICK_ASSIGN_OR_RETURN(c.serve, Strings(e));
      } else if (key == "threads") {
        BRICK_ASSIGN_OR_RETURN(int64_t t, Int(e, 0));
        if (t > 1024) return Error(ValueMark(e), e.path, "expected at most 1024 threads");
        c.threads = static_cast<int>(t);
      } else {
        BRICK_ASSIGN_OR_RETURN(auto fields, Map(e.value, ValueMark(e), e.path, {"secret_key_file", "allow"}));
        CurveConfig curve;
        for (const Entry& f : fields) {
          if (f.key.Scalar() == "secret_key_file") {
            BRICK_ASSIGN_OR_RETURN(curve.secret_key_file, String(f));
          } else {
            BRICK_ASSIGN_OR_RETURN(curve.allow, Strings(f));
          }
        }
        if (curve.secret_key_file.empty())
          return Error(ValueMark(e), e.path + ".secret_key_file",
                       "missing; CURVE needs the node's secret key (brick keygen)");
        if (curve.allow.empty())
          return Error(ValueMark(e), e.path + ".allow", "missing; list the client public key files allowed to connect");
        c.curve = std::move(curve);
      }
    }
    if (c.role.empty()) return Error(root.Mark(), "role", "missing; expected bricks or coordinator");
    const bool bricks = c.role == "bricks";
    for (const auto& [key, mark] : seen) {
      const bool bricks_only = key == "serve" || key == "curve";
      const bool coordinator_only = key == "model" || key == "spec" || key == "device" || key.starts_with("max_");
      if ((bricks && coordinator_only) || (!bricks && bricks_only))
        return Error(mark, key, "is not a key of role " + c.role);
    }
    if (c.listen.empty()) return Error(root.Mark(), "listen", "missing; where the " + c.role + " node listens");
    if (bricks && c.serve.empty())
      return Error(root.Mark(), "serve", "missing; a bricks node needs the globs it serves");
    if (!bricks && c.model.empty() == c.spec.empty())
      return Error(root.Mark(), "model",
                   "a coordinator serves exactly one of `model:` (a reference; NAME:TAG follows the tag) or `spec:`");
    if (!c.curve && !insecure_ && !IsLoopbackEndpoint(c.listen)) {
      return Error(listen_mark, "listen",
                   "'" + c.listen + "' is reachable from other machines: " +
                       (bricks ? "add `curve: {secret_key_file: ..., allow: [...]}` (brick keygen), or pass --insecure"
                               : "a coordinator has no CURVE yet; bind loopback, or pass --insecure"));
    }
    return c;
  }

 private:
  bool insecure_;
};

}  // namespace

bool IsLoopbackEndpoint(std::string_view endpoint) {
  if (endpoint.starts_with("inproc://") || endpoint.starts_with("ipc://")) return true;
  if (!endpoint.starts_with("tcp://")) return false;
  std::string_view host = endpoint.substr(6);
  if (host.starts_with("[")) {
    const size_t close = host.find(']');
    return close != std::string_view::npos && host.substr(1, close - 1) == "::1";
  }
  host = host.substr(0, host.rfind(':'));
  return host == "localhost" || host.starts_with("127.");
}

Result<NodeConfig> ParseNodeConfig(std::string_view yaml_text, const std::string& source_path, bool allow_insecure) {
  const NodeConfigParser parser(source_path, allow_insecure);
  return yaml_internal::ParseYaml(yaml_text, parser, [&](const YAML::Node& root) { return parser.Config(root); });
}

Result<NodeConfig> ReadNodeConfig(const std::string& path, bool allow_insecure) {
  BRICK_ASSIGN_OR_RETURN(std::string text, ReadFileCapped(path, 1 << 20));
  return ParseNodeConfig(text, path, allow_insecure);
}

}  // namespace brickrt
