// ReadPeftAdapter: a PEFT LoRA adapter directory -> lora bricks. The config is checked first
// (peft_adapter_config.cpp), then every key is parsed (peft_adapter_keys.cpp) and every shape checked
// against the base model before any weight is read.
#include "registry/peft_adapter.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <system_error>
#include <utility>

#include "core/lora_target.h"
#include "registry/peft_adapter_config.h"
#include "registry/peft_adapter_keys.h"
#include "registry/safetensors.h"

namespace brickrt {
namespace {

// Unreadable counts as absent: the NotFound message then names the path.
bool IsDir(const std::string& p) {
  std::error_code ec;
  return std::filesystem::is_directory(p, ec);
}
bool Exists(const std::string& p) {
  std::error_code ec;
  return std::filesystem::exists(p, ec);
}

struct KeyPair {
  PeftKey module;  // the module's parse (from whichever of A/B came first)
  const StTensorInfo* a = nullptr;
  const StTensorInfo* b = nullptr;
};

// One brick to read: expert e of a pair (slice e of a stacked pair).
struct Job {
  const KeyPair* pair = nullptr;
  LoraTarget target;  // its index is the expert (the slice of a stacked pair); -1 for lm_head
  bool stacked = false;
  int64_t r = 0, in = 0, out = 0;
  float alpha = 0;
};

class AdapterReader {
 public:
  AdapterReader(std::string dir, const ModelConfig& base) : dir_(std::move(dir)), base_(base) {}

  Result<std::vector<BrickData>> Read() {
    if (!IsDir(dir_)) return NotFound(dir_ + ": adapter directory does not exist");
    BRICK_ASSIGN_OR_RETURN(cfg_, ReadPeftLoraConfig(dir_ + "/adapter_config.json"));
    path_ = dir_ + "/adapter_model.safetensors";
    if (!Exists(path_)) {
      const std::string hint =
          Exists(dir_ + "/adapter_model.bin")
              ? " (found adapter_model.bin: save with safe_serialization=True; pickles are not read)"
              : "";
      return NotFound(path_ + ": no such file" + hint);
    }
    BRICK_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::Open(path_));
    BRICK_RETURN_IF_ERROR(PairKeys(file));
    std::vector<Job> jobs;
    std::map<std::string, std::string> key_of_target;
    for (const auto& [module, pair] : pairs_) {
      BRICK_RETURN_IF_ERROR(PlanPair(pair, &jobs));
    }
    for (const Job& j : jobs) {
      auto [it, fresh] = key_of_target.emplace(FormatLoraTarget(j.target), j.pair->a->name);
      if (!fresh) {
        return InvalidArgument(path_ + ": keys '" + it->second + "' and '" + j.pair->a->name + "' both adapt " +
                               it->first + "; keep one");
      }
    }
    std::stable_sort(jobs.begin(), jobs.end(),
                     [](const Job& x, const Job& y) { return LoraTargetBefore(x.target, y.target); });
    std::vector<BrickData> out;
    out.reserve(jobs.size());
    for (const Job& j : jobs) {
      BRICK_ASSIGN_OR_RETURN(BrickData b, ReadJob(file, j));
      out.push_back(std::move(b));
    }
    return out;
  }

 private:
  std::string KeyError(const std::string& key, const std::string& what) const {
    return path_ + ": key '" + key + "': " + what;
  }

  // Groups A and B keys by module; rejects unknown keys, a second adapter name and duplicates.
  Status PairKeys(const SafetensorsFile& file) {
    if (file.tensors().empty()) return InvalidArgument(path_ + ": no tensors (an empty adapter)");
    std::optional<std::string> adapter;
    std::string adapter_key;
    for (const StTensorInfo& t : file.tensors()) {
      std::optional<PeftKey> pk = ParsePeftKey(t.name);
      if (!pk) {
        return InvalidArgument(KeyError(t.name,
                                        "not a LoRA weight of a module brickrt maps (expected base_model.model."
                                        "MODULE.lora_A|lora_B.weight; MODULE and forms: docs/plugins.md)"));
      }
      if (adapter && *adapter != pk->adapter) {
        auto shown = [](const std::string& a) { return a.empty() ? std::string("(none)") : "'" + a + "'"; };
        return InvalidArgument(KeyError(t.name, "adapter name " + shown(pk->adapter) + " differs from " +
                                                    shown(*adapter) + " in key '" + adapter_key +
                                                    "'; import one adapter at a time"));
      }
      adapter = pk->adapter;
      adapter_key = t.name;
      KeyPair& pair = pairs_[pk->module];
      const StTensorInfo*& slot = pk->is_b ? pair.b : pair.a;
      if (slot != nullptr) return InvalidArgument(KeyError(t.name, "duplicates key '" + slot->name + "'"));
      slot = &t;
      if (pair.module.module.empty()) pair.module = std::move(*pk);
    }
    for (const auto& [module, pair] : pairs_) {
      if (pair.a == nullptr)
        return Corrupt(KeyError(pair.b->name, "has no lora_A partner (" + module + ".lora_A.weight)"));
      if (pair.b == nullptr)
        return Corrupt(KeyError(pair.a->name, "has no lora_B partner (" + module + ".lora_B.weight)"));
    }
    return Status::Ok();
  }

  // The target must be in the base model; the message names the key.
  Status CheckInBase(const std::string& key, const LoraTarget& t) const {
    Status st = CheckLoraTargetIn(t, base_).WithContext(path_ + ": key '" + key + "'");
    if (!st.ok() && base_.IsRemoved(t.attention(), t.layer, t.index))
      return InvalidArgument(st.message() + "; import against the full model");
    return st;
  }

  // Checks one pair against the base model and the config and appends its bricks to jobs.
  Status PlanPair(const KeyPair& pair, std::vector<Job>* jobs) const {
    const PeftKey& m = pair.module;
    const std::string& a_key = pair.a->name;
    for (const StTensorInfo* t : {pair.a, pair.b}) {
      if (!ToDType(t->dtype)) {
        return Unsupported(
            KeyError(t->name, std::string("dtype ") + StDTypeName(t->dtype) + " is not supported (BF16, F16 or F32)"));
      }
    }
    Job job;
    job.pair = &pair;
    const LoraFeatures f = LoraFeaturesOf(m.proj, base_);
    job.in = f.in;
    job.out = f.out;
    job.stacked = m.proj != LoraProj::kLmHead && !m.expert;
    int64_t experts = 0;  // the layer's expert count (expert modules)
    if (m.proj != LoraProj::kLmHead) {
      // The layer, and a per-expert key's expert; every expert of a stacked key is checked below.
      BRICK_RETURN_IF_ERROR(CheckInBase(a_key, m.Target(m.expert.value_or(0))));
      experts = (m.Target(0).attention() ? base_.n_att_experts : base_.n_mlp_experts)[static_cast<size_t>(m.layer)];
    }
    const size_t rank = job.stacked ? 3 : 2;
    const std::string want_a =
        std::string(job.stacked ? "[" + std::to_string(experts) + ", r, " : "[r, ") + std::to_string(job.in) + "]";
    const std::string want_b =
        std::string(job.stacked ? "[" + std::to_string(experts) + ", " : "[") + std::to_string(job.out) + ", r]";
    const Shape& sa = pair.a->shape;
    const Shape& sb = pair.b->shape;
    if (sa.size() != rank || sa.back() != job.in || (job.stacked && sa[0] != experts))
      return InvalidArgument(KeyError(a_key, "shape " + ShapeToString(sa) + ", expected " + want_a + " for this base"));
    if (sb.size() != rank || sb[rank - 2] != job.out || (job.stacked && sb[0] != experts)) {
      return InvalidArgument(
          KeyError(pair.b->name, "shape " + ShapeToString(sb) + ", expected " + want_b + " for this base"));
    }
    job.r = sa[rank - 2];
    if (sb[rank - 1] != job.r) {
      return Corrupt(KeyError(pair.b->name, "rank " + std::to_string(sb[rank - 1]) + " disagrees with rank " +
                                                std::to_string(job.r) + " of '" + a_key + "'"));
    }
    const int64_t want_r = cfg_.RankOf(m.module);
    if (job.r != want_r) {
      return InvalidArgument(KeyError(a_key, "rank " + std::to_string(job.r) + ", but adapter_config.json gives r = " +
                                                 std::to_string(want_r) + " for " + m.module));
    }
    const double alpha = cfg_.AlphaOf(m.module);
    // PEFT scales by alpha / r, or alpha / sqrt(r) with rsLoRA; the brick always means alpha / r.
    job.alpha = static_cast<float>(cfg_.rslora ? alpha * std::sqrt(static_cast<double>(job.r)) : alpha);
    if (!std::isfinite(job.alpha)) return InvalidArgument(KeyError(a_key, "lora_alpha overflows F32"));

    if (m.proj == LoraProj::kLmHead) {
      job.target = m.Target(-1);
      jobs->push_back(job);
      return Status::Ok();
    }
    const int first = m.expert.value_or(0), last = m.expert ? *m.expert + 1 : static_cast<int>(experts);
    for (int e = first; e < last; ++e) {
      job.target = m.Target(e);
      BRICK_RETURN_IF_ERROR(CheckInBase(a_key, job.target));
      jobs->push_back(job);
    }
    return Status::Ok();
  }

  Result<Tensor> ReadTensor(const SafetensorsFile& file, const StTensorInfo& info, const Job& j, Shape shape) const {
    Result<Tensor> t = j.stacked ? file.ReadRows(info.name, j.target.index, 1) : file.Read(info.name);
    if (!t.ok()) return t.status();
    Tensor out = t->Reshaped(std::move(shape));
    if (const std::optional<int64_t> bad = FirstNonFinite(out)) {
      const std::string where = j.stacked ? " of expert " + std::to_string(j.target.index) : "";
      return Corrupt(KeyError(info.name, "element " + std::to_string(*bad) + where + " is NaN or infinite"));
    }
    return out;
  }

  Result<BrickData> ReadJob(const SafetensorsFile& file, const Job& j) const {
    BrickData b;
    b.kind = BrickKind::kLora;
    b.layer = j.target.layer;
    b.index = j.target.index;
    b.target = FormatLoraTarget(j.target);
    BRICK_ASSIGN_OR_RETURN(Tensor a, ReadTensor(file, *j.pair->a, j, {j.r, j.in}));
    BRICK_ASSIGN_OR_RETURN(Tensor bt, ReadTensor(file, *j.pair->b, j, {j.out, j.r}));
    Tensor alpha(DType::kF32, {1});
    alpha.mutable_data_as<float>()[0] = j.alpha;
    b.tensors.emplace_back("a", std::move(a));
    b.tensors.emplace_back("b", std::move(bt));
    b.tensors.emplace_back("alpha", std::move(alpha));
    return b;
  }

  std::string dir_, path_;
  const ModelConfig& base_;
  PeftLoraConfig cfg_;
  std::map<std::string, KeyPair> pairs_;  // by module name
};

}  // namespace

Result<std::vector<BrickData>> ReadPeftAdapter(const std::string& dir, const ModelConfig& base) {
  return AdapterReader(dir, base).Read();
}

}  // namespace brickrt
