// CRC-32C (Castagnoli, iSCSI / RFC 3720): the fast integrity check of registry payloads on every load.
// Not a content address (SHA-256 is): it catches damaged bytes, not deliberate tampering.
#pragma once

#include <cstddef>
#include <cstdint>

namespace brickrt {

// Extends crc (the value returned for the bytes before, 0 for none) over data[0..n): chunked calls
// give the one-shot value, so Crc32c(Crc32c(0, a, n), b, m) == CRC of a then b.
// Crc32c(0, "123456789", 9) == 0xE3069283.
uint32_t Crc32c(uint32_t crc, const void* data, size_t n);

// Whether Crc32c uses the SSE4.2 crc32 instruction (chosen at run time); the portable table code is
// used otherwise. Both give the same values.
bool Crc32cAccelerated();
// Tests only: force the portable implementation (true) or restore the run-time choice (false), so
// both paths are checked on machines that have the instruction. Not thread-safe against hashing.
void Crc32cForcePortableForTesting(bool force);

}  // namespace brickrt
