// CudaModel: plan every weight's place in one arena, then unpack and copy each once.
#include "bricks/cuda/cuda_model.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>

#include "bricks/step_validation.h"
#include "kernels/cpu/packed_matrix.h"
#include "kernels/cuda/device.h"

namespace brickrt {

// One weight: its bytes, how to write them to host staging, and where its device pointer goes.
struct CudaModel::Piece {
  size_t bytes = 0;
  std::function<void(void*)> fill;         // writes the `bytes` host bytes at the argument
  std::function<void(const void*)> place;  // records the device address
};

namespace {

// A matrix as row-major [K, N] in its own dtype (PackedMatrix::Unpack is bit-exact).
size_t MatrixBytes(const kernels::PackedMatrix& m) { return static_cast<size_t>(m.K() * m.N()) * DTypeSize(m.dtype()); }

Status CheckSupported(const Model& model) {
  const DType dt = model.embedding().table().dtype();
  auto same = [dt](const kernels::PackedMatrix& m) { return m.dtype() == dt; };
  bool ok = same(model.lm_head().w());
  for (const Layer& l : model.layers()) {
    ok = ok && same(l.attn_router.w1()) && same(l.attn_router.w2()) && same(l.mlp_router.w1()) &&
         same(l.mlp_router.w2());
    for (const auto& e : l.attn) ok = ok && same(e->wq()) && same(e->wo());
    for (const auto& e : l.mlp) ok = ok && same(e->w1()) && same(e->w2());
  }
  if (!ok)
    return Unsupported("the model's weights are not all " + std::string(DTypeName(dt)) +
                       " (the embedding's dtype): mixed dtypes do not run on the GPU");
  return Status::Ok();
}

}  // namespace

std::vector<CudaModel::Piece> CudaModel::Plan() {
  const Model& m = *model_;
  std::vector<Piece> pieces;
  auto matrix = [&pieces](const kernels::PackedMatrix& w, const void** dst) {
    pieces.push_back({MatrixBytes(w), [&w](void* host) { w.Unpack(host); }, [dst](const void* d) { *dst = d; }});
  };
  auto f32 = [&pieces](const Tensor& t, const float** dst) {
    pieces.push_back({t.nbytes(), [&t](void* host) { std::memcpy(host, t.data(), t.nbytes()); },
                      [dst](const void* d) { *dst = static_cast<const float*>(d); }});
  };
  auto norm = [&f32](const Norm& n, CudaNorm* dst) {
    f32(n.weight(), &dst->weight);
    f32(n.bias(), &dst->bias);
    dst->eps = n.eps();
  };
  // Each delta of a projection: A and B as two matrices, the sizes and multiplier recorded now.
  auto loras = [&](const LoraDeltas& deltas, CudaLoras* dst) {
    dst->resize(deltas.size());
    for (size_t i = 0; i < deltas.size(); ++i) {
      const LoraDelta& d = *deltas[i];
      CudaLoraDelta& g = (*dst)[i];
      g.a_dtype = d.a().dtype();
      g.in = d.in(), g.rank = d.rank(), g.out = d.out();
      g.multiplier = static_cast<float>(d.multiplier());
      if (g.a_dtype != DType::kF32) scratch_dtype_ = g.a_dtype;
      matrix(d.a(), &g.a);
      matrix(d.b(), &g.b);
    }
  };
  auto router = [&](const Router& r, CudaRouter* dst) {
    matrix(r.w1(), &dst->w1);
    f32(r.b1(), &dst->b1);
    matrix(r.w2(), &dst->w2);
    dst->n_experts = r.n_experts();
  };

  const Tensor& table = m.embedding().table();
  pieces.push_back({table.nbytes(), [&table](void* host) { std::memcpy(host, table.data(), table.nbytes()); },
                    [this](const void* d) { embedding_ = d; }});
  layers_.assign(m.layers().size(), CudaLayer{});  // sized before any address into it is taken
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& src = m.layers()[l];
    CudaLayer& dst = layers_[l];
    dst.wq.assign(src.attn.size(), nullptr);
    dst.wo.assign(src.attn.size(), nullptr);
    dst.w1.assign(src.mlp.size(), nullptr);
    dst.w2.assign(src.mlp.size(), nullptr);
    // Every lora list is sized before its entries' addresses are taken (loras() resizes each once).
    dst.wq_lora.resize(src.attn.size());
    dst.wo_lora.resize(src.attn.size());
    dst.w1_lora.resize(src.mlp.size());
    dst.w2_lora.resize(src.mlp.size());
    norm(src.ln1, &dst.ln1);
    router(src.attn_router, &dst.attn_router);
    for (size_t e = 0; e < src.attn.size(); ++e) {
      matrix(src.attn[e]->wq(), &dst.wq[e]);
      matrix(src.attn[e]->wo(), &dst.wo[e]);
      loras(src.attn[e]->wq_lora(), &dst.wq_lora[e]);
      loras(src.attn[e]->wo_lora(), &dst.wo_lora[e]);
    }
    norm(src.ln2, &dst.ln2);
    router(src.mlp_router, &dst.mlp_router);
    for (size_t e = 0; e < src.mlp.size(); ++e) {
      const bool here = l >= elsewhere_.size() || elsewhere_[l].empty() || elsewhere_[l][e] == MlpPlacement::kLocal;
      if (!here) continue;  // an executor runs it: its weights stay off the GPU
      matrix(src.mlp[e]->w1(), &dst.w1[e]);
      matrix(src.mlp[e]->w2(), &dst.w2[e]);
      loras(src.mlp[e]->w1_lora(), &dst.w1_lora[e]);
      loras(src.mlp[e]->w2_lora(), &dst.w2_lora[e]);
    }
  }
  norm(m.ln_f(), &ln_f_);
  matrix(m.lm_head().w(), &lm_head_);
  loras(m.lm_head().lora(), &lm_head_lora_);
  // Pointer tables last: pieces are filled in order, so every expert's device address is known by then.
  auto pointers = [&pieces](const std::vector<const void*>& ptrs, const void* const** dst) {
    pieces.push_back({ptrs.size() * sizeof(void*),
                      [&ptrs](void* host) { std::memcpy(host, ptrs.data(), ptrs.size() * sizeof(void*)); },
                      [dst](const void* d) { *dst = static_cast<const void* const*>(d); }});
  };
  for (CudaLayer& l : layers_) {
    pointers(l.wq, &l.wq_table);
    pointers(l.wo, &l.wo_table);
    pointers(l.w1, &l.w1_table);
    pointers(l.w2, &l.w2_table);
  }
  if (m.embedding().table().dtype() != DType::kF32) scratch_dtype_ = m.embedding().table().dtype();
  return pieces;
}

Status AddLorasCuda(const cuda::CublasHandle& cublas, const CudaLoras& loras, const float* x, int64_t M, float* y,
                    float* t, void* matmul_scratch, cuda::CudaStream stream) {
  for (const CudaLoraDelta& d : loras) {
    BRICK_RETURN_IF_ERROR(
        cuda::MatmulCuda(cublas, x, M, d.in, d.a, d.a_dtype, d.rank, false, t, matmul_scratch, stream));
    BRICK_RETURN_IF_ERROR(
        cuda::MatmulAddCuda(cublas, t, M, d.rank, d.b, DType::kF32, d.out, false, d.multiplier, y, nullptr, stream));
  }
  return Status::Ok();
}

CudaModel::~CudaModel() {
  if (arena_.capacity() > 0) (void)cuda::UseDevice(device_);
}

int64_t CudaModel::PlannedBytes(const Model& model, const MlpPlacement* elsewhere) {
  CudaModel plan;
  plan.model_ = std::shared_ptr<const Model>(&model, [](const Model*) {});  // not owned: planning only
  if (elsewhere != nullptr) plan.elsewhere_ = elsewhere->owner;
  size_t total = 0;
  for (const Piece& p : plan.Plan()) total += cuda::DeviceArena::Round(p.bytes);
  return static_cast<int64_t>(total);
}

Result<std::shared_ptr<const CudaModel>> CudaModel::Upload(std::shared_ptr<const Model> model, int device,
                                                           const MlpPlacement* elsewhere) {
  BRICK_RETURN_IF_ERROR(CheckSupported(*model));
  if (elsewhere != nullptr) BRICK_RETURN_IF_ERROR(ValidatePlacement(*model, *elsewhere));
  const std::string where = "uploading the model to GPU " + std::to_string(device);
  Status st = cuda::UseDevice(device);
  if (!st.ok()) return st.WithContext(where);

  std::shared_ptr<CudaModel> out(new CudaModel());
  out->model_ = std::move(model);
  if (elsewhere != nullptr) out->elsewhere_ = elsewhere->owner;
  out->device_ = device;
  out->dtype_ = out->model_->embedding().table().dtype();
  std::vector<Piece> pieces = out->Plan();
  size_t total = 0, largest = 0;
  for (const Piece& p : pieces) {
    total += cuda::DeviceArena::Round(p.bytes);
    largest = std::max(largest, p.bytes);
  }
  auto memory = cuda::DeviceMemory::Allocate(total);
  if (!memory.ok()) return memory.status().WithContext(where + " (" + std::to_string(total >> 20) + " MiB of weights)");
  out->arena_ = cuda::DeviceArena(std::move(memory).value());

  auto stream = cuda::Stream::Create();
  if (!stream.ok()) return stream.status().WithContext(where);
  // Two staging buffers: piece i is unpacked into one while piece i-1's copy runs from the other.
  cuda::PinnedMemory staging[2];
  for (cuda::PinnedMemory& s : staging) {
    auto m = cuda::PinnedMemory::Allocate(largest);
    if (!m.ok()) return m.status().WithContext(where + " (pinned staging)");
    s = std::move(m).value();
  }
  // The buffers alternate per piece copied (not per index: a skipped empty piece must not make piece i
  // refill the buffer piece i-2's copy may still be reading).
  size_t copied = 0;
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (pieces[i].bytes == 0) continue;
    void* dst = out->arena_.Carve(pieces[i].bytes);
    BRICK_ASSERT(dst != nullptr, "CudaModel arena sized from the same plan");
    void* host = staging[copied++ % 2].data();
    pieces[i].fill(host);
    st = stream->Synchronize();  // piece i-1's copy is done, so its buffer is free for piece i+1
    if (st.ok()) st = cuda::CopyToDevice(dst, host, pieces[i].bytes, stream->get());
    if (!st.ok()) return st.WithContext(where);
    pieces[i].place(dst);
  }
  st = stream->Synchronize();
  if (!st.ok()) return st.WithContext(where);
  return std::shared_ptr<const CudaModel>(std::move(out));
}

}  // namespace brickrt
