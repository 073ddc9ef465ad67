// Node config YAML (issue #5): the issue's example parses; loopback detection; every malformed
// case is one error at PATH:LINE:COL naming the key.
#include <gtest/gtest.h>

#include "core/node_config.h"

namespace brickrt {
namespace {

void ExpectError(const std::string& yaml, const std::string& where, const std::string& what, bool insecure = false) {
  auto r = ParseNodeConfig(yaml, "node.yaml", insecure);
  ASSERT_FALSE(r.ok()) << yaml;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message().rfind("node.yaml:" + where + ": ", 0), 0u) << r.status().message();
  EXPECT_NE(r.status().message().find(what), std::string::npos) << r.status().message();
}

TEST(NodeConfig, IssueExampleParses) {
  auto c = ParseNodeConfig(
      "role: bricks\nregistry: /srv/bricks.db\nlisten: tcp://127.0.0.1:7001\nserve: [\"molm-350m/L*.mlp.E*\"]\n"
      "curve: {secret_key_file: cloud.key, allow: [clients.pub]}\n",
      "node.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->role, "bricks");
  EXPECT_EQ(c->registry, "/srv/bricks.db");
  EXPECT_EQ(c->listen, "tcp://127.0.0.1:7001");
  EXPECT_EQ(c->serve, (std::vector<std::string>{"molm-350m/L*.mlp.E*"}));
  ASSERT_TRUE(c->curve.has_value());
  EXPECT_EQ(c->curve->secret_key_file, "cloud.key");
  EXPECT_EQ(c->curve->allow, (std::vector<std::string>{"clients.pub"}));
}

TEST(NodeConfig, ConfigsCloudNodeParses) {
  auto c = ReadNodeConfig(std::string(BRICK_SOURCE_DIR) + "/configs/cloud-node.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->name, "cloud");
  EXPECT_FALSE(c->curve.has_value());
}

TEST(NodeConfig, LoopbackEndpoints) {
  for (const char* e : {"tcp://127.0.0.1:7001", "tcp://127.3.4.5:1", "tcp://localhost:9", "tcp://[::1]:7001",
                        "ipc:///tmp/x.sock", "inproc://node"})
    EXPECT_TRUE(IsLoopbackEndpoint(e)) << e;
  for (const char* e : {"tcp://0.0.0.0:7001", "tcp://10.0.0.2:7001", "tcp://*:7001", "tcp://[::]:1", "tcp://host:1",
                        "udp://127.0.0.1:1"})
    EXPECT_FALSE(IsLoopbackEndpoint(e)) << e;
}

TEST(NodeConfig, OffLoopbackNeedsCurveUnlessInsecure) {
  const std::string yaml = "role: bricks\nregistry: r.db\nlisten: tcp://0.0.0.0:7001\nserve: m/*\n";
  ExpectError(yaml, "3:9", "reachable from other machines");
  EXPECT_TRUE(ParseNodeConfig(yaml, "node.yaml", /*allow_insecure=*/true).ok());
}

TEST(NodeConfig, CoordinatorRole) {
  auto c = ParseNodeConfig(
      "role: coordinator\nregistry: r.db\nlisten: tcp://127.0.0.1:7100\nmodel: molm-350m:stable\nmax_batch: 16\n"
      "max_context: 512\nmax_queue: 10\nthreads: 2\n",
      "node.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->role, "coordinator");
  EXPECT_EQ(c->model, "molm-350m:stable");
  EXPECT_EQ(c->max_batch, 16);
  EXPECT_EQ(c->max_context, 512);
  EXPECT_EQ(c->max_queue, 10);
  auto spec = ParseNodeConfig("role: coordinator\nlisten: tcp://127.0.0.1:7100\nspec: edge.yaml\n", "node.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->spec, "edge.yaml");
  EXPECT_EQ(spec->max_batch, 8);

  const std::string base = "role: coordinator\nlisten: tcp://127.0.0.1:7100\n";
  ExpectError(base, "1:1", "exactly one of `model:`");
  ExpectError(base + "model: m\nspec: s.yaml\n", "1:1", "exactly one of `model:`");
  ExpectError(base + "model: m\nserve: [m/*]\n", "4:1", "serve: is not a key of role coordinator");
  ExpectError(base + "model: m\nmax_batch: 0\n", "4:12", "integer >= 1");
  ExpectError("role: bricks\nlisten: tcp://127.0.0.1:1\nserve: m/*\nmodel: m\n", "4:1",
              "model: is not a key of role bricks");
  ExpectError("role: coordinator\nlisten: tcp://0.0.0.0:7100\nmodel: m\n", "2:9", "a coordinator has no CURVE yet");
}

TEST(NodeConfig, CoordinatorDevice) {
  auto c = ParseNodeConfig("role: coordinator\nlisten: tcp://127.0.0.1:7100\nmodel: m:stable\ndevice: cuda:0\n", "c.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->device, (DeviceRef{DeviceRef::Kind::kCuda, 0}));
  auto none = ParseNodeConfig("role: coordinator\nlisten: tcp://127.0.0.1:7100\nmodel: m\n", "c.yaml");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->device.has_value());
  ExpectError("role: coordinator\nlisten: tcp://127.0.0.1:7100\nmodel: m\ndevice: gpu0\n", "4:9", "expected cpu or cuda:N");
  ExpectError("role: bricks\nlisten: tcp://127.0.0.1:1\nserve: m/*\ndevice: cuda:0\n", "4:1", "not a key of role bricks");
}

TEST(NodeConfig, MalformedConfigsNameTheKey) {
  ExpectError("role: bricks\nregistry: r.db\nlisten: [x\n", "4:1", "malformed YAML");
  ExpectError("role: router\nregistry: r.db\nlisten: tcp://127.0.0.1:1\nserve: m/*\n", "1:7",
              "expected \"bricks\" (a node serving expert bricks) or \"coordinator\"");
  ExpectError("role: bricks\nregistry: r.db\nlisten: 127.0.0.1:1\nserve: m/*\n", "3:9", "expected an endpoint");
  ExpectError("role: bricks\nregistry: r.db\nlisten: tcp://127.0.0.1:1\n", "1:1", "serve: missing");
  ExpectError("registry: r.db\nlisten: tcp://127.0.0.1:1\n", "1:1", "role: missing");
  ExpectError("role: bricks\nserve: m/*\n", "1:1", "listen: missing");
  ExpectError("role: bricks\nserve: m/*\n", "1:1", "listen: missing");
  ExpectError("role: bricks\nregistry: r.db\nlisten: tcp://127.0.0.1:1\nserve: []\n", "4:8", "non-empty list");
  ExpectError("role: bricks\nregistry: r.db\nlisten: tcp://127.0.0.1:1\nserve: m/*\nport: 3\n", "5:1", "unknown key");
  ExpectError("role: bricks\nregistry: r.db\nlisten: tcp://127.0.0.1:1\nserve: m/*\ncurve: {allow: [a.pub]}\n", "5:8",
              "secret_key_file: missing");
  ExpectError("role: bricks\nregistry: r.db\nlisten: tcp://127.0.0.1:1\nserve: m/*\nthreads: -1\n", "5:10",
              "integer >= 0");
  ExpectError("", "1:1", "the file is empty");
}

}  // namespace
}  // namespace brickrt
