// brick show: one brick in detail (tensors, digest, lineage, metadata).
#include <cstdio>

#include "cli/commands.h"
#include "cli/records_json.h"
#include "cli/registry_access.h"

namespace brickrt::cli {

int ShowCommand(const std::vector<std::string>& args) {
  const char* cmd = "show";
  ArgParser a(cmd, "NAME[@VERSION] [options]", "Shows one brick: its tensors, digest, size, visibility and lineage.");
  a.Positional("NAME[@VERSION]", "a brick, e.g. molm-350m/L3.mlp.E17 (latest) or molm-350m/L3.mlp.E17@2");
  AddRegistryOption(a);
  a.Flag("json", "print one JSON object");
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  const auto ref = a.GetPositional(0);
  if (!ref) return Fail(cmd, "missing brick reference (usage: brick show NAME[@VERSION])", 2);
  auto reg = OpenRegistry(a, /*writes=*/false);
  if (!reg.ok()) return Fail(cmd, reg.status().message());
  auto b = (*reg)->GetBrick(*ref);
  if (!b.ok()) return Fail(cmd, b.status().message());
  if (a.Has("json")) {
    std::printf("%s\n", DumpJson(BrickJson(*b, /*with_detail=*/true), 2).c_str());
    return 0;
  }
  std::printf("%s\n  kind        %s\n  layer       %s\n  index       %s\n  digest      %s\n  bytes       %lld\n"
              "  visibility  %s\n  parent      %s\n  created     %s\n  metadata    %s\n  tensors\n",
              b->Ref().c_str(), BrickKindName(b->kind), b->layer >= 0 ? std::to_string(b->layer).c_str() : "-",
              b->index >= 0 ? std::to_string(b->index).c_str() : "-", b->digest.c_str(),
              static_cast<long long>(b->bytes), VisibilityName(b->visibility),
              b->parent_id ? ("brick id " + std::to_string(*b->parent_id)).c_str() : "-", b->created_at.c_str(),
              b->metadata_json.c_str());
  for (const TensorRecord& t : b->tensors) {
    std::printf("    %-6s %-5s %s\n", t.name.c_str(), DTypeName(t.dtype), ShapeToString(t.shape).c_str());
  }
  return 0;
}

}  // namespace brickrt::cli
