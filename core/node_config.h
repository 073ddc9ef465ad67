// A node config: the YAML file `brick serve` reads. role: bricks hosts shared expert bricks for remote
// coordinators (issue #5); role: coordinator holds a model and answers generate requests (issue #6).
// Parsed and checked for shape here; the servers themselves live in node/.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/device_ref.h"
#include "core/status.h"

namespace brickrt {

// ZeroMQ CURVE: the node's secret key and the client public keys it accepts.
struct CurveConfig {
  std::string secret_key_file;     // written by `brick keygen`; never empty
  std::vector<std::string> allow;  // files of allowed client public keys; never empty
};

struct NodeConfig {
  std::string role;      // "bricks": serves expert bricks; "coordinator": serves generate requests
  std::string name;      // for logs and traces; empty: the listen endpoint
  std::string registry;  // the node's own registry file; empty: the default registry (as every command)
  std::string listen;    // ZeroMQ endpoint to bind, e.g. "tcp://127.0.0.1:7001"
  std::vector<std::string> serve;  // bricks: globs over full brick names, e.g. "molm-350m/L*.mlp.E*"
  std::optional<CurveConfig> curve;  // bricks only (a coordinator binds loopback, or --insecure)
  // coordinator: what it serves — a model reference (NAME:TAG follows the tag) or a submodel spec file
  // (relative to the config's directory), exactly one; sequences decoded together; tokens per sequence;
  // requests that may wait for a slot.
  std::string model;
  std::string spec;
  int max_batch = 8;
  int64_t max_context = 2048;
  int max_queue = 1024;
  int threads = 0;  // compute threads; 0: every usable core
  // coordinator: where it runs the models it serves (`device: cuda:0`); for a spec, its placement.device.
  // Unset: the CPU, or what the spec says.
  std::optional<DeviceRef> device;
  std::string source_path;
};

// Whether `endpoint` can only be reached from this machine: inproc://, ipc://, or tcp:// on
// 127.0.0.0/8, ::1 or localhost. Anything else needs CURVE (DESIGN.md §4).
bool IsLoopbackEndpoint(std::string_view endpoint);

// Parses and checks a node config. Every error is InvalidArgument "SOURCE:LINE:COL: KEY: ..." —
// malformed YAML, unknown or duplicate keys, wrong types, a role other than "bricks" or "coordinator",
// a key of the other role, an endpoint without "://", an empty serve list (bricks), neither or both of
// model and spec (coordinator), a curve section without both keys, and a non-loopback listen address
// without a curve section (a node that can be reached from other machines authenticates its
// clients; `brick serve --insecure` is the explicit way around it and is checked by the caller; a
// coordinator has no CURVE yet, so it needs --insecure off loopback).
Result<NodeConfig> ParseNodeConfig(std::string_view yaml_text, const std::string& source_path,
                                   bool allow_insecure = false);
// Reads `path` (at most 1 MiB) and parses it.
Result<NodeConfig> ReadNodeConfig(const std::string& path, bool allow_insecure = false);

}  // namespace brickrt
