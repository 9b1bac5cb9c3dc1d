#include "vocab_map.hpp"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <unordered_map>

namespace cadenza::eng {

namespace {
int popcount(unsigned v) { return __builtin_popcount(v); }
}

VocabMap::VocabMap(const std::vector<std::string>& vocabulary)
    : chord_exact_(PITCH_SETS, -1), chord_first_(PITCH_SETS, -1) {
  if (vocabulary.empty()) throw std::invalid_argument("empty vocabulary");
  std::unordered_map<std::string, int> index;
  for (size_t i = 0; i < vocabulary.size(); ++i) {
    TokenInfo t;
    std::string why;
    if (!parse_token(vocabulary[i], t, why)) {
      throw std::invalid_argument("vocabulary entry " + std::to_string(i) + ": " + why);
    }
    info_.push_back(t);
    index[vocabulary[i]] = static_cast<int>(i);
  }
  for (int m = 0; m < 128; ++m) {
    note_first_[m] = -1;
    auto it = index.find(midi_to_name(m));
    note_exact_[m] = it == index.end() ? -1 : it->second;
  }
  for (int i = 0; i < size(); ++i) {
    const TokenInfo& t = info_[static_cast<size_t>(i)];
    if (t.chord) {
      chords_.push_back(i);
      if (chord_first_[t.mask] < 0) chord_first_[t.mask] = i;
    } else if (note_first_[t.midi] < 0) {
      note_first_[t.midi] = i;
    }
  }
  for (int m = 0; m < 128; ++m) {
    if (note_first_[m] >= 0) note_midis_.push_back(m);
  }
  for (int mask = 1; mask < PITCH_SETS; ++mask) {
    auto it = index.find(chord_token(static_cast<uint16_t>(mask)));
    if (it != index.end()) chord_exact_[static_cast<size_t>(mask)] = it->second;
  }
}

int VocabMap::index_of_notes(const uint64_t notes[2]) const {
  int count = 0, highest = -1;
  uint16_t played = 0;
  for (int m = 0; m < 128; ++m) {
    if (notes[m >> 6] & (uint64_t{1} << (m & 63))) {
      ++count;
      highest = m;
      played |= static_cast<uint16_t>(1u << (m % 12));
    }
  }
  if (count == 1) {
    const int exact = note_exact_[highest];
    return exact >= 0 ? exact : nearest_note(highest);
  }
  const int exact = chord_exact_[played];
  if (exact >= 0) return exact;
  const int chord = nearest_chord(played);
  return chord >= 0 ? chord : nearest_note(highest);
}

int VocabMap::nearest_note(int midi) const {
  if (note_first_[midi] >= 0) return note_first_[midi];
  if (note_midis_.empty()) {
    int best = -1, best_len = 0;
    for (int i : chords_) {
      const TokenInfo& t = info_[static_cast<size_t>(i)];
      if (!(t.mask & (1u << (midi % 12)))) continue;
      const int len = popcount(t.mask);
      if (best < 0 || len < best_len) {  // (len, i): the first of the shortest
        best = i;
        best_len = len;
      }
    }
    return best >= 0 ? best : 0;
  }
  bool same_class = false;
  for (int m : note_midis_) same_class = same_class || (m % 12 == midi % 12);
  int best = -1;
  for (int m : note_midis_) {
    if (same_class && m % 12 != midi % 12) continue;
    // min by (distance, pitch): ascending order keeps the lower pitch on a tie
    if (best < 0 || std::abs(m - midi) < std::abs(best - midi)) best = m;
  }
  return note_first_[best];
}

int VocabMap::nearest_chord(uint16_t played) const {
  if (chord_first_[played] >= 0) return chord_first_[played];
  bool found = false;
  int best[4] = {0, 0, 0, 0};
  const int n_played = popcount(played);
  for (int i : chords_) {
    const uint16_t pcs = info_[static_cast<size_t>(i)].mask;
    const int common = popcount(played & pcs);
    if (common < 2 || 2 * common < n_played) continue;
    const int score[4] = {popcount(played ^ pcs), -common, popcount(pcs), i};
    if (!found || std::lexicographical_compare(score, score + 4, best, best + 4)) {
      std::copy(score, score + 4, best);
      found = true;
    }
  }
  return found ? best[3] : -1;
}

}  // namespace cadenza::eng
