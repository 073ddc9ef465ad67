// The serving codec (schemas/serve.fbs): every message round-trips at any alignment; every rejection
// (short, long, random, cut and mutated frames, another version, sizes past ServeLimits, bad names and
// sampling values) is one printable line that never echoes the frame; ErrorReplyFor answers requests
// whose header verifies, with their id, and never a reply.
#include "node/serve_wire.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/rng.h"
#include "tests/fuzz/serve_fuzz_input.h"
// Frames the encoder never writes (a field or the body absent, an unknown body type) are built with
// the generated code directly.
#include "schemas/serve_generated.h"

namespace brickrt::serve {
namespace {

GenerateRequest FullGenerate() {
  GenerateRequest g;
  g.request_id = 0x1122334455667788ull;
  g.prompt = {3, 1, 4, 1, 5, 9, 2, 6, 0, 2147483647};
  g.max_new_tokens = 40;
  g.temperature = 0.75f;
  g.top_k = 50;
  g.top_p = 0.9f;
  g.seed = ~uint64_t{0};
  g.stop_at_eos = false;
  return g;
}

StatusReply FullStatus() { return StatusReply{7, "m@2", "m:prod", {"m@2", "m@1"}, 5, 3, 12}; }

std::vector<Message> AllMessages() {
  return {FullGenerate(),
          GenerateRequest{0, {0}},  // defaults
          GenerateReply{9, "m@1", {17, 0, 256}, 0.001, 0.25, 1.5},
          GenerateReply{10, "m@1", {}},  // nothing generated (max_new_tokens 0)
          SwapRequest{11, "molm:stable", true},
          SwapRequest{12, "molm@3"},
          SwapReply{13, "molm@3", "molm@2", 0.5},
          SwapReply{14, "molm@3", ""},  // no previous
          StatusRequest{15},
          FullStatus(),
          StatusReply{16, "m@1"},  // not following, nothing running
          Error{17, ErrorCode::kLoadFailed, "swap to m@3 failed; still serving m@2: brick 'L0.mlp.E1' is missing"},
          Error{0, ErrorCode::kInternal, ""}};
}

// A rejection's message: one non-empty line of printable ASCII (so a frame's bytes are never echoed).
void ExpectOneLine(const Status& st) {
  const std::string& m = st.message();
  EXPECT_FALSE(m.empty());
  for (char c : m) {
    ASSERT_TRUE(c >= 0x20 && c < 0x7f) << "byte " << int(static_cast<uint8_t>(c)) << " in: " << m;
  }
}

void ExpectRejected(const Result<Message>& r, StatusCode code, const std::string& substring) {
  ASSERT_FALSE(r.ok()) << "accepted; wanted: " << substring;
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  EXPECT_NE(r.status().message().find(substring), std::string::npos) << r.status().ToString();
  ExpectOneLine(r.status());
}

// The Error a coordinator would answer `frame` with.
std::optional<Error> ReplyTo(const std::string& frame, const ServeLimits& limits = {}) {
  Result<Message> r = Decode(frame, limits);
  EXPECT_FALSE(r.ok());
  return r.ok() ? std::nullopt : ErrorReplyFor(frame, r.status(), limits);
}

std::string Finish(flatbuffers::FlatBufferBuilder& b, flatbuffers::Offset<fb::Header> h) {
  b.Finish(h, fb::HeaderIdentifier());
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

TEST(ServeWireTest, EveryMessageRoundTripsAtAnyAlignment) {
  for (const Message& m : AllMessages()) {
    const std::string frame = Encode(m);
    for (size_t offset = 0; offset < 8; ++offset) {
      const std::string buf = std::string(offset, 'x') + frame;
      Result<Message> back = Decode(std::string_view(buf).substr(offset), {});
      ASSERT_TRUE(back.ok()) << "message " << m.index() << " at offset " << offset << ": " << back.status().ToString();
      EXPECT_TRUE(back.value() == m) << "message " << m.index() << " at offset " << offset;
    }
    EXPECT_EQ(RequestIdOf(m), RequestIdOf(Decode(frame, {}).value()));
  }
  // Every error code.
  for (uint16_t c = 0; c <= static_cast<uint16_t>(ErrorCode::kUnavailable); ++c) {
    const Error e{c, static_cast<ErrorCode>(c), "code " + std::to_string(c)};
    Result<Message> back = Decode(Encode(e), {});
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_TRUE(back.value() == Message(e));
  }
}

TEST(ServeWireTest, FramesTooShortTooLargeOrForeignAreRejected) {
  ExpectRejected(Decode("", {}), StatusCode::kInvalidArgument, "message of 0 bytes is too short");
  ExpectRejected(Decode("BRKS123", {}), StatusCode::kInvalidArgument, "message of 7 bytes is too short");
  ExpectRejected(Decode("12345678", {}), StatusCode::kInvalidArgument, "no \"BRKS\" identifier");
  const std::string frame = Encode(FullGenerate());
  std::string wire = frame;
  std::memcpy(wire.data() + 4, "BRKW", 4);  // a brick-node frame sent to a coordinator
  ExpectRejected(Decode(wire, {}), StatusCode::kInvalidArgument, "not a brickrt serving message");
  EXPECT_FALSE(ErrorReplyFor(wire, Decode(wire, {}).status(), {}).has_value());

  // Past the frame limit: rejected before anything else is looked at, and not answered.
  const ServeLimits limits;
  std::string huge = frame + std::string(limits.max_frame_bytes + 1 - frame.size(), '\0');
  ExpectRejected(Decode(huge, limits), StatusCode::kOutOfRange,
                 "message of 1048577 bytes exceeds the limit of 1048576");
  EXPECT_FALSE(ReplyTo(huge).has_value());
  huge.pop_back();  // exactly at the limit: trailing bytes are ignored
  EXPECT_TRUE(Decode(huge, limits).ok());
  ServeLimits small;
  small.max_frame_bytes = frame.size() - 1;
  ExpectRejected(Decode(frame, small), StatusCode::kOutOfRange,
                 "exceeds the limit of " + std::to_string(frame.size() - 1));

  // Identifier right, the rest nonsense.
  std::string fake(48, '\xff');
  const uint32_t root = 8;
  std::memcpy(fake.data(), &root, 4);
  std::memcpy(fake.data() + 4, "BRKS", 4);
  ExpectRejected(Decode(fake, {}), StatusCode::kInvalidArgument, "failed FlatBuffers verification");
  EXPECT_FALSE(ReplyTo(fake).has_value());
}

TEST(ServeWireTest, EveryTruncationIsRejected) {
  int cuts = 0;
  for (const Message& m : AllMessages()) {
    const std::string frame = Encode(m);
    for (size_t n = 0; n < frame.size(); ++n) {
      Result<Message> r = Decode(std::string_view(frame).substr(0, n), {});
      if (r.ok()) {  // only the padding after the last string went
        EXPECT_EQ(frame.find_first_not_of('\0', n), std::string::npos) << "cut to " << n << " of " << frame.size();
        EXPECT_TRUE(r.value() == m);
        continue;
      }
      ExpectOneLine(r.status());
      // A cut frame's header does not verify: nothing to answer.
      EXPECT_FALSE(ErrorReplyFor(std::string_view(frame).substr(0, n), r.status(), {}).has_value());
      ++cuts;
    }
  }
  EXPECT_GT(cuts, 1000);
}

TEST(ServeWireTest, AnotherProtocolVersionSaysBothAndIsAnsweredWithTheRequestId) {
  const GenerateRequest g = FullGenerate();
  const std::string v2 = Encode(g, 2);
  ExpectRejected(Decode(v2, {}), StatusCode::kUnsupported, "client speaks protocol 2, this brickrt speaks protocol 1");
  std::optional<Error> reply = ReplyTo(v2);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->code, ErrorCode::kVersionMismatch);
  EXPECT_EQ(reply->request_id, g.request_id);
  EXPECT_EQ(reply->message, "client speaks protocol 2, this brickrt speaks protocol 1");
  Result<Message> sent = Decode(Encode(*reply), {});  // what the client reads: the coordinator's version
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  EXPECT_TRUE(sent.value() == Message(*reply));

  // Version 0 (a frame from nothing that speaks this protocol) and a far-future one.
  ExpectRejected(Decode(Encode(StatusRequest{5}, 0), {}), StatusCode::kUnsupported, "client speaks protocol 0");
  const std::string v_max = Encode(SwapRequest{6, "m@2"}, std::numeric_limits<uint32_t>::max());
  ExpectRejected(Decode(v_max, {}), StatusCode::kUnsupported, "client speaks protocol 4294967295");
  reply = ReplyTo(v_max);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->code, ErrorCode::kVersionMismatch);
  EXPECT_EQ(reply->request_id, 6u);

  // A reply of another version: the client sees who speaks what, and nobody answers it.
  const std::string reply_v3 = Encode(GenerateReply{8, "m@1", {1}}, 3);
  ExpectRejected(Decode(reply_v3, {}), StatusCode::kUnsupported,
                 "coordinator speaks protocol 3, this brickrt speaks protocol 1");
  EXPECT_FALSE(ReplyTo(reply_v3).has_value());
}

TEST(ServeWireTest, SizesPastTheLimitsAreTooLarge) {
  ServeLimits limits;
  limits.max_prompt_tokens = 4;
  limits.max_new_tokens = 100;
  GenerateRequest g{21, {1, 2, 3, 4}, 100};
  EXPECT_TRUE(Decode(Encode(g), limits).ok());  // exactly at both limits
  g.prompt.push_back(5);
  std::string frame = Encode(g);
  ExpectRejected(Decode(frame, limits), StatusCode::kOutOfRange, "prompt of 5 tokens exceeds the limit of 4");
  std::optional<Error> reply = ReplyTo(frame, limits);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->code, ErrorCode::kTooLarge);
  EXPECT_EQ(reply->request_id, 21u);
  EXPECT_EQ(reply->message, "prompt of 5 tokens exceeds the limit of 4");

  g = GenerateRequest{22, {1}, 101};
  frame = Encode(g);
  ExpectRejected(Decode(frame, limits), StatusCode::kOutOfRange, "max_new_tokens 101 exceeds the limit of 100");
  reply = ReplyTo(frame, limits);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->code, ErrorCode::kTooLarge);
  EXPECT_EQ(reply->request_id, 22u);
  g.max_new_tokens = std::numeric_limits<uint32_t>::max();
  ExpectRejected(Decode(Encode(g), {}), StatusCode::kOutOfRange,
                 "max_new_tokens 4294967295 exceeds the limit of 65536");
  // The default prompt limit.
  g = GenerateRequest{23, std::vector<int32_t>((size_t{1} << 16) + 1, 7), 1};
  ExpectRejected(Decode(Encode(g), {}), StatusCode::kOutOfRange, "prompt of 65537 tokens exceeds the limit of 65536");

  // Names, lists and messages in replies: rejected, never answered.
  const std::string long_name(257, 'n');
  ExpectRejected(Decode(Encode(SwapRequest{24, long_name}), {}), StatusCode::kOutOfRange,
                 "swap target of 257 bytes exceeds the limit of 256");
  EXPECT_TRUE(Decode(Encode(SwapRequest{24, long_name.substr(1)}), {}).ok());
  const std::string big_reply = Encode(GenerateReply{25, "m@1", {1, 2, 3, 4, 5}});
  ExpectRejected(Decode(big_reply, limits), StatusCode::kOutOfRange, "generated of 5 tokens exceeds the limit of 4");
  EXPECT_FALSE(ReplyTo(big_reply, limits).has_value());
  StatusReply s = FullStatus();
  s.running.assign(1025, "m@1");
  ExpectRejected(Decode(Encode(s), {}), StatusCode::kOutOfRange, "1025 running manifests exceed the limit of 1024");
  ExpectRejected(Decode(Encode(Error{26, ErrorCode::kInternal, std::string(4097, 'e')}), {}), StatusCode::kOutOfRange,
                 "error message of 4097 bytes exceeds the limit of 4096");
}

TEST(ServeWireTest, BadNamesAndSamplingValuesAreInvalid) {
  for (const std::string& bad : {std::string("two words"), std::string("m@1\n"), std::string("m\t1"),
                                 std::string("m\x7f"), std::string("a\0b", 3), std::string("\x01")}) {
    const std::string frame = Encode(SwapRequest{31, bad});
    Result<Message> r = Decode(frame, {});
    ExpectRejected(r, StatusCode::kInvalidArgument, "swap target has a space or control byte at offset");
    std::optional<Error> reply = ErrorReplyFor(frame, r.status(), {});
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->code, ErrorCode::kMalformed);
    EXPECT_EQ(reply->request_id, 31u);
  }
  ExpectRejected(Decode(Encode(SwapRequest{32, ""}), {}), StatusCode::kInvalidArgument, "swap target is missing");
  // Names reach log lines and error replies: UTF-8 only (registry names may be any UTF-8).
  ExpectRejected(Decode(Encode(SwapRequest{33, "no\xebuch@3"}), {}), StatusCode::kInvalidArgument,
                 "swap target is not valid UTF-8");
  EXPECT_TRUE(Decode(Encode(SwapRequest{34, "caf\xc3\xa9@2"}), {}).ok());
  ExpectRejected(Decode(Encode(GenerateReply{33, "", {1}}), {}), StatusCode::kInvalidArgument, "manifest is missing");
  ExpectRejected(Decode(Encode(SwapReply{34, "m@2", "m @1"}), {}), StatusCode::kInvalidArgument,
                 "previous has a space");
  StatusReply s = FullStatus();
  s.following = "m:\x1b[31m";
  ExpectRejected(Decode(Encode(s), {}), StatusCode::kInvalidArgument,
                 "following has a space or control byte at offset 2");
  s = FullStatus();
  s.running.push_back("");
  ExpectRejected(Decode(Encode(s), {}), StatusCode::kInvalidArgument, "running manifest is missing");

  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (float t : {nan, inf, -inf}) {
    GenerateRequest g = FullGenerate();
    g.temperature = t;
    const std::string frame = Encode(g);
    Result<Message> r = Decode(frame, {});
    ExpectRejected(r, StatusCode::kInvalidArgument, "temperature and top_p must be finite");
    std::optional<Error> reply = ErrorReplyFor(frame, r.status(), {});
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->request_id, g.request_id);
    EXPECT_EQ(reply->code, ErrorCode::kMalformed);
    g = FullGenerate();
    g.top_p = t;
    ExpectRejected(Decode(Encode(g), {}), StatusCode::kInvalidArgument, "temperature and top_p must be finite");
  }
  GenerateRequest g = FullGenerate();
  g.prompt.clear();
  ExpectRejected(Decode(Encode(g), {}), StatusCode::kInvalidArgument, "prompt is empty");
  std::optional<Error> reply = ReplyTo(Encode(g));
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->request_id, g.request_id);

  for (double t : {-1.0, static_cast<double>(nan), static_cast<double>(inf)}) {
    ExpectRejected(Decode(Encode(GenerateReply{35, "m@1", {1}, t}), {}), StatusCode::kInvalidArgument,
                   "queue_seconds is not a finite time");
    ExpectRejected(Decode(Encode(SwapReply{36, "m@1", "", t}), {}), StatusCode::kInvalidArgument,
                   "load_seconds is not a finite time");
  }
}

TEST(ServeWireTest, ErrorsAreCheckedAndMadeSafe) {
  ExpectRejected(Decode(Encode(Error{41, static_cast<ErrorCode>(99), "x"}), {}), StatusCode::kInvalidArgument,
                 "unknown error code 99");
  // Whatever a peer puts in an error message, the receiver gets one line.
  Result<Message> e = Decode(Encode(Error{42, ErrorCode::kInternal, "two\nlines\r\x1b"}), {});
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(std::get<Error>(e.value()).message, "two lines  ");
  const Error made = MakeError(43, ErrorCode::kInternal, "a\nb" + std::string(3000, 'z'));
  EXPECT_EQ(made.message.size(), 1024u);
  EXPECT_EQ(made.message.substr(0, 4), "a bz");
  EXPECT_TRUE(Decode(Encode(made), {}).ok());
  // A cut never leaves half a character.
  const Error cut = MakeError(44, ErrorCode::kInternal, std::string(1023, 'x') + "\xe6\x97\xa5");
  EXPECT_EQ(cut.message, std::string(1023, 'x'));

  EXPECT_EQ(ToStatus(Error{1, ErrorCode::kTooLarge, "big"}, "coordinator at x").code(), StatusCode::kOutOfRange);
  EXPECT_EQ(ToStatus(Error{1, ErrorCode::kVersionMismatch, "v"}, "c").code(), StatusCode::kUnsupported);
  EXPECT_EQ(ToStatus(Error{1, ErrorCode::kLoadFailed, "l"}, "c").message(), "c: l");
}

TEST(ServeWireTest, RepliesAreNeverAnswered) {
  // Every reply kind, broken so that it fails to decode, and readable ones of another version.
  std::vector<std::string> frames = {Encode(GenerateReply{51, "", {1}}),
                                     Encode(GenerateReply{52, "m@1", {1}, -1.0}),
                                     Encode(SwapReply{53, "bad name", "m@1"}),
                                     Encode(StatusReply{54, "m@1", "x y"}),
                                     Encode(Error{55, static_cast<ErrorCode>(200), "?"}),
                                     Encode(Error{56, ErrorCode::kInternal, "old"}, 2),
                                     Encode(StatusReply{57, "m@1"}, 9)};
  for (const std::string& f : frames) {
    Result<Message> r = Decode(f, {});
    ASSERT_FALSE(r.ok());
    ExpectOneLine(r.status());
    EXPECT_FALSE(ErrorReplyFor(f, r.status(), {}).has_value()) << r.status().message();
  }
  EXPECT_FALSE(ErrorReplyFor("", InvalidArgument("x"), {}).has_value());
}

// Frames the encoder never writes: a header without a body, a body type with its table missing (the
// FlatBuffers verifier accepts an absent union value), an unknown body type, absent vectors.
TEST(ServeWireTest, AbsentFieldsAndUnknownBodiesAreRejected) {
  for (uint8_t type = 0; type <= 9; ++type) {
    flatbuffers::FlatBufferBuilder b;
    const std::string frame = Finish(b, fb::CreateHeader(b, kProtocolVersion, 60 + type, static_cast<fb::Body>(type)));
    Result<Message> r = Decode(frame, {});
    ASSERT_FALSE(r.ok()) << "body type " << int(type);
    ExpectOneLine(r.status());
    EXPECT_NE(r.status().message().find(type == 0 ? "empty message" : "message type has no body"), std::string::npos)
        << r.status().message();
    std::optional<Error> reply = ErrorReplyFor(frame, r.status(), {});
    const bool is_reply = type == 2 || type == 4 || type == 6 || type == 7;
    EXPECT_EQ(reply.has_value(), !is_reply) << "body type " << int(type);
    if (reply) {
      EXPECT_EQ(reply->request_id, 60u + type);
    }
  }
  {
    flatbuffers::FlatBufferBuilder b;
    auto body = fb::CreateGenerateRequest(b);  // no prompt
    ExpectRejected(
        Decode(Finish(b, fb::CreateHeader(b, kProtocolVersion, 70, fb::Body::GenerateRequest, body.Union())), {}),
        StatusCode::kInvalidArgument, "prompt is empty");
  }
  {
    flatbuffers::FlatBufferBuilder b;
    auto manifest = b.CreateString("m@1");
    auto body = fb::CreateGenerateReply(b, manifest);  // nothing generated: an absent vector is empty
    Result<Message> r =
        Decode(Finish(b, fb::CreateHeader(b, kProtocolVersion, 71, fb::Body::GenerateReply, body.Union())), {});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r.value() == Message(GenerateReply{71, "m@1", {}}));
  }
  {
    flatbuffers::FlatBufferBuilder b;
    auto body = fb::CreateSwapRequest(b);  // no target
    ExpectRejected(
        Decode(Finish(b, fb::CreateHeader(b, kProtocolVersion, 72, fb::Body::SwapRequest, body.Union())), {}),
        StatusCode::kInvalidArgument, "swap target is missing");
  }
  {
    flatbuffers::FlatBufferBuilder b;
    auto body = fb::CreateError(b, fb::ErrorCode::NotFound);  // no message
    Result<Message> r = Decode(Finish(b, fb::CreateHeader(b, kProtocolVersion, 73, fb::Body::Error, body.Union())), {});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r.value() == Message(Error{73, ErrorCode::kNotFound, ""}));
  }
}

// Decodes `frame` (which may be anything) and checks the contract; returns whether it was accepted.
bool CheckOne(std::string_view frame) {
  Result<Message> m = Decode(frame, {});
  if (!m.ok()) {
    ExpectOneLine(m.status());
    if (std::optional<Error> reply = ErrorReplyFor(frame, m.status(), {})) {
      EXPECT_EQ(reply->message, m.status().message().substr(0, 1024));
      Result<Message> sent = Decode(Encode(*reply), {});
      EXPECT_TRUE(sent.ok()) << sent.status().ToString();
      if (sent.ok()) {
        EXPECT_TRUE(sent.value() == Message(*reply));
      }
    }
    return false;
  }
  Result<Message> back = Decode(Encode(m.value()), {});
  EXPECT_TRUE(back.ok()) << back.status().ToString();
  if (back.ok()) {
    EXPECT_TRUE(back.value() == m.value()) << "message " << m.value().index();
  }
  return true;
}

// Every single-byte change of a few frames, at every position (to every other value): each decodes to
// a valid message or fails cleanly. Run under ASan/UBSan to see reads past the frame.
TEST(ServeWireTest, EverySingleByteMutationDecodesOrFailsCleanly) {
  const std::vector<Message> messages = {FullGenerate(), SwapRequest{11, "molm:stable", true}, StatusRequest{15},
                                         FullStatus(), Error{17, ErrorCode::kLoadFailed, "x"}};
  int total = 0, accepted = 0;
  for (const Message& m : messages) {
    const std::string frame = Encode(m);
    for (size_t i = 0; i < frame.size(); ++i) {
      std::string mutated = frame;
      for (int v = 0; v < 256; ++v) {
        if (static_cast<uint8_t>(frame[i]) == v) continue;
        mutated[i] = static_cast<char>(v);
        accepted += CheckOne(mutated);
        ++total;
      }
    }
  }
  EXPECT_GT(total, 50000);
  EXPECT_LT(accepted, total);
  std::printf("%d single-byte mutations, %d decoded\n", total, accepted);
}

TEST(ServeWireTest, ThousandsOfRandomAndMutatedFramesAreRejectedCleanly) {
  Rng rng(2025);
  auto below = [&rng](size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng.Next() % n); };
  int rejected = 0, total = 0;
  // Random bytes; half carry the identifier, a quarter also a root offset inside the frame.
  for (int i = 0; i < 4000; ++i) {
    std::string f(below(300), '\0');
    for (char& c : f) c = static_cast<char>(rng.Next());
    if (i % 2 == 0 && f.size() >= 8) std::memcpy(f.data() + 4, "BRKS", 4);
    if (i % 4 == 0 && f.size() >= 12) {
      const uint32_t root = static_cast<uint32_t>(8 + below(f.size() - 8));
      std::memcpy(f.data(), &root, 4);
    }
    rejected += !CheckOne(f);
    ++total;
  }
  // Valid frames with several edits: flipped bits, overwritten bytes, cut, extended, spliced.
  const std::vector<Message> messages = AllMessages();
  for (int i = 0; i < 12000; ++i) {
    std::string f = Encode(messages[below(messages.size())]);
    const size_t edits = 1 + below(4);
    for (size_t e = 0; e < edits; ++e) {
      switch (below(6)) {
        case 0:
        case 1:
          if (!f.empty()) f[below(f.size())] ^= static_cast<char>(1u << below(8));
          break;
        case 2:
          if (!f.empty()) f[below(f.size())] = static_cast<char>(rng.Next());
          break;
        case 3:
          f.resize(below(f.size() + 1));
          break;
        case 4:
          f.append(1 + below(8), static_cast<char>(rng.Next()));
          break;
        case 5: {  // a piece of another message copied over this one
          const std::string other = Encode(messages[below(messages.size())]);
          const size_t at = below(f.size()), from = below(other.size()), n = below(16);
          for (size_t k = 0; k < n && at + k < f.size() && from + k < other.size(); ++k) f[at + k] = other[from + k];
          break;
        }
      }
    }
    rejected += !CheckOne(f);
    ++total;
  }
  EXPECT_GT(rejected, total / 2) << rejected << " of " << total;
  std::printf("%d random and mutated frames, %d rejected\n", total, rejected);
}

// The seed corpus of tests/fuzz/serve_fuzz.cpp: every message above, aligned and not, so the fuzzer
// starts from valid messages. Each checked-in seed must still decode to its message (compared as
// messages, not bytes: another FlatBuffers release may lay the same message out differently).
// Regenerate after a schema change with
//   BRICK_UPDATE_FUZZ_CORPUS=1 build/tests/node/brick_serve_wire_tests --gtest_filter=ServeWireTest.FuzzCorpusIsCurrent
TEST(ServeWireTest, FuzzCorpusIsCurrent) {
  const std::filesystem::path dir = std::filesystem::path(BRICK_SOURCE_DIR) / "tests/fuzz/serve_corpus";
  const bool update = std::getenv("BRICK_UPDATE_FUZZ_CORPUS") != nullptr;
  const std::vector<Message> messages = AllMessages();
  for (size_t i = 0; i < messages.size(); ++i) {
    for (uint8_t misalign : {0, 3}) {
      const auto path = dir / ("seed-" + std::to_string(i) + "-" + std::to_string(misalign));
      std::string seed;
      if (update) {
        seed = fuzz::JoinServeFuzzInput(Encode(messages[i]), misalign, false);
        std::filesystem::create_directories(dir);
        std::ofstream(path, std::ios::binary) << seed;
      } else {
        std::ifstream in(path, std::ios::binary);
        ASSERT_TRUE(in.good()) << path << " is missing; regenerate the corpus (see above this test)";
        std::stringstream stored;
        stored << in.rdbuf();
        seed = stored.str();
      }
      // Split exactly as the fuzzer splits it.
      fuzz::ServeFuzzInput split =
          fuzz::SplitServeFuzzInput(reinterpret_cast<const uint8_t*>(seed.data()), seed.size());
      Result<Message> m = Decode(split.frame, split.limits);
      ASSERT_TRUE(m.ok()) << path << ": " << m.status().ToString() << "; regenerate the corpus (see above this test)";
      EXPECT_TRUE(m.value() == messages[i]) << path << " is stale; regenerate the corpus (see above this test)";
    }
  }
}

}  // namespace
}  // namespace brickrt::serve
