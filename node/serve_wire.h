// The serving protocol's messages (schemas/serve.fbs, docs/serving.md): what `brick run --server`,
// `brick swap` and the other clients send a coordinator, and its replies. One FlatBuffers frame per
// message, checked against ServeLimits before anything is allocated for it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/status.h"

namespace brickrt::serve {

// Both ends must speak the same version; a mismatch is answered with an error that says both.
inline constexpr uint32_t kProtocolVersion = 1;

enum class ErrorCode : uint16_t {
  kInternal = 0,
  kMalformed = 1,
  kVersionMismatch = 2,
  kTooLarge = 3,
  kInvalidArgument = 4,
  kNotFound = 5,
  kLoadFailed = 6,
  kUnavailable = 7,
};

struct GenerateRequest {
  uint64_t request_id = 0;
  std::vector<int32_t> prompt;  // >= 1 ids
  uint32_t max_new_tokens = 16;
  float temperature = 0;        // 0: greedy
  uint32_t top_k = 0;
  float top_p = 1;
  uint64_t seed = 0;
  bool stop_at_eos = true;
  bool operator==(const GenerateRequest&) const = default;
};

struct GenerateReply {
  uint64_t request_id = 0;
  std::string manifest;  // "NAME@VERSION": every generated token came from it
  std::vector<int32_t> generated;
  double queue_seconds = 0, prefill_seconds = 0, decode_seconds = 0;
  bool operator==(const GenerateReply&) const = default;
};

struct SwapRequest {
  uint64_t request_id = 0;
  std::string to;    // NAME, NAME@VERSION or NAME:TAG
  bool now = false;  // running sequences move too
  bool operator==(const SwapRequest&) const = default;
};

struct SwapReply {
  uint64_t request_id = 0;
  std::string manifest;  // served from now on
  std::string previous;
  double load_seconds = 0;
  bool operator==(const SwapReply&) const = default;
};

struct StatusRequest {
  uint64_t request_id = 0;
  bool operator==(const StatusRequest&) const = default;
};

struct StatusReply {
  uint64_t request_id = 0;
  std::string manifest;              // what new requests run on
  std::string following;             // "NAME:TAG" the coordinator follows, or empty
  std::vector<std::string> running;  // manifests with sequences in flight, newest first
  uint32_t sequences = 0, queued = 0;
  uint64_t swaps = 0;
  bool operator==(const StatusReply&) const = default;
};

struct Error {
  uint64_t request_id = 0;
  ErrorCode code = ErrorCode::kInternal;
  std::string message;  // one line
  bool operator==(const Error&) const = default;
};

using Message =
    std::variant<GenerateRequest, GenerateReply, SwapRequest, SwapReply, StatusRequest, StatusReply, Error>;

// What a receiver accepts; every declared size is checked against these first.
struct ServeLimits {
  size_t max_frame_bytes = size_t{1} << 20;
  size_t max_prompt_tokens = size_t{1} << 16;   // prompt and generated ids
  uint32_t max_new_tokens = uint32_t{1} << 16;
  size_t max_name_bytes = 256;                  // model references and manifest names
  size_t max_running = 1024;                    // StatusReply::running
  size_t max_message_bytes = 4096;              // Error::message
};

// The frame of `m`. `version` other than kProtocolVersion is for tests only.
std::string Encode(const Message& m, uint32_t version = kProtocolVersion);

// The message in `frame`, fully checked: size, FlatBuffers verification, protocol version, every count
// against `limits`, names (non-empty, no spaces or control bytes), finite sampling values. Errors, one
// line each: InvalidArgument (malformed), OutOfRange (beyond a limit), Unsupported (another protocol
// version, "client speaks protocol 2, this brickrt speaks protocol 1"; an unknown message type).
Result<Message> Decode(std::string_view frame, const ServeLimits& limits);

// The Error a coordinator answers a request with when Decode rejected it with `failure`, carrying the
// request id when the header verifies; nullopt when the frame is unreadable or itself a reply.
std::optional<Error> ErrorReplyFor(std::string_view frame, const Status& failure, const ServeLimits& limits);

// An Error safe to send: control characters become spaces, cut to 1024 bytes.
Error MakeError(uint64_t request_id, ErrorCode code, std::string_view message);

uint64_t RequestIdOf(const Message& m);

// The Status an Error reply stands for, prefixed with `context`.
Status ToStatus(const Error& e, const std::string& context);

}  // namespace brickrt::serve
