// Loading a model's bricks from the registry (SQLite incremental blob I/O, digests verified) vs
// reading the same bytes from a plain file with pread, warm (page cache hot, second of two passes).
// Usage: brick_bench_registry [--layers 4] [--dir /tmp]
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/tensor.h"
#include "registry/registry.h"
#include "registry/test_model.h"

namespace brickrt::bench {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int Main(int argc, char** argv) {
  int layers = 4;
  std::string dir = std::filesystem::temp_directory_path().string();
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--layers") layers = std::atoi(argv[i + 1]);
    else if (std::string(argv[i]) == "--dir") dir = argv[i + 1];
  }
  TestModelOptions mo;
  mo.layers = layers;
  mo.d_model = 1024;
  mo.ffd_hidden = 2048;
  mo.attn_experts = 16;
  mo.mlp_experts = 32;
  mo.gating_size = 256;
  mo.vocab = 50295;
  auto made = MakeRandomModel(mo);
  if (!made.ok()) return std::fprintf(stderr, "%s\n", made.status().ToString().c_str()), 1;

  const std::string db = dir + "/brick_bench_registry.db", plain = dir + "/brick_bench_registry.bin";
  std::filesystem::remove(db);
  std::filesystem::remove(db + "-wal");
  std::filesystem::remove(db + "-shm");
  auto reg = Registry::Open(db);
  if (!reg.ok()) return std::fprintf(stderr, "%s\n", reg.status().ToString().c_str()), 1;
  double t = Now();
  auto imported = (*reg)->Import("bench", made->first, made->second, Visibility::kShared, "bench");
  if (!imported.ok()) return std::fprintf(stderr, "%s\n", imported.status().ToString().c_str()), 1;
  const double import_s = Now() - t;

  // The same payload bytes, brick after brick, in one plain file.
  int64_t total = 0;
  {
    FILE* f = std::fopen(plain.c_str(), "wb");
    for (const BrickData& b : made->second)
      for (const auto& [name, tensor] : b.tensors) {
        std::fwrite(tensor.data(), 1, tensor.nbytes(), f);
        total += static_cast<int64_t>(tensor.nbytes());
      }
    std::fclose(f);
  }
  made->second.clear();

  double reg_s = 0, file_s = 0;
  for (int pass = 0; pass < 2; ++pass) {  // the second pass is the warm one
    t = Now();
    auto bricks = (*reg)->LoadBricks(imported->manifest);
    reg_s = Now() - t;
    if (!bricks.ok()) return std::fprintf(stderr, "%s\n", bricks.status().ToString().c_str()), 1;
  }
  for (int pass = 0; pass < 2; ++pass) {
    t = Now();
    const int fd = open(plain.c_str(), O_RDONLY);
    // One aligned buffer per brick-sized chunk, like the registry's per-tensor allocations.
    off_t off = 0;
    const size_t chunk = 8 << 20;
    while (off < total) {
      const size_t n = std::min<size_t>(chunk, static_cast<size_t>(total - off));
      auto buf = AllocateAligned(n, /*prefault=*/false);
      if (pread(fd, buf.get(), n, off) != static_cast<ssize_t>(n)) return std::fprintf(stderr, "short read\n"), 1;
      off += static_cast<off_t>(n);
    }
    close(fd);
    file_s = Now() - t;
  }
  const double gb = static_cast<double>(total) / 1e9;
  std::printf("payload %.2f GB in %zu bricks; import %.2f s\n", gb, imported->manifest.brick_ids.size(), import_s);
  std::printf("warm load: registry %.3f s = %.1f GB/s (digests verified) | plain file pread %.3f s = %.1f GB/s | ratio %.2fx\n",
              reg_s, gb / reg_s, file_s, gb / file_s, file_s / reg_s);
  std::filesystem::remove(plain);
  return 0;
}

}  // namespace
}  // namespace brickrt::bench

int main(int argc, char** argv) { return brickrt::bench::Main(argc, argv); }
