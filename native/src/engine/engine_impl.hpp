// The engine's state, shared by the files that implement it (engine.cpp:
// setup and the music; engine_input.cpp: performer input, CCs, the clock
// master, stop and panic).
#pragma once
#include <optional>
#include <vector>

#include "cadenza/engine.hpp"
#include "chords.hpp"
#include "clock.hpp"
#include "context.hpp"
#include "events.hpp"
#include "performer.hpp"
#include "phrase.hpp"
#include "register.hpp"
#include "vocab_map.hpp"
#include "voices.hpp"

namespace cadenza {

struct Engine::Impl {
  Impl(Predictor& predictor, const std::vector<std::string>& vocabulary,
       const std::vector<int32_t>& primer, const Settings& settings, double start_time,
       double lookahead);

  // setup
  void apply_settings(const Settings& s, bool first);
  void update_sampling();
  void reset_phrase();

  // time
  std::optional<double> beat(double time) const;
  std::optional<double> time_of(double beat) const;
  void tick_now(double now) {
    if (now > now_) now_ = now;
  }

  // input
  void on_message(const uint8_t* bytes, int size, double now);
  void clock_tick(double now, double master_time);
  void performer_on(int channel, int note, int velocity, double now);
  void performer_off(int channel, int note, double now);
  void extend_call(int note, int velocity, std::optional<double> beat);
  void take_group(const eng::NoteGroup& group);
  void interrupt(double now, std::optional<double> beat);
  void control(int channel, int number, int value, double now);
  void release_performer(double now, int channel);
  void clock_message(uint8_t status, const uint8_t* bytes, int size, double now);

  // the music
  std::optional<eng::Slot> next_slot() const;
  void build_answer(double start);
  int velocity_for(int slot_velocity) const;
  void play(const eng::Slot& slot, double on_time);
  void advance(double now);
  std::optional<double> next_deadline() const;
  void stop(double now);
  void panic(double now);

  Predictor& predictor;
  double lookahead;
  eng::VocabMap vocab;
  eng::ModelContext context;
  double now_;
  double start_time;
  long long notes_out = 0, skipped = 0, performer_tokens = 0;
  long long stops = 0;  // every stop (Engine.stops): a caller compares before and after
  eng::Voices voices;
  eng::Performer performer;
  eng::Register reg;
  bool enabled = true;
  Settings settings;
  Mode mode = Mode::CallResponse;
  double temperature = 0.0;
  double step = 0.5;
  int channel = 0;
  eng::ChordGrouper grouper;
  bool midi_clock = false;
  eng::InternalClock internal_clock;
  eng::MidiClockFollower midi_follower;
  eng::Phrase phrase;
  eng::EventBuffer out;
};

}  // namespace cadenza
