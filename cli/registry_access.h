// Opening the registry a subcommand works on: --registry PATH, else $BRICK_REGISTRY, else the
// default file in the user's data directory (created on first use).
#pragma once

#include <memory>
#include <string>

#include "cli/args.h"
#include "registry/registry.h"

namespace brickrt::cli {

// Adds the --registry option to a subcommand's parser.
void AddRegistryOption(ArgParser& a);

// writes: the command changes the registry. The default registry is created on first use by any
// command; an explicitly named one (--registry or $BRICK_REGISTRY) only by a command that writes, so
// a typo in a path is an error rather than a new empty registry.
// busy_timeout_ms: how long a write waits for another process's write to finish before failing.
Result<std::unique_ptr<Registry>> OpenRegistry(const ArgParser& a, bool writes, int busy_timeout_ms = 5000);

}  // namespace brickrt::cli
