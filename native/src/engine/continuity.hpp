// The soft penalty on leaps beyond a fifth from the answer's previous note
// (live/engine/context.py's Continuity): after the key's weights, every note
// token more than LEAP_SEMITONES from it is multiplied by 1 - strength, then
// the distribution is renormalised (unchanged when that leaves nothing).
#pragma once
#include <vector>

#include "vocab_map.hpp"

namespace cadenza::eng {

constexpr int LEAP_SEMITONES = 7;  // a step wider than a fifth is a leap

class Continuity {
 public:
  explicit Continuity(const VocabMap& vocab);
  double strength = 0.0;

  // The performer played (or the window was reset): the next answer note starts free.
  void heard() { previous_ = -1; }
  // Cadenza's token (or one primed without a reset): a note becomes the previous note.
  void chose(int index) {
    const int pitch = pitches_[static_cast<size_t>(index)];
    if (pitch >= 0) previous_ = pitch;
  }
  // ``probs`` with leaps held back; returns ``probs`` itself or an internal buffer.
  const double* apply(const double* probs);

 private:
  int vocab_size_;
  std::vector<int> pitches_;  // a note token's MIDI number, -1 for a chord
  std::vector<double> weights_, weighted_;
  int previous_ = -1;
  int weights_for_ = -1;  // the (previous, strength) the weights were made for
  double weights_strength_ = -1.0;
};

}  // namespace cadenza::eng
