// JsonlTrace: the attention block's routing is kept per row until the MLP block of the same layer,
// then one line per row is written.
#include "cli/trace_writer.h"

#include <cerrno>
#include <cstring>
#include <memory>

#include "bricks/executor.h"
#include "core/json.h"

namespace brickrt::cli {

Result<std::unique_ptr<JsonlTrace>> JsonlTrace::Open(const std::string& path,
                                                     std::map<std::tuple<bool, int64_t, int64_t>, std::string> digests,
                                                     std::vector<std::string> nodes, const Tokenizer* tokenizer) {
  std::unique_ptr<JsonlTrace> t(new JsonlTrace());
  t->tokenizer_ = tokenizer;
  t->f_ = std::fopen(path.c_str(), "w");
  if (t->f_ == nullptr) return IoError("--trace " + path + ": " + std::strerror(errno));
  t->path_ = path;
  t->digests_ = std::move(digests);
  t->nodes_ = std::move(nodes);
  return t;
}

JsonlTrace::~JsonlTrace() {
  if (f_ != nullptr) std::fclose(f_);
}

std::string JsonlTrace::Experts(const BlockTrace& t, int64_t r) const {
  std::string ids, gates, on, digests;
  for (int j = 0; j < t.k; ++j) {
    const int32_t slot = t.slots[r * t.k + j];
    const int64_t id = (*t.ids)[static_cast<size_t>(slot)];
    const int32_t owner = t.owner != nullptr ? (*t.owner)[static_cast<size_t>(slot)] : MlpPlacement::kLocal;
    const auto d = digests_.find({t.attention, t.layer, id});
    char gate[32];
    std::snprintf(gate, sizeof gate, "%.6g", static_cast<double>(t.gates[r * t.k + j]));
    const char* sep = j ? "," : "";
    ids += sep + std::to_string(id);
    gates += sep + std::string(gate);
    on += sep + std::string("\"") + (owner == MlpPlacement::kLocal ? "local" : nodes_.at(static_cast<size_t>(owner))) +
          "\"";
    digests += sep + std::string("\"") + (d != digests_.end() ? d->second : "") + "\"";
  }
  char ms[32];
  std::snprintf(ms, sizeof ms, "%.4f", t.seconds * 1e3);
  return "{\"experts\":[" + ids + "],\"gates\":[" + gates + "],\"on\":[" + on + "],\"digests\":[" + digests +
         "],\"block_ms\":" + ms + "}";
}

void JsonlTrace::OnBlock(const BlockTrace& t) {
  if (t.attention) {
    attention_.resize(static_cast<size_t>(t.n));
    for (int64_t r = 0; r < t.n; ++r) attention_[static_cast<size_t>(r)] = Experts(t, r);
    return;
  }
  for (int64_t r = 0; r < t.n; ++r) {
    std::string token;
    if (t.tokens != nullptr) {
      const int32_t id = t.tokens[r];
      token = ",\"token\":" + std::to_string(id);
      if (tokenizer_ != nullptr && tokenizer_->IsValidId(id))
        token += ",\"piece\":" + DumpJson(JsonValue::String(tokenizer_->Piece(id)));
    }
    const std::string line =
        "{\"seq\":" + std::to_string(t.seq[r]) + ",\"pos\":" + std::to_string(t.pos[r]) + token +
        ",\"layer\":" + std::to_string(t.layer) +
        ",\"attention\":" + (static_cast<size_t>(r) < attention_.size() ? attention_[static_cast<size_t>(r)] : "null") +
        ",\"mlp\":" + Experts(t, r) + "}\n";
    if (std::fwrite(line.data(), 1, line.size(), f_) != line.size()) failed_ = true;
  }
}

Status JsonlTrace::Close() {
  const bool flush_failed = std::fflush(f_) != 0;
  if (failed_ || flush_failed) return IoError("--trace " + path_ + ": write failed: " + std::strerror(errno));
  return Status::Ok();
}

}  // namespace brickrt::cli
