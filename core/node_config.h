// A node config (issue #5): the YAML file `brick serve` reads to host shared bricks for remote
// coordinators. Parsed and checked for shape here; the node itself lives in node/.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace brickrt {

// ZeroMQ CURVE: the node's secret key and the client public keys it accepts.
struct CurveConfig {
  std::string secret_key_file;     // written by `brick keygen`; never empty
  std::vector<std::string> allow;  // files of allowed client public keys; never empty
};

struct NodeConfig {
  std::string role;      // "bricks": serves expert bricks
  std::string name;      // for logs and traces; empty: the listen endpoint
  std::string registry;  // the node's own registry file; empty: the default registry (as every command)
  std::string listen;    // ZeroMQ endpoint to bind, e.g. "tcp://127.0.0.1:7001"
  std::vector<std::string> serve;  // globs over full brick names, e.g. "molm-350m/L*.mlp.E*"
  std::optional<CurveConfig> curve;
  int threads = 0;  // compute threads; 0: every usable core
  std::string source_path;
};

// Whether `endpoint` can only be reached from this machine: inproc://, ipc://, or tcp:// on
// 127.0.0.0/8, ::1 or localhost. Anything else needs CURVE (DESIGN.md §4).
bool IsLoopbackEndpoint(std::string_view endpoint);

// Parses and checks a node config. Every error is InvalidArgument "SOURCE:LINE:COL: KEY: ..." —
// malformed YAML, unknown or duplicate keys, wrong types, a role other than "bricks", an endpoint
// without "://", an empty serve list, a curve section without both keys, and a non-loopback listen
// address without a curve section (a node that can be reached from other machines authenticates its
// clients; `brick serve --insecure` is the explicit way around it and is checked by the caller).
Result<NodeConfig> ParseNodeConfig(std::string_view yaml_text, const std::string& source_path,
                                   bool allow_insecure = false);
// Reads `path` (at most 1 MiB) and parses it.
Result<NodeConfig> ReadNodeConfig(const std::string& path, bool allow_insecure = false);

}  // namespace brickrt
