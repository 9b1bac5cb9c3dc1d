#include "phrase.hpp"

#include <algorithm>

#include "clock.hpp"

namespace cadenza::eng {

namespace {

struct PatternEntry {
  long long offset, length;
  int velocity;
};

// mirror_pattern: the call's onsets and lengths in grid steps from its first onset.
int mirror_pattern(const CallNote* call, int count, double step, bool follow_velocity,
                   PatternEntry* pattern) {
  const double first = call[0].beat;
  for (int i = 0; i < count; ++i) {
    long long offset = snap(call[i].beat - first, step);
    if (i > 0 && offset <= pattern[i - 1].offset) offset = pattern[i - 1].offset + 1;
    pattern[i].offset = offset;
  }
  for (int i = 0; i < count; ++i) {
    long long length = 1;
    if (call[i].end_beat) length = std::max(1LL, snap(*call[i].end_beat - call[i].beat, step));
    if (i + 1 < count) length = std::min(length, pattern[i + 1].offset - pattern[i].offset);
    pattern[i].length = length;
    pattern[i].velocity = follow_velocity ? call[i].velocity : -1;
  }
  return count;
}

}  // namespace

int plan_answer(const CallNote* call, int count, double start, double step, const AnswerShape& shape,
                Slot* slots) {
  const bool has_limit = shape.answer_bars != 0;
  const double bar_limit = has_limit ? start + shape.answer_bars * BEATS_PER_BAR : 0.0;
  const bool limit_truthy = has_limit && bar_limit != 0.0;  // Python's ``if bar_limit``
  const int max_notes = std::min(shape.max_notes, MAX_PLAN);
  int n = 0;
  if (shape.rhythm == Rhythm::Mirror && count > 0) {
    PatternEntry pattern[MAX_CALL + 1];
    const int size = mirror_pattern(call, count, step, shape.follow_velocity, pattern);
    long long period = 0;
    for (int i = 0; i < size; ++i) period = std::max(period, pattern[i].offset + pattern[i].length);
    long long repeat = 0;
    const int target = limit_truthy ? max_notes : std::min(max_notes, size);
    while (n < target) {
      const PatternEntry& p = pattern[n % size];
      const double beat = start + static_cast<double>(repeat * period + p.offset) * step;
      if (has_limit && beat >= bar_limit - 1e-9) break;
      slots[n++] = Slot{beat, static_cast<double>(p.length) * step, p.velocity, false};
      if (n % size == 0) ++repeat;
    }
    return n;
  }
  const long long calls = has_limit ? 1000000000LL : count;
  long long index = 0;
  while (n < std::min<long long>(max_notes, calls)) {
    const double beat = start + static_cast<double>(index) * step;
    if (has_limit && beat >= bar_limit - 1e-9) break;
    slots[n++] = Slot{beat, step, -1, false};
    ++index;
  }
  return n;
}

std::optional<Slot> Phrase::next_slot(Mode mode, double step, double pause_beats, bool performer_active,
                                      bool keys_down) const {
  if (mode == Mode::CallResponse) {
    if (plan_count) return plan_front();
    if (!call_count || performer_active) return std::nullopt;
    const double base = activity_beat ? *activity_beat : resume_beat;
    const double start = step_at_or_after(base + pause_beats, step);
    return Slot{start, step, -1, true};
  }
  if (mode == Mode::Accompany) {
    if (!phrase_onset_beat || !activity_beat) return std::nullopt;
    const double onset = *phrase_onset_beat;
    const double after = last_slot_beat ? std::max(onset, *last_slot_beat) : onset;
    const double beat = step_after(after, step);
    if (keys_down || beat < *activity_beat + pause_beats) return Slot{beat, step, -1, false};
    return std::nullopt;
  }
  if (!last_slot_beat) return Slot{step_at_or_after(resume_beat, step), step, -1, false};
  return Slot{step_after(*last_slot_beat, step), step, -1, false};
}

}  // namespace cadenza::eng
