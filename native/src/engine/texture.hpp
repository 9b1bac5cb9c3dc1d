// Texture (live/engine/texture.py): after the key's weights and continuity,
// the chord tokens' share of the distribution is moved ``strength`` of the
// way back to the model's own, so steering picks pitches without thinning
// the answer into single notes.
#pragma once
#include <vector>

#include "vocab_map.hpp"

namespace cadenza::eng {

class Texture {
 public:
  explicit Texture(const VocabMap& vocab);
  double strength = 0.0;

  // ``steered`` (``model`` after the key and continuity) with its chord share
  // put back; returns ``steered`` itself or an internal buffer.
  const double* apply(const double* model, const double* steered);

 private:
  int vocab_size_;
  std::vector<double> chords_;  // 1 for a chord token, 0 otherwise
  std::vector<double> products_, weights_, weighted_;
};

}  // namespace cadenza::eng
