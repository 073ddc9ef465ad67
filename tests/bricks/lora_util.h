// Helpers for the LoRA tests: random lora bricks, brick lookup, and a naive double ΔW.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "bricks/lora.h"
#include "core/brick_data.h"
#include "core/dtype.h"
#include "core/tensor.h"

namespace brickrt::testing {

// Uniform(-s, s) values rounded to dtype.
inline Tensor RandomTensor(DType dt, Shape shape, float s, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-s, s);
  std::vector<float> v(static_cast<size_t>(NumElements(shape)));
  for (float& x : v) x = u(rng);
  Tensor t = Tensor::Uninitialized(dt, std::move(shape));
  ConvertFromF32(v.data(), v.size(), dt, t.mutable_data());
  return t;
}

inline std::vector<double> ToDoubles(const Tensor& t) {
  std::vector<float> f(static_cast<size_t>(t.numel()));
  ConvertToF32(t.data(), t.dtype(), f.size(), f.data());
  return {f.begin(), f.end()};
}

// A lora brick on `target` (layer/index parsed from it) with a [r, in], b [out, r] in dtype dt.
inline BrickData MakeLora(const std::string& target, int64_t r, int64_t in, int64_t out, DType dt, float alpha,
                          uint32_t seed, float s = 0.3f) {
  std::mt19937 rng(seed);
  BrickData b;
  b.kind = BrickKind::kLora;
  b.target = target;
  auto t = ParseLoraTarget(target);
  if (t.ok()) {
    b.layer = t->layer;
    b.index = t->index;
  }
  b.tensors.emplace_back("a", RandomTensor(dt, {r, in}, s, rng));
  b.tensors.emplace_back("b", RandomTensor(dt, {out, r}, s, rng));
  Tensor a(DType::kF32, {1});
  a.mutable_data_as<float>()[0] = alpha;
  b.tensors.emplace_back("alpha", a);
  return b;
}

// ΔW [out, in] = alpha / r · B·A, scaled, in double from the stored (rounded) values.
inline std::vector<double> NaiveDelta(const BrickData& lora, double scale) {
  const Tensor& a = *lora.Find("a");
  const Tensor& b = *lora.Find("b");
  const int64_t r = a.dim(0), in = a.dim(1), out = b.dim(0);
  const std::vector<double> A = ToDoubles(a), B = ToDoubles(b);
  const double m = scale * ToDoubles(*lora.Find("alpha"))[0] / static_cast<double>(r);
  std::vector<double> d(static_cast<size_t>(out * in), 0.0);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) {
      double s = 0;
      for (int64_t k = 0; k < r; ++k) s += B[static_cast<size_t>(o * r + k)] * A[static_cast<size_t>(k * in + i)];
      d[static_cast<size_t>(o * in + i)] = m * s;
    }
  return d;
}

inline BrickData* FindBrick(std::vector<BrickData>& bricks, const std::string& name) {
  for (BrickData& b : bricks)
    if (b.Name() == name) return &b;
  return nullptr;
}

}  // namespace brickrt::testing
