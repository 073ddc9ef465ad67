// brick serve: run a brick node (issue #5) from a node config until SIGINT or SIGTERM.
#include <signal.h>

#include <cstdio>
#include <filesystem>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/node_config.h"
#include "core/system.h"
#include "node/brick_server.h"
#include "node/curve_keys.h"
#include "registry/registry.h"

namespace brickrt::cli {

int ServeCommand(const std::vector<std::string>& args) {
  const char* cmd = "serve";
  ArgParser a(cmd, "NODE.yaml [options]",
              "Serves the shared MLP expert bricks of the node's own registry that its `serve:` globs select\n"
              "to coordinators (brick run SPEC.yaml with a `placement:` naming this node), until interrupted.\n"
              "Prints the bound endpoint once it serves. See configs/cloud-node.yaml.");
  a.Positional("NODE", "node config (YAML)");
  a.Option("registry", "PATH", "serve from this registry instead of the config's (default: the default registry)");
  a.Option("listen", "ENDPOINT", "bind this endpoint instead of the config's (tcp://127.0.0.1:* picks a free port)");
  a.Flag("insecure", "allow a non-loopback listen address without CURVE (clients are not authenticated)");
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  const auto path = a.GetPositional(0);
  if (!path) return Fail(cmd, "missing node config (usage: brick serve NODE.yaml)", 2);
  auto cfg = ReadNodeConfig(*path, a.Has("insecure"));
  if (!cfg.ok()) return Fail(cmd, cfg.status().message());
  BrickServerOptions o;
  // --registry, else the config's, else the default one every command uses ($BRICK_REGISTRY, ...).
  o.registry_path = a.Get("registry", cfg->registry.empty() ? Registry::DefaultPath() : cfg->registry);
  o.listen = a.Get("listen", cfg->listen);
  if (!a.Has("insecure") && !IsLoopbackEndpoint(o.listen) && !cfg->curve)
    return Fail(cmd,
                "--listen " + o.listen + " is reachable from other machines: configure `curve:` or pass --insecure");
  if (cfg->curve) {
    // A relative key file is relative to the node config's directory; each error names the file.
    const auto resolve = [&](const std::string& file) {
      const std::filesystem::path p(file);
      return p.is_absolute() ? file : (std::filesystem::path(*path).parent_path() / p).string();
    };
    BrickServerOptions::Curve c;
    auto secret = curve::ReadSecretKey(resolve(cfg->curve->secret_key_file));
    if (!secret.ok()) return Fail(cmd, *path + ": curve: secret_key_file: " + secret.status().message());
    c.secret_key = *secret;
    for (const std::string& file : cfg->curve->allow) {
      auto key = curve::ReadPublicKey(resolve(file));
      if (!key.ok()) return Fail(cmd, *path + ": curve: allow: " + key.status().message());
      c.allow.push_back(*key);
    }
    o.curve = std::move(c);
  }
  o.serve = cfg->serve;
  o.name = cfg->name.empty() ? o.listen : cfg->name;
  o.threads = cfg->threads > 0 ? cfg->threads : UsableCores();
  // Block the stop signals before any thread starts, so only sigwait below receives them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  auto server = BrickServer::Start(o);
  if (!server.ok()) return Fail(cmd, server.status().message());
  std::printf("serving %zu bricks on %s as node '%s'%s\n", (*server)->bricks().size(), (*server)->endpoint().c_str(),
              o.name.c_str(),
              o.curve ? (" with CURVE (" + std::to_string(o.curve->allow.size()) + " allowed client key(s))").c_str()
                      : "");
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  (*server)->Stop();
  std::fprintf(stderr, "brick serve: stopped (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
  return 0;
}

}  // namespace brickrt::cli
