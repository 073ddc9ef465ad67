// EvaluatePerplexity (brick eval) against independent computations: the NumPy reference's golden logits
// (tests/reference/moduleformer_ref.py; regenerate with
//   /usr/bin/python3 tests/reference/make_golden.py --out tests/reference/data)
// for data that fits one window, and for data longer than the context, the log-softmax of logits
// from one whole-window Session::Forward per window, each target taken from the first window holding it
// and the token before it.
#include <gtest/gtest.h>

#include <cmath>

#include "bricks/session.h"
#include "cli/perplexity.h"
#include "cli/profile_sink.h"
#include "core/npy.h"
#include "registry/test_model.h"
#include "tests/bricks/test_util.h"

namespace brickrt::cli {
namespace {

using brickrt::testing::IdsFromJson;
using brickrt::testing::ReadFile;
using brickrt::testing::ReferenceDir;

// -log softmax(row)[target] in long double, written apart from the code under test.
double RefNll(const float* row, int64_t V, int32_t target) {
  long double m = row[0], s = 0;
  for (int64_t v = 0; v < V; ++v) m = std::max<long double>(m, row[v]);
  for (int64_t v = 0; v < V; ++v) s += std::exp(static_cast<long double>(row[v]) - m);
  return static_cast<double>(std::log(s) + m - row[target]);
}

TEST(Perplexity, OneWindowMatchesTheNumpyReferenceLogits) {
  const std::string dir = ReferenceDir("f32");
  auto model = brickrt::testing::LoadModel(dir);
  ASSERT_NE(model, nullptr);
  auto prompts = ParseJson(ReadFile(dir + "/prompts.json"));
  ASSERT_TRUE(prompts.ok());
  ThreadPool pool(2);
  size_t k = 0;
  for (const JsonValue& p : prompts->Find("prompts")->as_array()) {
    const std::vector<int32_t> ids = IdsFromJson(p);
    auto golden = ReadNpyF32(dir + "/logits_" + std::to_string(k) + ".npy");
    ASSERT_TRUE(golden.ok()) << golden.status().ToString();
    const int64_t T = static_cast<int64_t>(ids.size()), V = golden->first[1];
    double want = 0;
    for (int64_t t = 0; t + 1 < T; ++t) want += RefNll(golden->second.data() + t * V, V, ids[static_cast<size_t>(t + 1)]);
    want /= static_cast<double>(T - 1);
    EvalOptions o;
    o.context = 1024;  // longer than the data: one window
    o.stride = 512;
    o.chunk = 4;       // several Forward calls inside the window
    o.pool = &pool;
    auto r = EvaluatePerplexity(model, ids, o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->tokens, T - 1);
    EXPECT_EQ(r->windows, 1);
    // Logits agree with the float64 reference to ~1e-5 (golden_test.cpp); the NLL inherits that.
    EXPECT_NEAR(r->nll, want, 1e-4) << "prompt " << k;
    EXPECT_NEAR(r->perplexity, std::exp(want), 1e-3 * std::exp(want));
    ++k;
  }
}

std::shared_ptr<const Model> SmallRandomModel() {
  TestModelOptions mo;
  mo.layers = 2;
  mo.d_model = 32;
  mo.ffd_hidden = 48;
  mo.gating_size = 16;
  mo.vocab = 97;
  mo.attn_experts = 4;
  mo.mlp_experts = 6;
  mo.dtype = DType::kF32;
  auto made = MakeRandomModel(mo);
  if (!made.ok()) return nullptr;
  auto m = Model::Build(made->first, std::move(made->second));
  return m.ok() ? *m : nullptr;
}

// Reference for a long stream: window starts as documented (next start = min(start + stride, end - 1)),
// each window's logits from one Forward over the whole window, each target from the first window
// that holds it and the token before it.
double WindowedReference(std::shared_ptr<const Model> model, const std::vector<int32_t>& ids, int64_t context,
                         int64_t stride, int64_t* windows) {
  const int64_t n = static_cast<int64_t>(ids.size()), V = model->config().vocab_size;
  std::vector<std::pair<int64_t, int64_t>> spans;
  for (int64_t b = 0, e = 0; e < n; b = std::min(b + stride, e - 1)) {
    e = std::min(b + context, n);
    spans.emplace_back(b, e);
  }
  *windows = static_cast<int64_t>(spans.size());
  std::vector<std::vector<float>> logits;
  for (const auto& [b, e] : spans) {
    Session s(model, SessionOptions{1, context, context}, nullptr);
    auto seq = s.AddSequence();
    std::vector<float>& out = logits.emplace_back(static_cast<size_t>((e - b) * V));
    const SequenceChunk c{*seq, std::span<const int32_t>(ids).subspan(static_cast<size_t>(b), static_cast<size_t>(e - b))};
    EXPECT_TRUE(s.Forward({&c, 1}, true, out.data()).ok());
  }
  double sum = 0;
  for (int64_t t = 1; t < n; ++t) {
    size_t w = 0;
    while (!(spans[w].first <= t - 1 && t < spans[w].second)) ++w;
    sum += RefNll(logits[w].data() + (t - 1 - spans[w].first) * V, V, ids[static_cast<size_t>(t)]);
  }
  return sum / static_cast<double>(n - 1);
}

TEST(Perplexity, SlidingWindowMatchesPerWindowForwardsAndScoresEachTokenOnce) {
  auto model = SmallRandomModel();
  ASSERT_NE(model, nullptr);
  std::vector<int32_t> ids;
  uint32_t x = 7;
  for (int i = 0; i < 101; ++i) ids.push_back(static_cast<int32_t>((x = x * 1103515245u + 12345u) >> 16) % 97);
  ThreadPool pool(2);
  double full = 0;
  for (const auto& [context, stride] : std::vector<std::pair<int64_t, int64_t>>{{32, 12}, {32, 32}, {16, 1}, {200, 100}}) {
    EvalOptions o;
    o.context = context;
    o.stride = stride;
    o.chunk = 7;
    o.pool = &pool;
    int64_t calls = 0;
    o.progress = [&](int64_t done, int64_t total) {
      ++calls;
      EXPECT_LE(done, total);
      EXPECT_EQ(total, 100);
    };
    auto r = EvaluatePerplexity(model, ids, o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    int64_t windows = 0;
    const double want = WindowedReference(model, ids, context, stride, &windows);
    EXPECT_EQ(r->tokens, 100) << context << "/" << stride;
    EXPECT_EQ(r->windows, windows);
    EXPECT_EQ(calls, windows);
    EXPECT_NEAR(r->nll, want, 1e-5) << context << "/" << stride;
    if (context == 200) full = r->nll;
  }
  // A window shorter than the data sees less history: the answer differs from one whole pass.
  EvalOptions o;
  o.context = 8;
  o.stride = 8;
  auto r = EvaluatePerplexity(model, ids, o);
  ASSERT_TRUE(r.ok());
  EXPECT_GT(std::fabs(r->nll - full), 1e-6);
}

TEST(Perplexity, BadInputIsAnError) {
  auto model = SmallRandomModel();
  ASSERT_NE(model, nullptr);
  EvalOptions o;
  o.context = 8;
  o.stride = 4;
  const std::vector<int32_t> one{3}, outside{3, 97, 4};
  auto r = EvaluatePerplexity(model, one, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("at least 2"), std::string::npos) << r.status().message();
  r = EvaluatePerplexity(model, outside, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("token 1 (id 97)"), std::string::npos) << r.status().message();
  o.stride = 9;
  EXPECT_FALSE(EvaluatePerplexity(model, std::vector<int32_t>{1, 2, 3}, o).ok());
  o.stride = 0;
  EXPECT_FALSE(EvaluatePerplexity(model, std::vector<int32_t>{1, 2, 3}, o).ok());
}

// The sink counts every row's top-k choice once per block, by original expert id, and the gates add
// up to the gate mass.
TEST(ProfileSink, CountsTopKChoicesPerLayerAndKind) {
  auto model = SmallRandomModel();
  ASSERT_NE(model, nullptr);
  const ModelConfig& cfg = model->config();
  ProfileSink sink(cfg);
  std::vector<int32_t> ids;
  for (int i = 0; i < 40; ++i) ids.push_back((i * 31 + 5) % 97);
  EvalOptions o;
  o.context = 16;
  o.stride = 16;
  o.trace = &sink;
  auto r = EvaluatePerplexity(model, ids, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(sink.tokens(), r->forwarded);
  const auto layers = sink.Layers();
  ASSERT_EQ(layers.size(), 4u);
  for (const LayerProfile& l : layers) {
    int64_t total = 0;
    double mass = 0;
    for (size_t e = 0; e < l.counts.size(); ++e) {
      total += l.counts[e];
      mass += l.gate_mass[e];
      EXPECT_GE(l.gate_mass[e], 0.0);
      EXPECT_LE(l.gate_mass[e], static_cast<double>(l.counts[e]) + 1e-9);
    }
    const int k = l.attention ? cfg.k_att : cfg.k_mlp;
    EXPECT_EQ(total, r->forwarded * k) << "layer " << l.layer;
    EXPECT_GT(mass, 0.0);
    EXPECT_LE(mass, static_cast<double>(r->forwarded) + 1e-6);  // gates are softmax shares, not renormalised
  }
}

}  // namespace
}  // namespace brickrt::cli
