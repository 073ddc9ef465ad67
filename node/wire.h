// The wire codec of the edge–cloud split (docs/protocol.md): plain messages <-> ZeroMQ multipart
// frames, one FlatBuffers header frame (schemas/wire.fbs) + raw little-endian tensor frames.
// Decode trusts nothing it receives: every length and size is checked before it is used.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/status.h"

namespace brickrt::wire {

static_assert(std::endian::native == std::endian::little, "tensor frames are little-endian byte copies");

// Both ends must speak the same version; a mismatch is refused at the Hello with an error that says
// which versions. Bumped whenever the meaning of a message changes (schemas/wire.fbs only grows).
inline constexpr uint32_t kProtocolVersion = 1;

// Enum values are those of schemas/wire.fbs; only append, never renumber.
enum class ExpertKind : uint8_t { kMlp = 0, kAttention = 1 };
enum class DType : uint8_t { kF32 = 0 };  // element type of tensor frames
enum class ErrorCode : uint16_t {
  kInternal = 0,         // a bug or an unexpected failure on the node
  kMalformed = 1,        // the request did not decode
  kVersionMismatch = 2,  // the peers speak different protocol versions
  kTooLarge = 3,         // a declared size is beyond the receiver's WireLimits
  kUnsupported = 4,      // well-formed but not implemented (dtype, kind, message type)
  kUnknownBrick = 5,     // the node serves no brick of that name
  kDigestMismatch = 6,   // the node serves that name with another digest
  kUnavailable = 7,      // the node cannot take the request now
};
const char* ErrorCodeName(ErrorCode code);  // "VersionMismatch"

// A brick a coordinator wants to run on a node (Hello) or a node serves (Welcome).
struct BrickInfo {
  std::string name;    // full registry name "molm-350m/L3.mlp.E17"
  std::string digest;  // SHA-256 of the payload, 64 lowercase hex digits
  ExpertKind kind = ExpertKind::kMlp;
  uint32_t layer = 0;
  uint32_t index = 0;  // expert index within its layer
  bool operator==(const BrickInfo&) const = default;
};

// Coordinator -> node, the first message on a connection (request id 0).
struct Hello {
  std::string name;                       // the coordinator's name, for logs
  std::vector<std::string> capabilities;  // feature names ("f32")
  std::vector<BrickInfo> bricks;          // what its placement sends to this node (checked up front)
  bool operator==(const Hello&) const = default;
};

// Node -> coordinator, the answer to an accepted Hello (request id 0).
struct Welcome {
  std::string name;  // the node's name
  std::vector<std::string> capabilities;
  std::vector<BrickInfo> bricks;  // every brick the node serves
  bool operator==(const Welcome&) const = default;
};

// One brick of a batch: its rows are the next `rows` rows of the batch's tensor.
struct BatchBrick {
  std::string name;
  std::string digest;
  uint32_t rows = 0;  // >= 1
  bool operator==(const BatchBrick&) const = default;
};

// Tensor payloads are views, never owned by a message. After Decode they point into the frames
// passed to it (valid while those frames live) and may be unaligned (ZeroMQ hands out receive buffers
// at any offset): read them with std::memcpy, never through a float*. For Encode they point at the
// caller's rows (any alignment).

// Coordinator -> node: run these bricks of one layer on their rows.
struct ExpertBatch {
  uint64_t request_id = 0;  // chosen by the coordinator, echoed by the reply
  uint64_t trace_id = 0;
  uint32_t layer = 0;
  ExpertKind kind = ExpertKind::kMlp;
  DType dtype = DType::kF32;
  uint32_t width = 0;                  // D
  std::vector<BatchBrick> bricks;      // >= 1, distinct names
  std::span<const std::byte> rows;     // F32 little-endian [Σ bricks[i].rows, width], brick-major
  bool operator==(const ExpertBatch& o) const;  // compares the rows' bytes, not their addresses
};

// Node -> coordinator: a batch's outputs, in the batch's brick order with the same row counts
// (the coordinator checks that against what it sent; Decode cannot).
struct ExpertResult {
  uint64_t request_id = 0;
  DType dtype = DType::kF32;
  uint32_t width = 0;                  // out width
  std::vector<uint32_t> rows;          // rows per brick, each >= 1
  std::span<const std::byte> out;      // F32 little-endian [Σ rows, width]
  bool operator==(const ExpertResult& o) const;
};

// Node -> coordinator: the request `request_id` failed (0: the Hello).
struct Error {
  uint64_t request_id = 0;
  ErrorCode code = ErrorCode::kInternal;
  std::string message;  // one line, no control characters
  bool operator==(const Error&) const = default;
};

using Message = std::variant<Hello, Welcome, ExpertBatch, ExpertResult, Error>;

// What a receiver accepts. Every size a message declares is checked against these before it is used
// or anything is allocated for it. The defaults fit a decode step or a long prefill of models up to
// d_model 65536 and a node that serves a few thousand bricks.
struct WireLimits {
  size_t max_frames = 8;                        // frames in one message (checked first)
  size_t max_header_bytes = size_t{4} << 20;    // frame 0
  size_t max_batch_bricks = 1024;               // bricks in an ExpertBatch / row counts in a result
  size_t max_hello_bricks = 16384;              // bricks in a Hello or Welcome
  uint64_t max_rows = uint64_t{1} << 20;        // Σ rows of one batch or result
  uint32_t max_width = 65536;                   // D
  uint64_t max_tensor_bytes = uint64_t{512} << 20;  // one tensor frame
  size_t max_name_bytes = 256;                  // brick, peer and capability names
  size_t max_capabilities = 64;
  size_t max_message_bytes = 4096;              // Error::message
};

// Frame 0 of `m`, as sent (no tensor). `version` other than kProtocolVersion is for tests only.
// Never fails: it writes what it is given; the receiver's Decode judges it.
std::string EncodeHeader(const Message& m, uint32_t version = kProtocolVersion);
// The bytes of the tensor frame `m` carries (empty for Hello, Welcome, Error): a transport that can
// send a frame from the caller's memory sends EncodeHeader(m) + this instead of Encode's copies.
std::span<const std::byte> TensorPayload(const Message& m);
// All frames of `m`: [header] or [header, tensor]; one copy per frame.
std::vector<std::string> Encode(const Message& m);

// The message in `frames`, fully checked: frame count, header size, FlatBuffers verification,
// protocol version, every count and size against `limits` (with overflow checks), row counts that sum
// to the tensor frame's rows, its byte size == rows x width x 4, names, digests and enum values.
// Errors (one line each): InvalidArgument (malformed), OutOfRange (beyond a limit), Unsupported
// (another protocol version: "node speaks protocol 2, this brickrt speaks protocol 1"; an unknown
// message type or dtype). Tensor payloads of the result are views into `frames` (see above).
Result<Message> Decode(const std::vector<std::string_view>& frames, const WireLimits& limits);

// The Error a node answers a message with when Decode rejected it with `failure`: its request id is
// read from the header frame when that verifies (code kVersionMismatch, kTooLarge, kUnsupported or
// kMalformed). nullopt when the header is unreadable or the message was itself a reply (Welcome,
// ExpertResult, Error): drop it then, replying to garbage helps no one.
std::optional<Error> ErrorReplyFor(const std::vector<std::string_view>& frames, const Status& failure,
                                   const WireLimits& limits);

// An Error safe to send: control characters in `message` become spaces and it is cut to 1024 bytes.
Error MakeError(uint64_t request_id, ErrorCode code, std::string_view message);

// Whether `s` is a SHA-256 digest as the wire carries it: 64 lowercase hex digits.
bool IsHexDigest(std::string_view s);

}  // namespace brickrt::wire
