// KV-cached decoding equals full recomputation, for a batch of sequences of different lengths; and
// the session's input validation leaves its state unchanged.
#include <gtest/gtest.h>

#include <cmath>

#include "bricks/generator.h"
#include "bricks/session.h"
#include "registry/test_model.h"

namespace brickrt {
namespace {

std::shared_ptr<const Model> RandomModel(DType dtype) {
  TestModelOptions o;
  o.layers = 3;
  o.d_model = 64;
  o.ffd_hidden = 96;
  o.gating_size = 32;
  o.vocab = 257;
  o.attn_experts_per_layer = {4, 3, 6};
  o.mlp_experts_per_layer = {8, 5, 7};
  o.k_att = 2;
  o.k_mlp = 2;
  o.dtype = dtype;
  o.seed = 7;
  auto made = MakeRandomModel(o);
  if (!made.ok()) return nullptr;
  auto model = Model::Build(made->first, std::move(made->second));
  return model.ok() ? *model : nullptr;
}

int32_t Argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return static_cast<int32_t>(best);
}

// Logits of every position of `tokens`, computed in one forward pass without any earlier cache.
std::vector<float> FullRecompute(std::shared_ptr<const Model> model, const std::vector<int32_t>& tokens) {
  const int64_t T = static_cast<int64_t>(tokens.size()), V = model->config().vocab_size;
  Session s(model, SessionOptions{1, T, T}, nullptr);
  const int seq = *s.AddSequence();
  std::vector<float> logits(static_cast<size_t>(T * V));
  const SequenceChunk c{seq, tokens};
  EXPECT_TRUE(s.Forward({&c, 1}, true, logits.data()).ok());
  return logits;
}

class SessionTest : public ::testing::TestWithParam<DType> {};

TEST_P(SessionTest, CachedDecodeEqualsFullRecomputationForARaggedBatch) {
  auto model = RandomModel(GetParam());
  ASSERT_NE(model, nullptr);
  const int64_t V = model->config().vocab_size;
  ThreadPool pool(2);
  Session session(model, SessionOptions{3, 64, 64}, &pool);
  std::vector<std::vector<int32_t>> seqs = {{5, 17, 99}, {1, 2, 3, 4, 5, 6, 7, 8, 9}, {200}};
  std::vector<int> ids;
  for (size_t i = 0; i < seqs.size(); ++i) ids.push_back(*session.AddSequence());

  // Prefill the first two together; the third starts later, so steps mix prefill and decode.
  std::vector<float> logits(static_cast<size_t>(64 * V));
  std::vector<std::vector<float>> step_logits(3);  // cached logits of each generated position
  {
    const SequenceChunk c[2] = {{ids[0], seqs[0]}, {ids[1], seqs[1]}};
    ASSERT_TRUE(session.Forward(c, false, logits.data()).ok());
    for (int i = 0; i < 2; ++i) {
      step_logits[i].assign(logits.begin() + i * V, logits.begin() + (i + 1) * V);
      seqs[i].push_back(Argmax(&logits[static_cast<size_t>(i * V)], V));
    }
  }
  for (int step = 0; step < 10; ++step) {
    std::vector<SequenceChunk> chunks;
    std::vector<int32_t> next(3);
    for (int i = 0; i < 3; ++i) {
      if (i == 2 && step == 2) {  // the third sequence joins with its whole prompt
        chunks.push_back({ids[2], seqs[2]});
        continue;
      }
      if (i == 2 && step < 2) continue;
      next[i] = seqs[i].back();
      chunks.push_back({ids[i], {&next[i], 1}});
    }
    ASSERT_TRUE(session.Forward(chunks, false, logits.data()).ok());
    for (size_t c = 0; c < chunks.size(); ++c) {
      const int i = chunks[c].seq == ids[0] ? 0 : chunks[c].seq == ids[1] ? 1 : 2;
      const float* row = &logits[c * static_cast<size_t>(V)];
      step_logits[i].insert(step_logits[i].end(), row, row + V);
      seqs[i].push_back(Argmax(row, V));
    }
  }

  for (int i = 0; i < 3; ++i) {
    // Full recomputation over everything but the last generated token.
    std::vector<int32_t> all(seqs[i].begin(), seqs[i].end() - 1);
    const auto full = FullRecompute(model, all);
    const int64_t n_gen = static_cast<int64_t>(step_logits[i].size()) / V;
    const int64_t first = static_cast<int64_t>(all.size()) - n_gen;  // position of the first cached logits row
    for (int64_t g = 0; g < n_gen; ++g) {
      const float* cached = &step_logits[i][static_cast<size_t>(g * V)];
      const float* ref = &full[static_cast<size_t>((first + g) * V)];
      // Same kernels, different row grouping (prefill GEMM vs decode GEMV): F32 rounding only.
      float max_diff = 0;
      for (int64_t v = 0; v < V; ++v) max_diff = std::max(max_diff, std::fabs(cached[v] - ref[v]));
      EXPECT_LE(max_diff, 1e-3f) << "sequence " << i << " generated position " << g;
      EXPECT_EQ(Argmax(cached, V), Argmax(ref, V)) << "sequence " << i << " generated position " << g;
    }
  }
}

TEST_P(SessionTest, ChunkedPrefillEqualsOneShot) {
  auto model = RandomModel(GetParam());
  ASSERT_NE(model, nullptr);
  const int64_t V = model->config().vocab_size;
  const std::vector<int32_t> prompt = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5};
  const auto full = FullRecompute(model, prompt);
  Session s(model, SessionOptions{1, 32, 32}, nullptr);
  const int seq = *s.AddSequence();
  std::vector<float> logits(static_cast<size_t>(32 * V));
  const std::vector<int32_t> a(prompt.begin(), prompt.begin() + 4), b(prompt.begin() + 4, prompt.end());
  SequenceChunk c{seq, a};
  ASSERT_TRUE(s.Forward({&c, 1}, true, logits.data()).ok());
  c.tokens = b;
  ASSERT_TRUE(s.Forward({&c, 1}, true, logits.data() + 4 * V).ok());
  for (size_t i = 0; i < full.size(); ++i) ASSERT_NEAR(logits[i], full[i], 1e-3f) << "element " << i;
  EXPECT_EQ(s.Length(seq), static_cast<int64_t>(prompt.size()));
}

TEST_P(SessionTest, GreedyGenerateMatchesRecomputedArgmax) {
  auto model = RandomModel(GetParam());
  ASSERT_NE(model, nullptr);
  const int64_t V = model->config().vocab_size;
  ThreadPool pool(2);
  Session session(model, SessionOptions{2, 40, 40}, &pool);
  GenerateOptions opts;
  opts.max_new_tokens = 12;
  opts.sampling.temperature = 0;
  opts.stop_at_eos = false;
  const std::vector<std::vector<int32_t>> prompts = {{10, 20, 30, 40, 50, 60, 70}, {9}};
  auto res = Generate(session, prompts, opts);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_EQ(res->generated[i].size(), 12u);
    std::vector<int32_t> all = prompts[i];
    all.insert(all.end(), res->generated[i].begin(), res->generated[i].end() - 1);
    const auto full = FullRecompute(model, all);
    for (size_t g = 0; g < 12; ++g) {
      const int64_t pos = static_cast<int64_t>(prompts[i].size() + g) - 1;
      EXPECT_EQ(res->generated[i][g], Argmax(&full[static_cast<size_t>(pos * V)], V)) << "prompt " << i << " token " << g;
    }
  }
  EXPECT_EQ(session.LiveSequences(), 0);  // Generate releases its sequences
  EXPECT_GT(session.CacheBytes(), 0);     // and their caches stay for the next request
}

INSTANTIATE_TEST_SUITE_P(Dtypes, SessionTest, ::testing::Values(DType::kF32, DType::kBF16, DType::kF16),
                         [](const auto& info) { return std::string(DTypeName(info.param)); });

TEST(SessionErrors, CreateRefusesImpossibleOptions) {
  auto model = RandomModel(DType::kF32);
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(Session::Create(model, SessionOptions{0, 8, 8}, nullptr).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Session::Create(model, SessionOptions{1, 0, 8}, nullptr).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Session::Create(model, SessionOptions{1, int64_t{1} << 40, 8}, nullptr).status().code(),
            StatusCode::kInvalidArgument);
  // 65536 sequences of 16M tokens: far beyond any machine's memory, refused before allocating.
  auto huge = Session::Create(model, SessionOptions{65536, int64_t{1} << 24, 8}, nullptr);
  EXPECT_EQ(huge.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(huge.status().message().find("MiB"), std::string::npos) << huge.status().message();
  EXPECT_TRUE(Session::Create(model, SessionOptions{2, 64, 64}, nullptr).ok());
}

TEST(SessionErrors, SlotsAreReusedWithAnEmptyCache) {
  auto model = RandomModel(DType::kF32);
  ASSERT_NE(model, nullptr);
  Session s(model, SessionOptions{1, 8, 8}, nullptr);
  const int a = *s.AddSequence();
  std::vector<float> logits(257);
  const std::vector<int32_t> t = {1, 2, 3};
  const SequenceChunk c{a, t};
  ASSERT_TRUE(s.Forward({&c, 1}, false, logits.data()).ok());
  const int64_t bytes = s.CacheBytes();
  s.RemoveSequence(a);
  EXPECT_EQ(s.Length(a), -1);
  const int b = *s.AddSequence();
  EXPECT_EQ(b, a);
  EXPECT_EQ(s.Length(b), 0);
  EXPECT_EQ(s.CacheBytes(), bytes);  // reused, not re-allocated
}

TEST(SessionErrors, BadInputIsRejectedAndChangesNothing) {
  auto model = RandomModel(DType::kF32);
  ASSERT_NE(model, nullptr);
  const int64_t V = model->config().vocab_size;
  Session s(model, SessionOptions{2, 8, 8}, nullptr);
  const int seq = *s.AddSequence();
  std::vector<float> logits(static_cast<size_t>(8 * V));
  const std::vector<int32_t> ok = {1, 2}, bad_token = {1, static_cast<int32_t>(V)}, too_long(7, 1);
  SequenceChunk c{seq, ok};
  ASSERT_TRUE(s.Forward({&c, 1}, false, logits.data()).ok());

  c.tokens = bad_token;
  Status st = s.Forward({&c, 1}, false, logits.data());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("outside the vocabulary"), std::string::npos) << st.message();
  c.tokens = too_long;
  EXPECT_EQ(s.Forward({&c, 1}, false, logits.data()).code(), StatusCode::kOutOfRange);
  const SequenceChunk twice[2] = {{seq, ok}, {seq, ok}};
  EXPECT_EQ(s.Forward(twice, false, logits.data()).code(), StatusCode::kInvalidArgument);
  c = SequenceChunk{seq + 5, ok};
  EXPECT_EQ(s.Forward({&c, 1}, false, logits.data()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Length(seq), 2);  // nothing was appended by the failed calls

  ASSERT_TRUE(s.AddSequence().ok());
  EXPECT_EQ(s.AddSequence().status().code(), StatusCode::kOutOfRange);  // max_sequences = 2
}

}  // namespace
}  // namespace brickrt
