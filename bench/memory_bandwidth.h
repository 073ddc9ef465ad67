// Measures sustained memory read bandwidth (the decode roofline's denominator) by streaming a
// buffer much larger than the caches with the given pool.
#pragma once

#include "core/thread_pool.h"

namespace brickrt::bench {

// GB/s (1e9 bytes per second), best of `repeats` passes over a `bytes`-sized, pre-faulted buffer.
double MeasureReadBandwidth(ThreadPool* pool, size_t bytes = size_t{1} << 30, int repeats = 5);

}  // namespace brickrt::bench
