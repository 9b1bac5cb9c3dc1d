// What the engine hands out (live/events.py): timestamped MIDI messages in
// sending order.  A fixed buffer; in_sending_order sorts it stably.
#pragma once
#include "cadenza/engine.hpp"

namespace cadenza::eng {

// mido.Message("note_off") carries velocity 64 unless told otherwise.
constexpr uint8_t NOTE_OFF_VELOCITY = 64;

class EventBuffer {
 public:
  void clear() { count_ = 0; overflow_ = false; }
  void add(double time, uint8_t status, uint8_t a, uint8_t b) {
    if (count_ == MAX_EVENTS) {
      overflow_ = true;
      return;
    }
    events_[count_++] = Event{time, {status, a, b}, 3};
  }
  void note_on(double time, int channel, int note, int velocity) {
    add(time, static_cast<uint8_t>(0x90 | channel), static_cast<uint8_t>(note), static_cast<uint8_t>(velocity));
  }
  void note_off(double time, int channel, int note) {
    add(time, static_cast<uint8_t>(0x80 | channel), static_cast<uint8_t>(note), NOTE_OFF_VELOCITY);
  }
  void control(double time, int channel, int control, int value) {
    add(time, static_cast<uint8_t>(0xB0 | channel), static_cast<uint8_t>(control), static_cast<uint8_t>(value));
  }
  // By time; at one instant note-offs, then other messages, then note-ons;
  // otherwise in the order added.  Copies out; -1 when ``capacity`` is short.
  int emit(Event* out, int capacity);
  bool overflow() const { return overflow_; }

 private:
  Event events_[MAX_EVENTS];
  int count_ = 0;
  bool overflow_ = false;
};

}  // namespace cadenza::eng
