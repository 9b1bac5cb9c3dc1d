// The performer as the engine knows them (live/performer.py): keys held,
// the recent register and dynamics.
#pragma once
#include <cmath>

namespace cadenza::eng {

constexpr int RECENT_NOTES = 16;
constexpr int RECENT_VELOCITIES = 8;
constexpr int DEFAULT_VELOCITY = 80;
constexpr int DEFAULT_CENTRE = 60;

// A bounded FIFO of ints (a deque with maxlen).
template <int N>
struct IntRing {
  int items[N] = {0};
  int start = 0, count = 0;
  void clear() { start = count = 0; }
  void push(int v) {
    if (count == N) {
      start = (start + 1) % N;
      --count;
    }
    items[(start + count) % N] = v;
    ++count;
  }
  int at(int i) const { return items[(start + i) % N]; }
};

// statistics.median of ints: the middle one, or the mean of the two middle ones.
template <int N>
double median_of(const IntRing<N>& ring) {
  int sorted[N];
  for (int i = 0; i < ring.count; ++i) {
    int v = ring.at(i), j = i;
    for (; j > 0 && sorted[j - 1] > v; --j) sorted[j] = sorted[j - 1];
    sorted[j] = v;
  }
  const int n = ring.count;
  if (n % 2 == 1) return sorted[n / 2];
  return static_cast<double>(sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

class Performer {
 public:
  bool held[16][128] = {};
  int held_count = 0;

  void new_phrase() { recent_notes_.clear(); }
  void press(int channel, int note) {
    if (!held[channel][note]) ++held_count;
    held[channel][note] = true;
    recent_notes_.push(note);
  }
  bool release(int channel, int note) {
    if (!held[channel][note]) return false;
    held[channel][note] = false;
    --held_count;
    return true;
  }
  void onset(int velocity) { recent_velocities_.push(velocity); }
  int centre(int octave) const {
    if (octave >= 0) return (octave + 1) * 12 + 6;
    if (recent_notes_.count) return static_cast<int>(median_of(recent_notes_));
    return DEFAULT_CENTRE;
  }
  int velocity() const {
    if (!recent_velocities_.count) return DEFAULT_VELOCITY;
    double sum = 0.0;  // fsum of ints: exact
    for (int i = 0; i < recent_velocities_.count; ++i) sum += recent_velocities_.at(i);
    const double mean = sum / recent_velocities_.count;
    const long v = static_cast<long>(std::nearbyint(mean));  // round(): halves to even
    return static_cast<int>(v < 1 ? 1 : (v > 127 ? 127 : v));
  }

 private:
  IntRing<RECENT_NOTES> recent_notes_;
  IntRing<RECENT_VELOCITIES> recent_velocities_;
};

}  // namespace cadenza::eng
