// ModelSession: what generation, serving and the CLI need of a session, whichever device runs it —
// Session (bricks/session.h) on the CPU, with MLP experts on executors, or CudaSession
// (bricks/cuda/cuda_session.h) with the whole model on one GPU. One virtual call per step.
#pragma once

#include <cstdint>
#include <span>

#include "bricks/model.h"
#include "core/status.h"

namespace brickrt {

struct SessionOptions;
struct SequenceChunk;

class ModelSession {
 public:
  virtual ~ModelSession() = default;

  virtual const Model& model() const = 0;
  virtual const SessionOptions& options() const = 0;

  // A new empty sequence (its cache slot reused when one is free); OutOfRange at max_sequences.
  virtual Result<int> AddSequence() = 0;
  virtual void RemoveSequence(int seq) = 0;
  // Tokens in the sequence's cache; -1 if seq is not alive.
  virtual int64_t Length(int seq) const = 0;
  virtual int LiveSequences() const = 0;

  // Appends each chunk's tokens to its sequence and runs the model on all of them together; host
  // logits F32 [Σ chunk lengths, V] with all_positions, else [chunks, V]. On error nothing advances.
  virtual Status Forward(std::span<const SequenceChunk> chunks, bool all_positions, float* logits) = 0;
};

}  // namespace brickrt
