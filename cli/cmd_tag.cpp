// brick tag: point a tag (e.g. stable) at a model manifest version; an existing tag moves.
#include <cstdio>

#include "cli/commands.h"
#include "cli/registry_access.h"

namespace brickrt::cli {

int TagCommand(const std::vector<std::string>& args) {
  const char* cmd = "tag";
  ArgParser a(cmd, "MODEL_REF TAG [options]",
              "Points TAG at a manifest (NAME, NAME@VERSION or NAME:OTHER_TAG); `brick run NAME:TAG` then uses it.");
  a.Positional("MODEL_REF", "the manifest to tag");
  a.Positional("TAG", "tag name (letters, digits, '.', '_', '-')");
  AddRegistryOption(a);
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  const auto ref = a.GetPositional(0), tag = a.GetPositional(1);
  if (!ref || !tag) return Fail(cmd, "usage: brick tag MODEL_REF TAG", 2);
  for (char c : *tag) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      return Fail(cmd, "tag '" + *tag + "' may only contain letters, digits, '.', '_' and '-'", 2);
  }
  auto reg = OpenRegistry(a, /*writes=*/true);
  if (!reg.ok()) return Fail(cmd, reg.status().message());
  if (Status st = (*reg)->Tag(*ref, *tag); !st.ok()) return Fail(cmd, st.message());
  auto m = (*reg)->ResolveModel(*ref);
  std::printf("%s:%s -> %s\n", m.ok() ? m->name.c_str() : ref->c_str(), tag->c_str(), m.ok() ? m->Ref().c_str() : "?");
  return 0;
}

}  // namespace brickrt::cli
