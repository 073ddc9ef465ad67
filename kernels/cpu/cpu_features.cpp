// Run-time CPU feature detection for the kernel dispatchers: decides once whether the AVX-512
// variants may run, so the library stays correct on any x86-64.
#include "kernels/cpu/variants.h"

namespace brickrt::kernels::internal {

bool CpuHasAvx512() {
  // Evaluated once; __builtin_cpu_supports reads a table filled by the compiler runtime at startup.
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  }();
  return has;
}

}  // namespace brickrt::kernels::internal
