// Musical time (live/clock.py): grid arithmetic, the internal clock and the
// MIDI clock follower.  Times in seconds are passed in; nothing reads a clock.
#pragma once
#include <optional>

#include "tick_tracker.hpp"

namespace cadenza::eng {

constexpr int TICKS_PER_BEAT = 24;
constexpr int TICKS_PER_SPP_UNIT = 6;
constexpr int BEATS_PER_BAR = 4;
constexpr double GRID_EPS = 1e-9;

double step_at_or_after(double beat, double step);
double step_after(double beat, double step);
long long snap(double beats, double step);

class InternalClock {
 public:
  InternalClock(double bpm = 120.0, double start_time = 0.0)
      : bpm_(bpm), anchor_time_(start_time) {}
  double bpm() const { return bpm_; }
  void set_bpm(double bpm, double now);
  void locate(double beat, double now) {
    anchor_beat_ = beat;
    anchor_time_ = now;
  }
  double beat_at(double time) const { return anchor_beat_ + (time - anchor_time_) * bpm_ / 60.0; }
  double time_at(double beat) const { return anchor_time_ + (beat - anchor_beat_) * 60.0 / bpm_; }

 private:
  double bpm_;
  double anchor_time_;
  double anchor_beat_ = 0.0;
};

class MidiClockFollower {
 public:
  MidiClockFollower(double bpm = 120.0, int window = 96);
  double bpm() const { return 60.0 / (tracker_.period * TICKS_PER_BEAT); }
  bool running = false;
  long long position_ticks() const;
  void start();
  void continue_(double now);
  void stop(double now);
  void song_position(int sixteenths);
  // A tick that arrived at ``now``; ``master_time``: its time on the master's
  // own time line (``now`` when the caller has no other).
  void tick(double now, double master_time);
  std::optional<double> beat_at(double time) const;
  std::optional<double> time_at(double beat) const;
  const TickTracker& tracker() const { return tracker_; }

 private:
  void begin();
  TickTracker tracker_;
  long long origin_ = 0;
  long long resume_ = 0;
  double lag_ = 0.0;
};

}  // namespace cadenza::eng
