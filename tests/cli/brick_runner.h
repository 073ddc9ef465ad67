// Runs the brick binary under test as a child process and captures its exit code, stdout and stderr
// (through files in a scratch directory), for the CLI tests.
#pragma once

#include <sys/wait.h>

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

}  // namespace brickrt::testing
