// Where Cadenza's notes sound (live/register.py): one octave shift per phrase,
// kept on the piano.
#pragma once
#include "performer.hpp"
#include "tokens.hpp"

namespace cadenza::eng {

constexpr int PIANO_LOW = 21, PIANO_HIGH = 108;
constexpr int REGISTER_RECENT = 16;
constexpr int REPLACE_BEYOND = 9;
constexpr int WATCH_FROM = 3;

void into_piano(int* notes, int count);
int octave_shift(double centre, double target);

class Register {
 public:
  void new_phrase() {
    pitches_.clear();
    has_shift_ = false;
    shift_ = 0;
  }
  // The MIDI notes that sound ``token`` near ``target``; returns their count.
  int place(const TokenInfo& token, int target, bool follow, int* notes);

 private:
  IntRing<REGISTER_RECENT> pitches_;
  bool has_shift_ = false;
  int shift_ = 0;
};

}  // namespace cadenza::eng
