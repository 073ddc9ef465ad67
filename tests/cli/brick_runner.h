// Runs the brick binary under test as a child process and captures its exit code, stdout and stderr
// (through files in a scratch directory), for the CLI tests.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace brickrt::testing {

struct CmdResult {
  int code = -1;  // exit status; -1 if the process did not exit normally (a crash)
  std::string out, err;
};

// `args` is appended to the binary's path and run by the shell (quote as a shell would).
inline CmdResult RunBrick(const std::string& args, const std::filesystem::path& scratch_dir) {
  std::filesystem::create_directories(scratch_dir);
  const std::string out = (scratch_dir / "stdout").string(), err = (scratch_dir / "stderr").string();
  const std::string cmd = std::string(BRICK_CLI) + " " + args + " >" + out + " 2>" + err;
  const int status = std::system(cmd.c_str());
  CmdResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::stringstream so, se;
  so << std::ifstream(out).rdbuf();
  se << std::ifstream(err).rdbuf();
  r.out = so.str();
  r.err = se.str();
  return r;
}

// The base of a CLI test with a registry: a fresh scratch directory (removed again after the test)
// holding the registry file, Path() for files in it and Brick() running the binary against it.
class CliTest : public ::testing::Test {
 protected:
  // prefix: names the scratch directory (with this process's id, so parallel test binaries differ).
  explicit CliTest(const std::string& prefix)
      : dir_(std::filesystem::temp_directory_path() / (prefix + std::to_string(getpid()))),
        reg_((dir_ / "r.db").string()) {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  ~CliTest() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  // `brick ARGS --registry <this test's registry>` (without the registry when with_registry is false).
  CmdResult Brick(const std::string& args, bool with_registry = true) const {
    return RunBrick(args + (with_registry ? " --registry " + reg_ : ""), dir_ / "io");
  }

  const std::filesystem::path dir_;
  const std::string reg_;
};

}  // namespace brickrt::testing
