// --registry resolution shared by the registry subcommands.
#include "cli/registry_access.h"

#include <cstdlib>

namespace brickrt::cli {

void AddRegistryOption(ArgParser& a) {
  a.Option("registry", "PATH", "registry file (default: $BRICK_REGISTRY, else ~/.local/share/brickrt/registry.db)");
}

Result<std::unique_ptr<Registry>> OpenRegistry(const ArgParser& a, bool writes, int busy_timeout_ms) {
  const char* env = std::getenv("BRICK_REGISTRY");
  const bool named = a.Has("registry") || (env != nullptr && *env != '\0');
  OpenOptions opts;
  opts.create = writes || !named;
  opts.busy_timeout_ms = busy_timeout_ms;
  return Registry::Open(a.Has("registry") ? a.Get("registry") : Registry::DefaultPath(), opts);
}

}  // namespace brickrt::cli
