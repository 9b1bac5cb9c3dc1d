#include "register.hpp"

#include <cmath>

namespace cadenza::eng {

void into_piano(int* notes, int count) {
  while (notes[0] < PIANO_LOW && notes[count - 1] + 12 <= PIANO_HIGH) {
    for (int i = 0; i < count; ++i) notes[i] += 12;
  }
  while (notes[count - 1] > PIANO_HIGH && notes[0] - 12 >= PIANO_LOW) {
    for (int i = 0; i < count; ++i) notes[i] -= 12;
  }
}

int octave_shift(double centre, double target) {
  return 12 * static_cast<int>(std::floor((target - centre) / 12 + 0.5));
}

int Register::place(const TokenInfo& token, int target, bool follow, int* notes) {
  if (token.chord) {
    const int count = voice_chord(token.pcs, token.classes, target, notes);
    into_piano(notes, count);
    return count;
  }
  if (!follow) {
    notes[0] = token.midi;
    return 1;
  }
  pitches_.push(token.midi);
  const double centre = median_of(pitches_);
  const bool wandered = pitches_.count >= WATCH_FROM &&
                        std::fabs(centre + (has_shift_ ? shift_ : 0) - target) > REPLACE_BEYOND;
  if (!has_shift_ || wandered) {
    shift_ = octave_shift(centre, target);
    has_shift_ = true;
  }
  notes[0] = token.midi + shift_;
  into_piano(notes, 1);
  return 1;
}

}  // namespace cadenza::eng
