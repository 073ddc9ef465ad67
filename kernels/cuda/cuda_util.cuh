// Internal to kernels/cuda/*.cu: CUDA error → Status, the opaque stream cast, block reductions.
// Never included by host-compiler code.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <string>

#include "core/dtype.h"
#include "core/status.h"
#include "kernels/cuda/memory.h"

namespace brickrt::cuda::detail {

inline cudaStream_t AsStream(CudaStream s) { return static_cast<cudaStream_t>(s); }

inline Status CheckCuda(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return Status::Ok();
  const StatusCode code = (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver) ? StatusCode::kUnavailable
                                                                                       : StatusCode::kInternal;
  return Status(code, std::string("CUDA ") + what + ": " + cudaGetErrorString(e));
}

// After a <<<...>>> launch: reports bad launch configurations (not faults inside the kernel, which
// surface at the next synchronization).
inline Status LaunchStatus(const char* kernel) { return CheckCuda(cudaGetLastError(), kernel); }

// Element i of a weight array in storage dtype `dt`, widened to F32 (exact, like ConvertToF32).
__device__ inline float LoadWidened(const void* p, DType dt, int64_t i) {
  if (dt == DType::kBF16) return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
  if (dt == DType::kF16) return __half2float(static_cast<const __half*>(p)[i]);
  return static_cast<const float*>(p)[i];
}

inline unsigned Blocks(int64_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

__device__ inline float WarpSum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the block; every thread gets the result. `scratch`: shared float[32]. REQUIRES: blockDim.x
// a multiple of 32, every thread of the block calls it.
__device__ inline float BlockSum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = WarpSum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : 0.0f;
  return WarpSum(v);
}

}  // namespace brickrt::cuda::detail
