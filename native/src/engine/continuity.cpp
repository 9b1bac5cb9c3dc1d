#include "continuity.hpp"

#include <cstdlib>

#include "numeric.hpp"

namespace cadenza::eng {

Continuity::Continuity(const VocabMap& vocab)
    : vocab_size_(vocab.size()),
      pitches_(static_cast<size_t>(vocab.size())),
      weights_(static_cast<size_t>(vocab.size())),
      weighted_(static_cast<size_t>(vocab.size())) {
  for (int i = 0; i < vocab_size_; ++i) {
    const TokenInfo& info = vocab.info(i);
    pitches_[static_cast<size_t>(i)] = info.chord ? -1 : info.midi;
  }
}

const double* Continuity::apply(const double* probs) {
  if (strength <= 0.0 || previous_ < 0) return probs;
  if (weights_for_ != previous_ || weights_strength_ != strength) {
    const double leap = 1.0 - strength;
    for (int i = 0; i < vocab_size_; ++i) {
      const int pitch = pitches_[static_cast<size_t>(i)];
      const bool far = pitch >= 0 && std::abs(pitch - previous_) > LEAP_SEMITONES;
      weights_[static_cast<size_t>(i)] = far ? leap : 1.0;
    }
    weights_for_ = previous_;
    weights_strength_ = strength;
  }
  return weigh(probs, weights_.data(), weighted_.data(), vocab_size_);  // key_mask.weigh
}

}  // namespace cadenza::eng
