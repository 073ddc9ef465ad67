// brick grow at the library level: growing a model by exactly the experts (and router rows) another
// checkpoint was shrunk by gives that checkpoint back bit for bit (logits, digests, export), for MLP and
// attention experts in BF16 and F32; submodels grow too; every bad input is one line and writes nothing.
#include "registry/grow.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bricks/model.h"
#include "bricks/session.h"
#include "core/submodel_spec.h"
#include "registry/compact.h"
#include "registry/compose.h"
#include "registry/safetensors.h"
#include "registry_test_util.h"

namespace brickrt {
namespace {

namespace fs = std::filesystem;
using testing::OpenOrDie;

constexpr int kLayer = 2;  // 5 attention and 5 MLP experts in the small test model
constexpr int kRemoved = 2;

std::vector<float> Logits(const ModelConfig& cfg, std::vector<BrickData> bricks) {
  const std::vector<int32_t> prompt = {3, 17, 42, 8, 8, 25, 1, 49, 30};
  auto model = Model::Build(cfg, std::move(bricks));
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  if (!model.ok()) return {};
  const auto T = static_cast<int64_t>(prompt.size());
  Session session(*model, SessionOptions{1, T, T}, nullptr);
  auto seq = session.AddSequence();
  EXPECT_TRUE(seq.ok());
  std::vector<float> logits(static_cast<size_t>(T * cfg.vocab_size));
  const SequenceChunk chunk{*seq, prompt};
  EXPECT_TRUE(session.Forward({&chunk, 1}, true, logits.data()).ok());
  return logits;
}

std::vector<float> ManifestLogits(const Registry& reg, const std::string& ref) {
  auto m = reg.ResolveModel(ref);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  auto bricks = reg.LoadBricks(*m);
  EXPECT_TRUE(bricks.ok()) << bricks.status().ToString();
  return Logits(m->config, std::move(bricks).value());
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && !a.empty() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

bool IsExpertOf(const BrickData& b, bool attention) {
  return b.kind == (attention ? BrickKind::kAttnExpert : BrickKind::kMlpExpert);
}
bool IsRouterOf(const BrickData& b, bool attention) {
  return b.kind == (attention ? BrickKind::kAttnRouter : BrickKind::kMlpRouter);
}

// The checkpoint with the last kRemoved experts of kLayer deleted (CompactRemovedExperts: router rows
// dropped, config count shrunk), i.e. what an external trainer would have started from.
std::pair<ModelConfig, std::vector<BrickData>> Shrunk(const ModelConfig& cfg, const std::vector<BrickData>& bricks,
                                                      bool attention) {
  ModelConfig marked = cfg;
  auto& removed = attention ? marked.att_removed : marked.mlp_removed;
  marked.att_removed.assign(static_cast<size_t>(cfg.n_layer), {});
  marked.mlp_removed.assign(static_cast<size_t>(cfg.n_layer), {});
  const int64_t E = (attention ? cfg.n_att_experts : cfg.n_mlp_experts)[kLayer];
  for (int64_t e = E - kRemoved; e < E; ++e) removed[kLayer].push_back(e);
  std::vector<BrickData> kept;
  for (const BrickData& b : bricks)
    if (!(IsExpertOf(b, attention) && b.layer == kLayer && b.index >= E - kRemoved)) kept.push_back(b);
  auto out = CompactRemovedExperts(marked, std::move(kept));
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return std::move(out).value();
}

std::string ModulePrefix(bool attention) { return attention ? "attn.q_proj." : "mlpf."; }

void WriteExperts(const std::string& path, const std::vector<BrickData>& bricks, bool attention, int64_t first,
                  int64_t n, const std::string& prefix = "") {
  ASSERT_TRUE(WriteGrowExperts(path, bricks, kLayer, attention, first, n, prefix).ok());
}

// Rows [first, first + n) of kLayer's router w2 as <prefix><module>gate.w_gate.3.weight.
void WriteRouterRows(const std::string& path, const std::vector<BrickData>& bricks, bool attention, int64_t first,
                     int64_t n, const std::string& prefix = "") {
  ASSERT_TRUE(WriteGrowRouterRows(path, bricks, kLayer, attention, first, n, prefix).ok());
}

const Tensor& RouterW2(const std::vector<BrickData>& bricks, bool attention) {
  for (const BrickData& b : bricks)
    if (IsRouterOf(b, attention) && b.layer == kLayer) return *b.Find("w2");
  static const Tensor none;
  ADD_FAILURE() << "no router";
  return none;
}

struct Case {
  bool attention;
  DType dtype;
};

class GrowTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("brick_grow_test_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    reg_ = OpenOrDie(":memory:");
    auto full = MakeRandomModel(testing::SmallModelOptions(GetParam().dtype, 21));
    ASSERT_TRUE(full.ok());
    full_ = std::move(full).value();
    small_ = Shrunk(full_.first, full_.second, att());
    ASSERT_TRUE(reg_->Import("full", full_.first, full_.second, Visibility::kShared, "test").ok());
    ASSERT_TRUE(reg_->Import("small", small_.first, small_.second, Visibility::kShared, "test").ok());
    E_ = (att() ? full_.first.n_att_experts : full_.first.n_mlp_experts)[kLayer];
    WriteExperts(Path("experts.safetensors"), full_.second, att(), E_ - kRemoved, kRemoved);
    WriteRouterRows(Path("router.safetensors"), full_.second, att(), E_ - kRemoved, kRemoved);
  }
  void TearDown() override { fs::remove_all(dir_); }

  bool att() const { return GetParam().attention; }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  GrowRequest Request(const std::string& model = "small", const std::string& name = "grown") const {
    GrowRequest r;
    r.model_ref = model;
    r.layer = kLayer;
    r.attention = att();
    r.experts_path = Path("experts.safetensors");
    r.router_path = Path("router.safetensors");
    r.new_name = name;
    return r;
  }
  // Every brick of `ref` has the digest of the full model's brick of the same relative name.
  void ExpectDigestsOfFull(const std::string& ref) {
    auto full = reg_->ResolveModel("full");
    auto grown = reg_->ResolveModel(ref);
    ASSERT_TRUE(full.ok() && grown.ok());
    auto fb = reg_->ManifestBricks(*full);
    auto gb = reg_->ManifestBricks(*grown);
    ASSERT_TRUE(fb.ok() && gb.ok());
    std::map<std::string, std::string> want;
    for (const BrickRecord& b : *fb) want[b.RelativeName()] = b.digest;
    for (const BrickRecord& b : *gb) EXPECT_EQ(want[b.RelativeName()], b.digest) << b.Ref();
  }

  fs::path dir_;
  std::unique_ptr<Registry> reg_;
  std::pair<ModelConfig, std::vector<BrickData>> full_, small_;
  int64_t E_ = 0;
};

TEST_P(GrowTest, GrowingByTheRemovedExpertsGivesTheFullModelBitForBit) {
  const std::vector<float> want = Logits(full_.first, full_.second);
  ASSERT_FALSE(SameBits(want, ManifestLogits(*reg_, "small")));  // the removed experts do matter

  auto res = GrowModel(*reg_, Request());
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->manifest.Ref(), "grown@1");
  EXPECT_EQ(res->manifest.base, "small@1");
  EXPECT_EQ(res->manifest.kind, ManifestKind::kModel);
  EXPECT_EQ(res->experts_before, E_ - kRemoved);
  EXPECT_EQ(res->experts_after, E_);
  EXPECT_EQ(res->manifest.config.n_att_experts, full_.first.n_att_experts);
  EXPECT_EQ(res->manifest.config.n_mlp_experts, full_.first.n_mlp_experts);
  const int64_t G = full_.first.gating_size, D = full_.first.n_embd;
  const int64_t H = att() ? full_.first.att_hidden : full_.first.ffd_hidden;
  EXPECT_EQ(res->params_after - res->params_before, kRemoved * (2 * D * H + G));

  EXPECT_TRUE(SameBits(want, ManifestLogits(*reg_, "grown")));
  ExpectDigestsOfFull("grown");

  // Added: the new experts (no lineage) then the router version (lineage: small's router), all under
  // the new name; every other brick is small's own brick version.
  const std::string part = att() ? ".attn." : ".mlp.";
  ASSERT_EQ(res->added.size(), static_cast<size_t>(kRemoved + 1));
  for (int j = 0; j < kRemoved; ++j) {
    const BrickRecord& b = res->added[static_cast<size_t>(j)];
    EXPECT_EQ(b.name, "grown/L2" + part + "E" + std::to_string(E_ - kRemoved + j));
    EXPECT_FALSE(b.parent_id.has_value());
    EXPECT_NE(b.metadata_json.find("\"op\":\"grow\""), std::string::npos) << b.metadata_json;
  }
  const BrickRecord& router = res->added.back();
  EXPECT_EQ(router.name, "grown/L2" + part + "router");
  EXPECT_EQ(router.parent_id, res->old_router.id);
  EXPECT_EQ(res->old_router.Ref(), "small/L2" + part + "router@1");
  auto small_bricks = reg_->ManifestBricks(res->base);
  auto grown_bricks = reg_->ManifestBricks(res->manifest);
  ASSERT_TRUE(small_bricks.ok() && grown_bricks.ok());
  std::set<int64_t> small_ids;
  for (const BrickRecord& b : *small_bricks) small_ids.insert(b.id);
  int pinned = 0;
  for (const BrickRecord& b : *grown_bricks) pinned += small_ids.count(b.id) != 0 ? 1 : 0;
  EXPECT_EQ(pinned, static_cast<int>(small_bricks->size()) - 1);  // all but the router
  EXPECT_EQ(grown_bricks->size(), small_bricks->size() + kRemoved);
  auto events = reg_->Events(1);
  ASSERT_TRUE(events.ok() && !events->empty());
  EXPECT_EQ(events->front().kind, "grow");

  // The grown model exports to the full model's checkpoint, byte for byte.
  auto full_m = reg_->ResolveModel("full");
  ASSERT_TRUE(full_m.ok());
  ASSERT_TRUE(reg_->ExportModel(*full_m, Path("out_full")).ok());
  ASSERT_TRUE(reg_->ExportModel(res->manifest, Path("out_grown")).ok());
  for (const char* f : {"model.safetensors", "config.json"}) {
    std::stringstream a, b;
    a << std::ifstream(Path(std::string("out_full/") + f), std::ios::binary).rdbuf();
    b << std::ifstream(Path(std::string("out_grown/") + f), std::ios::binary).rdbuf();
    EXPECT_TRUE(a.str() == b.str()) << f;
  }
}

TEST_P(GrowTest, AFullRouterAndLayerPrefixedNamesGiveTheSameModel) {
  WriteExperts(Path("experts.safetensors"), full_.second, att(), E_ - kRemoved, kRemoved, "transformer.h.2.");
  WriteRouterRows(Path("router.safetensors"), full_.second, att(), 0, E_, "transformer.h.2.");
  auto res = GrowModel(*reg_, Request());
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_TRUE(SameBits(Logits(full_.first, full_.second), ManifestLogits(*reg_, "grown")));
  ExpectDigestsOfFull("grown");
}

// A submodel that removed an expert grows like its base: the new experts take the ids after the
// router's count (removed ones included), the removal stays. So growing small-without-expert-1 gives
// full-without-expert-1; the router file may also be the exported submodel's kept rows + the new ones.
TEST_P(GrowTest, ASubmodelGrowsAndKeepsItsRemovals) {
  auto small = reg_->ResolveModel("small");
  auto small_bricks = reg_->ManifestBricks(*small);
  ASSERT_TRUE(small.ok() && small_bricks.ok());
  ManifestDraft sub;
  sub.name = "sub";
  sub.base = "small@1";
  sub.config = small->config;
  auto& removed = att() ? sub.config.att_removed : sub.config.mlp_removed;
  sub.config.att_removed.assign(3, {});
  sub.config.mlp_removed.assign(3, {});
  removed[kLayer] = {1};
  for (const BrickRecord& b : *small_bricks) {
    const bool gone =
        b.layer == kLayer && b.index == 1 && b.kind == (att() ? BrickKind::kAttnExpert : BrickKind::kMlpExpert);
    if (!gone) sub.entries.push_back({b.id, nullptr, 0, Visibility::kShared, "{}", std::nullopt});
  }
  ASSERT_TRUE(reg_->SaveManifest(sub).ok());

  // Expected: the full model with expert 1 of kLayer removed.
  ModelConfig want_cfg = full_.first;
  want_cfg.att_removed.assign(3, {});
  want_cfg.mlp_removed.assign(3, {});
  (att() ? want_cfg.att_removed : want_cfg.mlp_removed)[kLayer] = {1};
  std::vector<BrickData> want_bricks;
  for (const BrickData& b : full_.second)
    if (!(IsExpertOf(b, att()) && b.layer == kLayer && b.index == 1)) want_bricks.push_back(b);
  const std::vector<float> want = Logits(want_cfg, want_bricks);

  auto res = GrowModel(*reg_, Request("sub", "sub-grown"));
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->manifest.base, "sub@1");
  EXPECT_EQ(res->manifest.config.att_removed, want_cfg.att_removed);
  EXPECT_EQ(res->manifest.config.mlp_removed, want_cfg.mlp_removed);
  EXPECT_TRUE(SameBits(want, ManifestLogits(*reg_, "sub-grown")));
  ExpectDigestsOfFull("sub-grown");

  // The router as the exported submodel has it: kept rows (expert 1's row gone), then the new rows.
  const Tensor& w2 = RouterW2(full_.second, att());
  const size_t row = static_cast<size_t>(w2.dim(1)) * DTypeSize(w2.dtype());
  StWriteTensor t{ModulePrefix(att()) + "gate.w_gate.3.weight", FromDType(w2.dtype()), {E_ - 1, w2.dim(1)}, {}};
  t.parts.emplace_back(w2.data(), row);                                                    // row 0
  t.parts.emplace_back(static_cast<const uint8_t*>(w2.data()) + 2 * row, (E_ - 2) * row);  // rows 2..E-1
  ASSERT_TRUE(WriteSafetensors(Path("router.safetensors"), {t}).ok());
  auto again = GrowModel(*reg_, Request("sub", "sub-grown-2"));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(SameBits(want, ManifestLogits(*reg_, "sub-grown-2")));
}

// A grown model is a model like any other: specs compose it with expert ids up to the new count,
// and it grows again.
TEST_P(GrowTest, SpecsComposeAGrownModelUpToItsNewCount) {
  ASSERT_TRUE(GrowModel(*reg_, Request()).ok());
  const std::string kind = att() ? "attention" : "mlp";
  auto spec = ParseSubmodelSpec(
      "model: grown\nexperts:\n  " + kind + ":\n    drop: {2: [" + std::to_string(E_ - 1) + "]}\n", "spec.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  auto c = Compose(*reg_, *spec);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const LayerPlan& l = c->layers[kLayer];
  EXPECT_EQ(att() ? l.att_total : l.mlp_total, E_);
  EXPECT_EQ((att() ? l.att_kept : l.mlp_kept).size(), static_cast<size_t>(E_ - 1));

  auto beyond = ParseSubmodelSpec(
      "model: grown\nexperts:\n  " + kind + ":\n    drop: {2: [" + std::to_string(E_) + "]}\n", "spec.yaml");
  ASSERT_TRUE(beyond.ok());
  auto refused = Compose(*reg_, *beyond);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("out of range"), std::string::npos) << refused.status().message();

  // A plugin made for the model it grew from attaches (its targets are unchanged bricks).
  auto small = reg_->ResolveModel("small");
  ASSERT_TRUE(small.ok());
  auto loras = MakeRandomLoras(small->config, {});
  ASSERT_TRUE(loras.ok()) << loras.status().ToString();
  ASSERT_TRUE(reg_->ImportPlugin("plug", *small, *loras, Visibility::kShared, "test").ok());
  auto with_plugin = ParseSubmodelSpec("model: grown\nplugins:\n  - lora: plug\n", "spec.yaml");
  ASSERT_TRUE(with_plugin.ok()) << with_plugin.status().ToString();
  auto cp = Compose(*reg_, *with_plugin);
  ASSERT_TRUE(cp.ok()) << cp.status().ToString();
  ASSERT_EQ(cp->plugins.size(), 1u);
  EXPECT_EQ(cp->plugins[0].bricks.size(), loras->size());

  // A submodel attaching those loras on the fly keeps them, at their scales, when it grows.
  auto plug = reg_->ResolveModel("plug");
  auto small_bricks = reg_->ManifestBricks(*small);
  auto plug_bricks = reg_->ManifestBricks(*plug);
  ASSERT_TRUE(plug.ok() && small_bricks.ok() && plug_bricks.ok());
  ManifestDraft sub;
  sub.name = "with-loras";
  sub.base = small->Ref();
  sub.config = small->config;
  for (const BrickRecord& b : *small_bricks) sub.entries.push_back({b.id, nullptr, 0, Visibility::kShared, "{}", {}});
  for (const BrickRecord& b : *plug_bricks) sub.entries.push_back({b.id, nullptr, 0, Visibility::kShared, "{}", 0.5});
  ASSERT_TRUE(reg_->SaveManifest(sub).ok());
  auto grown_loras = GrowModel(*reg_, Request("with-loras", "with-loras-grown"));
  ASSERT_TRUE(grown_loras.ok()) << grown_loras.status().ToString();
  EXPECT_EQ(grown_loras->manifest.plugin_scales.size(), plug_bricks->size());
  for (const BrickRecord& b : *plug_bricks) EXPECT_EQ(grown_loras->manifest.plugin_scales.at(b.id), 0.5);
  const int64_t H = att() ? full_.first.att_hidden : full_.first.ffd_hidden;
  EXPECT_EQ(grown_loras->params_after - grown_loras->params_before,
            kRemoved * (2 * full_.first.n_embd * H + full_.first.gating_size));  // loras not counted

  // Growing the grown model again: its bricks go under the newest name, lineage to grown's router.
  WriteExperts(Path("more.safetensors"), full_.second, att(), 0, 1);
  WriteRouterRows(Path("more_router.safetensors"), full_.second, att(), 0, 1);
  GrowRequest r = Request("grown", "grown-twice");
  r.experts_path = Path("more.safetensors");
  r.router_path = Path("more_router.safetensors");
  r.visibility = Visibility::kPrivate;
  auto twice = GrowModel(*reg_, r);
  ASSERT_TRUE(twice.ok()) << twice.status().ToString();
  EXPECT_EQ(twice->experts_after, E_ + 1);
  EXPECT_EQ(twice->old_router.name, std::string("grown/L2") + (att() ? ".attn." : ".mlp.") + "router");
  for (const BrickRecord& b : twice->added) EXPECT_EQ(b.visibility, Visibility::kPrivate) << b.Ref();
  EXPECT_EQ(ManifestLogits(*reg_, "grown-twice").size(), static_cast<size_t>(9 * full_.first.vocab_size));
}

// Every refusal is one line naming what is wrong, and the registry is exactly as before.
class GrowErrorTest : public GrowTest {
 protected:
  struct Snapshot {
    std::vector<std::string> bricks, models;
    int64_t events = 0;
    bool operator==(const Snapshot&) const = default;
  };
  Snapshot Take() {
    Snapshot s;
    BrickFilter all;
    all.all_versions = true;
    auto bricks = reg_->ListBricks(all);
    auto models = reg_->ListModels();
    auto events = reg_->Events(1000);
    EXPECT_TRUE(bricks.ok() && models.ok() && events.ok());
    for (const BrickRecord& b : *bricks) s.bricks.push_back(b.Ref() + " " + b.digest);
    for (const ManifestRecord& m : *models) s.models.push_back(m.Ref());
    s.events = static_cast<int64_t>(events->size());
    return s;
  }
  void ExpectRefused(const GrowRequest& req, const std::string& want, StatusCode code = StatusCode::kInvalidArgument) {
    const Snapshot before = Take();
    auto res = GrowModel(*reg_, req);
    ASSERT_FALSE(res.ok()) << "expected: " << want;
    EXPECT_EQ(res.status().code(), code) << res.status().ToString();
    const std::string& msg = res.status().message();
    EXPECT_NE(msg.find(want), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_TRUE(Take() == before) << "the registry changed after: " << msg;
  }
  // A tensor with these values, as the one tensor of a file.
  void WriteTensor(const std::string& path, const std::string& name, DType dtype, const Shape& shape,
                   float fill = 0.01f) {
    Tensor f32(DType::kF32, shape);
    for (int64_t i = 0; i < f32.numel(); ++i) f32.mutable_data_as<float>()[i] = fill;
    const Tensor t = f32.ConvertTo(dtype);
    StWriteTensor w{name, FromDType(dtype), shape, {{t.data(), t.nbytes()}}};
    ASSERT_TRUE(WriteSafetensors(path, {w}).ok());
  }
  std::string RouterName() const { return ModulePrefix(att()) + "gate.w_gate.3.weight"; }
};

TEST_P(GrowErrorTest, BadInputsAreOneLineAndWriteNothing) {
  const int64_t G = full_.first.gating_size, D = full_.first.n_embd;
  const int64_t H = att() ? full_.first.att_hidden : full_.first.ffd_hidden;
  const DType dt = GetParam().dtype;

  ExpectRefused(Request("nope"), "nope", StatusCode::kNotFound);
  GrowRequest r = Request();
  r.layer = 3;
  ExpectRefused(r, "layer 3 is out of range (small@1 has 3 layers, 0-2)");
  r.layer = -1;
  ExpectRefused(r, "layer -1 is out of range");
  ExpectRefused(Request("small", "full"), "--save name 'full' is taken (full@1");
  ExpectRefused(Request("small", "small"), "is taken");
  ExpectRefused(Request("small", "a/b"), "may not contain");
  r = Request();
  r.experts_path = Path("missing.safetensors");
  ExpectRefused(r, "missing.safetensors", StatusCode::kNotFound);

  // Wrong shape: one more column than the model's width.
  const std::string experts = Path("bad_experts.safetensors");
  {
    std::vector<StWriteTensor> w(2);
    Tensor a(dt, {kRemoved, D, H + 1}), b(dt, {kRemoved, H, D});
    w[0] = {ModulePrefix(att()) + "experts.weight", FromDType(dt), a.shape(), {{a.data(), a.nbytes()}}};
    w[1] = {ModulePrefix(att()) + "output_experts.weight", FromDType(dt), b.shape(), {{b.data(), b.nbytes()}}};
    ASSERT_TRUE(WriteSafetensors(experts, w).ok());
  }
  r = Request();
  r.experts_path = experts;
  ExpectRefused(r, "bad_experts.safetensors: " + ModulePrefix(att()) + "experts.weight has shape [2, " +
                       std::to_string(D) + ", " + std::to_string(H + 1) + "]; expected [2, " + std::to_string(D) +
                       ", " + std::to_string(H) + "]");
  // n_new disagrees between the files: 3 router rows for 2 experts.
  WriteTensor(Path("bad_router.safetensors"), RouterName(), dt, {kRemoved + 1, G});
  r = Request();
  r.router_path = Path("bad_router.safetensors");
  ExpectRefused(r, "bad_router.safetensors: " + RouterName() + " has shape [3, " + std::to_string(G) +
                       "]; expected [2, " + std::to_string(G) + "] (the new rows) or [" + std::to_string(E_) + ", " +
                       std::to_string(G) + "]");
  // A full router whose old rows are not small's router rows.
  WriteTensor(Path("bad_router.safetensors"), RouterName(), dt, {E_, G});
  ExpectRefused(r, "row 0 differs from row 0 of small/L2");
  // A NaN in an expert, an infinity in a router row.
  {
    Tensor a = Tensor(DType::kF32, {kRemoved, D, H}), b(DType::kF32, {kRemoved, H, D});
    a.mutable_data_as<float>()[D * H + 5] = std::nanf("");
    a = a.ConvertTo(dt), b = b.ConvertTo(dt);
    std::vector<StWriteTensor> w(2);
    w[0] = {ModulePrefix(att()) + "experts.weight", FromDType(dt), a.shape(), {{a.data(), a.nbytes()}}};
    w[1] = {ModulePrefix(att()) + "output_experts.weight", FromDType(dt), b.shape(), {{b.data(), b.nbytes()}}};
    ASSERT_TRUE(WriteSafetensors(experts, w).ok());
  }
  r = Request();
  r.experts_path = experts;
  ExpectRefused(r, ModulePrefix(att()) + "experts.weight has a NaN at [1, 0, 5]");
  WriteTensor(Path("bad_router.safetensors"), RouterName(), dt, {kRemoved, G}, INFINITY);
  r = Request();
  r.router_path = Path("bad_router.safetensors");
  ExpectRefused(r, "has an infinite value at [0, 0]");
  // Another dtype than the model's.
  const DType other = dt == DType::kBF16 ? DType::kF32 : DType::kBF16;
  WriteTensor(Path("bad_router.safetensors"), RouterName(), other, {kRemoved, G});
  ExpectRefused(r, std::string("is ") + DTypeName(other) + "; expected " + DTypeName(dt) + " (the model's dtype)");
  // The other kind's tensors, another layer's prefix, a changed hidden layer.
  WriteTensor(Path("bad_router.safetensors"), ModulePrefix(!att()) + "gate.w_gate.3.weight", dt, {kRemoved, G});
  ExpectRefused(r, att() ? "use --kind mlp" : "use --kind attn");
  WriteTensor(Path("bad_router.safetensors"), "transformer.h.1." + RouterName(), dt, {kRemoved, G});
  ExpectRefused(r, "is not for layer 2 (--layer)");
  WriteTensor(Path("bad_router.safetensors"), ModulePrefix(att()) + "gate.w_gate.0.bias", dt, {G}, 123.0f);
  ExpectRefused(r, "differs from the hidden layer of small/L2");
  r = Request();
  r.router_path = Path("experts.safetensors");
  ExpectRefused(r, "unexpected tensor " + ModulePrefix(att()) + "experts.weight");
  // A plugin is not a model.
  auto loras = MakeRandomLoras(full_.first, {});
  auto full_m = reg_->ResolveModel("full");
  ASSERT_TRUE(loras.ok() && full_m.ok());
  ASSERT_TRUE(reg_->ImportPlugin("plug", *full_m, *loras, Visibility::kShared, "test").ok());
  ExpectRefused(Request("plug"), "plug@1 is a plugin, not a model");
}

INSTANTIATE_TEST_SUITE_P(KindsAndDTypes, GrowErrorTest,
                         ::testing::Values(Case{false, DType::kBF16}, Case{true, DType::kF32}),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           return std::string(i.param.attention ? "Attn" : "Mlp") +
                                  (i.param.dtype == DType::kBF16 ? "BF16" : "F32");
                         });

INSTANTIATE_TEST_SUITE_P(KindsAndDTypes, GrowTest,
                         ::testing::Values(Case{false, DType::kBF16}, Case{false, DType::kF32},
                                           Case{true, DType::kBF16}, Case{true, DType::kF32}),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           return std::string(i.param.attention ? "Attn" : "Mlp") +
                                  (i.param.dtype == DType::kBF16 ? "BF16" : "F32");
                         });

}  // namespace
}  // namespace brickrt
