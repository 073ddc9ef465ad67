// brick keygen: writes NAME.key (mode 0600) and NAME.pub, one Z85 line each, prints the public key,
// and never overwrites a key file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "brick_runner.h"

namespace brickrt {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const fs::path& p) {
  std::stringstream s;
  s << std::ifstream(p).rdbuf();
  return s.str();
}

TEST(KeygenCliTest, WritesAKeyPairAndRefusesToOverwrite) {
  const fs::path dir = fs::temp_directory_path() / ("brick_keygen_cli_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path key = dir / "node.key", pub = dir / "node.pub";
  auto r = testing::RunBrick("keygen --out " + key.string(), dir / "scratch");
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(fs::exists(key));
  ASSERT_TRUE(fs::exists(pub));
  EXPECT_EQ(fs::status(key).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  const std::string secret_text = Slurp(key), public_text = Slurp(pub);
  EXPECT_EQ(secret_text.size(), 41u);  // 40 Z85 characters and a newline
  EXPECT_EQ(public_text.size(), 41u);
  EXPECT_EQ(r.out, public_text);  // prints the public key
  EXPECT_NE(secret_text, public_text);

  auto again = testing::RunBrick("keygen --out " + key.string(), dir / "scratch");
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.err.find("exists already"), std::string::npos) << again.err;
  EXPECT_EQ(Slurp(key), secret_text);  // untouched
  EXPECT_EQ(Slurp(pub), public_text);

  // A stale NAME.pub alone also blocks a new pair, and nothing is left behind.
  fs::remove(key);
  auto stale = testing::RunBrick("keygen --out " + key.string(), dir / "scratch");
  EXPECT_EQ(stale.code, 1);
  EXPECT_FALSE(fs::exists(key));

  auto usage = testing::RunBrick("keygen", dir / "scratch");
  EXPECT_EQ(usage.code, 2);
  EXPECT_NE(usage.err.find("--out"), std::string::npos) << usage.err;
  fs::remove_all(dir);
}

// `brick serve` reads the config's curve section: key files relative to the config, clear errors.
TEST(KeygenCliTest, ServeReadsTheCurveSection) {
  const fs::path dir = fs::temp_directory_path() / ("brick_keygen_serve_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  ASSERT_EQ(testing::RunBrick("keygen --out " + (dir / "node.key").string(), dir / "scratch").code, 0);
  ASSERT_EQ(testing::RunBrick("keygen --out " + (dir / "coord.key").string(), dir / "scratch").code, 0);
  const auto config = [&](const std::string& name, const std::string& curve) {
    std::ofstream(dir / name) << "role: bricks\nregistry: " << (dir / "missing.db").string()
                              << "\nlisten: tcp://0.0.0.0:7001\nserve: m/*\ncurve: " << curve << "\n";
    return (dir / name).string();
  };
  // Good keys: serve gets past them (and fails later, on the registry that does not exist).
  auto r = testing::RunBrick("serve " + config("ok.yaml", "{secret_key_file: node.key, allow: [coord.pub]}"),
                             dir / "scratch");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.find("curve"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("missing.db"), std::string::npos) << r.err;
  // A missing allow file, a secret key others may read.
  r = testing::RunBrick("serve " + config("nope.yaml", "{secret_key_file: node.key, allow: [nope.pub]}"),
                        dir / "scratch");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("curve: allow: public key file"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("nope.pub does not exist"), std::string::npos) << r.err;
  fs::permissions(dir / "node.key", fs::perms::group_read | fs::perms::others_read, fs::perm_options::add);
  r = testing::RunBrick("serve " + config("ok.yaml", "{secret_key_file: node.key, allow: [coord.pub]}"),
                        dir / "scratch");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("chmod 600"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace brickrt
