// A `brick serve CONFIG` child process for the CLI tests: started, waited for until it says it serves,
// stopped with a signal. Also a free loopback port to give it.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace brickrt::testing {

// A port the kernel just handed out; closed again, so a server can bind it (a small race, fine here).
inline int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return 0;
  }
  close(fd);
  return ntohs(addr.sin_port);
}

inline std::string ReadAll(const std::filesystem::path& p) {
  std::stringstream s;
  s << std::ifstream(p, std::ios::binary).rdbuf();
  return s.str();
}

class ServeProcess {
 public:
  // out/err: files for the child's stdout and stderr.
  ServeProcess(std::filesystem::path out, std::filesystem::path err) : out_(std::move(out)), err_(std::move(err)) {}
  ~ServeProcess() { Stop(); }

  // Starts `brick serve ARGS...` and waits (up to 20 s) until its stdout says "serving".
  void Start(std::vector<std::string> args) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> argv = {const_cast<char*>(BRICK_CLI), const_cast<char*>("serve")};
    for (std::string& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    ASSERT_EQ(posix_spawn(&pid_, BRICK_CLI, &fa, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (ReadAll(out_).find("serving") == std::string::npos) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "brick serve did not start: " << ReadAll(err_);
      int status = 0;
      ASSERT_EQ(waitpid(pid_, &status, WNOHANG), 0) << "brick serve exited: " << ReadAll(err_);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  // Sends `sig` and returns the exit status (0: stopped cleanly; -1: killed by the signal).
  int Stop(int sig = SIGTERM) {
    if (pid_ <= 0) return 0;
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::string out() const { return ReadAll(out_); }
  std::string err() const { return ReadAll(err_); }

 private:
  std::filesystem::path out_, err_;
  pid_t pid_ = 0;
};

}  // namespace brickrt::testing
