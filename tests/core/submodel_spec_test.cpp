// Tests for core/submodel_spec: the issue #4 example and configs/python-coder.yaml parse into the
// expected structs; each structural error is InvalidArgument pointing at PATH:LINE:COL and the key.
#include "core/submodel_spec.h"

#include <gtest/gtest.h>

#include <string>

namespace brickrt {
namespace {

using Mode = ExpertSelection::Mode;
using Pairs = std::vector<std::pair<int64_t, int64_t>>;

const char kIssueExample[] = R"(model: molm-350m:stable          # NAME, NAME@VERSION or NAME:TAG
name: python-coder
experts:
  mlp:
    top_k: 2
    drop: {0: [3, 5], 7: [1]}
  attention:
    top_k: 1
    keep: {"0-23": "0-7"}
plugins:
  - lora: my-lora@1
    scale: 0.5
    merge: false
)";

SubmodelSpec MustParse(const std::string& yaml) {
  auto r = ParseSubmodelSpec(yaml, "spec.yaml");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r.value() : SubmodelSpec();
}

// Expects InvalidArgument whose message starts "spec.yaml:LINE:COL: " and mentions `key`.
void ExpectError(const std::string& yaml, const std::string& line_col, const std::string& key) {
  auto r = ParseSubmodelSpec(yaml, "spec.yaml");
  ASSERT_FALSE(r.ok()) << "parsed but should not:\n" << yaml;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  const std::string& m = r.status().message();
  EXPECT_EQ(m.rfind("spec.yaml:" + line_col + ": ", 0), 0u) << m;
  EXPECT_NE(m.find(key), std::string::npos) << "'" << key << "' not in: " << m;
}

void ExpectIssueExample(const SubmodelSpec& s) {
  EXPECT_EQ(s.model, "molm-350m:stable");
  EXPECT_EQ(s.name, "python-coder");

  ASSERT_EQ(s.mlp.top_k, std::optional<int>(2));
  EXPECT_EQ(s.mlp.mode, Mode::kDrop);
  ASSERT_EQ(s.mlp.layers.size(), 2u);
  EXPECT_EQ(s.mlp.layers[0].first.ranges, (Pairs{{0, 0}}));
  EXPECT_EQ(s.mlp.layers[0].second.ranges, (Pairs{{3, 3}, {5, 5}}));
  EXPECT_EQ(s.mlp.layers[1].first.ranges, (Pairs{{7, 7}}));
  EXPECT_EQ(s.mlp.layers[1].second.ranges, (Pairs{{1, 1}}));

  ASSERT_EQ(s.attention.top_k, std::optional<int>(1));
  EXPECT_EQ(s.attention.mode, Mode::kKeep);
  ASSERT_EQ(s.attention.layers.size(), 1u);
  EXPECT_EQ(s.attention.layers[0].first.ranges, (Pairs{{0, 23}}));
  EXPECT_EQ(s.attention.layers[0].second.ranges, (Pairs{{0, 7}}));

  ASSERT_EQ(s.plugins.size(), 1u);
  EXPECT_EQ(s.plugins[0].lora_ref, "my-lora@1");
  EXPECT_DOUBLE_EQ(s.plugins[0].scale, 0.5);
  EXPECT_FALSE(s.plugins[0].merge);
  EXPECT_FALSE(s.placement.has_value());
}

TEST(SubmodelSpec, IssueExampleParses) {
  SubmodelSpec s = MustParse(kIssueExample);
  ExpectIssueExample(s);
  EXPECT_EQ(s.source_path, "spec.yaml");
}

TEST(SubmodelSpec, ConfigsPythonCoderParses) {
  const std::string path = std::string(BRICK_SOURCE_DIR) + "/configs/python-coder.yaml";
  auto r = ReadSubmodelSpec(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectIssueExample(*r);
  EXPECT_EQ(r->source_path, path);
}

TEST(SubmodelSpec, MinimalSpecKeepsDefaults) {
  SubmodelSpec s = MustParse("model: molm-350m\n");
  EXPECT_EQ(s.model, "molm-350m");
  EXPECT_EQ(s.name, "");
  EXPECT_EQ(s.mlp.mode, Mode::kAll);
  EXPECT_FALSE(s.mlp.top_k.has_value());
  EXPECT_TRUE(s.mlp.layers.empty());
  EXPECT_EQ(s.attention.mode, Mode::kAll);
  EXPECT_TRUE(s.plugins.empty());
  EXPECT_FALSE(s.placement.has_value());
}

TEST(SubmodelSpec, ExpertListsMixIndicesAndRanges) {
  SubmodelSpec s = MustParse("model: m\nexperts:\n  mlp:\n    keep:\n      \"2-4\": [1, 4, \"6-9\"]\n      5: 3\n");
  EXPECT_EQ(s.mlp.mode, Mode::kKeep);
  EXPECT_FALSE(s.mlp.top_k.has_value());
  ASSERT_EQ(s.mlp.layers.size(), 2u);
  EXPECT_EQ(s.mlp.layers[0].first.ranges, (Pairs{{2, 4}}));
  EXPECT_EQ(s.mlp.layers[0].second.ranges, (Pairs{{1, 1}, {4, 4}, {6, 9}}));
  EXPECT_EQ(s.mlp.layers[1].first.ranges, (Pairs{{5, 5}}));
  EXPECT_EQ(s.mlp.layers[1].second.ranges, (Pairs{{3, 3}}));
}

TEST(SubmodelSpec, PlacementParses) {
  SubmodelSpec s = MustParse(R"(model: m
placement:
  nodes:
    cloud: {endpoint: "tcp://127.0.0.1:7001", timeout_ms: 500}
    edge: {endpoint: "ipc:///tmp/edge"}
  rules:
    - match: "L*.mlp.E*"
      on: cloud
    - {match: "L0.*", on: local}
  on_failure: skip-expert
)");
  ASSERT_TRUE(s.placement.has_value());
  const PlacementSpec& p = *s.placement;
  ASSERT_EQ(p.nodes.size(), 2u);
  EXPECT_EQ(p.nodes[0].name, "cloud");
  EXPECT_EQ(p.nodes[0].endpoint, "tcp://127.0.0.1:7001");
  EXPECT_EQ(p.nodes[0].timeout_ms, 500);
  EXPECT_EQ(p.nodes[1].name, "edge");
  EXPECT_EQ(p.nodes[1].timeout_ms, 1000);
  ASSERT_EQ(p.rules.size(), 2u);
  EXPECT_EQ(p.rules[0].match, "L*.mlp.E*");
  EXPECT_EQ(p.rules[0].on, "cloud");
  EXPECT_EQ(p.rules[1].on, "local");
  EXPECT_EQ(p.on_failure, "skip-expert");

  SubmodelSpec d = MustParse("model: m\nplacement: {rules: [{match: \"*\", on: local}]}\n");
  ASSERT_TRUE(d.placement.has_value());
  EXPECT_EQ(d.placement->on_failure, "fail");
}

TEST(SubmodelSpec, PlacementOnDevicesOfThisMachine) {
  SubmodelSpec s = MustParse(R"(model: m
placement:
  device: cuda:0
  rules:
    - {match: "L0.*", on: cpu}
    - {match: "L*.mlp.E*", on: "cuda:1"}
    - {match: "*", on: local}
)");
  ASSERT_TRUE(s.placement.has_value());
  EXPECT_EQ(s.placement->device, (DeviceRef{DeviceRef::Kind::kCuda, 0}));
  ASSERT_EQ(s.placement->rules.size(), 3u);
  EXPECT_EQ(s.placement->rules[0].on, "cpu");
  EXPECT_EQ(s.placement->rules[1].on, "cuda:1");
  // Without `device`, this process computes on the CPU.
  EXPECT_EQ(MustParse("model: m\nplacement: {rules: [{match: \"*\", on: local}]}\n").placement->device, DeviceRef{});

  ExpectError("model: m\nplacement:\n  device: gpu\n", "3:11", "placement.device");
  ExpectError("model: m\nplacement:\n  device: cuda:64\n", "3:11", "expected cpu or cuda:N");
  ExpectError("model: m\nplacement:\n  rules:\n    - {match: x, on: cuda:x}\n", "4:22", "local, cpu, cuda:N");
  ExpectError("model: m\nplacement:\n  nodes:\n    cuda:1: {endpoint: \"tcp://h:1\"}\n", "4:5",
              "names a device of this machine");
  ExpectError("model: m\nplacement:\n  nodes:\n    cpu: {endpoint: \"tcp://h:1\"}\n", "4:5",
              "names a device of this machine");
}

TEST(DeviceRef, ParsesCpuAndCudaOrdinalsOnly) {
  EXPECT_EQ(ParseDeviceRef("cpu"), DeviceRef{});
  EXPECT_EQ(ParseDeviceRef("cuda"), (DeviceRef{DeviceRef::Kind::kCuda, 0}));
  EXPECT_EQ(ParseDeviceRef("cuda:0"), (DeviceRef{DeviceRef::Kind::kCuda, 0}));
  EXPECT_EQ(ParseDeviceRef("cuda:63"), (DeviceRef{DeviceRef::Kind::kCuda, 63}));
  EXPECT_EQ(ParseDeviceRef("cuda:7")->ToString(), "cuda:7");
  EXPECT_EQ(ParseDeviceRef("cpu")->ToString(), "cpu");
  for (const char* bad : {"", "CPU", "gpu", "cuda:", "cuda:64", "cuda:01", "cuda:-1", "cuda:+1", "cuda:1a", "cuda:999",
                          "cuda0", " cpu"})
    EXPECT_FALSE(ParseDeviceRef(bad).has_value()) << bad;
  EXPECT_TRUE(LooksLikeDevice("cuda:x"));
  EXPECT_FALSE(LooksLikeDevice("cloud"));
}

TEST(SubmodelSpec, PluginDefaultsAndMerge) {
  SubmodelSpec s = MustParse("model: m\nplugins:\n  - lora: a\n  - {lora: b:stable, merge: true, scale: 2}\n");
  ASSERT_EQ(s.plugins.size(), 2u);
  EXPECT_DOUBLE_EQ(s.plugins[0].scale, 1.0);
  EXPECT_FALSE(s.plugins[0].merge);
  EXPECT_EQ(s.plugins[1].lora_ref, "b:stable");
  EXPECT_TRUE(s.plugins[1].merge);
  EXPECT_DOUBLE_EQ(s.plugins[1].scale, 2.0);
}

TEST(SubmodelSpec, MalformedYamlGivesLineAndColumn) {
  ExpectError("model: m\nexperts: {mlp: [1, 2}\n", "2:21", "malformed YAML");
  ExpectError("model: m\n  name: x\n", "2:7", "malformed YAML");
}

TEST(SubmodelSpec, UnknownKeysNameWhatIsAllowed) {
  ExpectError("model: m\nmodle: x\n", "2:1", "modle");
  ExpectError("model: m\nmodle: x\n", "2:1", "model, name, experts, plugins, placement");
  ExpectError("model: m\nexperts:\n  mlp:\n    topk: 2\n", "4:5", "experts.mlp.topk");
  ExpectError("model: m\nexperts:\n  mlp:\n    topk: 2\n", "4:5", "top_k, drop, keep");
  ExpectError("model: m\nexperts:\n  router: {}\n", "3:3", "mlp, attention");
  ExpectError("model: m\nplugins:\n  - lora: a\n    scael: 2\n", "4:5", "plugins[0].scael");
  ExpectError("model: m\nplacement:\n  nodes:\n    c: {endpoint: \"tcp://h:1\", timeout: 5}\n", "4:32",
              "placement.nodes.c.timeout");
  ExpectError("model: m\nplacement:\n  rules:\n    - {match: x, on: local, when: y}\n", "4:29", "match, on");
  ExpectError("model: m\nname: a\nname: b\n", "3:1", "duplicate key");
}

TEST(SubmodelSpec, MissingOrWrongTypes) {
  ExpectError("name: x\n", "1:1", "model");
  ExpectError("", "1:1", "model");
  ExpectError("- model: m\n", "1:1", "expected a mapping");
  ExpectError("model: [a, b]\n", "1:8", "model");
  ExpectError("model:\n", "1:1", "model");
  ExpectError("model: m\nexperts: 3\n", "2:10", "experts");
  ExpectError("model: m\nexperts:\n  mlp:\n    top_k: two\n", "4:12", "experts.mlp.top_k");
  ExpectError("model: m\nexperts:\n  mlp:\n    drop: [1, 2]\n", "4:11", "experts.mlp.drop");
  ExpectError("model: m\nexperts:\n  mlp:\n    drop: {0: {1: 2}}\n", "4:15", "experts.mlp.drop.0");
  ExpectError("model: m\nplugins: {lora: a}\n", "2:10", "plugins");
  ExpectError("model: m\nplugins:\n  - lora: a\n    scale: half\n", "4:12", "plugins[0].scale");
  ExpectError("model: m\nplugins:\n  - lora: a\n    merge: yes\n", "4:12", "plugins[0].merge");
}

TEST(SubmodelSpec, BadRangesAndIndices) {
  ExpectError("model: m\nexperts:\n  mlp:\n    keep: {\"7-3\": 1}\n", "4:12", "experts.mlp.keep");
  ExpectError("model: m\nexperts:\n  mlp:\n    keep: {\"7-3\": 1}\n", "4:12", "write 3-7");
  ExpectError("model: m\nexperts:\n  mlp:\n    keep: {0: \"a-b\"}\n", "4:15", "experts.mlp.keep");
  ExpectError("model: m\nexperts:\n  mlp:\n    keep: {0: \"a-b\"}\n", "4:15", "'a-b'");
  ExpectError("model: m\nexperts:\n  mlp:\n    drop: {0: [1, -2]}\n", "4:19", "negative index");
  ExpectError("model: m\nexperts:\n  mlp:\n    drop: {-1: [1]}\n", "4:12", "negative index");
  ExpectError("model: m\nexperts:\n  mlp:\n    drop: {\"2--1\": [1]}\n", "4:12", "negative index");
  ExpectError("model: m\nexperts:\n  mlp:\n    drop: {0: [1.5]}\n", "4:16", "experts.mlp.drop");
}

// A selection that selects nothing is a mistake, not a no-op.
TEST(SubmodelSpec, EmptySelectionsAreErrors) {
  ExpectError("model: m\nexperts:\n  mlp:\n    drop: {0: []}\n", "4:15", "empty list selects no expert");
  ExpectError("model: m\nexperts:\n  mlp:\n    keep: {}\n", "4:11", "empty mapping selects nothing");
}

TEST(SubmodelSpec, TopKMustBePositive) {
  ExpectError("model: m\nexperts:\n  attention:\n    top_k: 0\n", "4:12", "experts.attention.top_k");
  ExpectError("model: m\nexperts:\n  attention:\n    top_k: -2\n", "4:12", ">= 1");
}

TEST(SubmodelSpec, DropAndKeepTogetherIsAnError) {
  ExpectError("model: m\nexperts:\n  mlp:\n    drop: {0: 1}\n    keep: {1: 2}\n", "5:5", "experts.mlp.keep");
  ExpectError("model: m\nexperts:\n  mlp:\n    drop: {0: 1}\n    keep: {1: 2}\n", "5:5", "'drop' and 'keep'");
}

TEST(SubmodelSpec, DuplicateOrOverlappingLayerKeys) {
  ExpectError("model: m\nexperts:\n  mlp:\n    drop: {0: [1], 0: [2]}\n", "4:20", "duplicate layer key");
  ExpectError("model: m\nexperts:\n  mlp:\n    drop: {\"0-3\": [1], 2: [2]}\n", "4:24", "layer 2");
}

TEST(SubmodelSpec, PluginNeedsLora) {
  ExpectError("model: m\nplugins:\n  - scale: 0.5\n", "3:5", "plugins[0].lora");
  ExpectError("model: m\nplugins:\n  - lora: \"\"\n", "3:11", "plugins[0].lora");
}

TEST(SubmodelSpec, PlacementCurveKeys) {
  SubmodelSpec s = MustParse(
      "model: m\nplacement:\n  nodes:\n    cloud: {endpoint: \"tcp://10.0.0.2:7001\", server_key: cloud.pub, "
      "client_key: keys/coord.key}\n  rules:\n    - {match: \"*\", on: cloud}\n");
  ASSERT_TRUE(s.placement.has_value());
  EXPECT_EQ(s.placement->nodes[0].server_key, "cloud.pub");
  EXPECT_EQ(s.placement->nodes[0].client_key, "keys/coord.key");
  SubmodelSpec plain = MustParse("model: m\nplacement:\n  nodes:\n    cloud: {endpoint: \"tcp://h:1\"}\n");
  EXPECT_TRUE(plain.placement->nodes[0].server_key.empty());
  EXPECT_TRUE(plain.placement->nodes[0].client_key.empty());
  ExpectError("model: m\nplacement:\n  nodes:\n    c: {endpoint: \"tcp://h:1\", server_key: c.pub}\n", "4:8",
              "placement.nodes.c.client_key");
  ExpectError("model: m\nplacement:\n  nodes:\n    c: {endpoint: \"tcp://h:1\", client_key: me.key}\n", "4:8",
              "both server_key");
}

TEST(SubmodelSpec, PlacementErrors) {
  ExpectError("model: m\nplacement:\n  rules:\n    - {match: x, on: cloud}\n", "4:22", "unknown node 'cloud'");
  ExpectError("model: m\nplacement:\n  on_failure: retry\n", "3:15", "placement.on_failure");
  ExpectError("model: m\nplacement:\n  on_failure: retry\n", "3:15", "fail, local-fallback or skip-expert");
  ExpectError("model: m\nplacement:\n  nodes:\n    c: {timeout_ms: 5}\n", "4:8", "placement.nodes.c.endpoint");
  ExpectError("model: m\nplacement:\n  nodes:\n    c: {endpoint: localhost}\n", "4:19", "tcp://HOST:PORT");
  ExpectError("model: m\nplacement:\n  nodes:\n    c: {endpoint: \"tcp://h:1\", timeout_ms: 0}\n", "4:44",
              "placement.nodes.c.timeout_ms");
  ExpectError("model: m\nplacement:\n  nodes:\n    local: {endpoint: \"tcp://h:1\"}\n", "4:5", "reserved");
  ExpectError("model: m\nplacement:\n  rules:\n    - {on: local}\n", "4:7", "placement.rules[0].match");
}

TEST(SubmodelSpec, DeepNestingIsAnErrorNotACrash) {
  const std::string deep = "model: m\nplugins: " + std::string(5000, '[') + std::string(5000, ']') + "\n";
  auto r = ParseSubmodelSpec(deep, "spec.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message().rfind("spec.yaml:", 0), 0u) << r.status().message();
}

TEST(SubmodelSpec, ReadMissingFileIsNotFound) {
  auto r = ReadSubmodelSpec("/nonexistent/spec.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

TEST(IndexRanges, Contains) {
  IndexRanges r;
  EXPECT_FALSE(r.Contains(0));
  r.ranges = {{0, 7}, {10, 10}, {20, 22}};
  EXPECT_TRUE(r.Contains(0));
  EXPECT_TRUE(r.Contains(7));
  EXPECT_FALSE(r.Contains(8));
  EXPECT_FALSE(r.Contains(9));
  EXPECT_TRUE(r.Contains(10));
  EXPECT_FALSE(r.Contains(11));
  EXPECT_TRUE(r.Contains(21));
  EXPECT_FALSE(r.Contains(23));
  EXPECT_FALSE(r.Contains(-1));
}

}  // namespace
}  // namespace brickrt
