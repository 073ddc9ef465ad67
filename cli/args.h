// ArgParser: declared flags and options for one subcommand, `--name value` or `--name=value`,
// short aliases, repeatable options, generated --help text. Unknown flags are errors.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace brickrt::cli {

class ArgParser {
 public:
  ArgParser(std::string command, std::string synopsis, std::string description);

  // A boolean switch: --name.
  void Flag(const std::string& name, const std::string& help);
  // An option with a value: --name VALUE (alias: "-n"). Repeatable options keep every value.
  void Option(const std::string& name, const std::string& value_name, const std::string& help,
              const std::string& alias = "", bool repeatable = false);
  // Positional arguments, in order.
  void Positional(const std::string& name, const std::string& help);

  // args: everything after the subcommand name. --help anywhere sets help_requested().
  Status Parse(const std::vector<std::string>& args);
  // Parse for a subcommand's entry point: nullopt to go on; otherwise the exit code to return now,
  // after printing the usage error (exit 2) or the --help text (exit 0).
  std::optional<int> ParseOrExit(const std::vector<std::string>& args);
  bool help_requested() const { return help_; }
  std::string Help() const;

  bool Has(const std::string& name) const;
  std::string Get(const std::string& name, const std::string& fallback = "") const;
  std::vector<std::string> GetAll(const std::string& name) const;
  std::optional<std::string> GetPositional(size_t i) const;

  // Typed getters: the error names the flag and the value.
  Result<int64_t> GetInt(const std::string& name, int64_t fallback) const;
  Result<double> GetDouble(const std::string& name, double fallback) const;

 private:
  struct Spec {
    std::string name, value_name, help, alias;
    bool takes_value = false;
    bool repeatable = false;
  };
  const Spec* Find(const std::string& flag) const;

  std::string command_, synopsis_, description_;
  std::vector<Spec> specs_;
  std::vector<std::pair<std::string, std::string>> positional_specs_;
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positionals_;
  bool help_ = false;
};

// "11,42,7" -> {11, 42, 7}; the error names the bad item.
Result<std::vector<int64_t>> ParseIntList(const std::string& text, const std::string& what);

}  // namespace brickrt::cli
