// brick rm: remove a brick (one version or all of a name) or a model manifest; refused while used.
#include <cstdio>

#include "cli/commands.h"
#include "cli/registry_access.h"
#include "core/json.h"

namespace brickrt::cli {
namespace {

JsonValue Strings(const std::vector<std::string>& v) {
  JsonValue a = JsonValue::MakeArray();
  for (const std::string& s : v) a.Append(JsonValue::String(s));
  return a;
}

}  // namespace

int RmCommand(const std::vector<std::string>& args) {
  const char* cmd = "rm";
  ArgParser a(cmd, "REF [--force] [options]",
              "Removes from the registry:\n"
              "  MODEL/PART@VERSION  one brick version       MODEL/PART  every version of that brick\n"
              "  MODEL@VERSION       one model manifest, with the tags pointing at it (its bricks stay)\n"
              "A brick that a manifest uses is refused, naming the manifests. --force removes those manifests\n"
              "(and their tags) too, and lists them; nothing else is touched. Payload blobs stay in the file\n"
              "until `brick gc`. One transaction: on any error nothing is removed.");
  a.Positional("REF", "brick or manifest reference");
  a.Flag("force", "also remove every manifest that uses the brick(s)");
  a.Flag("dry-run", "print what would be removed, change nothing");
  AddRegistryOption(a);
  a.Flag("json", "print {bricks, manifests, tags} removed, as one JSON object");
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  const auto ref = a.GetPositional(0);
  if (!ref) return Fail(cmd, "missing reference (usage: brick rm REF)", 2);
  auto reg = OpenRegistry(a, /*writes=*/true);
  if (!reg.ok()) return Fail(cmd, reg.status().message());
  RemoveOptions opts;
  opts.force = a.Has("force");
  opts.dry_run = a.Has("dry-run");
  auto res = (*reg)->Remove(*ref, opts);
  if (!res.ok()) return Fail(cmd, res.status().message());
  if (a.Has("json")) {
    JsonValue o = JsonValue::MakeObject();
    o.Set("bricks", Strings(res->bricks));
    o.Set("manifests", Strings(res->manifests));
    o.Set("tags", Strings(res->tags));
    o.Set("dry_run", JsonValue::Bool(opts.dry_run));
    std::printf("%s\n", DumpJson(o).c_str());
    return 0;
  }
  const char* verb = opts.dry_run ? "would remove" : "removed";
  for (const std::string& m : res->manifests) std::printf("%s model %s\n", verb, m.c_str());
  for (const std::string& t : res->tags) std::printf("%s tag %s\n", verb, t.c_str());
  for (const std::string& b : res->bricks) std::printf("%s brick %s\n", verb, b.c_str());
  if (!opts.dry_run && !res->bricks.empty()) std::printf("(payloads stay until `brick gc`)\n");
  return 0;
}

}  // namespace brickrt::cli
