// Argument parsing for the brick subcommands.
#include "cli/args.h"

#include "cli/commands.h"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace brickrt::cli {

ArgParser::ArgParser(std::string command, std::string synopsis, std::string description)
    : command_(std::move(command)), synopsis_(std::move(synopsis)), description_(std::move(description)) {}

void ArgParser::Flag(const std::string& name, const std::string& help) {
  specs_.push_back({name, "", help, "", false, false});
}

void ArgParser::Option(const std::string& name, const std::string& value_name, const std::string& help,
                       const std::string& alias, bool repeatable) {
  specs_.push_back({name, value_name, help, alias, true, repeatable});
}

void ArgParser::Positional(const std::string& name, const std::string& help) { positional_specs_.emplace_back(name, help); }

const ArgParser::Spec* ArgParser::Find(const std::string& flag) const {
  for (const Spec& s : specs_)
    if (flag == "--" + s.name || (!s.alias.empty() && flag == s.alias)) return &s;
  return nullptr;
}

Status ArgParser::Parse(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    if (a == "--help" || a == "-h") {
      help_ = true;
      continue;
    }
    if (a.size() > 1 && a[0] == '-' && !(a.size() > 1 && (std::isdigit(static_cast<unsigned char>(a[1])) != 0))) {
      std::string value;
      bool inline_value = false;
      if (const size_t eq = a.find('='); eq != std::string::npos && a.rfind("--", 0) == 0) {
        value = a.substr(eq + 1);
        a = a.substr(0, eq);
        inline_value = true;
      }
      const Spec* s = Find(a);
      if (s == nullptr) return InvalidArgument("unknown option " + a + " (see brick " + command_ + " --help)");
      if (!s->takes_value) {
        if (inline_value) return InvalidArgument("option --" + s->name + " takes no value");
        values_[s->name].push_back("1");
        continue;
      }
      if (!inline_value) {
        if (i + 1 >= args.size()) return InvalidArgument("option --" + s->name + " needs a value (" + s->value_name + ")");
        value = args[++i];
      }
      auto& vals = values_[s->name];
      if (!vals.empty() && !s->repeatable) return InvalidArgument("option --" + s->name + " given twice");
      vals.push_back(value);
      continue;
    }
    positionals_.push_back(a);
  }
  if (!help_ && positionals_.size() > positional_specs_.size())
    return InvalidArgument("unexpected argument '" + positionals_[positional_specs_.size()] + "' (see brick " +
                           command_ + " --help)");
  return Status::Ok();
}

std::optional<int> ArgParser::ParseOrExit(const std::vector<std::string>& args) {
  if (Status st = Parse(args); !st.ok()) return Fail(command_, st.message(), 2);
  if (help_) {
    std::printf("%s", Help().c_str());
    return 0;
  }
  return std::nullopt;
}

std::string ArgParser::Help() const {
  std::ostringstream os;
  os << "usage: brick " << command_ << " " << synopsis_ << "\n\n" << description_ << "\n";
  if (!positional_specs_.empty()) {
    os << "\narguments:\n";
    for (const auto& [name, help] : positional_specs_) os << "  " << name << std::string(name.size() < 24 ? 24 - name.size() : 1, ' ') << help << "\n";
  }
  os << "\noptions:\n";
  for (const Spec& s : specs_) {
    std::string left = (s.alias.empty() ? "" : s.alias + ", ") + "--" + s.name + (s.takes_value ? " " + s.value_name : "");
    os << "  " << left << std::string(left.size() < 24 ? 24 - left.size() : 1, ' ') << s.help << "\n";
  }
  os << "  --help                  show this help\n";
  return os.str();
}

bool ArgParser::Has(const std::string& name) const { return values_.count(name) != 0; }

std::string ArgParser::Get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second.back();
}

std::vector<std::string> ArgParser::GetAll(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::optional<std::string> ArgParser::GetPositional(size_t i) const {
  if (i >= positionals_.size()) return std::nullopt;
  return positionals_[i];
}

Result<int64_t> ArgParser::GetInt(const std::string& name, int64_t fallback) const {
  if (!Has(name)) return fallback;
  const std::string v = Get(name);
  int64_t out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size())
    return InvalidArgument("--" + name + ": '" + v + "' is not an integer");
  return out;
}

Result<double> ArgParser::GetDouble(const std::string& name, double fallback) const {
  if (!Has(name)) return fallback;
  const std::string v = Get(name);
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (v.empty() || end != v.c_str() + v.size()) return InvalidArgument("--" + name + ": '" + v + "' is not a number");
  return d;
}

Result<std::vector<int64_t>> ParseIntList(const std::string& text, const std::string& what) {
  std::vector<int64_t> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    int64_t v = 0;
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || p != item.data() + item.size())
      return InvalidArgument(what + ": '" + item + "' is not an integer (expected a comma-separated list like 11,42,7)");
    out.push_back(v);
    start = end + 1;
  }
  return out;
}

}  // namespace brickrt::cli
