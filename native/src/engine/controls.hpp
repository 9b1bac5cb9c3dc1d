// What a MIDI CC value means (live/controls.py).
#pragma once
#include "cadenza/engine.hpp"

namespace cadenza::eng {

constexpr double TEMPERATURE_CC_MAX = 2.0;
constexpr double TEMPO_CC_LOW = 40.0, TEMPO_CC_HIGH = 240.0;
constexpr int SWITCH_ON = 64;
constexpr int MODE_COUNT = 3;

inline double temperature_from(int value) { return TEMPERATURE_CC_MAX * value / 127.0; }
inline Mode mode_from(int value) {
  const int band = value * MODE_COUNT / 128;
  return static_cast<Mode>(band < MODE_COUNT - 1 ? band : MODE_COUNT - 1);
}
inline double tempo_from(int value) { return TEMPO_CC_LOW + (TEMPO_CC_HIGH - TEMPO_CC_LOW) * value / 127.0; }
inline double strength_from(int value) { return value / 127.0; }
inline bool switch_from(int value) { return value >= SWITCH_ON; }

}  // namespace cadenza::eng
