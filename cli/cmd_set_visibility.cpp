// brick set-visibility: mark a brick, or every brick of a model manifest, private or shared.
#include <cstdio>

#include "cli/commands.h"
#include "cli/registry_access.h"

namespace brickrt::cli {

int SetVisibilityCommand(const std::vector<std::string>& args) {
  const char* cmd = "set-visibility";
  ArgParser a(cmd, "REF private|shared [options]",
              "Sets the visibility of one brick (MODEL/PART = latest version, or MODEL/PART@VERSION) or of every\n"
              "brick of a model manifest (NAME, NAME@VERSION, NAME:TAG). Private bricks are not exported\n"
              "without --allow-private. Changes the record in place; the brick's version and payload stay.");
  a.Positional("REF", "brick or model reference");
  a.Positional("VISIBILITY", "private or shared");
  AddRegistryOption(a);
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  const auto ref = a.GetPositional(0), vis_text = a.GetPositional(1);
  if (!ref || !vis_text) return Fail(cmd, "usage: brick set-visibility REF private|shared", 2);
  const auto vis = ParseVisibility(*vis_text);
  if (!vis) return Fail(cmd, "visibility '" + *vis_text + "' must be private or shared", 2);
  auto reg = OpenRegistry(a, /*writes=*/true);
  if (!reg.ok()) return Fail(cmd, reg.status().message());
  auto res = (*reg)->SetVisibility(*ref, *vis);
  if (!res.ok()) return Fail(cmd, res.status().message());
  std::printf("%s: %zu bricks set %s, %d already %s\n", ref->c_str(), res->changed.size(), VisibilityName(*vis),
              res->unchanged, VisibilityName(*vis));
  return 0;
}

}  // namespace brickrt::cli
