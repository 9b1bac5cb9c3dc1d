// Grouping a performer's simultaneous notes into one token (live/chords.py).
#pragma once
#include <cstdint>
#include <optional>

namespace cadenza::eng {

struct NoteGroup {
  double time = 0.0;       // onset of the first note
  uint64_t notes[2] = {0, 0};  // the MIDI numbers in it
  int count = 0;           // note-ons in it (repeats included)
  int velocity = 0;        // the loudest
};

class ChordGrouper {
 public:
  double window = 0.03;  // seconds
  // Adds a note-on; returns the previous group if this note closed it.
  std::optional<NoteGroup> note_on(int note, int velocity, double time) {
    std::optional<NoteGroup> closed;
    if (open_ && time - open_->time > window) {
      closed = open_;
      open_.reset();
    }
    if (!open_) {
      open_ = NoteGroup{};
      open_->time = time;
    }
    open_->notes[note >> 6] |= uint64_t{1} << (note & 63);
    open_->velocity = open_->count == 0 || velocity > open_->velocity ? velocity : open_->velocity;
    ++open_->count;
    return closed;
  }
  std::optional<double> deadline() const {
    if (!open_) return std::nullopt;
    return open_->time + window;
  }
  std::optional<NoteGroup> flush(double now) {
    if (open_ && now >= open_->time + window) return close();
    return std::nullopt;
  }
  std::optional<NoteGroup> close() {
    std::optional<NoteGroup> closed = open_;
    open_.reset();
    return closed;
  }
  const std::optional<NoteGroup>& pending() const { return open_; }

 private:
  std::optional<NoteGroup> open_;
};

}  // namespace cadenza::eng
