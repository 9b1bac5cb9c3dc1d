// What Cadenza plays and when, in beats (live/phrase.py): the call as heard,
// the answer's slots, and where each mode puts its next token.
#pragma once
#include <cstdint>
#include <optional>

#include "cadenza/engine.hpp"

namespace cadenza::eng {

struct Slot {
  double beat = 0.0;
  double length = 0.0;   // beats the note sounds (before the gate)
  int velocity = -1;     // -1: follow
  bool start_marker = false;
};

struct CallNote {
  double beat = 0.0;
  int velocity = 0;
  uint64_t open_notes[2] = {0, 0};  // MIDI numbers still held
  std::optional<double> end_beat;

  bool holds(int note) const { return open_notes[note >> 6] & (uint64_t{1} << (note & 63)); }
  void add(int note) { open_notes[note >> 6] |= uint64_t{1} << (note & 63); }
  void discard(int note) { open_notes[note >> 6] &= ~(uint64_t{1} << (note & 63)); }
  bool empty() const { return !open_notes[0] && !open_notes[1]; }
};

struct AnswerShape {
  Rhythm rhythm;
  int answer_bars;
  int max_notes;
  bool follow_velocity;
};

// plan_answer: writes the slots into ``slots`` (capacity MAX_PLAN); returns the count.
int plan_answer(const CallNote* call, int count, double start, double step, const AnswerShape& shape,
                Slot* slots);

struct Phrase {
  double resume_beat = 0.0;
  CallNote call[MAX_CALL + 1];
  int call_count = 0;
  Slot plan[MAX_PLAN];
  int plan_start = 0, plan_count = 0;
  std::optional<double> last_slot_beat;
  std::optional<double> activity_beat;
  std::optional<double> phrase_onset_beat;

  void reset(double resume) {
    resume_beat = resume;
    call_count = 0;
    plan_start = plan_count = 0;
    last_slot_beat.reset();
    activity_beat.reset();
    phrase_onset_beat.reset();
  }
  const Slot& plan_front() const { return plan[plan_start]; }
  void plan_pop() {
    ++plan_start;
    --plan_count;
  }
  std::optional<Slot> next_slot(Mode mode, double step, double pause_beats, bool performer_active,
                                bool keys_down) const;
};

}  // namespace cadenza::eng
