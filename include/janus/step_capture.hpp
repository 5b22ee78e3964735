// Recording a training step as a CUDA graph and replaying it (what
// `"cuda_graph": true` / `janus train --cuda-graph` turn on; the training
// engine's TrainStep drives it, src/train/train_step.cpp). A device that can
// do this returns one from Device::step_capture(); others return nullptr.
//
// Each step is recorded (begin ... end: the device's work is captured, not
// run; the host code of the step runs as usual, so its own state advances);
// end() then runs the step as one graph launch. Values that change from step
// to step (the uploads the step makes, such as the optimizer's parameter list
// with its learning rates, dropout seeds, Adam's bias corrections, the step
// number) are not baked into the graph: the kernels read them from one device
// block written by a single upload before each launch. When a recording is
// the same work as the graph kept from an earlier step (same operations, same
// per-step value layout) the kept, already instantiated graph is launched;
// otherwise the new recording is instantiated and kept instead. Memory
// allocated while recording comes from a private pool of the device's caching
// allocator, so the addresses a kept graph uses are never given to anything
// else.
#pragma once

#include <cstdint>

namespace janus {

class StepCapture {
 public:
  virtual ~StepCapture() = default;

  // Starts recording the device's work. Throws janus::Error (nothing recorded)
  // if the device cannot start a capture.
  virtual void begin() = 0;
  // Ends the recording and runs the step: one upload of its per-step values,
  // one graph launch. Returns true when the graph kept from an earlier step was
  // replayed, false when this recording was instantiated (the first time, or
  // after the step's work changed). Throws janus::Error naming the CUDA error
  // when the capture failed (an operation a capture forbids); then nothing of
  // the step has run.
  virtual bool end() = 0;
  // Abandons a recording after an exception (nothing of it runs). Never throws.
  virtual void abort() noexcept = 0;
  // Drops the kept graph and gives its memory pool back to the allocator.
  virtual void reset() = 0;
  // Graphs instantiated and launched so far (for logs and tests).
  virtual int64_t instantiations() const = 0;
  virtual int64_t launches() const = 0;
};

}  // namespace janus
