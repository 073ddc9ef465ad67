// The wire codec: messages <-> frames through the FlatBuffers code generated from schemas/wire.fbs,
// the only place that code is used. Decode verifies first, then checks every declared size.
#include "node/wire.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include <flatbuffers/flatbuffers.h>

#include "core/utf8.h"
#include "node/aligned_frame.h"
#include "schemas/wire_generated.h"

namespace brickrt::wire {
namespace {

static_assert(static_cast<uint8_t>(ExpertKind::kAttention) == static_cast<uint8_t>(fb::ExpertKind::Attention));
static_assert(static_cast<uint8_t>(DType::kF32) == static_cast<uint8_t>(fb::DType::F32));
static_assert(static_cast<uint16_t>(ErrorCode::kUnavailable) == static_cast<uint16_t>(fb::ErrorCode::Unavailable));
static_assert(fb::ErrorCode::MAX == fb::ErrorCode::Unavailable, "a new error code needs ErrorCode and its name");
static_assert(fb::ExpertKind::MAX == fb::ExpertKind::Attention, "a new kind needs ExpertKind");
static_assert(fb::DType::MAX == fb::DType::F32, "a new dtype needs DType and its element size");

constexpr size_t kF32Bytes = 4;
constexpr size_t kMaxErrorMessage = 1024;  // what MakeError keeps of a message

using Builder = flatbuffers::FlatBufferBuilder;
using FbString = flatbuffers::String;

// ---- encoding ----

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::BrickInfo>>> BuildBricks(
    Builder& b, const std::vector<BrickInfo>& bricks) {
  std::vector<flatbuffers::Offset<fb::BrickInfo>> offsets;
  offsets.reserve(bricks.size());
  for (const BrickInfo& x : bricks) {
    offsets.push_back(fb::CreateBrickInfo(b, b.CreateString(x.name), b.CreateString(x.digest),
                                          static_cast<fb::ExpertKind>(x.kind), x.layer, x.index));
  }
  return b.CreateVector(offsets);
}

template <typename Peer>  // Hello or Welcome: the same fields
auto BuildPeer(Builder& b, const Peer& m) {
  auto name = b.CreateString(m.name);
  auto caps = b.CreateVectorOfStrings(m.capabilities);
  auto bricks = BuildBricks(b, m.bricks);
  return std::make_tuple(name, caps, bricks);
}

struct BodyBuilder {
  Builder& b;
  std::pair<fb::Body, flatbuffers::Offset<void>> operator()(const Hello& m) const {
    auto [name, caps, bricks] = BuildPeer(b, m);
    return {fb::Body::Hello, fb::CreateHello(b, name, caps, bricks).Union()};
  }
  std::pair<fb::Body, flatbuffers::Offset<void>> operator()(const Welcome& m) const {
    auto [name, caps, bricks] = BuildPeer(b, m);
    return {fb::Body::Welcome, fb::CreateWelcome(b, name, caps, bricks).Union()};
  }
  std::pair<fb::Body, flatbuffers::Offset<void>> operator()(const ExpertBatch& m) const {
    std::vector<flatbuffers::Offset<fb::BatchBrick>> offsets;
    offsets.reserve(m.bricks.size());
    for (const BatchBrick& x : m.bricks) {
      offsets.push_back(fb::CreateBatchBrick(b, b.CreateString(x.name), b.CreateString(x.digest), x.rows));
    }
    auto bricks = b.CreateVector(offsets);
    return {fb::Body::ExpertBatch,
            fb::CreateExpertBatch(b, m.trace_id, m.layer, static_cast<fb::ExpertKind>(m.kind),
                                  static_cast<fb::DType>(m.dtype), m.width, bricks)
                .Union()};
  }
  std::pair<fb::Body, flatbuffers::Offset<void>> operator()(const ExpertResult& m) const {
    auto rows = b.CreateVector(m.rows);
    return {fb::Body::ExpertResult,
            fb::CreateExpertResult(b, static_cast<fb::DType>(m.dtype), m.width, rows).Union()};
  }
  std::pair<fb::Body, flatbuffers::Offset<void>> operator()(const Error& m) const {
    auto message = b.CreateString(m.message);
    return {fb::Body::Error, fb::CreateError(b, static_cast<fb::ErrorCode>(m.code), message).Union()};
  }
};

uint64_t RequestIdOf(const Message& m) {
  return std::visit(
      [](const auto& x) -> uint64_t {
        if constexpr (requires { x.request_id; }) {
          return x.request_id;
        } else {
          return 0;
        }
      },
      m);
}

// ---- decoding ----

// Frame 0, verified, read in place when 8-byte aligned and from an aligned copy otherwise: ZeroMQ
// hands out receive buffers at any offset and FlatBuffers reads its uint64 fields in place.
class HeaderFrame {
 public:
  Status Open(std::string_view frame, const WireLimits& limits) {
    if (frame.size() > limits.max_header_bytes) {
      return OutOfRange("header frame of " + std::to_string(frame.size()) + " bytes exceeds the limit of " +
                        std::to_string(limits.max_header_bytes));
    }
    if (frame.size() >= FLATBUFFERS_MAX_BUFFER_SIZE) return OutOfRange("header frame beyond 2 GiB");
    if (frame.size() < 8) {
      return InvalidArgument("header frame of " + std::to_string(frame.size()) + " bytes is too short");
    }
    const uint8_t* data = aligned_.Align(frame);
    if (!flatbuffers::BufferHasIdentifier(data, fb::HeaderIdentifier())) {
      return InvalidArgument("header frame is not a brickrt message (no \"BRKW\" identifier)");
    }
    flatbuffers::Verifier::Options opts;
    opts.max_depth = 16;  // the schema nests 5 deep
    // One table per listed brick, plus the header, the body and slack; the limits are checked with
    // their own messages once the buffer is known to be sound.
    constexpr size_t kMaxTables = std::numeric_limits<flatbuffers::uoffset_t>::max() - 16;
    opts.max_tables = static_cast<flatbuffers::uoffset_t>(
        std::min(std::max(limits.max_hello_bricks, limits.max_batch_bricks), kMaxTables) + 16);
    flatbuffers::Verifier verifier(data, frame.size(), opts);
    if (!fb::VerifyHeaderBuffer(verifier)) {
      return InvalidArgument("header frame of " + std::to_string(frame.size()) +
                             " bytes failed FlatBuffers verification");
    }
    header_ = fb::GetHeader(data);
    return Status::Ok();
  }
  const fb::Header& header() const { return *header_; }

 private:
  AlignedFrame aligned_;
  const fb::Header* header_ = nullptr;
};

const char* BodyName(fb::Body type) {
  switch (type) {
    case fb::Body::NONE: return "empty message";
    case fb::Body::Hello: return "Hello";
    case fb::Body::Welcome: return "Welcome";
    case fb::Body::ExpertBatch: return "ExpertBatch";
    case fb::Body::ExpertResult: return "ExpertResult";
    case fb::Body::Error: return "Error";
  }
  return "unknown message";
}

bool IsReply(fb::Body type) {
  return type == fb::Body::Welcome || type == fb::Body::ExpertResult || type == fb::Body::Error;
}

// Who sent a message of this type, for the version-mismatch error: coordinators send requests,
// nodes send replies (an Error too).
const char* SenderRole(fb::Body type) {
  return type == fb::Body::Hello || type == fb::Body::ExpertBatch ? "coordinator" : "node";
}

std::string Byte(uint8_t c) {
  static const char kHex[] = "0123456789abcdef";
  return std::string("0x") + kHex[c >> 4] + kHex[c & 15];
}

// A name (brick, peer, capability): present, non-empty, within the limit, no space or control byte.
// The name is echoed in later errors only once it passed, so an error line never carries raw bytes.
Status ReadName(const FbString* s, size_t max_bytes, const std::string& what, std::string* out) {
  if (s == nullptr) return InvalidArgument(what + " is missing");
  if (s->size() == 0) return InvalidArgument(what + " is empty");
  if (s->size() > max_bytes) {
    return OutOfRange(what + " of " + std::to_string(s->size()) + " bytes exceeds the limit of " +
                      std::to_string(max_bytes));
  }
  for (uint32_t i = 0; i < s->size(); ++i) {
    auto c = static_cast<uint8_t>(s->c_str()[i]);
    if (c <= 0x20 || c == 0x7f) {
      return InvalidArgument(what + " has byte " + Byte(c) + " at offset " + std::to_string(i) +
                             " (names have no spaces or control characters)");
    }
  }
  out->assign(s->c_str(), s->size());
  return Status::Ok();
}

Status ReadDigest(const FbString* s, const std::string& brick, std::string* out) {
  if (s == nullptr || !IsHexDigest(s->string_view())) {
    return InvalidArgument("brick '" + brick + "': digest is not 64 lowercase hex digits");
  }
  out->assign(s->c_str(), s->size());
  return Status::Ok();
}

Result<ExpertKind> ReadKind(fb::ExpertKind k) {
  if (k > fb::ExpertKind::MAX) return InvalidArgument("unknown expert kind " + std::to_string(static_cast<int>(k)));
  return static_cast<ExpertKind>(k);
}

Result<DType> ReadDType(fb::DType d) {
  if (d != fb::DType::F32) {
    return Unsupported("tensor dtype " + std::to_string(static_cast<int>(d)) + " is not supported (F32 only)");
  }
  return DType::kF32;
}

Status NoDuplicates(std::vector<std::string_view> names) {
  std::sort(names.begin(), names.end());
  auto dup = std::adjacent_find(names.begin(), names.end());
  if (dup != names.end()) return InvalidArgument("brick '" + std::string(*dup) + "' is listed twice");
  return Status::Ok();
}

Status CheckFrameCount(const std::vector<std::string_view>& frames, size_t expected) {
  if (frames.size() == expected) return Status::Ok();
  return InvalidArgument("takes " + std::to_string(expected) + " frame" + (expected == 1 ? "" : "s") + ", got " +
                         std::to_string(frames.size()));
}

// Rows per brick (each >= 1, at most max_batch_bricks of them, summing to at most max_rows) and the
// tensor frame that holds them: exactly rows x width x 4 bytes, within max_tensor_bytes.
Status CheckTensor(uint64_t total_rows, uint32_t width, std::string_view frame, const WireLimits& limits) {
  if (width == 0) return InvalidArgument("width is 0");
  if (width > limits.max_width) {
    return OutOfRange("width " + std::to_string(width) + " exceeds the limit of " + std::to_string(limits.max_width));
  }
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(total_rows, uint64_t{width}, &bytes) || __builtin_mul_overflow(bytes, kF32Bytes, &bytes) ||
      bytes > limits.max_tensor_bytes) {
    return OutOfRange(std::to_string(total_rows) + " rows x " + std::to_string(width) +
                      " F32 exceed the tensor limit of " + std::to_string(limits.max_tensor_bytes) + " bytes");
  }
  if (frame.size() != bytes) {
    return InvalidArgument("tensor frame has " + std::to_string(frame.size()) + " bytes; the header declares " +
                           std::to_string(total_rows) + " rows x " + std::to_string(width) + " x 4 = " +
                           std::to_string(bytes));
  }
  return Status::Ok();
}

Status AddRows(uint32_t rows, size_t i, uint64_t* total, const WireLimits& limits) {
  if (rows == 0) return InvalidArgument("brick " + std::to_string(i) + " has 0 rows");
  *total += rows;  // cannot overflow: at most max_batch_bricks additions of < 2^32 below max_rows
  if (*total > limits.max_rows) {
    return OutOfRange("more than " + std::to_string(limits.max_rows) + " rows (the limit) are declared");
  }
  return Status::Ok();
}

std::span<const std::byte> AsBytes(std::string_view frame) {
  return {reinterpret_cast<const std::byte*>(frame.data()), frame.size()};
}

template <typename Peer, typename FbPeer>  // Hello / Welcome
Result<Message> DecodePeer(const FbPeer& t, const WireLimits& limits) {
  Peer m;
  BRICK_RETURN_IF_ERROR(ReadName(t.name(), limits.max_name_bytes, "name", &m.name));
  if (const auto* caps = t.capabilities()) {
    if (caps->size() > limits.max_capabilities) {
      return OutOfRange(std::to_string(caps->size()) + " capabilities exceed the limit of " +
                        std::to_string(limits.max_capabilities));
    }
    m.capabilities.resize(caps->size());
    for (uint32_t i = 0; i < caps->size(); ++i) {
      BRICK_RETURN_IF_ERROR(
          ReadName(caps->Get(i), limits.max_name_bytes, "capability " + std::to_string(i), &m.capabilities[i]));
    }
  }
  if (const auto* bricks = t.bricks()) {
    if (bricks->size() > limits.max_hello_bricks) {
      return OutOfRange(std::to_string(bricks->size()) + " bricks exceed the limit of " +
                        std::to_string(limits.max_hello_bricks));
    }
    m.bricks.resize(bricks->size());
    std::vector<std::string_view> names(bricks->size());
    for (uint32_t i = 0; i < bricks->size(); ++i) {
      const fb::BrickInfo& in = *bricks->Get(i);
      BrickInfo& out = m.bricks[i];
      BRICK_RETURN_IF_ERROR(ReadName(in.name(), limits.max_name_bytes, "brick " + std::to_string(i) + "'s name", &out.name));
      BRICK_RETURN_IF_ERROR(ReadDigest(in.digest(), out.name, &out.digest));
      BRICK_ASSIGN_OR_RETURN(out.kind, ReadKind(in.kind()));
      out.layer = in.layer();
      out.index = in.index();
      names[i] = out.name;
    }
    BRICK_RETURN_IF_ERROR(NoDuplicates(std::move(names)));
  }
  return Message(std::move(m));
}

Result<Message> DecodeBatch(const fb::ExpertBatch& t, uint64_t request_id,
                            const std::vector<std::string_view>& frames, const WireLimits& limits) {
  BRICK_RETURN_IF_ERROR(CheckFrameCount(frames, 2));
  ExpertBatch m;
  m.request_id = request_id;
  m.trace_id = t.trace_id();
  m.layer = t.layer();
  BRICK_ASSIGN_OR_RETURN(m.kind, ReadKind(t.kind()));
  BRICK_ASSIGN_OR_RETURN(m.dtype, ReadDType(t.dtype()));
  m.width = t.width();
  const auto* bricks = t.bricks();
  if (bricks == nullptr || bricks->size() == 0) return InvalidArgument("lists no bricks");
  if (bricks->size() > limits.max_batch_bricks) {
    return OutOfRange(std::to_string(bricks->size()) + " bricks exceed the limit of " +
                      std::to_string(limits.max_batch_bricks));
  }
  m.bricks.resize(bricks->size());
  std::vector<std::string_view> names(bricks->size());
  uint64_t total_rows = 0;
  for (uint32_t i = 0; i < bricks->size(); ++i) {
    const fb::BatchBrick& in = *bricks->Get(i);
    BatchBrick& out = m.bricks[i];
    BRICK_RETURN_IF_ERROR(ReadName(in.name(), limits.max_name_bytes, "brick " + std::to_string(i) + "'s name", &out.name));
    BRICK_RETURN_IF_ERROR(ReadDigest(in.digest(), out.name, &out.digest));
    out.rows = in.rows();
    BRICK_RETURN_IF_ERROR(AddRows(out.rows, i, &total_rows, limits));
    names[i] = out.name;
  }
  BRICK_RETURN_IF_ERROR(NoDuplicates(std::move(names)));
  BRICK_RETURN_IF_ERROR(CheckTensor(total_rows, m.width, frames[1], limits));
  m.rows = AsBytes(frames[1]);
  return Message(std::move(m));
}

Result<Message> DecodeResult(const fb::ExpertResult& t, uint64_t request_id,
                             const std::vector<std::string_view>& frames, const WireLimits& limits) {
  BRICK_RETURN_IF_ERROR(CheckFrameCount(frames, 2));
  ExpertResult m;
  m.request_id = request_id;
  BRICK_ASSIGN_OR_RETURN(m.dtype, ReadDType(t.dtype()));
  m.width = t.width();
  const auto* rows = t.rows();
  if (rows == nullptr || rows->size() == 0) return InvalidArgument("has no row counts");
  if (rows->size() > limits.max_batch_bricks) {
    return OutOfRange(std::to_string(rows->size()) + " row counts exceed the limit of " +
                      std::to_string(limits.max_batch_bricks));
  }
  m.rows.resize(rows->size());
  uint64_t total_rows = 0;
  for (uint32_t i = 0; i < rows->size(); ++i) {
    m.rows[i] = rows->Get(i);
    BRICK_RETURN_IF_ERROR(AddRows(m.rows[i], i, &total_rows, limits));
  }
  BRICK_RETURN_IF_ERROR(CheckTensor(total_rows, m.width, frames[1], limits));
  m.out = AsBytes(frames[1]);
  return Message(std::move(m));
}

Result<Message> DecodeError(const fb::Error& t, uint64_t request_id, const WireLimits& limits) {
  Error m;
  m.request_id = request_id;
  if (t.code() > fb::ErrorCode::MAX) {
    return InvalidArgument("unknown error code " + std::to_string(static_cast<int>(t.code())));
  }
  m.code = static_cast<ErrorCode>(t.code());
  if (const FbString* s = t.message()) {
    if (s->size() > limits.max_message_bytes) {
      return OutOfRange("message of " + std::to_string(s->size()) + " bytes exceeds the limit of " +
                        std::to_string(limits.max_message_bytes));
    }
    for (uint32_t i = 0; i < s->size(); ++i) {
      auto c = static_cast<uint8_t>(s->c_str()[i]);
      if (c < 0x20 || c == 0x7f) {
        return InvalidArgument("message has control byte " + Byte(c) + " at offset " + std::to_string(i));
      }
    }
    m.message.assign(s->c_str(), s->size());
  }
  return Message(std::move(m));
}

Result<Message> DecodeBody(const fb::Header& h, const std::vector<std::string_view>& frames, const WireLimits& limits) {
  const fb::Body type = h.body_type();
  if (type == fb::Body::NONE) return InvalidArgument("header carries no message");
  if (type > fb::Body::MAX) return Unsupported("message type " + std::to_string(static_cast<int>(type)) + " is unknown");
  if (h.body() == nullptr) return InvalidArgument("header has no body");
  if (type == fb::Body::ExpertBatch) return DecodeBatch(*h.body_as_ExpertBatch(), h.request_id(), frames, limits);
  if (type == fb::Body::ExpertResult) return DecodeResult(*h.body_as_ExpertResult(), h.request_id(), frames, limits);
  BRICK_RETURN_IF_ERROR(CheckFrameCount(frames, 1));
  if (type == fb::Body::Hello) return DecodePeer<Hello>(*h.body_as_Hello(), limits);
  if (type == fb::Body::Welcome) return DecodePeer<Welcome>(*h.body_as_Welcome(), limits);
  return DecodeError(*h.body_as_Error(), h.request_id(), limits);
}

bool SameBytes(std::span<const std::byte> a, std::span<const std::byte> b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

}  // namespace

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInternal: return "Internal";
    case ErrorCode::kMalformed: return "Malformed";
    case ErrorCode::kVersionMismatch: return "VersionMismatch";
    case ErrorCode::kTooLarge: return "TooLarge";
    case ErrorCode::kUnsupported: return "Unsupported";
    case ErrorCode::kUnknownBrick: return "UnknownBrick";
    case ErrorCode::kDigestMismatch: return "DigestMismatch";
    case ErrorCode::kUnavailable: return "Unavailable";
  }
  return "Unknown";
}

bool ExpertBatch::operator==(const ExpertBatch& o) const {
  return request_id == o.request_id && trace_id == o.trace_id && layer == o.layer && kind == o.kind &&
         dtype == o.dtype && width == o.width && bricks == o.bricks && SameBytes(rows, o.rows);
}

bool ExpertResult::operator==(const ExpertResult& o) const {
  return request_id == o.request_id && dtype == o.dtype && width == o.width && rows == o.rows &&
         SameBytes(out, o.out);
}

std::string EncodeHeader(const Message& m, uint32_t version) {
  Builder b(1024);
  auto [type, body] = std::visit(BodyBuilder{b}, m);
  b.Finish(fb::CreateHeader(b, version, RequestIdOf(m), type, body), fb::HeaderIdentifier());
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

std::span<const std::byte> TensorPayload(const Message& m) {
  if (const auto* batch = std::get_if<ExpertBatch>(&m)) return batch->rows;
  if (const auto* result = std::get_if<ExpertResult>(&m)) return result->out;
  return {};
}

std::vector<std::string> Encode(const Message& m) {
  std::vector<std::string> frames;
  frames.reserve(2);
  frames.push_back(EncodeHeader(m));
  if (std::holds_alternative<ExpertBatch>(m) || std::holds_alternative<ExpertResult>(m)) {
    std::span<const std::byte> payload = TensorPayload(m);
    frames.emplace_back(reinterpret_cast<const char*>(payload.data()), payload.size());
  }
  return frames;
}

Result<Message> Decode(const std::vector<std::string_view>& frames, const WireLimits& limits) {
  if (frames.empty()) return InvalidArgument("wire message has no frames");
  if (frames.size() > limits.max_frames) {
    return OutOfRange("wire message of " + std::to_string(frames.size()) + " frames exceeds the limit of " +
                      std::to_string(limits.max_frames));
  }
  HeaderFrame frame;
  BRICK_RETURN_IF_ERROR(frame.Open(frames[0], limits).WithContext("wire message"));
  const fb::Header& h = frame.header();
  const char* what = BodyName(h.body_type());
  if (h.version() != kProtocolVersion) {
    if (h.version() == 0) return InvalidArgument(std::string(what) + ": header carries no protocol version");
    return Unsupported(std::string(SenderRole(h.body_type())) + " speaks protocol " + std::to_string(h.version()) +
                       ", this brickrt speaks protocol " + std::to_string(kProtocolVersion) +
                       " (run the same brickrt version on both ends)");
  }
  Result<Message> m = DecodeBody(h, frames, limits);
  if (!m.ok()) return m.status().WithContext(what);
  return m;
}

std::optional<Error> ErrorReplyFor(const std::vector<std::string_view>& frames, const Status& failure,
                                   const WireLimits& limits) {
  if (frames.empty()) return std::nullopt;
  HeaderFrame frame;
  if (!frame.Open(frames[0], limits).ok()) return std::nullopt;
  const fb::Header& h = frame.header();
  if (IsReply(h.body_type())) return std::nullopt;
  ErrorCode code = ErrorCode::kMalformed;
  if (h.version() != kProtocolVersion && h.version() != 0) {
    code = ErrorCode::kVersionMismatch;
  } else if (failure.code() == StatusCode::kOutOfRange) {
    code = ErrorCode::kTooLarge;
  } else if (failure.code() == StatusCode::kUnsupported) {
    code = ErrorCode::kUnsupported;
  } else if (failure.ok()) {
    code = ErrorCode::kInternal;
  }
  return MakeError(h.request_id(), code, failure.message());
}

Error MakeError(uint64_t request_id, ErrorCode code, std::string_view message) {
  Error e{request_id, code, std::string(TruncateUtf8(message, kMaxErrorMessage))};  // no half character
  for (char& c : e.message) {
    if (static_cast<uint8_t>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return e;
}

bool IsHexDigest(std::string_view s) {
  return s.size() == 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace brickrt::wire
