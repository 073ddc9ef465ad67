// ReadGrowFiles: the new experts and router rows of `brick grow`, checked against the model before
// anything is written — a wrong orientation or a row trained for another router would otherwise be
// stored and silently compute something else.
#include <cstring>
#include <map>
#include <optional>

#include "registry/grow_internal.h"
#include "registry/safetensors.h"

namespace brickrt::grow_internal {
namespace {

// "mlpf." / "attn.q_proj.": the HF checkpoint's module path of a layer's experts and router.
std::string ModulePrefix(bool attention) { return attention ? "attn.q_proj." : "mlpf."; }

std::string LayerPrefix(int64_t layer) { return "transformer.h." + std::to_string(layer) + "."; }

// The tensors of one file by checkpoint name without the layer prefix. Every tensor must be one of
// `allowed`; "transformer.h.<N>." is stripped when N is the grown layer and refused otherwise.
class FileTensors {
 public:
  static Result<FileTensors> Open(const std::string& path, int64_t layer, bool attention,
                                  const std::vector<std::string>& allowed) {
    BRICK_ASSIGN_OR_RETURN(SafetensorsFile f, SafetensorsFile::Open(path));
    FileTensors out(std::move(f));
    std::string expected;
    for (const std::string& a : allowed) expected += (expected.empty() ? "" : ", ") + a;
    for (size_t i = 0; i < out.file_.tensors().size(); ++i) {
      const StTensorInfo& t = out.file_.tensors()[i];
      std::string local = t.name;
      if (local.rfind("transformer.h.", 0) == 0) {
        const size_t dot = local.find('.', 14);
        const std::string n = local.substr(14, dot == std::string::npos ? std::string::npos : dot - 14);
        if (dot == std::string::npos || n != std::to_string(layer)) {
          return InvalidArgument(path + ": tensor " + t.name + " is not for layer " + std::to_string(layer) +
                                 " (--layer); name its tensors " + LayerPrefix(layer) + "... or without the prefix");
        }
        local = local.substr(dot + 1);
      }
      bool ok = false;
      for (const std::string& a : allowed) ok = ok || a == local;
      if (!ok) {
        const bool other_kind = local.rfind(ModulePrefix(!attention), 0) == 0;
        return InvalidArgument(
            path + ": unexpected tensor " + t.name + " (expected " + expected + ")" +
            (other_kind ? std::string("; it belongs to the ") +
                              (attention ? "MLP experts: use --kind mlp" : "attention experts: use --kind attn")
                        : std::string()));
      }
      if (!out.by_local_.emplace(local, i).second) {
        return InvalidArgument(path + ": tensor " + local + " appears twice (with and without the " +
                               LayerPrefix(layer) + " prefix)");
      }
    }
    return out;
  }

  const SafetensorsFile& file() const { return file_; }
  const std::string& path() const { return file_.path(); }
  // nullptr when absent.
  const StTensorInfo* Find(const std::string& local) const {
    const auto it = by_local_.find(local);
    return it == by_local_.end() ? nullptr : &file_.tensors()[it->second];
  }
  Result<const StTensorInfo*> Require(const std::string& local) const {
    const StTensorInfo* t = Find(local);
    if (t == nullptr) return NotFound(path() + ": no tensor " + local + " (with or without a transformer.h.N. prefix)");
    return t;
  }

 private:
  explicit FileTensors(SafetensorsFile f) : file_(std::move(f)) {}
  SafetensorsFile file_;
  std::map<std::string, size_t> by_local_;  // index into file_.tensors()
};

// The model's dtype: bricks stay byte-identical to a checkpoint of that dtype, nothing is converted.
Status CheckDType(const std::string& path, const StTensorInfo& t, DType want) {
  const auto dt = ToDType(t.dtype);
  if (!dt || *dt != want) {
    return InvalidArgument(path + ": " + t.name + " is " + StDTypeName(t.dtype) + "; expected " + DTypeName(want) +
                           " (the model's dtype)");
  }
  return Status::Ok();
}

Status CheckShape(const std::string& path, const StTensorInfo& t, const Shape& want, const std::string& dims) {
  if (t.shape == want) return Status::Ok();
  return InvalidArgument(path + ": " + t.name + " has shape " + ShapeToString(t.shape) + "; expected " +
                         ShapeToString(want) + " (" + dims + ")");
}

// The first element that is NaN or infinite, by its exponent bits (exact for every dtype).
std::optional<std::pair<int64_t, bool>> FirstNonFinite(const Tensor& t) {  // (index, is_nan)
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) {
    bool bad = false, nan = false;
    if (t.dtype() == DType::kF32) {
      const uint32_t b = t.data_as<uint32_t>()[i];
      bad = (b & 0x7f800000u) == 0x7f800000u;
      nan = (b & 0x007fffffu) != 0;
    } else {
      const uint16_t b = t.data_as<uint16_t>()[i];
      const uint16_t exp = t.dtype() == DType::kBF16 ? 0x7f80 : 0x7c00;
      bad = (b & exp) == exp;
      nan = (b & (~exp & 0x7fff)) != 0;
    }
    if (bad) return std::make_pair(i, nan);
  }
  return std::nullopt;
}

// row_offset: the tensor is rows [row_offset, ...) of `name` in the file (one expert of a stack).
Status CheckFinite(const std::string& path, const std::string& name, const Tensor& t, int64_t row_offset = 0) {
  const auto bad = FirstNonFinite(t);
  if (!bad) return Status::Ok();
  Shape idx(t.shape().size());
  int64_t rest = bad->first;
  for (size_t d = idx.size(); d-- > 0;) {
    idx[d] = rest % t.shape()[d];
    rest /= t.shape()[d];
  }
  if (!idx.empty()) idx[0] += row_offset;
  std::string at;
  for (int64_t v : idx) at += (at.empty() ? "" : ", ") + std::to_string(v);
  return InvalidArgument(path + ": " + name + " has " + (bad->second ? "a NaN" : "an infinite value") + " at [" + at +
                         "]; every weight must be finite");
}

Result<Tensor> ReadChecked(const FileTensors& f, const StTensorInfo& t) {
  BRICK_ASSIGN_OR_RETURN(Tensor x, f.file().Read(t.name));
  BRICK_RETURN_IF_ERROR(CheckFinite(f.path(), t.name, x));
  return x;
}

// REQUIRES: ReadGrowFiles checked that the router has this tensor.
const Tensor& TensorOf(const BrickData& b, const char* name) { return *b.Find(name); }

// rows of a row-major [R, G] matrix, concatenated.
Tensor RowsOf(const Tensor& m, const std::vector<int64_t>& rows) {
  const size_t row = static_cast<size_t>(m.dim(1)) * DTypeSize(m.dtype());
  Tensor out = Tensor::Uninitialized(m.dtype(), {static_cast<int64_t>(rows.size()), m.dim(1)});
  for (size_t i = 0; i < rows.size(); ++i) {
    std::memcpy(static_cast<uint8_t*>(out.mutable_data()) + i * row,
                static_cast<const uint8_t*>(m.data()) + static_cast<size_t>(rows[i]) * row, row);
  }
  return out;
}

Result<std::vector<BrickData>> ReadExperts(const GrowRequest& req, const ModelConfig& cfg, int64_t E) {
  const std::string p = ModulePrefix(req.attention);
  const std::string in_name = p + "experts.weight", out_name = p + "output_experts.weight";
  BRICK_ASSIGN_OR_RETURN(FileTensors f,
                         FileTensors::Open(req.experts_path, req.layer, req.attention, {in_name, out_name}));
  BRICK_ASSIGN_OR_RETURN(const StTensorInfo* in, f.Require(in_name));
  BRICK_ASSIGN_OR_RETURN(const StTensorInfo* out, f.Require(out_name));
  const int64_t D = cfg.n_embd, H = req.attention ? cfg.att_hidden : cfg.ffd_hidden;
  const std::string h = req.attention ? "att_hidden" : "ffd_hidden";
  for (const StTensorInfo* t : {in, out}) BRICK_RETURN_IF_ERROR(CheckDType(f.path(), *t, cfg.dtype));
  if (in->shape.size() != 3 || in->shape[0] < 1) {
    return InvalidArgument(f.path() + ": " + in->name + " has shape " + ShapeToString(in->shape) +
                           "; expected [n_new >= 1, " + std::to_string(D) + ", " + std::to_string(H) + "]");
  }
  const int64_t n = in->shape[0];
  BRICK_RETURN_IF_ERROR(CheckShape(f.path(), *in, {n, D, H}, "n_new, n_embd, " + h + " of the model"));
  BRICK_RETURN_IF_ERROR(CheckShape(f.path(), *out, {n, H, D},
                                   std::to_string(n) + " new experts as in " + in->name + ", " + h + ", n_embd"));
  const BrickKind kind = req.attention ? BrickKind::kAttnExpert : BrickKind::kMlpExpert;
  std::vector<BrickData> experts;
  for (int64_t j = 0; j < n; ++j) {
    BrickData b;
    b.kind = kind;
    b.layer = static_cast<int>(req.layer);
    b.index = static_cast<int>(E + j);
    int slot = 0;
    for (const StTensorInfo* t : {in, out}) {
      // One pread per expert slice, like the checkpoint loader: each brick owns exactly its bytes.
      BRICK_ASSIGN_OR_RETURN(Tensor x, f.file().ReadRows(t->name, j, 1));
      BRICK_RETURN_IF_ERROR(CheckFinite(f.path(), t->name, x, j));
      const char* name = req.attention ? (slot == 0 ? "wq" : "wo") : (slot == 0 ? "w1" : "w2");
      b.tensors.emplace_back(name, x.Reshaped({t->shape[1], t->shape[2]}));
      ++slot;
    }
    experts.push_back(std::move(b));
  }
  return experts;
}

// The file's router rows, reduced to the n_new new ones after checking a full matrix's old rows.
Result<Tensor> ReadNewRouterRows(const GrowRequest& req, const ModelConfig& cfg, const BrickData& old_router,
                                 const std::string& router_ref, int64_t n) {
  const std::string g = ModulePrefix(req.attention) + "gate.w_gate.";
  BRICK_ASSIGN_OR_RETURN(FileTensors f, FileTensors::Open(req.router_path, req.layer, req.attention,
                                                          {g + "3.weight", g + "0.weight", g + "0.bias"}));
  const int64_t G = cfg.gating_size, D = cfg.n_embd;
  // The hidden layer is shared by old and new rows: a file that carries it must carry the same one.
  const std::pair<const char*, Shape> hidden[] = {{"w1", {G, D}}, {"b1", {G}}};
  const char* hidden_names[] = {"0.weight", "0.bias"};
  for (int i = 0; i < 2; ++i) {
    const StTensorInfo* t = f.Find(g + hidden_names[i]);
    if (t == nullptr) continue;
    BRICK_RETURN_IF_ERROR(CheckDType(f.path(), *t, cfg.dtype));
    BRICK_RETURN_IF_ERROR(CheckShape(f.path(), *t, hidden[i].second, "the router's hidden layer"));
    BRICK_ASSIGN_OR_RETURN(Tensor x, f.file().Read(t->name));
    const Tensor& old = TensorOf(old_router, hidden[i].first);
    if (std::memcmp(x.data(), old.data(), old.nbytes()) != 0) {
      return InvalidArgument(f.path() + ": " + t->name + " differs from the hidden layer of " + router_ref +
                             "; growing appends output rows only (w_gate.3), the hidden layer must stay the same");
    }
  }

  BRICK_ASSIGN_OR_RETURN(const StTensorInfo* t, f.Require(g + "3.weight"));
  BRICK_RETURN_IF_ERROR(CheckDType(f.path(), *t, cfg.dtype));
  const int64_t E = (req.attention ? cfg.n_att_experts : cfg.n_mlp_experts)[static_cast<size_t>(req.layer)];
  const std::vector<int64_t> kept = cfg.KeptExpertIds(req.attention, req.layer);
  const int64_t K = static_cast<int64_t>(kept.size());
  const int64_t rows = t->shape.size() == 2 ? t->shape[0] : -1;
  const bool fits =
      t->shape.size() == 2 && t->shape[1] == G && (rows == n || rows == E + n || (K != E && rows == K + n));
  if (!fits) {
    std::string want = ShapeToString({n, G}) + " (the new rows) or " + ShapeToString({E + n, G}) + " (the " +
                       std::to_string(E) + " rows of " + router_ref + ", then the new ones)";
    if (K != E)
      want += " or " + ShapeToString({K + n, G}) + " (its " + std::to_string(K) + " kept rows, then the new ones)";
    return InvalidArgument(f.path() + ": " + t->name + " has shape " + ShapeToString(t->shape) + "; expected " + want +
                           " for the " + std::to_string(n) + " experts in " + req.experts_path);
  }
  BRICK_ASSIGN_OR_RETURN(Tensor all, ReadChecked(f, *t));
  if (rows == n) return all;
  // A full matrix: its old rows must be the router's own, or the new rows would be scored against
  // logits the model does not compute.
  std::vector<int64_t> old_ids = kept;
  if (rows == E + n) {
    old_ids.clear();
    for (int64_t e = 0; e < E; ++e) old_ids.push_back(e);
  }
  const Tensor& w2 = TensorOf(old_router, "w2");
  const size_t row = static_cast<size_t>(G) * DTypeSize(cfg.dtype);
  for (size_t i = 0; i < old_ids.size(); ++i) {
    if (std::memcmp(static_cast<const uint8_t*>(all.data()) + i * row,
                    static_cast<const uint8_t*>(w2.data()) + static_cast<size_t>(old_ids[i]) * row, row) != 0) {
      return InvalidArgument(f.path() + ": " + t->name + " row " + std::to_string(i) + " differs from row " +
                             std::to_string(old_ids[i]) + " of " + router_ref + "; the first " +
                             std::to_string(old_ids.size()) +
                             " rows of a full router must equal the old ones exactly " + "(or pass only the " +
                             std::to_string(n) + " new rows)");
    }
  }
  std::vector<int64_t> fresh;
  for (int64_t r = rows - n; r < rows; ++r) fresh.push_back(r);
  return RowsOf(all, fresh);
}

}  // namespace

Result<GrowFiles> ReadGrowFiles(const GrowRequest& req, const ModelConfig& cfg, const BrickData& old_router,
                                const std::string& router_ref) {
  const int64_t E = (req.attention ? cfg.n_att_experts : cfg.n_mlp_experts)[static_cast<size_t>(req.layer)];
  // The stored router is what the new rows extend; one that disagrees with its own config (a damaged
  // registry) is reported rather than grown.
  const int64_t G = cfg.gating_size;
  const std::pair<const char*, Shape> want[] = {{"w1", {G, cfg.n_embd}}, {"b1", {G}}, {"w2", {E, G}}};
  for (const auto& [name, shape] : want) {
    const Tensor* t = old_router.Find(name);
    if (t == nullptr || t->shape() != shape || t->dtype() != cfg.dtype) {
      return Corrupt(router_ref + ": tensor " + name + " is " +
                     (t == nullptr ? std::string("missing") : ShapeToString(t->shape())) + ", not the config's " +
                     ShapeToString(shape) + " " + DTypeName(cfg.dtype));
    }
  }
  const Tensor& w2 = TensorOf(old_router, "w2");  // [E, G]
  GrowFiles out;
  BRICK_ASSIGN_OR_RETURN(out.experts, ReadExperts(req, cfg, E));
  const auto n = static_cast<int64_t>(out.experts.size());
  BRICK_ASSIGN_OR_RETURN(Tensor fresh, ReadNewRouterRows(req, cfg, old_router, router_ref, n));

  Tensor grown = Tensor::Uninitialized(cfg.dtype, {E + n, cfg.gating_size});  // [E + n_new, G]
  std::memcpy(grown.mutable_data(), w2.data(), w2.nbytes());
  std::memcpy(static_cast<uint8_t*>(grown.mutable_data()) + w2.nbytes(), fresh.data(), fresh.nbytes());
  out.router.kind = old_router.kind;
  out.router.layer = old_router.layer;
  out.router.index = old_router.index;
  for (const auto& [name, t] : old_router.tensors) out.router.tensors.emplace_back(name, name == "w2" ? grown : t);
  return out;
}

}  // namespace brickrt::grow_internal
