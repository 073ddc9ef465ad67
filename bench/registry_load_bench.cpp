// Loading a model's bricks from the registry (SQLite incremental blob I/O) under each integrity mode,
// against reading the same bytes from a plain file with pread into buffers allocated the same way.
// Usage: brick_bench_registry [--layers 4] [--dir /tmp] [--repeat 3]
//
// "cold" passes first drop both files from the page cache (posix_fadvise DONTNEED; it only drops
// clean pages, so it is as cold as an unprivileged process can make it); "warm" passes follow one
// another with the files cached. Timings are min..max over --repeat passes.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/sha256.h"
#include "core/tensor.h"
#include "registry/registry.h"
#include "registry/test_model.h"

namespace brickrt::bench {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void DropFromPageCache(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  fdatasync(fd);
  (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
}

struct Range {
  double lo = 1e30, hi = 0;
  void Add(double s) { lo = std::min(lo, s), hi = std::max(hi, s); }
};

struct TensorShape {
  DType dtype;
  Shape shape;
};

int Main(int argc, char** argv) {
  int layers = 4, repeat = 3;
  std::string dir = std::filesystem::temp_directory_path().string();
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--layers") layers = std::atoi(argv[i + 1]);
    else if (std::string(argv[i]) == "--dir") dir = argv[i + 1];
    else if (std::string(argv[i]) == "--repeat") repeat = std::max(1, std::atoi(argv[i + 1]));
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
  OpenOptions crc_opts, raw_opts;
  raw_opts.verify_on_load = false;
  auto reg = Registry::Open(db, crc_opts);
  if (!reg.ok()) return std::fprintf(stderr, "%s\n", reg.status().ToString().c_str()), 1;
  double t = Now();
  auto imported = (*reg)->Import("bench", made->first, made->second, Visibility::kShared, "bench");
  if (!imported.ok()) return std::fprintf(stderr, "%s\n", imported.status().ToString().c_str()), 1;
  const double import_s = Now() - t;
  auto raw_reg = Registry::Open(db, raw_opts);
  if (!raw_reg.ok()) return std::fprintf(stderr, "%s\n", raw_reg.status().ToString().c_str()), 1;

  // The same payload bytes, brick after brick, in one plain file; the tensor shapes for the reader.
  int64_t total = 0;
  std::vector<TensorShape> shapes;
  {
    FILE* f = std::fopen(plain.c_str(), "wb");
    for (const BrickData& b : made->second)
      for (const auto& [name, tensor] : b.tensors) {
        std::fwrite(tensor.data(), 1, tensor.nbytes(), f);
        total += static_cast<int64_t>(tensor.nbytes());
        shapes.push_back({tensor.dtype(), tensor.shape()});
      }
    std::fclose(f);
  }
  made->second.clear();

  bool failed = false;
  auto load = [&](const Registry& r) {
    auto bricks = r.LoadBricks(imported->manifest);
    if (!bricks.ok()) std::fprintf(stderr, "%s\n", bricks.status().ToString().c_str()), failed = true;
  };
  auto load_sha = [&]() {  // verification by full SHA-256 of every payload (the pre-CRC load path)
    auto bricks = (*raw_reg)->LoadBricks(imported->manifest);
    if (!bricks.ok()) return (void)(std::fprintf(stderr, "%s\n", bricks.status().ToString().c_str()), failed = true);
    for (const BrickData& b : *bricks) {
      Sha256 h;
      for (const auto& [name, tensor] : b.tensors) h.Update(tensor.data(), tensor.nbytes());
      (void)h.Finish();
    }
  };
  // pread per tensor into a Tensor (the registry's allocation: aligned, zero-filled) or, for
  // comparison, into an aligned buffer that is not pre-faulted.
  auto pread_all = [&](bool like_registry) {
    const int fd = open(plain.c_str(), O_RDONLY);
    std::vector<Tensor> keep_t;
    std::vector<std::shared_ptr<uint8_t>> keep_b;
    off_t off = 0;
    for (const TensorShape& s : shapes) {
      void* dst = nullptr;
      const size_t n = static_cast<size_t>(NumElements(s.shape)) * DTypeSize(s.dtype);
      if (like_registry) {
        keep_t.emplace_back(s.dtype, s.shape);
        dst = keep_t.back().mutable_data();
      } else {
        keep_b.push_back(AllocateAligned(n, /*prefault=*/false));
        dst = keep_b.back().get();
      }
      if (pread(fd, dst, n, off) != static_cast<ssize_t>(n)) failed = true;
      off += static_cast<off_t>(n);
    }
    close(fd);
  };

  struct Case {
    const char* name;
    std::function<void()> run;
    Range cold, warm;
  };
  std::vector<Case> cases = {
      {"registry, CRC-32C checked (default)", [&] { load(**reg); }, {}, {}},
      {"registry, verify_on_load=false", [&] { load(**raw_reg); }, {}, {}},
      {"registry + SHA-256 of every payload", load_sha, {}, {}},
      {"plain file pread into Tensor (same allocation)", [&] { pread_all(true); }, {}, {}},
      {"plain file pread, buffers not pre-faulted", [&] { pread_all(false); }, {}, {}},
  };
  for (int rep = 0; rep < repeat && !failed; ++rep) {
    for (Case& c : cases) {
      DropFromPageCache(db);
      DropFromPageCache(plain);
      t = Now();
      c.run();
      c.cold.Add(Now() - t);
      for (int w = 0; w < 2; ++w) {  // the first warm-up pass caches the files; time the second
        t = Now();
        c.run();
        if (w == 1) c.warm.Add(Now() - t);
      }
    }
  }
  if (failed) return 1;
  const double gb = static_cast<double>(total) / 1e9;
  std::printf("payload %.2f GB in %zu bricks; import %.2f s; %d repeats, GB/s as min..max\n", gb,
              imported->manifest.brick_ids.size(), import_s, repeat);
  const Range& base_w = cases[3].warm;
  const Range& base_c = cases[3].cold;
  for (const Case& c : cases) {
    std::printf("%-48s cold %5.1f..%5.1f GB/s   warm %5.1f..%5.1f GB/s   warm ratio %.2f..%.2fx\n", c.name,
                gb / c.cold.hi, gb / c.cold.lo, gb / c.warm.hi, gb / c.warm.lo, base_w.lo / c.warm.hi,
                base_w.hi / c.warm.lo);
  }
  std::printf("ratio (best of each, default checks vs plain file, same allocation): warm %.2fx, cold %.2fx\n",
              base_w.lo / cases[0].warm.lo, base_c.lo / cases[0].cold.lo);
  std::filesystem::remove(plain);
  return 0;
}

}  // namespace
}  // namespace brickrt::bench

int main(int argc, char** argv) { return brickrt::bench::Main(argc, argv); }
