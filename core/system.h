// Facts about the machine the process runs on, for defaults and for refusing work that cannot fit.
#pragma once

#include <cstdint>

namespace brickrt {

// CPUs this process may run on (the affinity mask, which respects taskset/cgroup cpusets), >= 1.
// hardware_concurrency() counts every CPU of the host, which oversubscribes a restricted process.
int UsableCores();

// Physical memory in bytes (0 if unknown).
int64_t PhysicalMemoryBytes();

// The most resident memory this process has held so far, in bytes (getrusage's ru_maxrss; 0 if unknown).
// Counts file pages mapped in (the registry is read through SQLite's mmap), which the kernel can drop.
int64_t PeakResidentBytes();
// Resident private anonymous memory now (RssAnon of /proc/self/status; 0 if unknown): what the
// process's own allocations hold, without mapped file pages.
int64_t ResidentAnonBytes();

}  // namespace brickrt
