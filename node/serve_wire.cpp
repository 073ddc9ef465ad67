// The serving codec: messages <-> frames through the code flatc generates from schemas/serve.fbs,
// the only place that code is used. Decode verifies first, then checks every declared size.
#include "node/serve_wire.h"

#include <cmath>
#include <cstring>

#include <flatbuffers/flatbuffers.h>

#include "core/utf8.h"
#include "node/aligned_frame.h"
#include "schemas/serve_generated.h"

namespace brickrt::serve {
namespace {

static_assert(static_cast<uint16_t>(ErrorCode::kUnavailable) == static_cast<uint16_t>(fb::ErrorCode::Unavailable));
static_assert(fb::ErrorCode::MAX == fb::ErrorCode::Unavailable, "a new error code needs ErrorCode");

constexpr size_t kMaxErrorMessage = 1024;
using Builder = flatbuffers::FlatBufferBuilder;
using Body = std::pair<fb::Body, flatbuffers::Offset<void>>;

struct BodyBuilder {
  Builder& b;
  Body operator()(const GenerateRequest& m) const {
    auto prompt = b.CreateVector(m.prompt);
    return {fb::Body::GenerateRequest, fb::CreateGenerateRequest(b, prompt, m.max_new_tokens, m.temperature, m.top_k,
                                                                 m.top_p, m.seed, m.stop_at_eos)
                                           .Union()};
  }
  Body operator()(const GenerateReply& m) const {
    auto manifest = b.CreateString(m.manifest);
    auto generated = b.CreateVector(m.generated);
    return {fb::Body::GenerateReply, fb::CreateGenerateReply(b, manifest, generated, m.queue_seconds,
                                                             m.prefill_seconds, m.decode_seconds)
                                         .Union()};
  }
  Body operator()(const SwapRequest& m) const {
    auto to = b.CreateString(m.to);
    return {fb::Body::SwapRequest, fb::CreateSwapRequest(b, to, m.now).Union()};
  }
  Body operator()(const SwapReply& m) const {
    auto manifest = b.CreateString(m.manifest);
    auto previous = b.CreateString(m.previous);
    return {fb::Body::SwapReply, fb::CreateSwapReply(b, manifest, previous, m.load_seconds).Union()};
  }
  Body operator()(const StatusRequest&) const {
    return {fb::Body::StatusRequest, fb::CreateStatusRequest(b).Union()};
  }
  Body operator()(const StatusReply& m) const {
    auto manifest = b.CreateString(m.manifest);
    auto following = b.CreateString(m.following);
    auto running = b.CreateVectorOfStrings(m.running);
    return {fb::Body::StatusReply,
            fb::CreateStatusReply(b, manifest, following, running, m.sequences, m.queued, m.swaps).Union()};
  }
  Body operator()(const Error& m) const {
    auto message = b.CreateString(m.message);
    return {fb::Body::Error, fb::CreateError(b, static_cast<fb::ErrorCode>(m.code), message).Union()};
  }
};

// The frame verified, read in place when 8-byte aligned and from an aligned copy otherwise (ZeroMQ
// hands out receive buffers at any offset; FlatBuffers reads uint64 and double fields in place).
class Frame {
 public:
  Status Open(std::string_view frame, const ServeLimits& limits) {
    if (frame.size() > limits.max_frame_bytes) {
      return OutOfRange("message of " + std::to_string(frame.size()) + " bytes exceeds the limit of " +
                        std::to_string(limits.max_frame_bytes));
    }
    if (frame.size() < 8) return InvalidArgument("message of " + std::to_string(frame.size()) + " bytes is too short");
    const uint8_t* data = aligned_.Align(frame);
    if (!flatbuffers::BufferHasIdentifier(data, fb::HeaderIdentifier())) {
      return InvalidArgument("not a brickrt serving message (no \"BRKS\" identifier)");
    }
    flatbuffers::Verifier::Options opts;
    opts.max_depth = 8;
    opts.max_tables = static_cast<flatbuffers::uoffset_t>(limits.max_running + 16);
    flatbuffers::Verifier verifier(data, frame.size(), opts);
    if (!fb::VerifyHeaderBuffer(verifier)) {
      return InvalidArgument("message of " + std::to_string(frame.size()) + " bytes failed FlatBuffers verification");
    }
    header_ = fb::GetHeader(data);
    return Status::Ok();
  }
  const fb::Header& header() const { return *header_; }

 private:
  AlignedFrame aligned_;
  const fb::Header* header_ = nullptr;
};

bool IsReply(fb::Body t) {
  return t == fb::Body::GenerateReply || t == fb::Body::SwapReply || t == fb::Body::StatusReply ||
         t == fb::Body::Error;
}

// A model reference or manifest name: non-empty, within the limit, no space or control byte (so it
// can be echoed in an error line).
Status ReadName(const flatbuffers::String* s, size_t max_bytes, const std::string& what, bool optional,
                std::string* out) {
  if (s == nullptr || s->size() == 0) {
    if (optional) return Status::Ok();
    return InvalidArgument(what + " is missing");
  }
  if (s->size() > max_bytes) {
    return OutOfRange(what + " of " + std::to_string(s->size()) + " bytes exceeds the limit of " +
                      std::to_string(max_bytes));
  }
  for (uint32_t i = 0; i < s->size(); ++i) {
    const auto c = static_cast<uint8_t>(s->c_str()[i]);
    if (c <= 0x20 || c == 0x7f) {
      return InvalidArgument(what + " has a space or control byte at offset " + std::to_string(i));
    }
  }
  if (!IsValidUtf8(s->string_view())) return InvalidArgument(what + " is not valid UTF-8");
  out->assign(s->c_str(), s->size());
  return Status::Ok();
}

Status ReadIds(const flatbuffers::Vector<int32_t>* v, const ServeLimits& limits, const std::string& what,
               std::vector<int32_t>* out) {
  if (v == nullptr) return Status::Ok();
  if (v->size() > limits.max_prompt_tokens) {
    return OutOfRange(what + " of " + std::to_string(v->size()) + " tokens exceeds the limit of " +
                      std::to_string(limits.max_prompt_tokens));
  }
  out->assign(v->begin(), v->end());
  return Status::Ok();
}

Status CheckSeconds(double s, const char* what) {
  if (!std::isfinite(s) || s < 0) return InvalidArgument(std::string(what) + " is not a finite time");
  return Status::Ok();
}

Result<Message> DecodeBody(const fb::Header& h, const ServeLimits& limits) {
  const uint64_t id = h.request_id();
  // The verifier accepts a union type whose table is absent; the cases below read the table.
  if (h.body_type() != fb::Body::NONE && h.body() == nullptr) return InvalidArgument("message type has no body");
  switch (h.body_type()) {
    case fb::Body::GenerateRequest: {
      const fb::GenerateRequest& t = *h.body_as_GenerateRequest();
      GenerateRequest m;
      m.request_id = id;
      BRICK_RETURN_IF_ERROR(ReadIds(t.prompt(), limits, "prompt", &m.prompt));
      if (m.prompt.empty()) return InvalidArgument("prompt is empty");
      if (t.max_new_tokens() > limits.max_new_tokens) {
        return OutOfRange("max_new_tokens " + std::to_string(t.max_new_tokens()) + " exceeds the limit of " +
                          std::to_string(limits.max_new_tokens));
      }
      m.max_new_tokens = t.max_new_tokens();
      m.temperature = t.temperature();
      m.top_k = t.top_k();
      m.top_p = t.top_p();
      if (!std::isfinite(m.temperature) || !std::isfinite(m.top_p)) {
        return InvalidArgument("temperature and top_p must be finite");
      }
      m.seed = t.seed();
      m.stop_at_eos = t.stop_at_eos();
      return Message(std::move(m));
    }
    case fb::Body::GenerateReply: {
      const fb::GenerateReply& t = *h.body_as_GenerateReply();
      GenerateReply m;
      m.request_id = id;
      BRICK_RETURN_IF_ERROR(ReadName(t.manifest(), limits.max_name_bytes, "manifest", false, &m.manifest));
      BRICK_RETURN_IF_ERROR(ReadIds(t.generated(), limits, "generated", &m.generated));
      m.queue_seconds = t.queue_seconds();
      m.prefill_seconds = t.prefill_seconds();
      m.decode_seconds = t.decode_seconds();
      BRICK_RETURN_IF_ERROR(CheckSeconds(m.queue_seconds, "queue_seconds"));
      BRICK_RETURN_IF_ERROR(CheckSeconds(m.prefill_seconds, "prefill_seconds"));
      BRICK_RETURN_IF_ERROR(CheckSeconds(m.decode_seconds, "decode_seconds"));
      return Message(std::move(m));
    }
    case fb::Body::SwapRequest: {
      const fb::SwapRequest& t = *h.body_as_SwapRequest();
      SwapRequest m;
      m.request_id = id;
      BRICK_RETURN_IF_ERROR(ReadName(t.to(), limits.max_name_bytes, "swap target", false, &m.to));
      m.now = t.now();
      return Message(std::move(m));
    }
    case fb::Body::SwapReply: {
      const fb::SwapReply& t = *h.body_as_SwapReply();
      SwapReply m;
      m.request_id = id;
      BRICK_RETURN_IF_ERROR(ReadName(t.manifest(), limits.max_name_bytes, "manifest", false, &m.manifest));
      BRICK_RETURN_IF_ERROR(ReadName(t.previous(), limits.max_name_bytes, "previous", true, &m.previous));
      m.load_seconds = t.load_seconds();
      BRICK_RETURN_IF_ERROR(CheckSeconds(m.load_seconds, "load_seconds"));
      return Message(std::move(m));
    }
    case fb::Body::StatusRequest:
      return Message(StatusRequest{id});
    case fb::Body::StatusReply: {
      const fb::StatusReply& t = *h.body_as_StatusReply();
      StatusReply m;
      m.request_id = id;
      BRICK_RETURN_IF_ERROR(ReadName(t.manifest(), limits.max_name_bytes, "manifest", false, &m.manifest));
      BRICK_RETURN_IF_ERROR(ReadName(t.following(), limits.max_name_bytes, "following", true, &m.following));
      if (const auto* running = t.running()) {
        if (running->size() > limits.max_running) {
          return OutOfRange(std::to_string(running->size()) + " running manifests exceed the limit of " +
                            std::to_string(limits.max_running));
        }
        for (const flatbuffers::String* s : *running) {
          std::string name;
          BRICK_RETURN_IF_ERROR(ReadName(s, limits.max_name_bytes, "running manifest", false, &name));
          m.running.push_back(std::move(name));
        }
      }
      m.sequences = t.sequences();
      m.queued = t.queued();
      m.swaps = t.swaps();
      return Message(std::move(m));
    }
    case fb::Body::Error: {
      const fb::Error& t = *h.body_as_Error();
      if (t.code() > fb::ErrorCode::MAX) {
        return InvalidArgument("unknown error code " + std::to_string(static_cast<int>(t.code())));
      }
      const flatbuffers::String* msg = t.message();
      const size_t n = msg == nullptr ? 0 : msg->size();
      if (n > limits.max_message_bytes) {
        return OutOfRange("error message of " + std::to_string(n) + " bytes exceeds the limit of " +
                          std::to_string(limits.max_message_bytes));
      }
      return Message(MakeError(id, static_cast<ErrorCode>(t.code()), msg == nullptr ? "" : msg->string_view()));
    }
    case fb::Body::NONE:
      return InvalidArgument("empty message (no body)");
  }
  return Unsupported("unknown message type " + std::to_string(static_cast<int>(h.body_type())));
}

}  // namespace

std::string Encode(const Message& m, uint32_t version) {
  Builder b(256);
  auto [type, body] = std::visit(BodyBuilder{b}, m);
  b.Finish(fb::CreateHeader(b, version, RequestIdOf(m), type, body), fb::HeaderIdentifier());
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

Result<Message> Decode(std::string_view frame, const ServeLimits& limits) {
  Frame f;
  BRICK_RETURN_IF_ERROR(f.Open(frame, limits));
  const fb::Header& h = f.header();
  if (h.version() != kProtocolVersion) {
    return Unsupported(std::string(IsReply(h.body_type()) ? "coordinator" : "client") + " speaks protocol " +
                       std::to_string(h.version()) + ", this brickrt speaks protocol " +
                       std::to_string(kProtocolVersion));
  }
  return DecodeBody(h, limits);
}

std::optional<Error> ErrorReplyFor(std::string_view frame, const Status& failure, const ServeLimits& limits) {
  Frame f;
  if (!f.Open(frame, limits).ok() || IsReply(f.header().body_type())) return std::nullopt;
  ErrorCode code = ErrorCode::kMalformed;
  if (f.header().version() != kProtocolVersion) {
    code = ErrorCode::kVersionMismatch;
  } else if (failure.code() == StatusCode::kOutOfRange) {
    code = ErrorCode::kTooLarge;
  }
  return MakeError(f.header().request_id(), code, failure.message());
}

Error MakeError(uint64_t request_id, ErrorCode code, std::string_view message) {
  Error e{request_id, code, std::string(TruncateUtf8(message, kMaxErrorMessage))};  // no half character
  for (char& c : e.message) {
    if (static_cast<uint8_t>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return e;
}

uint64_t RequestIdOf(const Message& m) {
  return std::visit([](const auto& x) { return x.request_id; }, m);
}

Status ToStatus(const Error& e, const std::string& context) {
  const std::string msg = context + ": " + e.message;
  switch (e.code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kMalformed: return InvalidArgument(msg);
    case ErrorCode::kNotFound: return NotFound(msg);
    case ErrorCode::kTooLarge: return OutOfRange(msg);
    case ErrorCode::kVersionMismatch: return Unsupported(msg);
    case ErrorCode::kUnavailable: return Unavailable(msg);
    case ErrorCode::kLoadFailed:
    case ErrorCode::kInternal: break;
  }
  return Internal(msg);
}

}  // namespace brickrt::serve
