// The brick subcommands. Each returns the process exit code: 0 success, 1 failure, 2 usage error.
#pragma once

#include <string>
#include <vector>

namespace brickrt::cli {

int RunCommand(const std::vector<std::string>& args);
int ChatCommand(const std::vector<std::string>& args);
int MakeTestModelCommand(const std::vector<std::string>& args);
int MakeTestLoraCommand(const std::vector<std::string>& args);
int ImportCommand(const std::vector<std::string>& args);
int ImportLoraCommand(const std::vector<std::string>& args);
int ComposeCommand(const std::vector<std::string>& args);
int ServeCommand(const std::vector<std::string>& args);
int SwapCommand(const std::vector<std::string>& args);
int StatusCommand(const std::vector<std::string>& args);
int KeygenCommand(const std::vector<std::string>& args);
int LsCommand(const std::vector<std::string>& args);
int ShowCommand(const std::vector<std::string>& args);
int ModelsCommand(const std::vector<std::string>& args);
int TagCommand(const std::vector<std::string>& args);
int VerifyCommand(const std::vector<std::string>& args);
int ExportCommand(const std::vector<std::string>& args);
int RmCommand(const std::vector<std::string>& args);
int GcCommand(const std::vector<std::string>& args);
int SetVisibilityCommand(const std::vector<std::string>& args);
int GrowCommand(const std::vector<std::string>& args);
int EvalCommand(const std::vector<std::string>& args);
int ProfileCommand(const std::vector<std::string>& args);
int PruneCommand(const std::vector<std::string>& args);
int TokenizeCommand(const std::vector<std::string>& args);
int DevicesCommand(const std::vector<std::string>& args);

// Prints "brick <command>: error: <message>" on stderr (one line) and returns `code`.
int Fail(const std::string& command, const std::string& message, int code = 1);

}  // namespace brickrt::cli
