// WritePeftAdapter: lora bricks -> a PEFT LoRA adapter directory, the inverse of ReadPeftAdapter's key
// mapping (peft_adapter_keys.cpp). Every brick is checked against the base first; nothing is written on error.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "core/lora_target.h"
#include "registry/peft_adapter.h"
#include "registry/peft_adapter_config.h"
#include "registry/peft_adapter_keys.h"
#include "registry/safetensors.h"

namespace brickrt {
namespace {

struct Checked {
  const BrickData* brick = nullptr;
  LoraTarget t;
  const Tensor* a = nullptr;  // [r, in]
  const Tensor* b = nullptr;  // [out, r]
  float alpha = 0;
};

// Checks one brick against the base model; the message names the brick.
Result<Checked> Check(const BrickData& br, const ModelConfig& base) {
  auto bad = [&](const std::string& what) { return InvalidArgument("lora " + br.target + ": " + what); };
  Checked c;
  c.brick = &br;
  BRICK_ASSIGN_OR_RETURN(c.t, LoraTargetOf(br));
  if (Status st = CheckLoraTargetIn(c.t, base); !st.ok()) return bad(st.message());
  const LoraFeatures f = LoraFeaturesOf(c.t.proj(), base);
  BRICK_RETURN_IF_ERROR(CheckLoraTensors(br, f.in, f.out).status());
  c.a = br.Find("a");
  c.b = br.Find("b");
  // The reader makes alpha F32 [1]: any other would not come back byte for byte.
  const Tensor& alpha = *br.Find("alpha");
  if (alpha.dtype() != DType::kF32 || alpha.shape() != Shape{1}) return bad("alpha must be F32 [1]");
  c.alpha = LoraAlpha(br);
  if (FirstNonFinite(*c.a) || FirstNonFinite(*c.b)) return bad("a or b holds a NaN or infinite value");
  return c;
}

Status PrepareDir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(dir, ec);
  if (fs::exists(st)) {
    if (!fs::is_directory(st)) return InvalidArgument(dir + ": exists and is not a directory");
    if (!fs::is_empty(dir, ec) || ec)
      return InvalidArgument(dir + ": directory is not empty; write the adapter to a new or empty directory");
    return Status::Ok();
  }
  if (!fs::create_directories(dir, ec) || ec)
    return IoError(dir + ": cannot create directory: " + (ec ? ec.message() : "unknown error"));
  return Status::Ok();
}

}  // namespace

Status WritePeftAdapter(const std::string& dir, const std::vector<BrickData>& loras, const ModelConfig& base,
                        const PeftWriteOptions& opts) {
  if (loras.empty()) return InvalidArgument(dir + ": no loras to write (an adapter needs at least one)");
  std::vector<Checked> all;
  all.reserve(loras.size());
  std::set<std::string> seen;
  for (const BrickData& br : loras) {
    BRICK_ASSIGN_OR_RETURN(Checked c, Check(br, base));
    if (!seen.insert(br.target).second) return InvalidArgument("lora " + br.target + ": two loras adapt it; keep one");
    const Checked& first = all.empty() ? c : all.front();
    if (c.a->dim(0) != first.a->dim(0) || c.alpha != first.alpha) {
      return InvalidArgument(
          "lora " + br.target + ": rank " + std::to_string(c.a->dim(0)) + ", alpha " + std::to_string(c.alpha) +
          " differ from lora " + first.brick->target + "'s rank " + std::to_string(first.a->dim(0)) + ", alpha " +
          std::to_string(first.alpha) +
          "; adapter_config.json holds one r and one lora_alpha, so write them as separate adapters");
    }
    all.push_back(c);
  }
  std::stable_sort(all.begin(), all.end(),
                   [](const Checked& x, const Checked& y) { return LoraTargetBefore(x.t, y.t); });

  // Expert modules (layer, proj) -> their loras, by expert.
  std::map<std::pair<int, LoraProj>, std::vector<const Checked*>> modules;
  for (const Checked& c : all)
    if (!c.t.lm_head()) modules[{c.t.layer, c.t.proj()}].push_back(&c);
  auto stackable = [&](const Checked& c) {
    if (!opts.stacked || c.t.lm_head()) return false;
    const std::vector<const Checked*>& m = modules.at({c.t.layer, c.t.proj()});
    const auto& counts = c.t.attention() ? base.n_att_experts : base.n_mlp_experts;
    // Every expert present (so none removed); a stacked tensor has one dtype.
    return static_cast<int64_t>(m.size()) == counts[static_cast<size_t>(c.t.layer)] &&
           std::all_of(m.begin(), m.end(), [&](const Checked* x) {
             return x->a->dtype() == m[0]->a->dtype() && x->b->dtype() == m[0]->b->dtype();
           });
  };

  std::vector<StWriteTensor> tensors;
  std::set<std::string> module_names;
  for (const Checked& c : all) {
    module_names.insert(PeftTargetModule(c.t.proj()));
    const int64_t r = c.a->dim(0), in = c.a->dim(1), out = c.b->dim(0);
    if (!stackable(c)) {
      tensors.push_back({PeftKeyOf(c.t, false, false), FromDType(c.a->dtype()), {r, in}, {{c.a->data(), c.a->nbytes()}}});
      tensors.push_back({PeftKeyOf(c.t, true, false), FromDType(c.b->dtype()), {out, r}, {{c.b->data(), c.b->nbytes()}}});
      continue;
    }
    if (c.t.index != 0) continue;  // the module was written with its expert 0 (sorted by expert)
    const std::vector<const Checked*>& m = modules.at({c.t.layer, c.t.proj()});
    const int64_t E = static_cast<int64_t>(m.size());
    StWriteTensor ta{PeftKeyOf(c.t, false, true), FromDType(c.a->dtype()), {E, r, in}, {}};
    StWriteTensor tb{PeftKeyOf(c.t, true, true), FromDType(c.b->dtype()), {E, out, r}, {}};
    for (const Checked* x : m) {  // one part per expert: no copy of the weights
      ta.parts.emplace_back(x->a->data(), x->a->nbytes());
      tb.parts.emplace_back(x->b->data(), x->b->nbytes());
    }
    tensors.push_back(std::move(ta));
    tensors.push_back(std::move(tb));
  }

  BRICK_RETURN_IF_ERROR(PrepareDir(dir));
  // The weights first: a directory with a config is a complete adapter.
  BRICK_RETURN_IF_ERROR(WriteSafetensors(dir + "/adapter_model.safetensors", tensors, {{"format", "pt"}}));
  return WriteFileAtomic(dir + "/adapter_config.json", PeftLoraConfigJson(all.front().a->dim(0), all.front().alpha,
                                                                         module_names, opts.base_model_name));
}

}  // namespace brickrt
