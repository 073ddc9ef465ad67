// brick gc: drop payload blobs that no brick references (left behind by brick rm); --vacuum shrinks the file.
#include <cstdio>

#include "cli/commands.h"
#include "cli/registry_access.h"
#include "core/json.h"

namespace brickrt::cli {

int GcCommand(const std::vector<std::string>& args) {
  const char* cmd = "gc";
  ArgParser a(cmd, "[--vacuum] [options]",
              "Drops every payload blob that no brick references. The freed pages are reused by later imports;\n"
              "the file itself only shrinks with --vacuum, which rewrites it (needs free disk space of about\n"
              "its size and waits for other writers).");
  a.Flag("vacuum", "rewrite the registry file so it shrinks");
  AddRegistryOption(a);
  a.Flag("json", "print {blobs, bytes, db_bytes_before, db_bytes_after, free_bytes} as one JSON object");
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  auto reg = OpenRegistry(a, /*writes=*/true);
  if (!reg.ok()) return Fail(cmd, reg.status().message());
  auto res = (*reg)->CollectGarbage(a.Has("vacuum"));
  if (!res.ok()) return Fail(cmd, res.status().message());
  if (a.Has("json")) {
    JsonValue o = JsonValue::MakeObject();
    o.Set("blobs", JsonValue::Int(res->blobs));
    o.Set("bytes", JsonValue::Int(res->bytes));
    o.Set("db_bytes_before", JsonValue::Int(res->db_bytes_before));
    o.Set("db_bytes_after", JsonValue::Int(res->db_bytes_after));
    o.Set("free_bytes", JsonValue::Int(res->free_bytes_after));
    std::printf("%s\n", DumpJson(o).c_str());
    return 0;
  }
  const auto mib = [](int64_t b) { return static_cast<double>(b) / (1 << 20); };
  std::printf("dropped %lld unreferenced blobs (%.2f MiB)\n", static_cast<long long>(res->blobs), mib(res->bytes));
  if (a.Has("vacuum")) {
    std::printf("registry %.2f MiB -> %.2f MiB\n", mib(res->db_bytes_before), mib(res->db_bytes_after));
  } else if (res->free_bytes_after > 0) {
    std::printf("%.2f MiB of free pages stay in the file (reused by imports; `brick gc --vacuum` shrinks it)\n",
                mib(res->free_bytes_after));
  }
  return 0;
}

}  // namespace brickrt::cli
