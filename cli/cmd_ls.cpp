// brick ls: the bricks in the registry (latest version of each name unless --all-versions).
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <string_view>

#include "cli/commands.h"
#include "cli/records_json.h"
#include "cli/registry_access.h"

namespace brickrt::cli {
namespace {

// Natural order: digit runs compare as numbers, so L2 < L10 and E2 < E10; then by version.
bool NaturalLess(const BrickRecord& x, const BrickRecord& y) {
  const std::string &a = x.name, &b = y.name;
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t ie = i, je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je]))) ++je;
      const std::string_view da(a.data() + i, ie - i), db(b.data() + j, je - j);
      if (da.size() != db.size()) return da.size() < db.size();  // no leading zeros in brick names
      if (da != db) return da < db;
      i = ie;
      j = je;
      continue;
    }
    if (a[i] != b[j]) return a[i] < b[j];
    ++i;
    ++j;
  }
  if ((i == a.size()) != (j == b.size())) return i == a.size();
  return x.version < y.version;
}

}  // namespace

int LsCommand(const std::vector<std::string>& args) {
  const char* cmd = "ls";
  ArgParser a(cmd, "[--name GLOB] [--kind KIND] [options]",
              "Lists bricks: name@version, kind, layer, size, visibility and digest prefix.");
  a.Option("name", "GLOB", "only names matching GLOB (* and ?), e.g. 'molm-350m/L3.mlp.*'");
  a.Option("kind", "KIND", "embedding, norm, attn_router, attn_expert, mlp_router, mlp_expert, lm_head or lora");
  a.Flag("all-versions", "every version, not only the latest of each name");
  AddRegistryOption(a);
  a.Flag("json", "print a JSON array of {name, version, kind, layer, index, digest, bytes, visibility, created_at}");
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  BrickFilter filter;
  filter.name_glob = a.Get("name");
  filter.all_versions = a.Has("all-versions");
  if (a.Has("kind")) {
    filter.kind = ParseBrickKind(a.Get("kind"));
    if (!filter.kind) return Fail(cmd, "--kind '" + a.Get("kind") + "' is not a brick kind (see brick ls --help)", 2);
  }
  auto reg = OpenRegistry(a, /*writes=*/false);
  if (!reg.ok()) return Fail(cmd, reg.status().message());
  auto bricks = (*reg)->ListBricks(filter);
  if (!bricks.ok()) return Fail(cmd, bricks.status().message());
  std::sort(bricks->begin(), bricks->end(), NaturalLess);
  if (a.Has("json")) {
    JsonValue arr = JsonValue::MakeArray();
    for (const BrickRecord& b : *bricks) arr.Append(BrickJson(b, /*with_detail=*/false));
    std::printf("%s\n", DumpJson(arr).c_str());
    return 0;
  }
  for (const BrickRecord& b : *bricks) {
    std::printf("%-36s %-12s %5s %10.2f MiB  %-8s %.12s\n", b.Ref().c_str(), BrickKindName(b.kind),
                b.layer >= 0 ? std::to_string(b.layer).c_str() : "-", static_cast<double>(b.bytes) / (1 << 20),
                VisibilityName(b.visibility), b.digest.c_str());
  }
  return 0;
}

}  // namespace brickrt::cli
