// brick serve: run a node from its config until SIGINT or SIGTERM — a brick node (role: bricks, issue
// #5) or a coordinator (role: coordinator, issue #6).
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <functional>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/node_config.h"
#include "core/system.h"
#include "node/brick_server.h"
#include "node/coordinator.h"
#include "node/curve_keys.h"
#include "registry/registry.h"

namespace brickrt::cli {
namespace {

// Blocks the stop signals before any thread starts, so only sigwait receives them.
sigset_t BlockStopSignals() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  return stop;
}

int WaitAndStop(const char* cmd, sigset_t stop, const std::function<void()>& halt) {
  int sig = 0;
  sigwait(&stop, &sig);
  halt();
  std::fprintf(stderr, "brick %s: stopped (%s)\n", cmd, sig == SIGINT ? "SIGINT" : "SIGTERM");
  return 0;
}

int ServeCoordinator(const char* cmd, const ArgParser& a, const std::string& path, const NodeConfig& cfg) {
  CoordinatorOptions o;
  o.registry_path = a.Get("registry", cfg.registry.empty() ? Registry::DefaultPath() : cfg.registry);
  o.listen = a.Get("listen", cfg.listen);
  if (!a.Has("insecure") && !IsLoopbackEndpoint(o.listen))
    return Fail(cmd, "--listen " + o.listen + " is reachable from other machines; a coordinator has no CURVE yet: "
                     "bind loopback, or pass --insecure");
  o.name = cfg.name.empty() ? o.listen : cfg.name;
  o.model = cfg.model;
  if (!cfg.spec.empty()) {  // relative to the config's directory
    const std::filesystem::path p(cfg.spec);
    o.spec_path = p.is_absolute() ? cfg.spec : (std::filesystem::path(path).parent_path() / p).string();
  }
  o.max_batch = cfg.max_batch;
  o.device = cfg.device;
  o.max_context = cfg.max_context;
  o.max_queue = cfg.max_queue;
  o.threads = cfg.threads > 0 ? cfg.threads : UsableCores();
  const sigset_t stop = BlockStopSignals();
  auto coordinator = Coordinator::Start(o);
  if (!coordinator.ok()) return Fail(cmd, coordinator.status().message());
  std::printf("serving %s on %s as coordinator '%s'%s\n", (*coordinator)->manifest_at_start().c_str(),
              (*coordinator)->endpoint().c_str(), o.name.c_str(),
              (*coordinator)->following().empty() ? "" : (" (following " + (*coordinator)->following() + ")").c_str());
  std::fflush(stdout);
  return WaitAndStop(cmd, stop, [&] { (*coordinator)->Stop(); });
}

}  // namespace

int ServeCommand(const std::vector<std::string>& args) {
  const char* cmd = "serve";
  ArgParser a(cmd, "NODE.yaml [options]",
              "role: bricks — serves the shared MLP expert bricks of the node's own registry that its `serve:`\n"
              "globs select to coordinators (brick run SPEC.yaml with a `placement:` naming this node).\n"
              "role: coordinator — holds a model (`model:`, following NAME:TAG, or `spec:`) and answers generate\n"
              "requests (brick run --server), swapping models on `brick swap` or a tag move.\n"
              "Runs until interrupted; prints the bound endpoint once it serves. See configs/cloud-node.yaml,\n"
              "configs/coordinator.yaml.");
  a.Positional("NODE", "node config (YAML)");
  a.Option("registry", "PATH", "serve from this registry instead of the config's (default: the default registry)");
  a.Option("listen", "ENDPOINT", "bind this endpoint instead of the config's (tcp://127.0.0.1:* picks a free port)");
  a.Flag("insecure", "allow a non-loopback listen address without CURVE (clients are not authenticated)");
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  const auto path = a.GetPositional(0);
  if (!path) return Fail(cmd, "missing node config (usage: brick serve NODE.yaml)", 2);
  auto cfg = ReadNodeConfig(*path, a.Has("insecure"));
  if (!cfg.ok()) return Fail(cmd, cfg.status().message());
  if (cfg->role == "coordinator") return ServeCoordinator(cmd, a, *path, *cfg);
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
  const sigset_t stop = BlockStopSignals();
  auto server = BrickServer::Start(o);
  if (!server.ok()) return Fail(cmd, server.status().message());
  std::printf("serving %zu bricks on %s as node '%s'%s\n", (*server)->bricks().size(), (*server)->endpoint().c_str(),
              o.name.c_str(),
              o.curve ? (" with CURVE (" + std::to_string(o.curve->allow.size()) + " allowed client key(s))").c_str()
                      : "");
  std::fflush(stdout);
  return WaitAndStop(cmd, stop, [&] { (*server)->Stop(); });
}

}  // namespace brickrt::cli
