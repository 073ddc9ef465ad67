// brick keygen: a ZeroMQ CURVE key pair for a brick node or a coordinator (issue #5).
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "node/curve_keys.h"

namespace brickrt::cli {

int KeygenCommand(const std::vector<std::string>& args) {
  const char* cmd = "keygen";
  ArgParser a(cmd, "--out NAME.key",
              "Writes a new CURVE key pair: NAME.key (the secret key, mode 0600) and NAME.pub (the public key),\n"
              "each one line of 40 Z85 characters, and prints the public key. Existing files are never\n"
              "overwritten. A node config names its secret key and the public keys of the coordinators it\n"
              "admits (curve: {secret_key_file: node.key, allow: [coordinator.pub]}); see docs/protocol.md.");
  a.Option("out", "NAME.key", "the secret key file to write; the public key goes to NAME.pub");
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  const auto out = a.Get("out", "");
  if (out.empty()) return Fail(cmd, "missing --out NAME.key (usage: brick keygen --out NAME.key)", 2);
  auto keys = curve::GenerateKeyPair();
  if (!keys.ok()) return Fail(cmd, keys.status().message());
  const Status st = curve::WriteKeyPair(out, *keys);
  if (!st.ok()) return Fail(cmd, st.message());
  std::printf("%s\n", keys->public_key.c_str());
  std::fprintf(stderr, "brick keygen: wrote %s (secret, mode 0600) and %s (public)\n", out.c_str(),
               curve::PublicKeyPathFor(out).c_str());
  return 0;
}

}  // namespace brickrt::cli
