#include "clock.hpp"

#include <cmath>

namespace cadenza::eng {

double step_at_or_after(double beat, double step) { return std::ceil(beat / step - GRID_EPS) * step; }

double step_after(double beat, double step) { return (std::floor(beat / step + GRID_EPS) + 1.0) * step; }

long long snap(double beats, double step) {
  return static_cast<long long>(std::floor(beats / step + 0.5 + GRID_EPS));
}

void InternalClock::set_bpm(double bpm, double now) {
  anchor_beat_ = beat_at(now);
  anchor_time_ = now;
  bpm_ = bpm;
}

MidiClockFollower::MidiClockFollower(double bpm, int window)
    : tracker_(60.0 / (bpm * TICKS_PER_BEAT), window) {}

long long MidiClockFollower::position_ticks() const {
  if (!running) return resume_;
  return origin_ + tracker_.count + 1;
}

void MidiClockFollower::start() {
  origin_ = 0;
  resume_ = 0;
  begin();
}

void MidiClockFollower::continue_(double now) {
  if (running) stop(now);
  origin_ = resume_;
  begin();
}

void MidiClockFollower::begin() {
  running = true;
  tracker_.reset();
}

void MidiClockFollower::stop(double) {
  const long long position = position_ticks();
  // Python's % on a negative position is a floor modulo
  long long rem = position % TICKS_PER_SPP_UNIT;
  if (rem < 0) rem += TICKS_PER_SPP_UNIT;
  resume_ = position - rem;
  running = false;
  tracker_.reset();
}

void MidiClockFollower::song_position(int sixteenths) {
  if (!running) resume_ = static_cast<long long>(sixteenths) * TICKS_PER_SPP_UNIT;
}

void MidiClockFollower::tick(double now, double master_time) {
  lag_ = now - master_time;
  tracker_.observe(master_time);
}

std::optional<double> MidiClockFollower::beat_at(double time) const {
  if (!running || !tracker_.locked()) return std::nullopt;
  return (static_cast<double>(origin_) + tracker_.tick_at(time - lag_)) / TICKS_PER_BEAT;
}

std::optional<double> MidiClockFollower::time_at(double beat) const {
  if (!running || !tracker_.locked()) return std::nullopt;
  const double tick = beat * TICKS_PER_BEAT - static_cast<double>(origin_);
  if (tick > static_cast<double>(tracker_.count + TICKS_PER_BEAT)) return std::nullopt;
  return tracker_.time_of(tick) + lag_;
}

}  // namespace cadenza::eng
