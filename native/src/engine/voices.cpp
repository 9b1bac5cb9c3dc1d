#include "voices.hpp"

namespace cadenza::eng {

bool Voices::answering() const {
  for (int i = 0; i < count_; ++i) {
    if (items_[i].answer) return true;
  }
  return false;
}

void Voices::remove(int i) {
  for (int j = i + 1; j < count_; ++j) items_[j - 1] = items_[j];
  --count_;
}

void Voices::start(int channel, int note, int velocity, double on_time, std::optional<double> on_beat,
                   double off_time, bool answer, EventBuffer& out) {
  for (int i = 0; i < count_; ++i) {
    if (items_[i].channel == channel && items_[i].note == note) {
      remove(i);  // a retrigger: the old note ends where the new one begins
      out.note_off(on_time, channel, note);
      break;
    }
  }
  out.note_on(on_time, channel, note, velocity);
  // (channel, note) pairs are unique, so the list never outgrows MAX_SOUNDING
  items_[count_++] = Sounding{channel, note, on_time, on_beat, off_time, answer};
}

void Voices::release_due(double until, EventBuffer& out) {
  int kept = 0;
  for (int i = 0; i < count_; ++i) {
    if (items_[i].off_time <= until) {
      out.note_off(items_[i].off_time, items_[i].channel, items_[i].note);
    } else {
      items_[kept++] = items_[i];
    }
  }
  count_ = kept;
}

void Voices::release_all(double now, EventBuffer& out) {
  for (int i = 0; i < count_; ++i) {
    const double at = now > items_[i].on_time ? now : items_[i].on_time;  // max(now, on_time)
    out.note_off(at, items_[i].channel, items_[i].note);
  }
  count_ = 0;
}

std::optional<double> Voices::next_end() const {
  std::optional<double> best;
  for (int i = 0; i < count_; ++i) {
    if (!best || items_[i].off_time < *best) best = items_[i].off_time;
  }
  return best;
}

}  // namespace cadenza::eng
