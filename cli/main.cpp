// The `brick` command: dispatches to one subcommand per file.
#include <cstdio>
#include <cstring>
#include <exception>
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
    {"run", brickrt::cli::RunCommand, "generate tokens from a registry model or a checkpoint directory"},
    {"chat", brickrt::cli::ChatCommand, "an interactive conversation: lines in, streamed text out (needs a tokenizer)"},
    {"import", brickrt::cli::ImportCommand, "import an HF checkpoint as versioned bricks + a model manifest"},
    {"import-lora", brickrt::cli::ImportLoraCommand, "import a PEFT LoRA adapter as a plugin for a registry model"},
    {"serve", brickrt::cli::ServeCommand, "run a node from its config: a brick node, or a coordinator serving a model"},
    {"swap", brickrt::cli::SwapCommand, "tell a running coordinator to serve another manifest (or roll back)"},
    {"status", brickrt::cli::StatusCommand, "ask a running coordinator what it serves"},
    {"devices", brickrt::cli::DevicesCommand, "list the devices bricks can be placed on here: cpu and each CUDA GPU (cuda:N)"},
    {"keygen", brickrt::cli::KeygenCommand, "write a CURVE key pair (NAME.key secret, NAME.pub public) for nodes and coordinators"},
    {"compose", brickrt::cli::ComposeCommand, "resolve a submodel spec (YAML): experts kept, params, bytes; --save"},
    {"ls", brickrt::cli::LsCommand, "list bricks"},
    {"show", brickrt::cli::ShowCommand, "show one brick"},
    {"models", brickrt::cli::ModelsCommand, "list model manifests and tags"},
    {"tag", brickrt::cli::TagCommand, "tag a model manifest (e.g. stable)"},
    {"verify", brickrt::cli::VerifyCommand, "recompute payload digests and list every damaged brick"},
    {"export", brickrt::cli::ExportCommand, "write a model manifest back as an HF checkpoint"},
    {"rm", brickrt::cli::RmCommand, "remove a brick or a model manifest (refused while a manifest uses it)"},
    {"gc", brickrt::cli::GcCommand, "drop payload blobs no brick references (--vacuum shrinks the file)"},
    {"set-visibility", brickrt::cli::SetVisibilityCommand, "mark a brick or a model's bricks private or shared"},
    {"grow", brickrt::cli::GrowCommand, "add trained experts + router rows to a layer, saved as a new model"},
    {"eval", brickrt::cli::EvalCommand, "perplexity of a model over token data (sliding window)"},
    {"profile", brickrt::cli::ProfileCommand, "count which experts token data routes to; stored as a named profile"},
    {"prune", brickrt::cli::PruneCommand, "remove experts a profile rarely chose (threshold), saved as a new model"},
    {"tokenize", brickrt::cli::TokenizeCommand, "text -> token ids and pieces, or --decode ids -> text (a tokenizer dir or file)"},
    {"make-test-model", brickrt::cli::MakeTestModelCommand, "write a random ModuleFormer checkpoint (HF layout)"},
    {"make-test-lora", brickrt::cli::MakeTestLoraCommand, "write a random PEFT LoRA adapter for a registry model"},
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
    if (argv[1] != std::string(c.name)) continue;
    // Modules report expected failures as Status; an exception reaching here (out of memory, a
    // library throwing) still ends as one line and an exit code, never std::terminate.
    try {
      return c.fn(args);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "brick %s: error: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "brick: error: unknown command '%s' (see brick --help)\n", argv[1]);
  return 2;
}
