// Facts about the machine the process runs on, for defaults and for refusing work that cannot fit.
#pragma once

#include <cstdint>

namespace brickrt {

// CPUs this process may run on (the affinity mask, which respects taskset/cgroup cpusets), >= 1.
// hardware_concurrency() counts every CPU of the host, which oversubscribes a restricted process.
int UsableCores();

// Physical memory in bytes (0 if unknown).
int64_t PhysicalMemoryBytes();

}  // namespace brickrt
