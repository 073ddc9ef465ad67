// brick models: every manifest version in the registry (models, submodels and plugins), with its tags.
#include <cstdio>

#include "cli/commands.h"
#include "cli/records_json.h"
#include "cli/registry_access.h"

namespace brickrt::cli {

int ModelsCommand(const std::vector<std::string>& args) {
  const char* cmd = "models";
  ArgParser a(cmd, "[options]",
              "Lists manifests: NAME@VERSION, kind (model, or plugin: LoRA bricks for a base model), tags,\n"
              "layers, bricks, when, the base a submodel or plugin was made from, and the source.");
  AddRegistryOption(a);
  a.Flag("json",
         "print a JSON array of {name, version, ref, kind, base, tags, n_layer, bricks, created_at, source, tokenizer}");
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  auto reg = OpenRegistry(a, /*writes=*/false);
  if (!reg.ok()) return Fail(cmd, reg.status().message());
  auto models = (*reg)->ListModels();
  if (!models.ok()) return Fail(cmd, models.status().message());
  if (a.Has("json")) {
    JsonValue arr = JsonValue::MakeArray();
    for (const ManifestRecord& m : *models) arr.Append(ManifestJson(m));
    std::printf("%s\n", DumpJson(arr).c_str());
    return 0;
  }
  for (const ManifestRecord& m : *models) {
    std::string tags;
    for (const std::string& t : m.tags) tags += (tags.empty() ? "" : ",") + t;
    const std::string base = m.base.empty() ? "" : "base " + m.base + "  ";
    std::printf("%-28s %-6s %-16s %3lld layers %5zu bricks  %s  %s%s%s\n", m.Ref().c_str(), ManifestKindName(m.kind),
                tags.empty() ? "-" : tags.c_str(), static_cast<long long>(m.config.n_layer), m.brick_ids.size(),
                m.created_at.c_str(), base.c_str(), m.tokenizer.empty() ? "" : "tokenizer  ", m.source.c_str());
  }
  return 0;
}

}  // namespace brickrt::cli
