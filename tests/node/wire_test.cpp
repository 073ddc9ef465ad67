// The wire codec: every message round-trips; thousands of malformed messages (random bytes, cut and
// bit-flipped frames, valid headers declaring absurd sizes, ...) are each rejected with a one-line
// Status; the checked-in fuzz seeds (tests/fuzz/corpus) are what the encoder writes today.
#include "node/wire.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/rng.h"
#include "tests/fuzz/fuzz_frames.h"

namespace brickrt::wire {
namespace {

const std::string kDigestA(64, 'a');
const std::string kDigestB = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

std::vector<std::string_view> Views(const std::vector<std::string>& frames) {
  return {frames.begin(), frames.end()};
}

std::span<const std::byte> Bytes(const std::vector<float>& v) { return std::as_bytes(std::span(v)); }

Hello MakeHello() {
  return Hello{"edge-1", {"f32", "trace"},
               {{"molm/L0.mlp.E3", kDigestA, ExpertKind::kMlp, 0, 3},
                {"molm/L5.attn.E1", kDigestB, ExpertKind::kAttention, 5, 1}}};
}

Welcome MakeWelcome() {
  Welcome w{"cloud", {"f32"}, {}};
  for (uint32_t i = 0; i < 40; ++i) w.bricks.push_back({"molm/L1.mlp.E" + std::to_string(i), kDigestB, ExpertKind::kMlp, 1, i});
  return w;
}

// Rows 2 + 1 + 3 = 6 of width 5.
const std::vector<float>& BatchRows() {
  static const std::vector<float> rows = [] {
    std::vector<float> v(6 * 5);
    for (size_t i = 0; i < v.size(); ++i) v[i] = 0.25f * static_cast<float>(i) - 3.0f;
    return v;
  }();
  return rows;
}

ExpertBatch MakeBatch() {
  ExpertBatch b;
  b.request_id = 0x1122334455667788ull;
  b.trace_id = 42;
  b.layer = 7;
  b.width = 5;
  b.bricks = {{"molm/L7.mlp.E0", kDigestA, 2}, {"molm/L7.mlp.E4", kDigestB, 1}, {"molm/L7.mlp.E9", kDigestA, 3}};
  b.rows = Bytes(BatchRows());
  return b;
}

ExpertResult MakeResult() {
  ExpertResult r;
  r.request_id = 9;
  r.width = 5;
  r.rows = {2, 1, 3};
  r.out = Bytes(BatchRows());
  return r;
}

std::vector<Message> AllMessages() {
  return {MakeHello(), Hello{"edge", {}, {}}, MakeWelcome(), MakeBatch(), MakeResult(),
          Error{77, ErrorCode::kDigestMismatch, "brick 'molm/L7.mlp.E0': digest differs"}, Error{0, ErrorCode::kInternal, ""}};
}

// A rejection: not OK, and one line.
void ExpectRejected(const Result<Message>& r, StatusCode code, const std::string& substring) {
  ASSERT_FALSE(r.ok()) << "accepted; wanted: " << substring;
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  EXPECT_NE(r.status().message().find(substring), std::string::npos) << r.status().ToString();
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
}

Result<Message> DecodeFrames(const std::vector<std::string>& frames, const WireLimits& limits = {}) {
  return Decode(Views(frames), limits);
}

TEST(WireTest, EveryMessageRoundTrips) {
  for (const Message& m : AllMessages()) {
    std::vector<std::string> frames = Encode(m);
    const bool has_tensor = std::holds_alternative<ExpertBatch>(m) || std::holds_alternative<ExpertResult>(m);
    EXPECT_EQ(frames.size(), has_tensor ? 2u : 1u);
    Result<Message> back = DecodeFrames(frames);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back.value().index(), m.index());
    EXPECT_TRUE(back.value() == m) << "message " << m.index();
    // EncodeHeader + TensorPayload is Encode without the payload copy.
    EXPECT_EQ(EncodeHeader(m), frames[0]);
    if (has_tensor) {
      ASSERT_EQ(TensorPayload(m).size(), frames[1].size());
      EXPECT_EQ(std::memcmp(TensorPayload(m).data(), frames[1].data(), frames[1].size()), 0);
    }
  }
}

TEST(WireTest, TensorsAreViewsIntoTheFramesAtAnyAlignment) {
  std::vector<std::string> frames = Encode(MakeBatch());
  for (size_t offset = 0; offset < 8; ++offset) {
    // Frames placed at every offset: the header is read from an aligned copy, the tensor stays a view.
    std::string header_buf = std::string(offset, 'x') + frames[0];
    std::string tensor_buf = std::string(offset, 'y') + frames[1];
    std::vector<std::string_view> views = {std::string_view(header_buf).substr(offset),
                                           std::string_view(tensor_buf).substr(offset)};
    Result<Message> m = Decode(views, {});
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    const auto& batch = std::get<ExpertBatch>(m.value());
    EXPECT_EQ(reinterpret_cast<const char*>(batch.rows.data()), views[1].data());
    std::vector<float> row1(5);
    std::memcpy(row1.data(), batch.rows.data() + 5 * sizeof(float), 5 * sizeof(float));  // unaligned: memcpy
    EXPECT_EQ(row1[0], BatchRows()[5]);
    EXPECT_TRUE(batch == MakeBatch());
  }
}

TEST(WireTest, VersionMismatchSaysWhoSpeaksWhat) {
  Result<Message> r = Decode({EncodeHeader(MakeWelcome(), 2)}, {});
  ExpectRejected(r, StatusCode::kUnsupported, "node speaks protocol 2, this brickrt speaks protocol 1");
  ExpectRejected(Decode({EncodeHeader(MakeHello(), 3)}, {}), StatusCode::kUnsupported,
                 "coordinator speaks protocol 3, this brickrt speaks protocol 1");
  ExpectRejected(Decode({EncodeHeader(MakeHello(), 0)}, {}), StatusCode::kInvalidArgument, "no protocol version");
  // What a coordinator reads when an older or newer node refuses its Hello.
  ExpectRejected(Decode({EncodeHeader(Error{0, ErrorCode::kVersionMismatch, "x"}, 7)}, {}),
                 StatusCode::kUnsupported, "node speaks protocol 7, this brickrt speaks protocol 1 (run the same");

  // A node answers a Hello of another version with an error the sender can read, whatever it speaks:
  // the reply's header carries the node's version.
  std::string hello = EncodeHeader(MakeHello(), 2);
  Result<Message> failed = Decode({hello}, {});
  std::optional<Error> reply = ErrorReplyFor({hello}, failed.status(), {});
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->code, ErrorCode::kVersionMismatch);
  EXPECT_EQ(reply->request_id, 0u);
  Result<Message> echoed = DecodeFrames(Encode(*reply));
  ASSERT_TRUE(echoed.ok()) << echoed.status().ToString();
  EXPECT_EQ(std::get<Error>(echoed.value()).message, failed.status().message());
}

TEST(WireTest, ErrorRepliesGoToReadableRequestsOnly) {
  // A batch whose tensor frame is one byte short: the header is readable, so the node answers.
  std::vector<std::string> frames = Encode(MakeBatch());
  frames[1].pop_back();
  Result<Message> r = DecodeFrames(frames);
  ExpectRejected(r, StatusCode::kInvalidArgument, "ExpertBatch: tensor frame has 119 bytes; the header declares 6 rows x 5 x 4 = 120");
  std::optional<Error> reply = ErrorReplyFor(Views(frames), r.status(), {});
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->request_id, MakeBatch().request_id);
  EXPECT_EQ(reply->code, ErrorCode::kMalformed);

  // Beyond a limit: TooLarge.
  WireLimits small;
  small.max_rows = 5;
  frames = Encode(MakeBatch());
  r = DecodeFrames(frames, small);
  ExpectRejected(r, StatusCode::kOutOfRange, "more than 5 rows");
  reply = ErrorReplyFor(Views(frames), r.status(), small);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->code, ErrorCode::kTooLarge);

  // Garbage: nothing to answer. A broken reply: never answered (no ping-pong).
  std::vector<std::string> garbage = {"definitely not a header"};
  EXPECT_FALSE(ErrorReplyFor(Views(garbage), DecodeFrames(garbage).status(), {}).has_value());
  frames = Encode(MakeResult());
  frames[1] += "x";
  EXPECT_FALSE(ErrorReplyFor(Views(frames), DecodeFrames(frames).status(), {}).has_value());
  EXPECT_FALSE(ErrorReplyFor({}, InvalidArgument("x"), {}).has_value());
}

TEST(WireTest, MakeErrorIsAlwaysSendable) {
  std::string long_message = "line one\nline two\t" + std::string(3000, 'z') + "\xc3\xa9";
  Error e = MakeError(5, ErrorCode::kInternal, long_message);
  EXPECT_LE(e.message.size(), 1024u);
  EXPECT_EQ(e.message.find('\n'), std::string::npos);
  EXPECT_EQ(e.message.substr(0, 9), "line one ");
  ASSERT_TRUE(DecodeFrames(Encode(e)).ok());
  // A cut never splits a UTF-8 sequence.
  Error cut = MakeError(5, ErrorCode::kInternal, std::string(1023, 'a') + "\xc3\xa9");
  EXPECT_EQ(cut.message, std::string(1023, 'a'));
}

TEST(WireTest, HeaderAndFrameCountsAreChecked) {
  ExpectRejected(Decode({}, {}), StatusCode::kInvalidArgument, "no frames");
  std::vector<std::string> nine(9, EncodeHeader(MakeHello()));
  ExpectRejected(DecodeFrames(nine), StatusCode::kOutOfRange, "9 frames exceeds the limit of 8");
  ExpectRejected(Decode({""}, {}), StatusCode::kInvalidArgument, "0 bytes is too short");
  ExpectRejected(Decode({"1234567890"}, {}), StatusCode::kInvalidArgument, "no \"BRKW\" identifier");
  WireLimits small;
  small.max_header_bytes = 64;
  ExpectRejected(DecodeFrames(Encode(MakeWelcome()), small), StatusCode::kOutOfRange, "exceeds the limit of 64");
  // Identifier right, the rest nonsense.
  std::string fake = std::string("\x08\x00\x00\x00" "BRKW", 8) + std::string(40, '\xff');
  ExpectRejected(Decode({fake}, {}), StatusCode::kInvalidArgument, "failed FlatBuffers verification");

  std::vector<std::string> hello = Encode(MakeHello());
  hello.push_back("extra");
  ExpectRejected(DecodeFrames(hello), StatusCode::kInvalidArgument, "Hello: takes 1 frame, got 2");
  std::vector<std::string> batch = Encode(MakeBatch());
  ExpectRejected(Decode({batch[0]}, {}), StatusCode::kInvalidArgument, "ExpertBatch: takes 2 frames, got 1");
  batch.push_back("");
  ExpectRejected(DecodeFrames(batch), StatusCode::kInvalidArgument, "takes 2 frames, got 3");
}

TEST(WireTest, BatchSizesAreChecked) {
  auto rejected = [](ExpertBatch b, std::span<const std::byte> tensor, StatusCode code, const std::string& what,
                     const WireLimits& limits = {}) {
    b.rows = tensor;
    ExpectRejected(DecodeFrames(Encode(b), limits), code, what);
  };
  const std::span<const std::byte> rows = Bytes(BatchRows());
  ExpertBatch b = MakeBatch();
  rejected(b, rows.first(rows.size() - 1), StatusCode::kInvalidArgument, "tensor frame has 119 bytes");
  std::vector<float> longer = BatchRows();
  longer.push_back(0);
  rejected(b, Bytes(longer), StatusCode::kInvalidArgument, "tensor frame has 124 bytes");
  rejected(b, {}, StatusCode::kInvalidArgument, "tensor frame has 0 bytes");

  ExpertBatch x = MakeBatch();
  x.bricks[1].rows = 2;  // row counts sum to 7, the frame holds 6
  rejected(x, rows, StatusCode::kInvalidArgument, "declares 7 rows x 5 x 4 = 140");
  x = MakeBatch();
  x.bricks[2].rows = 0;
  rejected(x, rows, StatusCode::kInvalidArgument, "brick 2 has 0 rows");
  x = MakeBatch();
  x.width = 0;
  rejected(x, rows, StatusCode::kInvalidArgument, "width is 0");
  x.width = 70000;
  rejected(x, rows, StatusCode::kOutOfRange, "width 70000 exceeds the limit of 65536");
  x = MakeBatch();
  x.bricks.clear();
  rejected(x, rows, StatusCode::kInvalidArgument, "ExpertBatch: lists no bricks");

  // Absurd declared sizes are refused before anything is allocated or multiplied unchecked.
  x = MakeBatch();
  for (BatchBrick& brick : x.bricks) brick.rows = 0xffffffffu;
  rejected(x, rows, StatusCode::kOutOfRange, "rows (the limit) are declared");
  WireLimits open;
  open.max_rows = ~uint64_t{0};
  open.max_width = ~uint32_t{0};
  open.max_tensor_bytes = ~uint64_t{0};
  x.width = 0xffffffffu;  // (3 x (2^32-1)) x (2^32-1) x 4 overflows 64 bits
  rejected(x, rows, StatusCode::kOutOfRange, "exceed the tensor limit", open);
  x = MakeBatch();
  x.width = 65536;
  x.bricks = {{"molm/L7.mlp.E0", kDigestA, 1u << 20}};  // 1M rows x 64K x 4 = 256 GiB
  rejected(x, rows, StatusCode::kOutOfRange, "exceed the tensor limit of 536870912 bytes");

  // Huge brick lists.
  x = MakeBatch();
  x.bricks.clear();
  for (int i = 0; i < 1025; ++i) x.bricks.push_back({"b" + std::to_string(i), kDigestA, 1});
  rejected(x, rows, StatusCode::kOutOfRange, "1025 bricks exceed the limit of 1024");

  x = MakeBatch();
  x.bricks[2].name = x.bricks[0].name;
  rejected(x, rows, StatusCode::kInvalidArgument, "brick 'molm/L7.mlp.E0' is listed twice");
  x = MakeBatch();
  x.dtype = static_cast<DType>(3);
  rejected(x, rows, StatusCode::kUnsupported, "tensor dtype 3 is not supported (F32 only)");
  x = MakeBatch();
  x.kind = static_cast<ExpertKind>(9);
  rejected(x, rows, StatusCode::kInvalidArgument, "unknown expert kind 9");
}

TEST(WireTest, NamesAndDigestsAreChecked) {
  auto rejected = [](const std::string& name, const std::string& digest, const std::string& what) {
    ExpertBatch b = MakeBatch();
    b.bricks[1].name = name;
    b.bricks[1].digest = digest;
    ExpectRejected(DecodeFrames(Encode(b)), StatusCode::kInvalidArgument, what);
  };
  rejected("", kDigestA, "brick 1's name is empty");
  rejected("a b", kDigestA, "brick 1's name has byte 0x20 at offset 1");
  rejected("ab\n", kDigestA, "has byte 0x0a at offset 2");
  rejected(std::string("a\0b", 3), kDigestA, "has byte 0x00 at offset 1");
  rejected("x", std::string(63, 'a'), "brick 'x': digest is not 64 lowercase hex digits");
  rejected("x", std::string(65, 'a'), "digest is not 64");
  rejected("x", std::string(64, 'A'), "digest is not 64");
  rejected("x", std::string(63, 'a') + "g", "digest is not 64");
  rejected("x", "", "digest is not 64");
  ExpertBatch b = MakeBatch();
  b.bricks[0].name = std::string(257, 'n');
  ExpectRejected(DecodeFrames(Encode(b)), StatusCode::kOutOfRange, "brick 0's name of 257 bytes exceeds the limit of 256");

  Hello h = MakeHello();
  h.name = "";
  ExpectRejected(DecodeFrames(Encode(h)), StatusCode::kInvalidArgument, "Hello: name is empty");
  h = MakeHello();
  h.capabilities.push_back("two words");
  ExpectRejected(DecodeFrames(Encode(h)), StatusCode::kInvalidArgument, "capability 2 has byte 0x20");
  h = MakeHello();
  h.capabilities.assign(65, "c");
  ExpectRejected(DecodeFrames(Encode(h)), StatusCode::kOutOfRange, "65 capabilities exceed the limit of 64");
  h = MakeHello();
  h.bricks[1].digest[0] = 'Z';
  ExpectRejected(DecodeFrames(Encode(h)), StatusCode::kInvalidArgument, "brick 'molm/L5.attn.E1': digest");
  h = MakeHello();
  h.bricks.push_back(h.bricks[0]);
  ExpectRejected(DecodeFrames(Encode(h)), StatusCode::kInvalidArgument, "Hello: brick 'molm/L0.mlp.E3' is listed twice");
  h = MakeHello();
  h.bricks[0].kind = static_cast<ExpertKind>(2);
  ExpectRejected(DecodeFrames(Encode(h)), StatusCode::kInvalidArgument, "unknown expert kind 2");

  WireLimits limits;
  limits.max_hello_bricks = 40;
  EXPECT_TRUE(DecodeFrames(Encode(MakeWelcome()), limits).ok());  // exactly at the limit
  limits.max_hello_bricks = 39;
  ExpectRejected(DecodeFrames(Encode(MakeWelcome()), limits), StatusCode::kOutOfRange,
                 "Welcome: 40 bricks exceed the limit of 39");
}

TEST(WireTest, ResultsAndErrorsAreChecked) {
  ExpertResult r = MakeResult();
  r.rows = {};
  ExpectRejected(DecodeFrames(Encode(r)), StatusCode::kInvalidArgument, "ExpertResult: has no row counts");
  r = MakeResult();
  r.rows = {2, 0, 4};
  ExpectRejected(DecodeFrames(Encode(r)), StatusCode::kInvalidArgument, "brick 1 has 0 rows");
  r = MakeResult();
  r.rows = {2, 1, 2};
  ExpectRejected(DecodeFrames(Encode(r)), StatusCode::kInvalidArgument, "the header declares 5 rows x 5 x 4 = 100");
  r = MakeResult();
  r.rows.assign(1025, 1);
  ExpectRejected(DecodeFrames(Encode(r)), StatusCode::kOutOfRange, "1025 row counts exceed the limit of 1024");

  ExpectRejected(DecodeFrames(Encode(Error{1, static_cast<ErrorCode>(99), "x"})), StatusCode::kInvalidArgument,
                 "Error: unknown error code 99");
  ExpectRejected(DecodeFrames(Encode(Error{1, ErrorCode::kInternal, "two\nlines"})), StatusCode::kInvalidArgument,
                 "message has control byte 0x0a at offset 3");
  ExpectRejected(DecodeFrames(Encode(Error{1, ErrorCode::kInternal, std::string(4097, 'm')})),
                 StatusCode::kOutOfRange, "message of 4097 bytes exceeds the limit of 4096");
  std::vector<std::string> err = Encode(Error{1, ErrorCode::kInternal, "x"});
  err.push_back("tensor?");
  ExpectRejected(DecodeFrames(err), StatusCode::kInvalidArgument, "Error: takes 1 frame, got 2");
}

// Whatever a mutated message decodes to, it must re-encode to something that decodes to itself; any
// rejection is a one-line Status. Returns whether it was accepted.
bool CheckOne(const std::vector<std::string_view>& frames) {
  Result<Message> m = Decode(frames, {});
  if (!m.ok()) {
    EXPECT_EQ(m.status().message().find('\n'), std::string::npos) << m.status().message();
    EXPECT_FALSE(m.status().message().empty());
    std::optional<Error> reply = ErrorReplyFor(frames, m.status(), {});
    if (reply.has_value()) {
      EXPECT_TRUE(Decode(Views(Encode(*reply)), {}).ok());
    }
    return false;
  }
  std::vector<std::string> again = Encode(m.value());
  Result<Message> back = Decode(Views(again), {});
  EXPECT_TRUE(back.ok()) << back.status().ToString();
  if (back.ok()) {
    EXPECT_TRUE(back.value() == m.value());
  }
  return true;
}

TEST(WireTest, ThousandsOfMalformedMessagesAreRejectedCleanly) {
  Rng rng(2024);
  auto below = [&rng](size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng.Next() % n); };
  int rejected = 0, total = 0;

  // Random bytes, one to three frames, some with the right identifier.
  for (int i = 0; i < 3000; ++i) {
    std::vector<std::string> frames(1 + below(3));
    for (std::string& f : frames) {
      f.resize(below(300));
      for (char& c : f) c = static_cast<char>(rng.Next());
    }
    if (i % 2 == 0 && frames[0].size() >= 8) std::memcpy(frames[0].data() + 4, "BRKW", 4);
    rejected += !CheckOne(Views(frames));
    ++total;
  }
  // Every valid message, mutated: flipped bits, cut or extended frames, overwritten bytes, frames
  // dropped, duplicated or swapped.
  const std::vector<Message> messages = AllMessages();
  for (int i = 0; i < 12000; ++i) {
    std::vector<std::string> frames = Encode(messages[below(messages.size())]);
    const size_t edits = 1 + below(4);
    for (size_t e = 0; e < edits; ++e) {
      std::string& f = frames[below(frames.size())];
      switch (below(7)) {
        case 0:
        case 1:
          if (!f.empty()) f[below(f.size())] ^= static_cast<char>(1u << below(8));
          break;
        case 2: f.resize(below(f.size() + 1)); break;
        case 3: f.append(1 + below(8), static_cast<char>(rng.Next())); break;
        case 4:
          if (!f.empty()) f[below(f.size())] = static_cast<char>(rng.Next());
          break;
        case 5:
          if (frames.size() > 1 && below(2) == 0) {
            std::swap(frames[0], frames[1]);
          } else {
            frames.push_back(frames[below(frames.size())]);
          }
          break;
        case 6:
          if (frames.size() > 1) frames.erase(frames.begin() + static_cast<long>(below(frames.size())));
          break;
      }
    }
    rejected += !CheckOne(Views(frames));
    ++total;
  }
  // Nearly everything must fail; an accepted mutation is fine (a flipped bit in a float or a name
  // still decodes), and it was round-tripped above.
  EXPECT_GT(rejected, total * 8 / 10) << rejected << " of " << total;
}

// The seed corpus of tests/fuzz/wire_fuzz.cpp: every message above, aligned and not, so the fuzzer
// starts from valid messages. Each checked-in seed must still decode to its message (compared as
// messages, not bytes: another FlatBuffers release may lay the same message out differently).
// Regenerate after a schema change with
//   BRICK_UPDATE_FUZZ_CORPUS=1 build/tests/node/brick_wire_tests --gtest_filter=WireTest.FuzzCorpusIsCurrent
TEST(WireTest, FuzzCorpusIsCurrent) {
  const std::filesystem::path dir = std::filesystem::path(BRICK_SOURCE_DIR) / "tests/fuzz/corpus";
  const bool update = std::getenv("BRICK_UPDATE_FUZZ_CORPUS") != nullptr;
  const std::vector<Message> messages = AllMessages();
  for (size_t i = 0; i < messages.size(); ++i) {
    for (uint8_t misalign : {0, 3}) {
      const auto path = dir / ("seed-" + std::to_string(i) + "-" + std::to_string(misalign));
      std::string seed;
      if (update) {
        seed = fuzz::JoinFuzzInput(Encode(messages[i]), misalign);
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
      fuzz::FuzzFrames split = fuzz::SplitFuzzInput(reinterpret_cast<const uint8_t*>(seed.data()), seed.size());
      Result<Message> m = Decode(split.frames, {});
      ASSERT_TRUE(m.ok()) << path << ": " << m.status().ToString() << "; regenerate the corpus (see above this test)";
      EXPECT_TRUE(m.value() == messages[i]) << path << " is stale; regenerate the corpus (see above this test)";
    }
  }
}

}  // namespace
}  // namespace brickrt::wire
