// The `brick` command: dispatches to one subcommand per file.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace {

struct Command {
  const char* name;
  int (*fn)(const std::vector<std::string>&);
  const char* summary;
};

const Command kCommands[] = {
    {"run", brickrt::cli::RunCommand, "generate tokens from a checkpoint"},
    {"make-test-model", brickrt::cli::MakeTestModelCommand, "write a random ModuleFormer checkpoint (HF layout)"},
};

void PrintUsage(FILE* out) {
  std::fprintf(out, "usage: brick <command> [options]\n\nbrickrt: a runtime for configurable modular language models.\n\ncommands:\n");
  for (const Command& c : kCommands) std::fprintf(out, "  %-18s %s\n", c.name, c.summary);
  std::fprintf(out, "\n'brick <command> --help' describes a command.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
      std::strcmp(argv[1], "help") == 0) {
    PrintUsage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (std::strcmp(argv[1], "--version") == 0) {
    std::printf("brick 0.1.0\n");
    return 0;
  }
  const std::vector<std::string> args(argv + 2, argv + argc);
  for (const Command& c : kCommands) {
    if (argv[1] == std::string(c.name)) return c.fn(args);
  }
  std::fprintf(stderr, "brick: error: unknown command '%s' (see brick --help)\n", argv[1]);
  return 2;
}
