// LoRA bricks on their own: the on-the-fly delta against a naive double loop, MergeLora against the
// definition for every target kind, single rounding, target parsing and the shape/target errors.
#include "bricks/lora.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <tuple>

#include "lora_util.h"
#include "registry/test_model.h"

namespace brickrt {
namespace {

using testing::FindBrick;
using testing::MakeLora;
using testing::NaiveDelta;
using testing::RandomTensor;
using testing::ToDoubles;

bool Contains(const Status& s, const std::string& part) { return s.message().find(part) != std::string::npos; }

// (dtype of a and b, rank, in, out, rows M, threads). Covers the GEMV (M <= 8) and GEMM paths of the
// A product, a rank over one 64-column panel, a partial last panel of B, and the parallel B loop
// (r·out·4 bytes >= 256 KiB with 2 threads).
class LoraDeltaTest : public ::testing::TestWithParam<std::tuple<DType, int64_t, int64_t, int64_t, int64_t, int>> {};

TEST_P(LoraDeltaTest, AddToMatchesNaiveDoubleLoop) {
  const auto [dt, r, in, out, M, threads] = GetParam();
  const BrickData lora = MakeLora("L0.mlp.E0.w1", r, in, out, dt, /*alpha=*/16, /*seed=*/7);
  const double scale = 0.75;
  auto delta = LoraDelta::FromData(lora, in, out, scale);
  ASSERT_TRUE(delta.ok()) << delta.status().ToString();
  EXPECT_EQ((*delta)->rank(), r);
  EXPECT_DOUBLE_EQ((*delta)->multiplier(), static_cast<double>(static_cast<float>(scale * 16 / r)));
  EXPECT_GE((*delta)->bytes(), r * (in + out) * 2);

  std::mt19937 rng(11);
  const Tensor x = RandomTensor(DType::kF32, {M, in}, 1.0f, rng);
  const Tensor y0 = RandomTensor(DType::kF32, {M, out}, 1.0f, rng);
  Tensor y = y0.Clone();
  std::vector<float> scratch(static_cast<size_t>(M * r));
  std::unique_ptr<ThreadPool> pool = threads > 1 ? std::make_unique<ThreadPool>(threads) : nullptr;
  (*delta)->AddTo(x.data_as<float>(), M, y.mutable_data_as<float>(), scratch.data(), pool.get());

  const std::vector<double> d = NaiveDelta(lora, scale);  // [out, in]
  const std::vector<double> X = ToDoubles(x);
  double worst = 0;
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t o = 0; o < out; ++o) {
      double want = y0.data_as<float>()[m * out + o], mag = std::fabs(want);
      for (int64_t i = 0; i < in; ++i) {
        const double term = X[static_cast<size_t>(m * in + i)] * d[static_cast<size_t>(o * in + i)];
        want += term;
        mag += std::fabs(term);
      }
      worst = std::max(worst, std::fabs(y.data_as<float>()[m * out + o] - want) / mag);
    }
  }
  // F32 products and sums over in + r terms (<= ~200): relative to Σ|terms|, a few e-7 in theory.
  EXPECT_LT(worst, 2e-6);
}

INSTANTIATE_TEST_SUITE_P(Shapes, LoraDeltaTest,
                         ::testing::Values(std::tuple{DType::kF32, 1, 16, 16, 1, 1},
                                           std::tuple{DType::kBF16, 4, 37, 130, 3, 1},
                                           std::tuple{DType::kF16, 8, 64, 200, 20, 2},
                                           std::tuple{DType::kBF16, 70, 40, 1000, 5, 2},
                                           std::tuple{DType::kF32, 70, 40, 1000, 33, 2}));

// Merging into every kind of projection: each merged element is the correctly rounded value of
// W + scale·ΔW (in W's orientation), and the brick's other tensors are shared, not copied.
class MergeLoraTest : public ::testing::TestWithParam<DType> {};

TEST_P(MergeLoraTest, MatchesNaiveForEveryTargetKind) {
  const DType dt = GetParam();
  TestModelOptions o;
  o.layers = 2;
  o.d_model = 32;
  o.ffd_hidden = 48;
  o.gating_size = 16;
  o.vocab = 50;
  o.attn_experts = 3;
  o.mlp_experts = 4;
  o.dtype = dt;
  auto made = MakeRandomModel(o);
  ASSERT_TRUE(made.ok());
  std::vector<BrickData>& bricks = made->second;
  const int64_t D = 32, F = 48, V = 50;
  struct Case {
    std::string brick, tensor;
    int64_t in, out;
    bool in_out;  // expert [in, out]; lm_head [out, in]
  };
  const Case cases[] = {{"L0.attn.E1", "wq", D, D, true},
                        {"L1.attn.E2", "wo", D, D, true},
                        {"L1.mlp.E3", "w1", D, F, true},
                        {"L0.mlp.E0", "w2", F, D, true},
                        {"lm_head", "weight", D, V, false}};
  uint32_t seed = 100;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.brick + "." + c.tensor);
    const BrickData& target = *FindBrick(bricks, c.brick);
    const BrickData lora = MakeLora(c.brick + "." + c.tensor, 3, c.in, c.out, dt, 6, seed++);
    auto merged = MergeLora(target, lora, 0.5);
    ASSERT_TRUE(merged.ok()) << merged.status().ToString();
    const std::vector<double> d = NaiveDelta(lora, 0.5);
    const std::vector<double> w = ToDoubles(*target.Find(c.tensor));
    const Tensor& got_t = *merged->Find(c.tensor);
    ASSERT_EQ(got_t.dtype(), dt);
    ASSERT_EQ(got_t.shape(), target.Find(c.tensor)->shape());
    const std::vector<double> got = ToDoubles(got_t);
    const int mantissa = dt == DType::kF32 ? 23 : 7;
    int changed = 0;
    for (int64_t o2 = 0; o2 < c.out; ++o2) {
      for (int64_t i = 0; i < c.in; ++i) {
        const size_t k = static_cast<size_t>(c.in_out ? i * c.out + o2 : o2 * c.in + i);
        const double want = w[k] + d[static_cast<size_t>(o2 * c.in + i)];
        const double half_ulp = want == 0 ? 0 : std::ldexp(0.5, std::ilogb(want) - mantissa);
        ASSERT_LE(std::fabs(got[k] - want), half_ulp) << "element " << k;
        changed += got[k] != w[k];
      }
    }
    EXPECT_GT(changed, c.in * c.out / 2);
    // The untouched tensors share storage with the original brick.
    for (const auto& [name, t] : target.tensors) {
      if (name != c.tensor) {
        EXPECT_EQ(merged->Find(name)->data(), t.data()) << name;
      }
    }
    EXPECT_EQ(merged->Name(), target.Name());
  }
}

INSTANTIATE_TEST_SUITE_P(DTypes, MergeLoraTest, ::testing::Values(DType::kF32, DType::kBF16));

// A sum just above a BF16 tie: rounding it to F32 first (RNE) lands exactly on the tie, and a second
// RNE to BF16 then rounds down to even. MergeLora must round once, i.e. up.
TEST(MergeLora, RoundsOnceToBf16) {
  BrickData expert;
  expert.kind = BrickKind::kMlpExpert;
  expert.layer = 0;
  expert.index = 0;
  Tensor w1(DType::kBF16, {2, 3});
  const float one = 1.0f;
  ConvertFromF32(std::vector<float>(6, one).data(), 6, DType::kBF16, w1.mutable_data());
  expert.tensors.emplace_back("w1", w1);
  expert.tensors.emplace_back("w2", Tensor(DType::kBF16, {3, 2}));
  BrickData lora = MakeLora("L0.mlp.E0.w1", 1, 2, 3, DType::kF32, /*alpha=*/1, 1);
  for (const char* n : {"a", "b"}) {
    Tensor& t = const_cast<Tensor&>(*lora.Find(n));
    for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data_as<float>()[i] = 1.0f;
  }
  const double scale = std::ldexp(1.0, -8) + std::ldexp(1.0, -30);  // 1 + scale: just above the tie
  auto merged = MergeLora(expert, lora, scale);
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  const auto* bits = merged->Find("w1")->data_as<uint16_t>();
  for (int i = 0; i < 6; ++i) EXPECT_EQ(bits[i], 0x3F81) << i;  // 1 + 2^-7, not 1.0 (0x3F80)
}

TEST(LoraErrors, ShapeMismatchNamesTargetExpectedAndFound) {
  const BrickData lora = MakeLora("L1.mlp.E2.w1", 4, 33, 48, DType::kF32, 8, 1);
  auto d = LoraDelta::FromData(lora, 32, 48, 1.0);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(d.status(), "L1.mlp.E2.w1")) << d.status().message();
  EXPECT_TRUE(Contains(d.status(), "[4, 33]")) << d.status().message();
  EXPECT_TRUE(Contains(d.status(), "[r, 32]")) << d.status().message();

  const BrickData wrong_out = MakeLora("L1.mlp.E2.w1", 4, 32, 47, DType::kF32, 8, 1);
  d = LoraDelta::FromData(wrong_out, 32, 48, 1.0);
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(Contains(d.status(), "[47, 4]")) << d.status().message();
  EXPECT_TRUE(Contains(d.status(), "[48, 4]")) << d.status().message();
}

TEST(LoraErrors, RankMismatchBetweenAAndB) {
  BrickData lora = MakeLora("L0.attn.E0.wq", 4, 32, 32, DType::kBF16, 8, 1);
  std::mt19937 rng(3);
  for (auto& [name, t] : lora.tensors)
    if (name == "b") t = RandomTensor(DType::kBF16, {32, 3}, 0.1f, rng);
  auto d = LoraDelta::FromData(lora, 32, 32, 1.0);
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(Contains(d.status(), "'b' has shape [32, 3]")) << d.status().message();
  EXPECT_TRUE(Contains(d.status(), "r = 4")) << d.status().message();
}

TEST(LoraErrors, MissingOrNonFiniteAlphaAndScale) {
  BrickData lora = MakeLora("lm_head.weight", 2, 32, 50, DType::kF32, 8, 1);
  EXPECT_FALSE(LoraDelta::FromData(lora, 32, 50, std::numeric_limits<double>::infinity()).ok());
  const_cast<Tensor&>(*lora.Find("alpha")).mutable_data_as<float>()[0] = std::nanf("");
  auto d = LoraDelta::FromData(lora, 32, 50, 1.0);
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(Contains(d.status(), "alpha")) << d.status().message();
  lora.tensors.pop_back();
  d = LoraDelta::FromData(lora, 32, 50, 1.0);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(d.status(), "lora lm_head.weight: missing tensor 'alpha'")) << d.status().message();
}

TEST(LoraErrors, MergeRefusesOtherBricksNonLorasAndTiedHeads) {
  TestModelOptions o;
  o.layers = 1;
  o.d_model = 16;
  o.ffd_hidden = 24;
  o.gating_size = 8;
  o.vocab = 20;
  o.attn_experts = 2;
  o.mlp_experts = 2;
  o.dtype = DType::kF32;
  o.tie_word_embeddings = true;
  auto made = MakeRandomModel(o);
  ASSERT_TRUE(made.ok());
  auto& bricks = made->second;
  const BrickData lora = MakeLora("L0.mlp.E1.w1", 2, 16, 24, DType::kF32, 4, 1);
  auto m = MergeLora(*FindBrick(bricks, "L0.mlp.E0"), lora, 1.0);  // same kind, another expert
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(Contains(m.status(), "L0.mlp.E1.w1 cannot be merged into brick L0.mlp.E0")) << m.status().message();
  EXPECT_FALSE(MergeLora(*FindBrick(bricks, "L0.attn.E1"), lora, 1.0).ok());
  EXPECT_FALSE(MergeLora(*FindBrick(bricks, "L0.mlp.E1"), *FindBrick(bricks, "L0.mlp.E0"), 1.0).ok());
  EXPECT_TRUE(MergeLora(*FindBrick(bricks, "L0.mlp.E1"), lora, 1.0).ok());

  BrickData inconsistent = lora;
  inconsistent.index = 0;  // the target says expert 1
  m = MergeLora(*FindBrick(bricks, "L0.mlp.E1"), inconsistent, 1.0);
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(Contains(m.status(), "disagree")) << m.status().message();

  const BrickData head = MakeLora("lm_head.weight", 2, 16, 20, DType::kF32, 4, 1);
  m = MergeLora(*FindBrick(bricks, "embed"), head, 1.0);
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(Contains(m.status(), "tied")) << m.status().message();
  const Status s = CheckMergeable(head, made->first);  // tie_word_embeddings
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s, "lora lm_head.weight: the lm head is tied")) << s.message();
  EXPECT_TRUE(CheckMergeable(lora, made->first).ok());
}

}  // namespace
}  // namespace brickrt
