// CUDA kernel throughput for one MoLM-shaped layer (D = A = 1024, F = 2048, 16 attention / 32 MLP
// experts, top-2, router hidden 256, BF16 weights), decode and prefill, extrapolated to a 48-layer
// model. Skeleton for issue #8: kernel time only (no model placement, no host work); exits 0 with a
// message on a machine without a CUDA device. Usage: brick_bench_cuda [batch...] (default 1 8 64).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/expert_gemm.h"
#include "kernels/cuda/gelu.h"
#include "kernels/cuda/layernorm.h"
#include "kernels/cuda/matmul.h"
#include "kernels/cuda/memory.h"
#include "kernels/cuda/softmax_topk.h"
#include "kernels/cuda/stickbreak.h"

namespace brickrt {
namespace {

constexpr int64_t kD = 1024, kF = 2048, kG = 256, kEa = 16, kEm = 32, kLayers = 48;
constexpr int kTopK = 2;
constexpr DType kWt = DType::kBF16;

#define BENCH_CHECK(expr)                                                          \
  do {                                                                             \
    const ::brickrt::Status st_ = (expr);                                          \
    if (!st_.ok()) {                                                               \
      std::fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, st_.ToString().c_str()); \
      std::exit(1);                                                                \
    }                                                                              \
  } while (0)

cuda::DeviceMemory Must(Result<cuda::DeviceMemory> r) {
  BENCH_CHECK(r.status());
  return std::move(r).value();
}

cuda::DeviceMemory RandomBf16(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 0.02f);
  std::vector<float> f(static_cast<size_t>(n));
  for (auto& v : f) v = nd(rng);
  std::vector<uint16_t> h(f.size());
  ConvertFromF32(f.data(), f.size(), kWt, h.data());
  auto m = Must(cuda::DeviceMemory::Allocate(h.size() * 2));
  BENCH_CHECK(cuda::CopyToDevice(m.data(), h.data(), h.size() * 2, nullptr));
  return m;
}

struct Layer {
  cuda::DeviceMemory ln_w, ln_b, ra1, ra2, rm1, rm2;  // BF16: norms [D], routers [G, D] / [E, G]
  std::vector<cuda::DeviceMemory> wq, wo, w1, w2;   // BF16 experts [in, out]
  std::vector<const void*> pq, po, p1, p2;
};

// One layer's kernels for T rows (decode: T sequences, one token each, cache of S keys; prefill: one
// sequence of T tokens). Returns seconds per call, averaged over `iters` after a warm-up.
double TimeLayer(const Layer& L, int64_t T, int64_t S, bool prefill, int iters, const cuda::CublasHandle& blas,
                 cuda::CudaStream stream) {
  const int64_t P = T * kTopK;
  auto h = Must(cuda::DeviceMemory::Allocate(T * kD * 4)), x = Must(cuda::DeviceMemory::Allocate(T * kD * 4));
  auto hid = Must(cuda::DeviceMemory::Allocate(T * kG * 4)), logits = Must(cuda::DeviceMemory::Allocate(T * kEm * 4));
  auto gates = Must(cuda::DeviceMemory::Allocate(P * 4)), ids = Must(cuda::DeviceMemory::Allocate(P * 4));
  auto offs = Must(cuda::DeviceMemory::Allocate((kEm + 1) * 4)), rows = Must(cuda::DeviceMemory::Allocate(P * 4));
  auto pg = Must(cuda::DeviceMemory::Allocate(P * 4)), po = Must(cuda::DeviceMemory::Allocate(P * 4));
  auto xs = Must(cuda::DeviceMemory::Allocate(P * kD * 4)), mid = Must(cuda::DeviceMemory::Allocate(P * kF * 4));
  auto ys = Must(cuda::DeviceMemory::Allocate(P * kD * 4)), att = Must(cuda::DeviceMemory::Allocate(P * kD * 4));
  auto kv = Must(cuda::DeviceMemory::Allocate((S + T) * kD * 4));
  auto scratch = Must(cuda::DeviceMemory::Allocate(cuda::MatmulScratchBytes(P, kF, kWt)));
  std::vector<int64_t> pos(static_cast<size_t>(P));
  for (int64_t p = 0; p < P; ++p) pos[p] = prefill ? S + p / kTopK : S;  // decode: every query at the cache end
  auto dpos = Must(cuda::DeviceMemory::Allocate(P * 8));
  BENCH_CHECK(cuda::CopyToDevice(dpos.data(), pos.data(), P * 8, stream));
  BENCH_CHECK(cuda::ZeroDevice(h.data(), T * kD * 4, stream));
  BENCH_CHECK(cuda::ZeroDevice(kv.data(), (S + T) * kD * 4, stream));
  std::vector<int32_t> offsets(kEm + 1);

  auto moe = [&](const void* r1, const void* r2, int64_t E, const std::vector<const void*>& win,
                 const std::vector<const void*>& wout, int64_t mid_n, bool attention) {
    BENCH_CHECK(cuda::LayerNormCuda(h.as<float>(), T, kD, L.ln_w.data(), L.ln_b.data(), kWt, 1e-5f, x.as<float>(), stream));
    BENCH_CHECK(cuda::MatmulCuda(blas, x.as<float>(), T, kD, r1, kWt, kG, true, hid.as<float>(), scratch.data(), stream));
    BENCH_CHECK(cuda::GeluErfCuda(hid.as<float>(), T * kG, stream));
    BENCH_CHECK(cuda::MatmulCuda(blas, hid.as<float>(), T, kG, r2, kWt, E, true, logits.as<float>(), scratch.data(), stream));
    BENCH_CHECK(cuda::SoftmaxTopKCuda(logits.as<float>(), T, E, kTopK, gates.as<float>(), ids.as<int32_t>(), stream));
    BENCH_CHECK(cuda::BuildExpertGroupsCuda(ids.as<int32_t>(), gates.as<float>(), T, kTopK, E, offs.as<int32_t>(),
                                            rows.as<int32_t>(), pg.as<float>(), po.as<int32_t>(), stream));
    BENCH_CHECK(cuda::CopyToHost(offsets.data(), offs.data(), (E + 1) * 4, stream));  // the per-layer sync
    BENCH_CHECK(cuda::GatherRowsCuda(x.as<float>(), kD, rows.as<int32_t>(), P, xs.as<float>(), stream));
    BENCH_CHECK(cuda::ExpertMatmulCuda(blas, xs.as<float>(), offsets.data(), E, kD, win.data(), kWt, mid_n, false,
                                       mid.as<float>(), scratch.data(), stream));
    if (attention) {  // queries (in expert order) against the cache; positions approximate the real ones
      BENCH_CHECK(cuda::StickBreakPrefillCuda(mid.as<float>(), kD, P, dpos.as<int64_t>(), kv.as<float>(),
                                              kv.as<float>(), kD, kD, 1.0f / 32, att.as<float>(), kD, stream));
    } else {
      BENCH_CHECK(cuda::GeluTanhCuda(mid.as<float>(), P * mid_n, stream));
    }
    BENCH_CHECK(cuda::ExpertMatmulCuda(blas, attention ? att.as<float>() : mid.as<float>(), offsets.data(), E, mid_n,
                                       wout.data(), kWt, kD, false, ys.as<float>(), scratch.data(), stream));
    BENCH_CHECK(cuda::CombineGatedCuda(ys.as<float>(), kD, po.as<int32_t>(), pg.as<float>(), T, kTopK, h.as<float>(),
                                       stream));
  };
  auto run = [&] {
    moe(L.ra1.data(), L.ra2.data(), kEa, L.pq, L.po, kD, true);
    moe(L.rm1.data(), L.rm2.data(), kEm, L.p1, L.p2, kF, false);
  };
  run();
  BENCH_CHECK(cuda::CopyToHost(offsets.data(), offs.data(), 4, stream));
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) run();
  BENCH_CHECK(cuda::CopyToHost(offsets.data(), offs.data(), 4, stream));
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters;
}

}  // namespace
}  // namespace brickrt

int main(int argc, char** argv) {
  using namespace brickrt;
  const auto devices = cuda::ListDevices();
  if (devices.empty()) {
    std::printf("brick_bench_cuda: no CUDA device on this machine, nothing measured\n");
    return 0;
  }
  std::vector<int64_t> batches;
  for (int i = 1; i < argc; ++i) batches.push_back(std::atoll(argv[i]));
  if (batches.empty()) batches = {1, 8, 64};
  auto blas_r = cuda::CublasHandle::Create();
  BENCH_CHECK(blas_r.status());
  auto stream_r = cuda::Stream::Create();
  BENCH_CHECK(stream_r.status());
  const cuda::CublasHandle& blas = *blas_r;
  const cuda::CudaStream stream = stream_r->get();
  std::mt19937 rng(1);
  Layer L;
  L.ln_w = RandomBf16(kD, rng), L.ln_b = RandomBf16(kD, rng);
  L.ra1 = RandomBf16(kG * kD, rng), L.ra2 = RandomBf16(kEa * kG, rng);
  L.rm1 = RandomBf16(kG * kD, rng), L.rm2 = RandomBf16(kEm * kG, rng);
  for (int64_t e = 0; e < kEa; ++e) {
    L.wq.push_back(RandomBf16(kD * kD, rng)), L.wo.push_back(RandomBf16(kD * kD, rng));
    L.pq.push_back(L.wq.back().data()), L.po.push_back(L.wo.back().data());
  }
  for (int64_t e = 0; e < kEm; ++e) {
    L.w1.push_back(RandomBf16(kD * kF, rng)), L.w2.push_back(RandomBf16(kF * kD, rng));
    L.p1.push_back(L.w1.back().data()), L.p2.push_back(L.w2.back().data());
  }
  std::printf("device: %s (cc %d.%d); one MoLM-shaped layer x %lld layers, BF16, top-%d, kernels only\n",
              devices[0].name.c_str(), devices[0].cc_major, devices[0].cc_minor, static_cast<long long>(kLayers), kTopK);
  for (int64_t b : batches) {
    const double dec = TimeLayer(L, b, 512, false, 20, blas, stream);
    std::printf("decode  batch %3lld, cache 512: %8.1f us/layer, %10.1f tokens/s (48 layers, no lm_head)\n",
                static_cast<long long>(b), dec * 1e6, static_cast<double>(b) / (dec * kLayers));
    const double pre = TimeLayer(L, 512, 0, true, 5, blas, stream);
    if (b == batches.front())
      std::printf("prefill 512 tokens:          %8.1f us/layer, %10.1f tokens/s (48 layers)\n", pre * 1e6,
                  512.0 / (pre * kLayers));
  }
  return 0;
}
