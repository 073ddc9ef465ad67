// WAL in practice: a reader (what `brick run` does: resolve a model, load its bricks) is never blocked
// by an import running in another connection at the same time.
#include <atomic>
#include <thread>

#include "registry/registry.h"
#include "registry/test_model.h"
#include "registry_test_util.h"

namespace brickrt {
namespace {

using testing::OpenOrDie;

class RegistryConcurrencyTest : public testing::TempDirTest {};

TEST_F(RegistryConcurrencyTest, ReadersAreNotBlockedByARunningImport) {
  const std::string path = Path("r.db");
  auto small = testing::SmallModel();
  ASSERT_TRUE(OpenOrDie(path)->Import("small", small.first, small.second, Visibility::kShared, "").ok());

  // A model big enough that its import (hashing, then one write transaction) takes a while.
  TestModelOptions big = testing::SmallModelOptions(DType::kF32, 99);
  big.d_model = 256;
  big.ffd_hidden = 512;
  big.attn_experts_per_layer = {8, 8, 8};
  big.mlp_experts_per_layer = {16, 16, 16};
  auto made = MakeRandomModel(big);
  ASSERT_TRUE(made.ok());

  std::atomic<bool> importing{true};
  Status import_status;
  std::thread writer([&] {
    auto reg = OpenOrDie(path);
    for (uint64_t seed = 0; seed < 3; ++seed) {  // three versions: three write transactions
      for (BrickData& b : made->second) {
        if (b.kind == BrickKind::kMlpExpert && b.index == 0) {
          Tensor w = b.tensors[0].second.Clone();
          w.mutable_data_as<float>()[0] += 1.0f + static_cast<float>(seed);
          b.tensors[0].second = w;
        }
      }
      import_status = reg->Import("big", made->first, made->second, Visibility::kShared, "").status();
      if (!import_status.ok()) break;
    }
    importing = false;
  });

  int reads_during_import = 0, failures = 0;
  std::string first_failure;
  OpenOptions ro;
  ro.create = false;
  ro.read_only = true;
  while (importing.load()) {
    auto reg = Registry::Open(path, ro);
    Status st = reg.status();
    if (st.ok()) {
      auto m = (*reg)->ResolveModel("small");
      st = m.status();
      if (st.ok()) st = (*reg)->LoadBricks(*m).status();
    }
    if (!st.ok()) {
      if (failures++ == 0) first_failure = st.ToString();
    } else if (importing.load()) {
      ++reads_during_import;
    }
  }
  writer.join();
  ASSERT_TRUE(import_status.ok()) << import_status.ToString();
  EXPECT_EQ(failures, 0) << first_failure;
  EXPECT_GT(reads_during_import, 0);
  EXPECT_EQ(OpenOrDie(path)->ResolveModel("big")->version, 3);
}

}  // namespace
}  // namespace brickrt
