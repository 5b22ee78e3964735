// Learning-rate schedules as functions of the optimisation step (0-based).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "janus/json.hpp"

namespace janus {

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  virtual double lr(int64_t step) const = 0;
  // The config make_scheduler() rebuilds this schedule from (see below).
  virtual Json config() const = 0;
};

// {"type": "constant", "lr": 0.01}
// {"type": "exponential", "lr": 0.01, "decay": 0.95, "stage_length": 100, "staircase": false}
//     lr * decay^(step / stage_length)  (floor of the exponent when staircase)
// {"type": "step", "lr": 0.1, "gamma": 0.1, "step_size": 1000}  lr * gamma^floor(step / step_size)
// {"type": "cosine", "lr": 0.1, "total_steps": N, "warmup_steps": W, "min_lr": 0}
//     linear warm-up from 0 to lr over W steps, then half-cosine down to min_lr at N
// {"type": "onecycle", "lr": 0.1, "total_steps": N, "pct_start": 0.3, "div_factor": 25, "final_div_factor": 1e4}
//     Smith's one-cycle: cosine from lr/div up to lr, then down to lr/(div*final_div)
// total_steps may be omitted in configs; the trainer fills it in.
// Domains (checked by make_scheduler; a value outside throws janus::Error
// naming the field, the value and the domain): lr (0, inf); decay and gamma
// (0, 1]; stage_length (0, inf); step_size, total_steps: integers >= 1;
// warmup_steps: integers in [0, total_steps]; min_lr [0, lr]; pct_start
// [0, 1]; div_factor, final_div_factor (0, inf).
std::unique_ptr<Scheduler> make_scheduler(const Json& config);

// The same schedules built in C++, with the same meaning, defaults and
// domain checks as the configs above (each is make_scheduler of its config,
// so scheduler->config() is that config).
std::unique_ptr<Scheduler> constant_schedule(double lr);
std::unique_ptr<Scheduler> exponential_schedule(double lr, double decay, double stage_length, bool staircase = false);
std::unique_ptr<Scheduler> step_schedule(double lr, double gamma, int64_t step_size);
std::unique_ptr<Scheduler> cosine_schedule(double lr, int64_t total_steps, int64_t warmup_steps = 0,
                                           double min_lr = 0.0);
std::unique_ptr<Scheduler> onecycle_schedule(double lr, int64_t total_steps, double pct_start = 0.3,
                                             double div_factor = 25.0, double final_div_factor = 1e4);

}  // namespace janus
