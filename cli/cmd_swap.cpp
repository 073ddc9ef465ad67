// brick swap / brick status: tell a coordinator (brick serve, role: coordinator) to serve another
// manifest, or ask what it serves.
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/json.h"
#include "node/serve_client.h"

namespace brickrt::cli {
namespace {

Result<std::unique_ptr<ServeClient>> ClientFor(const ArgParser& a, const std::string& endpoint) {
  BRICK_ASSIGN_OR_RETURN(int64_t timeout, a.GetInt("timeout-ms", 120000));
  if (timeout < 1) return InvalidArgument("--timeout-ms must be >= 1");
  return ServeClient::Connect(endpoint, std::chrono::milliseconds(timeout));
}

}  // namespace

int SwapCommand(const std::vector<std::string>& args) {
  const char* cmd = "swap";
  ArgParser a(cmd, "ENDPOINT --to MODEL [--now]",
              "Tells the coordinator at ENDPOINT to serve MODEL (NAME, NAME@VERSION or NAME:TAG): it loads it\n"
              "while the current one serves, then new requests run on it; sequences already running finish\n"
              "on the manifest they started on, unless --now (they continue on the new one). Waits until the\n"
              "swap is done; a failed load leaves the old manifest serving and is reported here.");
  a.Positional("ENDPOINT", "the coordinator, e.g. tcp://127.0.0.1:7100");
  a.Option("to", "MODEL", "the manifest to serve (a rollback is a swap to an earlier version)");
  a.Flag("now", "move running sequences to the new manifest too (each replays its history there)");
  a.Option("timeout-ms", "MS", "how long to wait for the swap to finish (default 120000)");
  a.Flag("json", "print one JSON object: manifest, previous, load_seconds, swap_seconds");
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  const auto endpoint = a.GetPositional(0);
  if (!endpoint) return Fail(cmd, "missing ENDPOINT (usage: brick swap ENDPOINT --to MODEL)", 2);
  if (!a.Has("to")) return Fail(cmd, "--to MODEL is required", 2);
  auto client = ClientFor(a, *endpoint);
  if (!client.ok()) return Fail(cmd, client.status().message(), 2);
  const auto t0 = std::chrono::steady_clock::now();
  auto reply = (*client)->Swap({0, a.Get("to"), a.Has("now")});
  if (!reply.ok()) return Fail(cmd, reply.status().message());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (a.Has("json")) {
    JsonValue o = JsonValue::MakeObject();
    o.Set("manifest", JsonValue::String(reply->manifest));
    o.Set("previous", JsonValue::String(reply->previous));
    o.Set("load_seconds", JsonValue::Number(reply->load_seconds));
    o.Set("swap_seconds", JsonValue::Number(seconds));
    std::printf("%s\n", DumpJson(o).c_str());
  } else {
    std::printf("serving %s (was %s; loaded in %.2f s)\n", reply->manifest.c_str(), reply->previous.c_str(),
                reply->load_seconds);
  }
  return 0;
}

int StatusCommand(const std::vector<std::string>& args) {
  const char* cmd = "status";
  ArgParser a(cmd, "ENDPOINT", "Asks the coordinator at ENDPOINT what it serves and how busy it is.");
  a.Positional("ENDPOINT", "the coordinator, e.g. tcp://127.0.0.1:7100");
  a.Option("timeout-ms", "MS", "how long to wait for the answer (default 120000)");
  a.Flag("json", "print one JSON object");
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  const auto endpoint = a.GetPositional(0);
  if (!endpoint) return Fail(cmd, "missing ENDPOINT (usage: brick status ENDPOINT)", 2);
  auto client = ClientFor(a, *endpoint);
  if (!client.ok()) return Fail(cmd, client.status().message(), 2);
  auto s = (*client)->Status();
  if (!s.ok()) return Fail(cmd, s.status().message());
  if (a.Has("json")) {
    JsonValue o = JsonValue::MakeObject();
    o.Set("manifest", JsonValue::String(s->manifest));
    o.Set("following", JsonValue::String(s->following));
    JsonValue running = JsonValue::MakeArray();
    for (const std::string& m : s->running) running.Append(JsonValue::String(m));
    o.Set("running", std::move(running));
    o.Set("sequences", JsonValue::Int(s->sequences));
    o.Set("queued", JsonValue::Int(s->queued));
    o.Set("swaps", JsonValue::Int(static_cast<int64_t>(s->swaps)));
    std::printf("%s\n", DumpJson(o).c_str());
  } else {
    std::printf("serving %s%s | %u sequence(s) running, %u queued | %llu swap(s)\n", s->manifest.c_str(),
                s->following.empty() ? "" : (" (following " + s->following + ")").c_str(), s->sequences, s->queued,
                static_cast<unsigned long long>(s->swaps));
  }
  return 0;
}

}  // namespace brickrt::cli
