// libFuzzer target for the serving decoder (scripts/fuzz serve): the input becomes one frame
// (tests/fuzz/serve_fuzz_input.h) and is decoded; whatever decodes must re-encode to a frame that
// decodes to the same message, and whatever fails must fail with one printable line and, where the
// coordinator would answer, an error reply that decodes and carries the message.
#include <cstdio>
#include <cstdlib>

#include "node/serve_wire.h"
#include "tests/fuzz/serve_fuzz_input.h"

namespace {

[[noreturn]] void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "serve_fuzz: %s: %s\n", what, detail.c_str());
  std::abort();
}

bool OnePrintableLine(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < 0x20 || c >= 0x7f) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace brickrt::serve;
  const brickrt::fuzz::ServeFuzzInput input = brickrt::fuzz::SplitServeFuzzInput(data, size);
  brickrt::Result<Message> m = Decode(input.frame, input.limits);
  if (!m.ok()) {
    const std::string& why = m.status().message();
    if (!OnePrintableLine(why)) Fail("rejection is not one printable line", why);
    if (std::optional<Error> reply = ErrorReplyFor(input.frame, m.status(), input.limits)) {
      const brickrt::Result<Message> sent = Decode(Encode(*reply), ServeLimits{});
      if (!sent.ok()) Fail("an error reply does not decode", sent.status().ToString());
      if (!(sent.value() == Message(*reply))) Fail("an error reply changed on the way", why);
    }
    return 0;
  }
  // Re-encoding may grow a frame (strings the input shared are written once each): the frame limit
  // is not what is checked here.
  ServeLimits again = input.limits;
  again.max_frame_bytes = ServeLimits{}.max_frame_bytes;
  const brickrt::Result<Message> back = Decode(Encode(m.value()), again);
  if (!back.ok()) Fail("a decoded message does not re-decode", back.status().ToString());
  if (!(back.value() == m.value())) Fail("round trip changed the message", std::to_string(m.value().index()));
  return 0;
}
