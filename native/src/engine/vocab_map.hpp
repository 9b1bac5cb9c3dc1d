// Out-of-vocabulary input: the nearest token the model knows (live/vocab_map.py).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tokens.hpp"

namespace cadenza::eng {

constexpr int PITCH_SETS = 1 << 12;

class VocabMap {
 public:
  // Throws std::invalid_argument naming the token when one is not of the scheme.
  explicit VocabMap(const std::vector<std::string>& vocabulary);

  int size() const { return static_cast<int>(info_.size()); }
  const TokenInfo& info(int index) const { return info_[static_cast<size_t>(index)]; }

  // The index for notes struck together: ``notes`` is a 128-bit set of MIDI numbers.
  int index_of_notes(const uint64_t notes[2]) const;

 private:
  int nearest_note(int midi) const;
  int nearest_chord(uint16_t played) const;  // -1: none close enough

  std::vector<TokenInfo> info_;
  int note_exact_[128];       // index of the default spelling's token (last, as a dict)
  int note_first_[128];       // first note token sounding this MIDI number
  std::vector<int> note_midis_;  // sorted MIDI numbers with a note token
  std::vector<int> chord_exact_;  // pitch set -> index of its normal-order token
  std::vector<int> chord_first_;  // pitch set -> first chord token with that set
  std::vector<int> chords_;       // chord token indices, vocabulary order
};

}  // namespace cadenza::eng
