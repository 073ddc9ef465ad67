// libFuzzer target for the wire decoder (scripts/fuzz): the input is split into frames
// (tests/fuzz/fuzz_frames.h) and decoded; whatever decodes must re-encode to frames that decode to
// the same message, and whatever fails must fail with a one-line message and a sendable error reply.
#include <cstdio>
#include <cstdlib>

#include "node/wire.h"
#include "tests/fuzz/fuzz_frames.h"

namespace {

[[noreturn]] void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "wire_fuzz: %s: %s\n", what, detail.c_str());
  std::abort();
}

std::vector<std::string_view> Views(const std::vector<std::string>& frames) { return {frames.begin(), frames.end()}; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace brickrt::wire;
  const brickrt::fuzz::FuzzFrames input = brickrt::fuzz::SplitFuzzInput(data, size);
  const WireLimits limits;
  brickrt::Result<Message> m = Decode(input.frames, limits);
  if (!m.ok()) {
    const std::string& why = m.status().message();
    if (why.empty() || why.find('\n') != std::string::npos) Fail("rejection is not one line", why);
    if (std::optional<Error> reply = ErrorReplyFor(input.frames, m.status(), limits)) {
      brickrt::Result<Message> sent = Decode(Views(Encode(*reply)), limits);
      if (!sent.ok()) Fail("an error reply does not decode", sent.status().ToString());
    }
    return 0;
  }
  const std::vector<std::string> again = Encode(m.value());
  brickrt::Result<Message> back = Decode(Views(again), limits);
  if (!back.ok()) Fail("a decoded message does not re-decode", back.status().ToString());
  if (!(back.value() == m.value())) Fail("round trip changed the message", std::to_string(m.value().index()));
  return 0;
}
