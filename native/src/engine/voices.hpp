// The notes Cadenza has sounding (live/voices.py): each ends in exactly one
// note-off.  Kept in insertion order, as the Python dict iterates.
#pragma once
#include <optional>

#include "cadenza/engine.hpp"
#include "events.hpp"

namespace cadenza::eng {

struct Sounding {
  int channel, note;
  double on_time;
  std::optional<double> on_beat;
  double off_time;
  bool answer;
};

class Voices {
 public:
  int size() const { return count_; }
  const Sounding& at(int i) const { return items_[i]; }
  bool answering() const;
  void start(int channel, int note, int velocity, double on_time, std::optional<double> on_beat,
             double off_time, bool answer, EventBuffer& out);
  template <typename Cutoff>
  void cut_answers(Cutoff cutoff) {
    for (int i = 0; i < count_; ++i) {
      Sounding& s = items_[i];
      if (!s.answer) continue;
      const double end = cutoff(s.on_beat);
      const double shorter = end < s.off_time ? end : s.off_time;  // min keeps the first of equals
      s.off_time = shorter > s.on_time ? shorter : s.on_time;
    }
  }
  void release_due(double until, EventBuffer& out);
  void release_all(double now, EventBuffer& out);
  std::optional<double> next_end() const;

 private:
  void remove(int i);
  Sounding items_[MAX_SOUNDING];
  int count_ = 0;
};

}  // namespace cadenza::eng
