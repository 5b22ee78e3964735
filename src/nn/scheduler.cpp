// Learning-rate schedules: pure functions of the step, so resuming a run at
// step k gives exactly the rate an uninterrupted run had.
#include "janus/scheduler.hpp"

#include <algorithm>
#include <cmath>

#include "janus/error.hpp"
#include "janus/nlohmann_json.hpp"
#include "nn/config_domain.hpp"

namespace janus {

namespace {

using nlohmann::json;

// A number of the schedule `cfg` in its domain (config_domain.hpp);
// `required`: no fallback, the key must be present.
double num(const json& cfg, const char* key, double fallback, const config_detail::Domain& domain,
           bool required = false) {
  const std::string where = "schedule '" + cfg.value("type", std::string("constant")) + "'";
  JANUS_CHECK(!required || cfg.contains(key), where, ": missing required option '", key, "'");
  return config_detail::config_number(cfg, key, fallback, domain, where);
}

class Constant : public Scheduler {
 public:
  explicit Constant(double lr) : lr_(lr) {}
  double lr(int64_t) const override { return lr_; }
  Json config() const override { return {{"type", "constant"}, {"lr", lr_}}; }

 private:
  double lr_;
};

class Exponential : public Scheduler {
 public:
  Exponential(double lr, double decay, double stage, bool staircase)
      : lr_(lr), decay_(decay), stage_(stage), staircase_(staircase) {}
  double lr(int64_t step) const override {
    double e = static_cast<double>(step) / stage_;
    if (staircase_) e = std::floor(e);
    return lr_ * std::pow(decay_, e);
  }
  Json config() const override {
    return {{"type", "exponential"}, {"lr", lr_}, {"decay", decay_}, {"stage_length", stage_}, {"staircase", staircase_}};
  }

 private:
  double lr_, decay_, stage_;
  bool staircase_;
};

class StepDecay : public Scheduler {
 public:
  StepDecay(double lr, double gamma, int64_t step_size) : lr_(lr), gamma_(gamma), size_(step_size) {}
  double lr(int64_t step) const override { return lr_ * std::pow(gamma_, static_cast<double>(step / size_)); }
  Json config() const override { return {{"type", "step"}, {"lr", lr_}, {"gamma", gamma_}, {"step_size", size_}}; }

 private:
  double lr_, gamma_;
  int64_t size_;
};

class Cosine : public Scheduler {
 public:
  Cosine(double lr, int64_t total, int64_t warmup, double min_lr) : lr_(lr), total_(total), warmup_(warmup), min_(min_lr) {}
  double lr(int64_t step) const override {
    if (step < warmup_) return lr_ * static_cast<double>(step + 1) / static_cast<double>(warmup_);
    const double t = std::min(1.0, static_cast<double>(step - warmup_) / std::max<int64_t>(1, total_ - warmup_));
    return min_ + 0.5 * (lr_ - min_) * (1.0 + std::cos(M_PI * t));
  }
  Json config() const override {
    return {{"type", "cosine"}, {"lr", lr_}, {"total_steps", total_}, {"warmup_steps", warmup_}, {"min_lr", min_}};
  }

 private:
  double lr_;
  int64_t total_, warmup_;
  double min_;
};

class OneCycle : public Scheduler {
 public:
  OneCycle(double lr, int64_t total, double pct, double div, double final_div)
      : lr_(lr), total_(total), pct_(pct), div_(div), final_div_(final_div) {}
  double lr(int64_t step) const override {
    const double up = std::max(1.0, pct_ * static_cast<double>(total_));
    const double s = static_cast<double>(step);
    const double start = lr_ / div_, end = start / final_div_;
    auto cos_interp = [](double a, double b, double t) { return b + 0.5 * (a - b) * (1.0 + std::cos(M_PI * t)); };
    if (s <= up) return cos_interp(start, lr_, s / up);
    const double t = std::min(1.0, (s - up) / std::max(1.0, static_cast<double>(total_) - up));
    return cos_interp(lr_, end, t);
  }
  Json config() const override {
    return {{"type", "onecycle"}, {"lr", lr_}, {"total_steps", total_}, {"pct_start", pct_},
            {"div_factor", div_}, {"final_div_factor", final_div_}};
  }

 private:
  double lr_;
  int64_t total_;
  double pct_, div_, final_div_;
};

}  // namespace

std::unique_ptr<Scheduler> make_scheduler(const Json& config) {
  const json& cfg = nlohmann_json(config);
  JANUS_CHECK(cfg.is_object(), "schedule: expected a JSON object, got ", cfg.dump());
  JANUS_CHECK(!cfg.contains("type") || cfg.at("type").is_string(), "schedule: 'type' must be a string, got ",
              cfg.at("type").dump());
  const std::string type = cfg.value("type", std::string("constant"));
  auto allow = [&](std::initializer_list<const char*> keys) {
    for (auto it = cfg.begin(); it != cfg.end(); ++it) {
      bool ok = it.key() == "type" || it.key() == "lr";
      for (const char* k : keys) ok = ok || it.key() == k;
      JANUS_CHECK(ok, "schedule '", type, "': unknown option '", it.key(), "'");
    }
  };
  using namespace config_detail;
  const double lr = num(cfg, "lr", 0.01, positive());
  if (type == "constant") {
    allow({});
    return std::make_unique<Constant>(lr);
  }
  if (type == "exponential") {
    allow({"decay", "stage_length", "staircase"});
    const double stage = num(cfg, "stage_length", 1.0, positive());
    JANUS_CHECK(!cfg.contains("staircase") || cfg.at("staircase").is_boolean(),
                "schedule 'exponential': 'staircase' must be true or false, got ",
                cfg.contains("staircase") ? cfg.at("staircase").dump() : "");
    return std::make_unique<Exponential>(lr, num(cfg, "decay", 0.95, decay_factor()), stage,
                                         cfg.value("staircase", false));
  }
  if (type == "step") {
    allow({"gamma", "step_size"});
    const auto size = static_cast<int64_t>(num(cfg, "step_size", 0, count_from(1), true));
    return std::make_unique<StepDecay>(lr, num(cfg, "gamma", 0.1, decay_factor()), size);
  }
  if (type == "cosine") {
    allow({"total_steps", "warmup_steps", "min_lr"});
    const auto total = static_cast<int64_t>(num(cfg, "total_steps", 0, count_from(1), true));
    const auto warmup = static_cast<int64_t>(num(cfg, "warmup_steps", 0, count_from(0)));
    JANUS_CHECK(warmup <= total, "schedule 'cosine': 'warmup_steps' is ", warmup, ", more than 'total_steps' ", total);
    // min_lr above lr would turn the decay into a rise; below 0, into gradient ascent.
    const double min_lr = num(cfg, "min_lr", 0.0, Domain{0.0, lr, true, true});
    return std::make_unique<Cosine>(lr, total, warmup, min_lr);
  }
  if (type == "onecycle") {
    allow({"total_steps", "pct_start", "div_factor", "final_div_factor"});
    const auto total = static_cast<int64_t>(num(cfg, "total_steps", 0, count_from(1), true));
    return std::make_unique<OneCycle>(lr, total, num(cfg, "pct_start", 0.3, unit_closed()),
                                      num(cfg, "div_factor", 25.0, positive()),
                                      num(cfg, "final_div_factor", 1e4, positive()));
  }
  throw Error("unknown schedule '" + type + "' (expected constant, exponential, step, cosine or onecycle)");
}

// The C++ forms go through make_scheduler: one home for the domain checks.
std::unique_ptr<Scheduler> constant_schedule(double lr) { return make_scheduler({{"type", "constant"}, {"lr", lr}}); }

std::unique_ptr<Scheduler> exponential_schedule(double lr, double decay, double stage_length, bool staircase) {
  return make_scheduler(
      {{"type", "exponential"}, {"lr", lr}, {"decay", decay}, {"stage_length", stage_length}, {"staircase", staircase}});
}

std::unique_ptr<Scheduler> step_schedule(double lr, double gamma, int64_t step_size) {
  return make_scheduler({{"type", "step"}, {"lr", lr}, {"gamma", gamma}, {"step_size", step_size}});
}

std::unique_ptr<Scheduler> cosine_schedule(double lr, int64_t total_steps, int64_t warmup_steps, double min_lr) {
  return make_scheduler({{"type", "cosine"},
                         {"lr", lr},
                         {"total_steps", total_steps},
                         {"warmup_steps", warmup_steps},
                         {"min_lr", min_lr}});
}

std::unique_ptr<Scheduler> onecycle_schedule(double lr, int64_t total_steps, double pct_start, double div_factor,
                                             double final_div_factor) {
  return make_scheduler({{"type", "onecycle"},
                         {"lr", lr},
                         {"total_steps", total_steps},
                         {"pct_start", pct_start},
                         {"div_factor", div_factor},
                         {"final_div_factor", final_div_factor}});
}

}  // namespace janus
