// Where a master's clock ticks fall (live/tick_tracker.py): a Kalman tracker
// that counts ticks by time.  Fixed storage; times are passed in.
#pragma once
#include <optional>

namespace cadenza::eng {

constexpr int RESEED_RUN = 6;
constexpr int RECENT_CAPACITY = RESEED_RUN + 1;  // the Python deque's maxlen
constexpr int ACQUIRE_TICKS = 8;

class IntervalNoise {
 public:
  void add(double deviation);
  void break_run() { has_last_ = false; }
  double measurement() const;
  double wander() const;

 private:
  bool moments(double& var, double& cov) const;
  double var_ = 0.0, cov_ = 0.0, weight_ = 0.0, cov_weight_ = 0.0;
  double last_ = 0.0;
  bool has_last_ = false;
};

class TickTracker {
 public:
  TickTracker(double period, int window = 96);
  void reset();
  bool locked() const { return count >= 0; }
  double time_of(double tick) const { return phase + (tick - static_cast<double>(count)) * period; }
  double tick_at(double time) const { return static_cast<double>(count) + (time - phase) / period; }
  int observe(double now);

  double period;
  long long count = -1;
  double phase = 0.0;
  long long lost = 0, bunched = 0, clipped = 0, reseeds = 0;

 private:
  struct Point {
    double time;
    long long tick;
  };
  void anchor(double now, long long count);
  int acquire(double now, double raw);
  void fit(const Point* points, int n, bool keep_period);
  void update(double now, long long steps, double raw);
  void follow_bias(double error, double s);
  void remember(double now, double raw);
  void maybe_reseed();
  void recent_push(Point p);
  Point recent_at(int i) const { return recent_[(recent_start_ + i) % RECENT_CAPACITY]; }

  double floor_phase_, floor_period_;
  double p_period_;
  IntervalNoise noise_;
  bool clean_ = false;
  double wander_scale_ = 1.0;
  double bias_ = 0.0;
  int lean_ = 0;
  double p_[3] = {0, 0, 0};
  std::optional<double> last_arrival_;
  int acquired_ = 0;
  Point recent_[RECENT_CAPACITY];
  int recent_start_ = 0, recent_count_ = 0;
};

}  // namespace cadenza::eng
