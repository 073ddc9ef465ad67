// brick devices: the GPUs this process can place bricks on (issue #8), so a user can see what
// `--device cuda:N` and `on: cuda:N` would find before running anything.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/json.h"
#if BRICK_HAVE_CUDA
#include "kernels/cuda/device.h"
#endif

namespace brickrt::cli {

int DevicesCommand(const std::vector<std::string>& args) {
  const char* cmd = "devices";
  ArgParser a(cmd, "[--json] [--self-test]",
              "Lists the devices of this machine a spec can place bricks on: cpu always, and every CUDA GPU\n"
              "(cuda:N, with its name, compute capability and memory). --self-test runs a small kernel on\n"
              "each GPU and checks its result. Exits 0 with no GPU listed when there is none.");
  a.Flag("json", "print one JSON object: cuda_built, devices [{device, name, compute_capability, memory_bytes}]");
  a.Flag("self-test", "run and check a small kernel on each GPU (exit 1 if one fails)");
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  struct Row {
    std::string device, name, cc;
    size_t bytes = 0;
  };
  std::vector<Row> rows;
  bool built = false;
  int failed = 0;
#if BRICK_HAVE_CUDA
  built = true;
  for (const cuda::CudaDevice& d : cuda::ListDevices()) {
    rows.push_back({"cuda:" + std::to_string(d.index), d.name,
                    std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor), d.total_bytes});
    if (a.Has("self-test")) {
      if (const Status st = cuda::SelfTest(d.index); !st.ok()) {
        std::fprintf(stderr, "brick devices: cuda:%d failed its self-test: %s\n", d.index, st.message().c_str());
        ++failed;
      }
    }
  }
#endif
  if (a.Has("json")) {
    std::string out = std::string("{\"cuda_built\":") + (built ? "true" : "false") + ",\"devices\":[";
    for (size_t i = 0; i < rows.size(); ++i) {
      out += (i ? "," : "") + std::string("{\"device\":") + JsonQuote(rows[i].device) +
             ",\"name\":" + JsonQuote(rows[i].name) + ",\"compute_capability\":" + JsonQuote(rows[i].cc) +
             ",\"memory_bytes\":" + std::to_string(rows[i].bytes) + "}";
    }
    std::printf("%s]}\n", out.c_str());
  } else {
    std::printf("cpu\n");
    for (const Row& r : rows)
      std::printf("%s  %s  sm_%s  %.1f GiB\n", r.device.c_str(), r.name.c_str(), r.cc.c_str(),
                  static_cast<double>(r.bytes) / (1 << 30));
    if (!built)
      std::fprintf(stderr, "brick devices: this brick was built without CUDA (-DBRICK_CUDA=OFF)\n");
    else if (rows.empty())
      std::fprintf(stderr, "brick devices: no CUDA GPU is visible to this process\n");
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace brickrt::cli
