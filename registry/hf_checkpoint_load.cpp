// LoadHfCheckpoint: validates every tensor's presence, dtype and shape against config.json before
// reading any weights, then preads each brick's bytes (one expert slice at a time).
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <set>

#include "core/json.h"
#include "core/log.h"
#include "registry/hf_checkpoint.h"

#include "core/file.h"
#include "registry/hf_config.h"
#include "registry/safetensors.h"

namespace brickrt {
namespace {

constexpr char kModule[] = "registry";

bool IsDir(const std::string& p) {
  struct stat sb {};
  return ::stat(p.c_str(), &sb) == 0 && S_ISDIR(sb.st_mode);
}
bool Exists(const std::string& p) {
  struct stat sb {};
  return ::stat(p.c_str(), &sb) == 0;
}

struct Entry {
  const SafetensorsFile* file;
  const StTensorInfo* info;
};

class Loader {
 public:
  explicit Loader(std::string dir) : dir_(std::move(dir)) {}

  Result<LoadedCheckpoint> Load() {
    if (!IsDir(dir_)) return NotFound(dir_ + ": checkpoint directory does not exist");
    BRICK_ASSIGN_OR_RETURN(cfg_, ReadHfConfig(dir_ + "/config.json"));
    BRICK_RETURN_IF_ERROR(OpenFiles());
    BRICK_RETURN_IF_ERROR(Validate());
    WarnUnknown();
    LoadedCheckpoint out;
    BRICK_RETURN_IF_ERROR(ReadBricks(&out.bricks));
    out.config = cfg_;
    out.description = Describe(out.bricks);
    return out;
  }

 private:
  Status OpenFiles() {
    const std::string index = dir_ + "/model.safetensors.index.json";
    const std::string single = dir_ + "/model.safetensors";
    if (Exists(index)) return OpenSharded(index);
    if (!Exists(single)) {
      std::string hint;
      if (Exists(dir_ + "/pytorch_model.bin") || Exists(dir_ + "/pytorch_model.bin.index.json"))
        hint = " (found pytorch_model.bin: convert it to safetensors first; brickrt does not read pickles)";
      return NotFound(dir_ + ": no model.safetensors or model.safetensors.index.json" + hint);
    }
    files_.reserve(1);
    BRICK_ASSIGN_OR_RETURN(auto f, SafetensorsFile::Open(single));
    files_.push_back(std::move(f));
    for (const auto& t : files_[0].tensors()) entries_[t.name] = {&files_[0], &t};
    return Status::Ok();
  }

  Status OpenSharded(const std::string& index_path) {
    BRICK_ASSIGN_OR_RETURN(std::string text, ReadFileCapped(index_path, size_t{64} << 20));
    auto parsed = ParseJson(text);
    if (!parsed.ok()) return Corrupt(index_path + ": invalid JSON: " + parsed.status().message());
    const JsonValue* map = parsed->Find("weight_map");
    if (map == nullptr || !map->is_object())
      return Corrupt(index_path + ": expected an object \"weight_map\" (tensor name -> shard file)");
    std::vector<std::string> shard_names;
    for (const auto& [name, shard] : map->as_object()) {
      if (!shard.is_string() || shard.as_string().empty() || shard.as_string().find('/') != std::string::npos)
        return Corrupt(index_path + ": weight_map entry '" + name +
                       "': expected a file name in this directory, found " + DumpJson(shard));
      if (std::find(shard_names.begin(), shard_names.end(), shard.as_string()) == shard_names.end())
        shard_names.push_back(shard.as_string());
    }
    files_.reserve(shard_names.size());  // entries_ points into files_: no reallocation after this
    for (const std::string& s : shard_names) {
      auto f = SafetensorsFile::Open(dir_ + "/" + s);
      if (!f.ok()) {
        if (f.status().code() == StatusCode::kNotFound)
          return NotFound(dir_ + "/" + s + ": shard listed in model.safetensors.index.json does not exist");
        return f.status();
      }
      files_.push_back(std::move(f).value());
      const SafetensorsFile& file = files_.back();
      for (const auto& t : file.tensors()) {
        if (auto it = entries_.find(t.name); it != entries_.end())
          return Corrupt(file.path() + ": tensor '" + t.name + "' is also in " + it->second.file->path());
        entries_[t.name] = {&file, &t};
      }
    }
    for (const auto& [name, shard] : map->as_object()) {
      auto it = entries_.find(name);
      if (it == entries_.end() || it->second.file->path() != dir_ + "/" + shard.as_string())
        return Corrupt(index_path + ": weight_map puts tensor '" + name + "' in " + shard.as_string() +
                       ", but that shard does not contain it");
    }
    return Status::Ok();
  }

  Status Missing(const std::string& name) const {
    return NotFound(dir_ + ": tensor '" + name + "' not found in " +
                    (files_.size() == 1 ? files_[0].path() : "any shard of model.safetensors.index.json"));
  }

  static std::string Where(const Entry& e) { return e.file->path() + ": tensor '" + e.info->name + "'"; }

  // Finds a required tensor and checks its dtype and shape. `why` explains where the expected shape
  // comes from, for the message.
  Result<Entry> Expect(const std::string& name, const Shape& shape, const std::string& why) {
    auto it = entries_.find(name);
    if (it == entries_.end()) return Missing(name);
    const Entry& e = it->second;
    used_.insert(name);
    if (e.info->dtype != model_st_dtype_)
      return Unsupported(Where(e) + ": dtype " + StDTypeName(e.info->dtype) + ", expected " +
                         StDTypeName(model_st_dtype_) +
                         " (the dtype of transformer.wte.weight; brickrt needs one dtype for all weights)");
    if (e.info->shape != shape)
      return Corrupt(Where(e) + ": expected shape " + ShapeToString(shape) + ", found " + ShapeToString(e.info->shape) +
                     (why.empty() ? "" : " (" + why + ")"));
    return e;
  }

  // Expert count of a layer from dim 0 of its stacked expert tensor, after checking its rank.
  Result<int64_t> ExpertCount(const std::string& name, int64_t in, int64_t out, const char* dims) {
    auto it = entries_.find(name);
    if (it == entries_.end()) return Missing(name);
    const Shape& s = it->second.info->shape;
    if (s.size() != 3 || s[0] < 1)
      return Corrupt(Where(it->second) + ": expected shape [n_experts >= 1, " + std::to_string(in) + ", " +
                     std::to_string(out) + "] (" + dims + "), found " + ShapeToString(s));
    return s[0];
  }

  Status ValidateMoe(int64_t layer, const std::string& prefix, const char* what, int k, int64_t in, int64_t out,
                     const char* dims, int64_t* n_experts) {
    const int64_t D = cfg_.n_embd, G = cfg_.gating_size;
    BRICK_ASSIGN_OR_RETURN(int64_t E, ExpertCount(prefix + "experts.weight", in, out, dims));
    const std::string count = std::to_string(E) + " experts in " + prefix + "experts.weight";
    BRICK_RETURN_IF_ERROR(Expect(prefix + "experts.weight", {E, in, out}, dims).status());
    BRICK_RETURN_IF_ERROR(Expect(prefix + "output_experts.weight", {E, out, in}, count).status());
    BRICK_RETURN_IF_ERROR(Expect(prefix + "gate.w_gate.0.weight", {G, D}, "gating_size, n_embd").status());
    BRICK_RETURN_IF_ERROR(Expect(prefix + "gate.w_gate.0.bias", {G}, "gating_size").status());
    BRICK_RETURN_IF_ERROR(
        Expect(prefix + "gate.w_gate.3.weight", {E, G}, "router rows = the " + count + ", gating_size").status());
    if (k > E)
      return Corrupt(dir_ + ": layer " + std::to_string(layer) + " has " + std::to_string(E) + " " + what +
                     " experts (" + prefix + "experts.weight), fewer than " + (what[0] == 'a' ? "k_att" : "k_mlp") +
                     " = " + std::to_string(k) + " in config.json");
    *n_experts = E;
    return Status::Ok();
  }

  Status Validate() {
    const int64_t D = cfg_.n_embd, V = cfg_.vocab_size;
    auto wte = entries_.find("transformer.wte.weight");
    if (wte == entries_.end()) return Missing("transformer.wte.weight");
    model_st_dtype_ = wte->second.info->dtype;
    const auto dt = ToDType(model_st_dtype_);
    if (!dt)
      return Unsupported(Where(wte->second) + ": dtype " + StDTypeName(model_st_dtype_) +
                         ", expected one of BF16, F16, F32");
    if (*dt != cfg_.dtype)
      log::Info(kModule, dir_ + ": config.json torch_dtype is " + DTypeName(cfg_.dtype) + " but the weights are " +
                             DTypeName(*dt) + "; using " + DTypeName(*dt));
    cfg_.dtype = *dt;
    BRICK_RETURN_IF_ERROR(Expect("transformer.wte.weight", {V, D}, "vocab_size, n_embd from config.json").status());
    for (int64_t i = 0; i < cfg_.n_layer; ++i) {
      const std::string p = "transformer.h." + std::to_string(i) + ".";
      for (const char* ln : {"ln_1.", "ln_2."}) {
        BRICK_RETURN_IF_ERROR(Expect(p + ln + "weight", {D}, "n_embd").status());
        BRICK_RETURN_IF_ERROR(Expect(p + ln + "bias", {D}, "n_embd").status());
      }
      auto L = static_cast<size_t>(i);
      BRICK_RETURN_IF_ERROR(ValidateMoe(i, p + "attn.q_proj.", "attention", cfg_.k_att, D, cfg_.att_hidden,
                                        "n_experts, n_embd, att_hidden", &cfg_.n_att_experts[L]));
      BRICK_RETURN_IF_ERROR(ValidateMoe(i, p + "mlpf.", "MLP", cfg_.k_mlp, D, cfg_.ffd_hidden,
                                        "n_experts, n_embd, ffd_hidden", &cfg_.n_mlp_experts[L]));
      // Dead buffers (spec G9): known, never read.
      used_.insert(p + "attn.mask");
      used_.insert(p + "attn.cum_weight");
    }
    BRICK_RETURN_IF_ERROR(Expect("transformer.ln_f.weight", {D}, "n_embd").status());
    BRICK_RETURN_IF_ERROR(Expect("transformer.ln_f.bias", {D}, "n_embd").status());
    if (cfg_.tie_word_embeddings) {
      used_.insert("lm_head.weight");  // HF ties it to wte whatever the file holds
    } else if (entries_.count("lm_head.weight") == 0) {
      return NotFound(dir_ + ": tensor 'lm_head.weight' not found and tie_word_embeddings is false in config.json");
    } else {
      BRICK_RETURN_IF_ERROR(Expect("lm_head.weight", {V, D}, "vocab_size, n_embd").status());
    }
    return Status::Ok();
  }

  void WarnUnknown() {
    std::vector<std::string> unknown;
    for (const auto& [name, e] : entries_)
      if (used_.count(name) == 0) unknown.push_back(name);
    if (unknown.empty()) return;
    std::string list;
    for (size_t i = 0; i < unknown.size() && i < 5; ++i) list += (i ? ", " : "") + unknown[i];
    if (unknown.size() > 5) list += ", ...";
    log::Warn(kModule,
              dir_ + ": ignoring " + std::to_string(unknown.size()) + " tensor(s) brickrt does not use: " + list);
  }

  Result<Tensor> ReadAll(const std::string& name) const {
    const Entry& e = entries_.at(name);
    return e.file->Read(name);
  }

  Status AddPlain(std::vector<BrickData>* out, BrickKind kind, int layer, int index,
                  std::vector<std::pair<std::string, std::string>> names) const {
    BrickData b;
    b.kind = kind, b.layer = layer, b.index = index;
    for (auto& [tensor, key] : names) {
      BRICK_ASSIGN_OR_RETURN(Tensor t, ReadAll(key));
      b.tensors.emplace_back(std::move(tensor), std::move(t));
    }
    out->push_back(std::move(b));
    return Status::Ok();
  }

  // One brick per expert: rows e of the stacked [E, in, out] tensors.
  Status AddExperts(std::vector<BrickData>* out, BrickKind kind, int layer, int64_t n, const std::string& prefix,
                    const char* first_name, const char* second_name) const {
    const Entry& a = entries_.at(prefix + "experts.weight");
    const Entry& b = entries_.at(prefix + "output_experts.weight");
    for (int64_t e = 0; e < n; ++e) {
      BrickData brick;
      brick.kind = kind, brick.layer = layer, brick.index = static_cast<int>(e);
      BRICK_ASSIGN_OR_RETURN(Tensor t1, a.file->ReadRows(a.info->name, e, 1));
      BRICK_ASSIGN_OR_RETURN(Tensor t2, b.file->ReadRows(b.info->name, e, 1));
      brick.tensors.emplace_back(first_name, t1.Reshaped({t1.dim(1), t1.dim(2)}));
      brick.tensors.emplace_back(second_name, t2.Reshaped({t2.dim(1), t2.dim(2)}));
      out->push_back(std::move(brick));
    }
    return Status::Ok();
  }

  Status ReadBricks(std::vector<BrickData>* out) const {
    BRICK_RETURN_IF_ERROR(AddPlain(out, BrickKind::kEmbedding, -1, -1, {{"weight", "transformer.wte.weight"}}));
    for (int i = 0; i < static_cast<int>(cfg_.n_layer); ++i) {
      const std::string p = "transformer.h." + std::to_string(i) + ".";
      const auto L = static_cast<size_t>(i);
      BRICK_RETURN_IF_ERROR(
          AddPlain(out, BrickKind::kNorm, i, kNormAttn, {{"weight", p + "ln_1.weight"}, {"bias", p + "ln_1.bias"}}));
      const std::string ag = p + "attn.q_proj.gate.w_gate.";
      BRICK_RETURN_IF_ERROR(AddPlain(out, BrickKind::kAttnRouter, i, -1,
                                     {{"w1", ag + "0.weight"}, {"b1", ag + "0.bias"}, {"w2", ag + "3.weight"}}));
      BRICK_RETURN_IF_ERROR(
          AddExperts(out, BrickKind::kAttnExpert, i, cfg_.n_att_experts[L], p + "attn.q_proj.", "wq", "wo"));
      BRICK_RETURN_IF_ERROR(
          AddPlain(out, BrickKind::kNorm, i, kNormMlp, {{"weight", p + "ln_2.weight"}, {"bias", p + "ln_2.bias"}}));
      const std::string mg = p + "mlpf.gate.w_gate.";
      BRICK_RETURN_IF_ERROR(AddPlain(out, BrickKind::kMlpRouter, i, -1,
                                     {{"w1", mg + "0.weight"}, {"b1", mg + "0.bias"}, {"w2", mg + "3.weight"}}));
      BRICK_RETURN_IF_ERROR(AddExperts(out, BrickKind::kMlpExpert, i, cfg_.n_mlp_experts[L], p + "mlpf.", "w1", "w2"));
    }
    BRICK_RETURN_IF_ERROR(AddPlain(out, BrickKind::kNorm, -1, kNormFinal,
                                   {{"weight", "transformer.ln_f.weight"}, {"bias", "transformer.ln_f.bias"}}));
    if (cfg_.tie_word_embeddings) {
      BrickData head;
      head.kind = BrickKind::kLmHead;
      head.tensors.emplace_back("weight", out->front().tensors[0].second);  // shares the embedding's storage
      out->push_back(std::move(head));
    } else {
      BRICK_RETURN_IF_ERROR(AddPlain(out, BrickKind::kLmHead, -1, -1, {{"weight", "lm_head.weight"}}));
    }
    return Status::Ok();
  }

  std::string Describe(const std::vector<BrickData>& bricks) const {
    const auto range = [](const std::vector<int64_t>& v) {
      const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
      return *lo == *hi ? std::to_string(*lo) : std::to_string(*lo) + "-" + std::to_string(*hi);
    };
    size_t bytes = 0;
    for (const auto& b : bricks) bytes += b.nbytes();
    char mib[32];
    std::snprintf(mib, sizeof mib, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
    return "ModuleFormer " + std::to_string(cfg_.n_layer) + " layers, d_model " + std::to_string(cfg_.n_embd) +
           ", vocab " + std::to_string(cfg_.vocab_size) + ", attn experts " + range(cfg_.n_att_experts) + " (top-" +
           std::to_string(cfg_.k_att) + "), mlp experts " + range(cfg_.n_mlp_experts) + " (top-" +
           std::to_string(cfg_.k_mlp) + ", ffd " + std::to_string(cfg_.ffd_hidden) + "), " + DTypeName(cfg_.dtype) +
           ", " + std::to_string(bricks.size()) + " bricks, " + mib + " from " + std::to_string(files_.size()) +
           " file(s) in " + dir_;
  }

  std::string dir_;
  ModelConfig cfg_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, Entry> entries_;
  std::set<std::string> used_;
  StDType model_st_dtype_ = StDType::kBF16;
};

}  // namespace

Result<LoadedCheckpoint> LoadHfCheckpoint(const std::string& dir) { return Loader(dir).Load(); }

}  // namespace brickrt
