#include "tick_tracker.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "numeric.hpp"

namespace cadenza::eng {

namespace {
constexpr double BUNCH_FRACTION = 0.25;
constexpr double BUNCH_SECONDS = 0.003;
constexpr int MAX_LOST = 8;
constexpr double STOPPED_SECONDS = 0.25;
constexpr double TEMPO_WANDER = 2e-3;
constexpr double BIAS_MEMORY = 16;
constexpr double BIAS_SIGMAS = 2.0;
constexpr double WANDER_RISE = 2.0, WANDER_FALL = 0.98, WANDER_FLOOR = 0.05;
constexpr double FIRST_NOISE = 5e-4;
constexpr double MIN_NOISE = 1e-4;
constexpr double NOISE_MEMORY = 128;
constexpr double WANDER_DOUBT = 0.25;
constexpr double OUTLIER_SIGMAS = 3.0;
constexpr double OUTLIER_FRACTION = 0.05;
constexpr double GAP_DOUBT = 0.25;
constexpr double RESEED_SPREAD = 0.25;
constexpr double RESEED_DISAGREE = 0.08;
constexpr int RESEED_FIT = 4;
constexpr double RESEED_OBVIOUS = 0.3;
constexpr int MAX_POINTS = ACQUIRE_TICKS + 1;
}  // namespace

void IntervalNoise::add(double deviation) {
  const double a = 1.0 / NOISE_MEMORY;
  var_ += a * (deviation * deviation - var_);
  weight_ += a * (1.0 - weight_);
  if (has_last_) {
    cov_ += a * (deviation * last_ - cov_);
    cov_weight_ += a * (1.0 - cov_weight_);
  }
  last_ = deviation;
  has_last_ = true;
}

bool IntervalNoise::moments(double& var, double& cov) const {
  if (weight_ < 0.05 || cov_weight_ < 0.05) return false;
  var = var_ / weight_;
  cov = cov_ / cov_weight_;
  return true;
}

double IntervalNoise::measurement() const {
  double var, cov;
  const double r = moments(var, cov) ? -cov : FIRST_NOISE * FIRST_NOISE;
  return std::max(r, MIN_NOISE * MIN_NOISE);
}

double IntervalNoise::wander() const {
  double var, cov;
  if (!moments(var, cov)) return 0.0;
  return std::max(var + 2.0 * std::min(cov, 0.0) - WANDER_DOUBT * var, 0.0);
}

TickTracker::TickTracker(double p, int window) : period(p) {
  const long long n = std::max(2, window);
  floor_phase_ = 2.0 * static_cast<double>(2 * n - 1) / static_cast<double>(n * (n + 1));
  floor_period_ = 6.0 / static_cast<double>(n * (n + 1));
  p_period_ = py_pow(0.1 * period, 2.0);
  reset();
}

void TickTracker::reset() {
  count = -1;
  phase = 0.0;
  p_[0] = p_[1] = p_[2] = 0.0;
  last_arrival_.reset();
  acquired_ = 0;
  recent_start_ = recent_count_ = 0;
  noise_.break_run();
}

void TickTracker::recent_push(Point p) {
  if (recent_count_ == RECENT_CAPACITY) {
    recent_start_ = (recent_start_ + 1) % RECENT_CAPACITY;
    --recent_count_;
  }
  recent_[(recent_start_ + recent_count_) % RECENT_CAPACITY] = p;
  ++recent_count_;
}

int TickTracker::observe(double now) {
  const std::optional<double> previous = last_arrival_;
  last_arrival_ = now;
  if (count < 0) {
    anchor(now, 0);
    return 1;
  }
  const double raw = previous ? now - *previous : std::numeric_limits<double>::infinity();
  if (now - phase > std::max(STOPPED_SECONDS, (MAX_LOST + 1.5) * period)) {
    anchor(now, count + 1);
    noise_.break_run();
    return 1;
  }
  if (acquired_ < ACQUIRE_TICKS) return acquire(now, raw);
  long long steps = py_round((now - phase) / period);
  if (steps > 1 && lean_ > 0) {
    steps = std::max(1LL, std::min(steps, py_round(raw / period)));
  }
  if (steps <= 0) {
    ++bunched;
    clean_ = false;
    noise_.break_run();
    remember(now, raw);
    maybe_reseed();
    return 0;
  }
  lost += steps - 1;
  update(now, steps, raw);
  remember(now, raw);
  maybe_reseed();
  return static_cast<int>(steps);
}

void TickTracker::anchor(double now, long long c) {
  count = c;
  phase = now;
  p_[0] = noise_.measurement();
  p_[1] = 0.0;
  p_[2] = p_period_;
  acquired_ = 1;
  clean_ = false;
  recent_start_ = recent_count_ = 0;
  recent_push({now, c});
}

int TickTracker::acquire(double now, double raw) {
  if (raw < std::min(BUNCH_SECONDS, BUNCH_FRACTION * period)) {
    ++bunched;
    return 0;
  }
  ++acquired_;
  const long long before = count;
  double times[MAX_POINTS];
  int n = 0;
  for (int i = 0; i < recent_count_; ++i) times[n++] = recent_at(i).time;
  times[n++] = now;
  double gaps[MAX_POINTS], sorted_gaps[MAX_POINTS];
  for (int i = 0; i + 1 < n; ++i) gaps[i] = sorted_gaps[i] = times[i + 1] - times[i];
  std::sort(sorted_gaps, sorted_gaps + (n - 1));
  const double unit = sorted_gaps[(n - 2) / 2];  // acquisition_steps: the lower median
  Point points[MAX_POINTS];
  long long number = recent_at(0).tick;
  points[0] = {times[0], number};
  for (int i = 1; i < n; ++i) {
    number += std::max(1LL, py_round(gaps[i - 1] / unit));
    points[i] = {times[i], number};
  }
  recent_start_ = recent_count_ = 0;
  for (int i = 0; i < n; ++i) recent_push(points[i]);
  fit(points, n, n < 3);
  const long long moved = count - before;
  lost += std::max(0LL, moved - 1);
  return static_cast<int>(std::max(moved, 0LL));
}

void TickTracker::fit(const Point* points, int n, bool keep_period) {
  // Python's sum() from 0, left to right
  double sum_t = 0.0;
  long long sum_k = 0;
  for (int i = 0; i < n; ++i) {
    sum_t += points[i].time;
    sum_k += points[i].tick;
  }
  const double mean_t = sum_t / n;
  const double mean_k = static_cast<double>(sum_k) / n;
  double var_k = 0.0;
  for (int i = 0; i < n; ++i) var_k += py_pow(static_cast<double>(points[i].tick) - mean_k, 2.0);
  if (!keep_period && var_k > 0) {
    double cov = 0.0;
    for (int i = 0; i < n; ++i) cov += (static_cast<double>(points[i].tick) - mean_k) * (points[i].time - mean_t);
    const double slope = cov / var_k;
    if (slope > 0) period = slope;
  }
  const long long last = points[n - 1].tick;
  count = last;
  phase = mean_t + (static_cast<double>(last) - mean_k) * period;
  const double r = noise_.measurement();
  p_[0] = r * 4.0 / n;
  p_[1] = 0.0;
  p_[2] = r * 12.0 / std::max(var_k, 1.0) + p_period_ * (n < 3 ? 1.0 : 0.0);
}

void TickTracker::update(double now, long long steps, double raw) {
  const double q_phase = noise_.wander();
  double r = noise_.measurement();
  const double q_period = py_pow(wander_scale_ * TEMPO_WANDER * period, 2.0);
  double pp = p_[0], pc = p_[1], cc = p_[2];
  for (long long i = 0; i < steps; ++i) {
    const double npp = pp + 2 * pc + cc + q_phase;
    const double npc = pc + cc;
    const double ncc = cc + q_period;
    pp = npp;
    pc = npc;
    cc = ncc;
  }
  const double predicted = phase + static_cast<double>(steps) * period;
  double error = now - predicted;
  if (steps > 1) r += py_pow(GAP_DOUBT * period, 2.0);
  const double s = pp + r;
  double gain_phase = pp / s, gain_period = pc / s;
  gain_phase = std::max(gain_phase, floor_phase_);
  gain_period = std::max(gain_period, floor_period_);
  const double limit = std::max(OUTLIER_SIGMAS * std::sqrt(s), OUTLIER_FRACTION * period);
  if (std::fabs(error) > limit) {
    ++clipped;
    error = std::copysign(limit, error);
  }
  follow_bias(error, s);
  if (std::fabs(error) <= std::sqrt(s)) {
    lean_ = 0;
  } else if ((error > 0) == (lean_ > 0) || lean_ == 0) {
    lean_ += error > 0 ? 1 : -1;
  } else {
    lean_ = error > 0 ? 1 : -1;
  }
  phase = predicted + gain_phase * error;
  period = std::max(period + gain_period * error, 1e-4);
  const double a = 1.0 - gain_phase, b = -gain_period;
  const double pp2 = a * a * pp + gain_phase * gain_phase * r;
  const double pc2 = a * (b * pp + pc) + gain_phase * gain_period * r;
  const double cc2 = b * b * pp + 2 * b * pc + cc + gain_period * gain_period * r;
  p_[0] = pp2;
  p_[1] = pc2;
  p_[2] = cc2;
  count += steps;
  if (steps == 1 && clean_) {
    noise_.add(raw - period);
  } else {
    noise_.break_run();
  }
  clean_ = steps == 1;
}

void TickTracker::follow_bias(double error, double s) {
  bias_ += (error / std::sqrt(s) - bias_) / BIAS_MEMORY;
  if (std::fabs(bias_) > BIAS_SIGMAS / std::sqrt(BIAS_MEMORY)) {
    wander_scale_ = std::min(1.0, wander_scale_ * WANDER_RISE);
  } else {
    wander_scale_ = std::max(WANDER_FLOOR, wander_scale_ * WANDER_FALL);
  }
}

void TickTracker::remember(double now, double raw) {
  if (recent_count_ > 0 && raw >= BUNCH_FRACTION * period) recent_push({now, count});
}

void TickTracker::maybe_reseed() {
  if (recent_count_ <= RESEED_RUN) return;
  double times[RECENT_CAPACITY];
  const int n = recent_count_;
  for (int i = 0; i < n; ++i) times[i] = recent_at(i).time;
  double intervals[RECENT_CAPACITY];
  for (int i = 0; i + 1 < n; ++i) intervals[i] = times[i + 1] - times[i];
  const int m = n - 1;
  std::sort(intervals, intervals + m);
  const double median = intervals[m / 2];
  const double disagree = std::fabs(median - period) / period;
  if (disagree <= RESEED_DISAGREE || (disagree <= RESEED_OBVIOUS && std::abs(lean_) < RESEED_RUN)) return;
  if (intervals[0] < (1 - RESEED_SPREAD) * median || intervals[m - 1] > (1 + RESEED_SPREAD) * median) return;
  const long long first = recent_at(0).tick;
  Point points[RECENT_CAPACITY];
  for (int i = 0; i < n; ++i) points[i] = {times[i], first + i};
  ++reseeds;
  const int from = n > RESEED_FIT ? n - RESEED_FIT : 0;
  fit(points + from, n - from, false);
  wander_scale_ = 1.0;
  noise_.break_run();
  recent_start_ = recent_count_ = 0;
  recent_push(points[n - 1]);
}

}  // namespace cadenza::eng
