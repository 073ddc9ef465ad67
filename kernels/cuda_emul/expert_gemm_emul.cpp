// Emulated expert_gemm.h: the stable counting sort by expert, the row gather, the gated combine in
// ascending pair order and the per-expert GEMM loop, with the .cu's checks. Every row index read from
// device memory is checked against the buffer it addresses (an out-of-range index faults on a GPU).
#include <algorithm>
#include <string>
#include <vector>

#include "kernels/cuda/expert_gemm.h"
#include "kernels/cuda_emul/shadow.h"

namespace brickrt::cuda {
namespace {

constexpr int kMaxTopK = 16;  // = expert_gemm.cu

}  // namespace

Status BuildExpertGroupsCuda(const int32_t* ids, const float* gates, int64_t M, int k, int64_t E, int32_t* offsets,
                             int32_t* rows, float* pair_gates, int32_t* pair_of, CudaStream stream) {
  if (E < 1 || k < 1) return InvalidArgument("BuildExpertGroupsCuda: need E >= 1 and k >= 1");
  if (static_cast<size_t>(E + 1) * sizeof(int32_t) > 48 * 1024)
    return InvalidArgument("BuildExpertGroupsCuda: too many experts for one block");
  BRICK_RETURN_IF_ERROR(emul::CheckStream(stream, "BuildExpertGroupsCuda"));
  const size_t P = static_cast<size_t>(M * k);
  BRICK_ASSIGN_OR_RETURN(const int32_t* id, emul::Shadow(ids, P, "BuildExpertGroupsCuda: ids"));
  BRICK_ASSIGN_OR_RETURN(const float* g, emul::Shadow(gates, P, "BuildExpertGroupsCuda: gates"));
  BRICK_ASSIGN_OR_RETURN(int32_t* off,
                         emul::Shadow(offsets, static_cast<size_t>(E + 1), "BuildExpertGroupsCuda: offsets"));
  BRICK_ASSIGN_OR_RETURN(int32_t* po, emul::Shadow(pair_of, P, "BuildExpertGroupsCuda: pair_of"));
  std::vector<int32_t> start(static_cast<size_t>(E + 1), 0);
  size_t kept = 0;
  for (size_t p = 0; p < P; ++p) {
    if (id[p] >= 0 && id[p] < E) {
      ++start[static_cast<size_t>(id[p]) + 1], ++kept;
    } else {
      po[p] = -1;
    }
  }
  for (int64_t e = 0; e < E; ++e) start[e + 1] += start[e];
  std::copy(start.begin(), start.end(), off);
  // rows and pair_gates are written only at the kept pairs' slots [0, kept).
  BRICK_ASSIGN_OR_RETURN(int32_t* rw, emul::Shadow(rows, kept, "BuildExpertGroupsCuda: rows"));
  BRICK_ASSIGN_OR_RETURN(float* pg, emul::Shadow(pair_gates, kept, "BuildExpertGroupsCuda: pair_gates"));
  for (size_t p = 0; p < P; ++p) {  // stable: pairs of one expert keep (row, slot) order
    if (id[p] < 0 || id[p] >= E) continue;
    const int32_t at = start[static_cast<size_t>(id[p])]++;
    rw[at] = static_cast<int32_t>(p / static_cast<size_t>(k));
    pg[at] = g[p];
    po[p] = at;
  }
  return Status::Ok();
}

Status GatherRowsCuda(const float* x, int64_t D, const int32_t* rows, int64_t P, float* out, CudaStream stream) {
  if (P == 0 || D == 0) return Status::Ok();
  BRICK_RETURN_IF_ERROR(emul::CheckStream(stream, "GatherRowsCuda"));
  BRICK_ASSIGN_OR_RETURN(const int32_t* rw, emul::Shadow(rows, static_cast<size_t>(P), "GatherRowsCuda: rows"));
  BRICK_ASSIGN_OR_RETURN(float* o, emul::Shadow(out, static_cast<size_t>(P * D), "GatherRowsCuda: out"));
  for (int64_t p = 0; p < P; ++p) {
    const std::string what = "GatherRowsCuda: row " + std::to_string(rw[p]) + " of x (rows[" + std::to_string(p) + "])";
    BRICK_ASSIGN_OR_RETURN(const float* src,
                           emul::Shadow(x + static_cast<int64_t>(rw[p]) * D, static_cast<size_t>(D), what));
    std::copy_n(src, D, o + p * D);
  }
  return Status::Ok();
}

Status CombineGatedCuda(const float* y, int64_t D, const int32_t* pair_of, const float* pair_gates, int64_t M, int k,
                        float* h, CudaStream stream) {
  if (k < 1 || k > kMaxTopK) return InvalidArgument("CombineGatedCuda: need 1 <= k <= 16");
  if (M == 0 || D == 0) return Status::Ok();
  BRICK_RETURN_IF_ERROR(emul::CheckStream(stream, "CombineGatedCuda"));
  BRICK_ASSIGN_OR_RETURN(const int32_t* po,
                         emul::Shadow(pair_of, static_cast<size_t>(M * k), "CombineGatedCuda: pair_of"));
  BRICK_ASSIGN_OR_RETURN(float* hs, emul::Shadow(h, static_cast<size_t>(M * D), "CombineGatedCuda: h"));
  for (int64_t m = 0; m < M; ++m) {
    std::vector<int32_t> order;
    for (int s = 0; s < k; ++s)
      if (po[m * k + s] >= 0) order.push_back(po[m * k + s]);
    std::sort(order.begin(), order.end());
    std::vector<const float*> ys;
    std::vector<float> gs;
    for (int32_t p : order) {
      const std::string which = "pair " + std::to_string(p) + " of row " + std::to_string(m);
      BRICK_ASSIGN_OR_RETURN(const float* g,
                             emul::Shadow(pair_gates + p, 1, "CombineGatedCuda: pair_gates of " + which));
      BRICK_ASSIGN_OR_RETURN(const float* yr, emul::Shadow(y + static_cast<int64_t>(p) * D, static_cast<size_t>(D),
                                                           "CombineGatedCuda: y of " + which));
      gs.push_back(*g);
      ys.push_back(yr);
    }
    float* dst = hs + m * D;
    for (int64_t i = 0; i < D; ++i) {
      float acc = dst[i];
      for (size_t j = 0; j < ys.size(); ++j) acc += gs[j] * ys[j][i];
      dst[i] = acc;
    }
  }
  return Status::Ok();
}

Status ExpertMatmulCuda(const CublasHandle& handle, const float* x_sorted, const int32_t* host_offsets, int64_t E,
                        int64_t K, const void* const* weights, DType wt, int64_t N, bool transposed, float* y_sorted,
                        void* scratch, CudaStream stream) {
  // host_offsets and weights are read by the host: device pointers there would fault.
  BRICK_RETURN_IF_ERROR(emul::RequireHost(host_offsets, "ExpertMatmulCuda: host_offsets"));
  BRICK_RETURN_IF_ERROR(emul::RequireHost(weights, "ExpertMatmulCuda: weights (the host array of device pointers)"));
  for (int64_t e = 0; e < E; ++e) {
    const int64_t begin = host_offsets[e], count = host_offsets[e + 1] - begin;
    if (count == 0 || weights[e] == nullptr) continue;
    const Status st = MatmulCuda(handle, x_sorted + begin * K, count, K, weights[e], wt, N, transposed,
                                 y_sorted + begin * N, scratch, stream);
    if (!st.ok()) return st.WithContext("ExpertMatmulCuda: expert " + std::to_string(e));
  }
  return Status::Ok();
}

}  // namespace brickrt::cuda
