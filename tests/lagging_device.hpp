// The simulator's lagging device model in a test (janus::sim::set_device_lag).
//
// On the simulator all work is done as soon as it is queued, so every event
// is complete when recorded and a host wait for it is free. With the lag on,
// work completes only when the host waits for it (a counted
// sim::host_waits()) or when the test says the device got there, as on a GPU
// still busy with the previous step; the simulator then also sees a pinned
// buffer written again before its copy finished (sim::pinned_overwrites()).
#pragma once

#include "cuda/cuda_compat.hpp"

#include <cstdint>

namespace janus::test {

// The lagging device for a scope; everything queued completes at its end.
struct LaggingDevice {
  LaggingDevice() { sim::set_device_lag(true); }
  ~LaggingDevice() { sim::set_device_lag(false); }
  LaggingDevice(const LaggingDevice&) = delete;
  LaggingDevice& operator=(const LaggingDevice&) = delete;
};

// A device one step behind the host (a GPU-bound run): when step i begins,
// the device has finished what was queued before step i - 1 began, and works
// on step i - 1. Call begin_step() as each step begins.
class OneStepBehind {
 public:
  void begin_step() {
    const std::uint64_t now = sim::queued_work();
    if (started_) sim::finish_work(previous_);
    previous_ = now;
    started_ = true;
  }

 private:
  std::uint64_t previous_ = 0;
  bool started_ = false;
};

}  // namespace janus::test
