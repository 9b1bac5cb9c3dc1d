// Keys (cadenza/key.py, cadenza/key_mask.py): the 24 Krumhansl-Kessler
// profiles as key_mask computes them, the estimate from pitch-class counts,
// and which pitch classes each key holds.
#pragma once
#include <cstdint>

namespace cadenza::eng {

constexpr int KEY_COUNT = 24;  // 12 major tonics, then 12 minor (key_mask.KEYS order)

struct KeyId {
  int tonic = 0;
  bool minor = false;
  int index() const { return (minor ? 12 : 0) + tonic; }
};

// The centred, unit-length profile rows, computed as numpy computes them.
const double (&scoring_profiles())[KEY_COUNT][12];

// key_mask.estimate_key_fast: -1 for no notes or flat counts, else the key index.
int estimate_key(const double counts[12]);

// The pitch classes key ``index`` holds, as bits.
uint16_t key_classes(int index);

}  // namespace cadenza::eng
