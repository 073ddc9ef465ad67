// WriteHfCheckpoint: bricks back into the HF layout. Expert bricks are concatenated into the
// stacked [E, in, out] tensors straight from their buffers (no full-model copy).
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <tuple>

#include "core/json.h"
#include "registry/hf_checkpoint.h"
#include "registry/hf_config.h"
#include "registry/safetensors.h"

namespace brickrt {
namespace {

using Key = std::tuple<BrickKind, int, int>;

class Writer {
 public:
  Writer(const ModelConfig& cfg, const WriteOptions& opts) : cfg_(cfg), opts_(opts) {}

  Status Index(const std::vector<BrickData>& bricks) {
    if (cfg_.n_layer < 1 || cfg_.n_att_experts.size() != static_cast<size_t>(cfg_.n_layer) ||
        cfg_.n_mlp_experts.size() != static_cast<size_t>(cfg_.n_layer))
      return InvalidArgument(
          "WriteHfCheckpoint: config needs n_layer >= 1 and per-layer expert counts for every layer");
    for (const BrickData& b : bricks) {
      if (!by_key_.emplace(Key{b.kind, b.layer, b.index}, &b).second)
        return InvalidArgument("WriteHfCheckpoint: brick " + b.Name() + " given twice");
    }
    return Status::Ok();
  }

  // Appends a checkpoint tensor made of `tensor_name` of the brick (kind, layer, index).
  Status Add(const std::string& hf_name, BrickKind kind, int layer, int index, const char* tensor_name,
             const Shape& shape) {
    BRICK_ASSIGN_OR_RETURN(const Tensor* t, Need(kind, layer, index, tensor_name, shape));
    out_.push_back({hf_name, FromDType(cfg_.dtype), shape, {{t->data(), t->nbytes()}}});
    return Status::Ok();
  }

  // Appends a stacked [E, in, out] tensor from E expert bricks.
  Status AddStacked(const std::string& hf_name, BrickKind kind, int layer, int64_t n, const char* tensor_name,
                    int64_t in, int64_t out) {
    StWriteTensor w{hf_name, FromDType(cfg_.dtype), {n, in, out}, {}};
    for (int e = 0; e < n; ++e) {
      BRICK_ASSIGN_OR_RETURN(const Tensor* t, Need(kind, layer, e, tensor_name, {in, out}));
      w.parts.emplace_back(t->data(), t->nbytes());
    }
    out_.push_back(std::move(w));
    return Status::Ok();
  }

  Status Build() {
    const int64_t D = cfg_.n_embd, V = cfg_.vocab_size, G = cfg_.gating_size, A = cfg_.att_hidden, F = cfg_.ffd_hidden;
    MakeDeadBuffers();
    BRICK_RETURN_IF_ERROR(Add("transformer.wte.weight", BrickKind::kEmbedding, -1, -1, "weight", {V, D}));
    for (int i = 0; i < static_cast<int>(cfg_.n_layer); ++i) {
      const std::string p = "transformer.h." + std::to_string(i) + ".";
      const int64_t Ea = cfg_.n_att_experts[static_cast<size_t>(i)], Em = cfg_.n_mlp_experts[static_cast<size_t>(i)];
      BRICK_RETURN_IF_ERROR(Add(p + "ln_1.weight", BrickKind::kNorm, i, kNormAttn, "weight", {D}));
      BRICK_RETURN_IF_ERROR(Add(p + "ln_1.bias", BrickKind::kNorm, i, kNormAttn, "bias", {D}));
      BRICK_RETURN_IF_ERROR(AddStacked(p + "attn.q_proj.experts.weight", BrickKind::kAttnExpert, i, Ea, "wq", D, A));
      BRICK_RETURN_IF_ERROR(
          AddStacked(p + "attn.q_proj.output_experts.weight", BrickKind::kAttnExpert, i, Ea, "wo", A, D));
      const std::string ag = p + "attn.q_proj.gate.w_gate.";
      BRICK_RETURN_IF_ERROR(Add(ag + "0.weight", BrickKind::kAttnRouter, i, -1, "w1", {G, D}));
      BRICK_RETURN_IF_ERROR(Add(ag + "0.bias", BrickKind::kAttnRouter, i, -1, "b1", {G}));
      BRICK_RETURN_IF_ERROR(Add(ag + "3.weight", BrickKind::kAttnRouter, i, -1, "w2", {Ea, G}));
      if (opts_.write_dead_buffers) {
        const int64_t N = opts_.dead_buffer_size;
        out_.push_back({p + "attn.mask", StDType::kI8, {N, N}, {{mask_.data(), mask_.size()}}});
        out_.push_back({p + "attn.cum_weight", FromDType(cfg_.dtype), {N, N}, {{cum_.data(), cum_.nbytes()}}});
      }
      BRICK_RETURN_IF_ERROR(Add(p + "ln_2.weight", BrickKind::kNorm, i, kNormMlp, "weight", {D}));
      BRICK_RETURN_IF_ERROR(Add(p + "ln_2.bias", BrickKind::kNorm, i, kNormMlp, "bias", {D}));
      BRICK_RETURN_IF_ERROR(AddStacked(p + "mlpf.experts.weight", BrickKind::kMlpExpert, i, Em, "w1", D, F));
      BRICK_RETURN_IF_ERROR(AddStacked(p + "mlpf.output_experts.weight", BrickKind::kMlpExpert, i, Em, "w2", F, D));
      const std::string mg = p + "mlpf.gate.w_gate.";
      BRICK_RETURN_IF_ERROR(Add(mg + "0.weight", BrickKind::kMlpRouter, i, -1, "w1", {G, D}));
      BRICK_RETURN_IF_ERROR(Add(mg + "0.bias", BrickKind::kMlpRouter, i, -1, "b1", {G}));
      BRICK_RETURN_IF_ERROR(Add(mg + "3.weight", BrickKind::kMlpRouter, i, -1, "w2", {Em, G}));
    }
    BRICK_RETURN_IF_ERROR(Add("transformer.ln_f.weight", BrickKind::kNorm, -1, kNormFinal, "weight", {D}));
    BRICK_RETURN_IF_ERROR(Add("transformer.ln_f.bias", BrickKind::kNorm, -1, kNormFinal, "bias", {D}));
    if (!cfg_.tie_word_embeddings) {
      BRICK_RETURN_IF_ERROR(Add("lm_head.weight", BrickKind::kLmHead, -1, -1, "weight", {V, D}));
    } else {
      used_.insert(Key{BrickKind::kLmHead, -1, -1});  // a tied head need not be passed, and is not written
    }
    for (const auto& [key, b] : by_key_)
      if (used_.count(key) == 0)
        return InvalidArgument("WriteHfCheckpoint: brick " + b->Name() + " (" + BrickKindName(b->kind) +
                               ") is not part of the model the config describes");
    return Status::Ok();
  }

  const std::vector<StWriteTensor>& tensors() const { return out_; }

 private:
  Result<const Tensor*> Need(BrickKind kind, int layer, int index, const char* tensor_name, const Shape& shape) {
    const Key key{kind, layer, index};
    auto it = by_key_.find(key);
    if (it == by_key_.end()) {
      BrickData probe;
      probe.kind = kind, probe.layer = layer, probe.index = index;
      return InvalidArgument("WriteHfCheckpoint: missing brick " + probe.Name() + " (" + BrickKindName(kind) + ")");
    }
    used_.insert(key);
    const BrickData& b = *it->second;
    const Tensor* t = b.Find(tensor_name);
    const std::string where = "WriteHfCheckpoint: brick " + b.Name() + " tensor '" + tensor_name + "'";
    if (t == nullptr || t->empty()) return InvalidArgument(where + " is missing");
    if (t->shape() != shape)
      return InvalidArgument(where + ": expected shape " + ShapeToString(shape) + ", found " +
                             ShapeToString(t->shape()));
    if (t->dtype() != cfg_.dtype)
      return InvalidArgument(where + ": dtype " + DTypeName(t->dtype()) + ", expected " + DTypeName(cfg_.dtype) +
                             " (the config's dtype)");
    return t;
  }

  // attn.mask: int8 lower-triangular ones incl. the diagonal; attn.cum_weight: strictly lower ones.
  void MakeDeadBuffers() {
    if (!opts_.write_dead_buffers) return;
    const int64_t N = opts_.dead_buffer_size;
    mask_.assign(static_cast<size_t>(N * N), 0);
    Tensor ones(DType::kF32, {N, N});
    float* c = ones.mutable_data_as<float>();
    for (int64_t r = 0; r < N; ++r)
      for (int64_t col = 0; col < N; ++col) {
        mask_[static_cast<size_t>(r * N + col)] = col <= r ? 1 : 0;
        c[r * N + col] = col < r ? 1.0f : 0.0f;
      }
    cum_ = ones.ConvertTo(cfg_.dtype);
  }

  const ModelConfig& cfg_;
  const WriteOptions& opts_;
  std::map<Key, const BrickData*> by_key_;
  std::set<Key> used_;
  std::vector<StWriteTensor> out_;
  std::vector<uint8_t> mask_;
  Tensor cum_;
};

Status RemoveIfExists(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return IoError(path + ": cannot remove stale file: " + std::strerror(errno));
  return Status::Ok();
}

}  // namespace

Status WriteHfCheckpoint(const std::string& dir, const ModelConfig& cfg, const std::vector<BrickData>& bricks,
                         const WriteOptions& opts) {
  if (opts.write_dead_buffers && (opts.dead_buffer_size < 1 || opts.dead_buffer_size > 4096))
    return InvalidArgument("WriteHfCheckpoint: dead_buffer_size must be in [1, 4096]");
  Writer w(cfg, opts);
  BRICK_RETURN_IF_ERROR(w.Index(bricks));
  BRICK_RETURN_IF_ERROR(w.Build());
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return IoError(dir + ": cannot create directory: " + std::strerror(errno));
  const std::vector<std::pair<std::string, std::string>> meta = {{"format", "pt"}};
  const std::string index_path = dir + "/model.safetensors.index.json";
  const std::string single_path = dir + "/model.safetensors";

  if (opts.max_shard_bytes == 0) {
    BRICK_RETURN_IF_ERROR(WriteSafetensors(single_path, w.tensors(), meta));
    BRICK_RETURN_IF_ERROR(RemoveIfExists(index_path));
  } else {
    // Greedy packing in HF order; a tensor larger than the limit gets a shard to itself.
    std::vector<std::vector<StWriteTensor>> shards(1);
    uint64_t in_shard = 0, total = 0;
    for (const StWriteTensor& t : w.tensors()) {
      const uint64_t n = static_cast<uint64_t>(NumElements(t.shape)) * StDTypeSize(t.dtype);
      if (!shards.back().empty() && in_shard + n > opts.max_shard_bytes) {
        shards.emplace_back();
        in_shard = 0;
      }
      shards.back().push_back(t);
      in_shard += n;
      total += n;
    }
    JsonValue weight_map = JsonValue::MakeObject();
    for (size_t s = 0; s < shards.size(); ++s) {
      char name[64];
      std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
      BRICK_RETURN_IF_ERROR(WriteSafetensors(dir + "/" + name, shards[s], meta));
      for (const StWriteTensor& t : shards[s]) weight_map.Set(t.name, JsonValue::String(name));
    }
    JsonValue index = JsonValue::MakeObject(
        {{"metadata", JsonValue::MakeObject({{"total_size", JsonValue::Int(static_cast<int64_t>(total))}})},
         {"weight_map", std::move(weight_map)}});
    // The index goes last: a reader never finds it pointing at shards not yet written.
    BRICK_RETURN_IF_ERROR(WriteFileAtomic(index_path, DumpJson(index, 2) + "\n"));
    BRICK_RETURN_IF_ERROR(RemoveIfExists(single_path));
  }
  return WriteFileAtomic(dir + "/config.json", HfConfigJson(cfg));
}

}  // namespace brickrt
