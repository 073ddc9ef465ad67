// brick export: a model manifest back to an HF checkpoint directory, tensors byte-identical to the import.
#include <cstdio>

#include "cli/commands.h"
#include "cli/registry_access.h"

namespace brickrt::cli {

int ExportCommand(const std::vector<std::string>& args) {
  const char* cmd = "export";
  ArgParser a(cmd, "MODEL_REF --out DIR [options]",
              "Writes the model (NAME, NAME@VERSION or NAME:TAG) in HF layout: config.json + model.safetensors,\n"
              "or shards + model.safetensors.index.json with --shard-bytes. Every payload is verified on the\n"
              "way; tensors are byte-identical to the imported checkpoint. A model with private bricks is\n"
              "refused unless --allow-private (private bricks are meant to stay on this device).");
  a.Positional("MODEL_REF", "the manifest to export");
  a.Option("out", "DIR", "output directory (created; must be new or empty)");
  a.Flag("allow-private", "export private bricks too");
  a.Option("shard-bytes", "N", "split the weights into shards of at most N bytes (default: one file)");
  AddRegistryOption(a);
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  const auto ref = a.GetPositional(0);
  if (!ref) return Fail(cmd, "missing model reference (usage: brick export MODEL_REF --out DIR)", 2);
  const std::string out = a.Get("out");
  if (out.empty()) return Fail(cmd, "--out DIR is required", 2);
  ExportOptions opts;
  opts.allow_private = a.Has("allow-private");
  auto shard = a.GetInt("shard-bytes", 0);
  if (!shard.ok()) return Fail(cmd, shard.status().message(), 2);
  if (*shard < 0 || (a.Has("shard-bytes") && *shard == 0)) return Fail(cmd, "--shard-bytes must be positive", 2);
  opts.max_shard_bytes = static_cast<uint64_t>(*shard);

  auto reg = OpenRegistry(a, /*writes=*/false);
  if (!reg.ok()) return Fail(cmd, reg.status().message());
  auto m = (*reg)->ResolveModel(*ref);
  if (!m.ok()) return Fail(cmd, m.status().message());
  if (Status st = (*reg)->ExportModel(*m, out, opts); !st.ok()) return Fail(cmd, st.message());
  std::printf("exported %s (%zu bricks) to %s\n", m->Ref().c_str(), m->brick_ids.size(), out.c_str());
  return 0;
}

}  // namespace brickrt::cli
