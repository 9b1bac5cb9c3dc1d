// Cadenza's improviser engine in C++17: note for note the Python engine
// (cadenza.live.engine.Engine).  Pure: no ports, threads or clocks; every
// call carries the time in seconds on the caller's clock, and every call
// returns the MIDI events it produced, in the order they must be sent.
//
// Nothing is allocated after construction: the capacities below are fixed.
// Not thread-safe: one thread owns an engine (the daemon's worker, or a
// plugin's process callback).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cadenza/predictor.hpp"

namespace cadenza {

// Capacities (named so callers and tests can size against them).
constexpr int MAX_EVENTS = 4096;        // events one call can return
constexpr int MAX_SOUNDING = 16 * 128;  // (channel, note) pairs sounding at once
constexpr int MAX_CALL = 256;           // call notes remembered for the answer
constexpr int MAX_PLAN = 4096;          // answer slots (max_answer_notes is capped at this)
constexpr int MAX_WINDOW = 4096;        // the model's context length
constexpr int MAX_VOCAB = 65536;        // vocabulary entries
constexpr double LOOKAHEAD = 0.02;      // seconds a note is chosen before it is due
constexpr double MAX_LATE = 0.05;       // a step this overdue is skipped

enum class Mode { CallResponse = 0, Accompany = 1, Continue = 2 };
enum class Rhythm { Grid = 0, Mirror = 1 };
enum class Grid { Quarter = 0, Eighth = 1, Sixteenth = 2, QuarterTriplet = 3,
                  EighthTriplet = 4, SixteenthTriplet = 5 };
enum class ClockSource { Internal = 0, Midi = 1 };
enum class KeyMode { Off = 0, Call = 1, Auto = 2, Named = 3 };

// Which CC steers what ([live.cc]); -1: not mapped.
struct CcMap {
  int temperature = 21, mode = 22, enabled = 23, panic = 24, tempo = 25, key_strength = 26;
};

// The musical settings of LiveConfig (same meanings, same defaults).
struct Settings {
  Mode mode = Mode::CallResponse;
  Rhythm rhythm = Rhythm::Grid;
  double bpm = 120.0;
  Grid grid = Grid::Eighth;
  ClockSource clock = ClockSource::Internal;
  int clock_window = 96;
  double chord_window_ms = 30.0;
  double pause_beats = 2.0;
  int answer_bars = 0;
  int max_answer_notes = 64;
  double temperature = 1.4;
  int top_k = 0;
  double top_p = 1.0;
  int loop_guard = 4;
  uint64_t seed = 0;
  int channel = 1;  // 1..16
  double gate = 0.9;
  int octave = -1;
  bool register_follow = true;
  KeyMode key = KeyMode::Call;
  int key_tonic = 0;        // KeyMode::Named: pitch class 0..11
  bool key_minor = false;   // KeyMode::Named
  double key_strength = 0.7;
  double key_balance = 4.0;
  double key_spread = 0.08;  // key Call: each class of the key added to the call's shares
  double continuity = 0.8;  // 0 (off) .. 1: leaps beyond a fifth held back
  double texture = 0.0;     // 0 (off) .. 1: the chords' share put back after the steering
  int velocity = 0;
  CcMap cc;
};

// Empty when ``s`` is usable; else what is wrong, naming the setting.
std::string check_settings(const Settings& s);

struct Event {
  double time;      // seconds on the caller's clock
  uint8_t data[3];  // the MIDI message
  uint8_t size;
};

// The count of events written, or -1 when ``capacity`` was too small (the
// engine's state has moved on all the same: give MAX_EVENTS to be sure).
using EventCount = int;

class Engine {
 public:
  // ``vocabulary``: the model's tokens in index order; ``primer``: the
  // bundle's start for the window (ModelContext.bundle_primer).  Throws
  // std::invalid_argument on a bad vocabulary, primer or settings.
  Engine(Predictor& predictor, const std::vector<std::string>& vocabulary,
         const std::vector<int32_t>& primer, const Settings& settings,
         double start_time = 0.0, double lookahead = LOOKAHEAD);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // One incoming MIDI message (1-3 bytes) that arrived at ``now``.  Events
  // come back only when it stopped the music (see stops()).
  EventCount on_message(const uint8_t* bytes, int size, double now, Event* out, int capacity);
  // A master's clock tick that arrived at ``now``; ``master_time``: when it
  // happened on the master's own time line, as the caller corrected it
  // (MidiClockFollower.tick); without it, ``now``.
  void clock_tick(double now, double master_time);
  void clock_tick(double now);
  // Runs the music up to ``now``: every event due before now + lookahead.
  EventCount advance(double now, Event* out, int capacity);
  // When advance must be called next; nullopt when nothing is pending.
  std::optional<double> next_deadline();
  // Does now the model work the next choice will need (the steps a lazy
  // predictor owes for the tokens fed, and its distribution), so that the
  // advance at the next deadline has only the engine's own work.  Changes no
  // musical state: calling it or not, at any time, never changes an event.
  // Call it when idle (after performer input or an answer step, with nothing
  // due).  Real-time safe as the predictor is; a model that fails throws as
  // advance would.
  void prepare();
  // Releases everything sounding and forgets the phrase in progress.
  EventCount stop(double now, Event* out, int capacity);
  // stop, then All Notes Off and All Sound Off on the engine's channel.
  EventCount panic(double now, Event* out, int capacity);
  // The performer's keys (on ``channel`` 0-15, or all with -1) are let go.
  void release_performer(double now, int channel = -1);
  // New settings (the window and the sounding notes are kept); throws
  // std::invalid_argument on bad settings.  Not real-time safe only in that
  // it may throw; it allocates nothing.
  void reload(const Settings& settings);
  // Tokens into the window; ``reset`` clears the model's history first.
  void prime(const int32_t* indices, int count, bool reset);

  // For a host-driven clock (a plugin): the internal clock's tempo changes at
  // ``now`` without moving the beat position there (the tempo CC's effect).
  void set_tempo(double bpm, double now);
  // The internal clock is re-anchored: beat ``beat`` falls at ``now`` (a
  // host's locate or loop).  The phrase in progress is dropped, as a clock
  // change drops it; sounding notes are not released (call stop first).
  void locate(double beat, double now);

  // Read-only state.
  double bpm() const;
  Mode mode() const;
  long long stops() const;  // stops so far (a Stop, Start or Continue, stop, panic, the panic CC)
  bool enabled() const;
  double temperature() const;
  double key_strength() const;  // as the key strength CC left it
  std::optional<double> beat_at(double time) const;
  int window(int32_t* out, int capacity) const;  // the window's indices, oldest first
  int window_capacity() const;
  int sounding() const;
  // (channel << 8 | note) of each note sounding / each key the performer holds; returns the count.
  int sounding_notes(int32_t* out, int capacity) const;
  int held_keys(int32_t* out, int capacity) const;
  std::optional<double> time_at(double beat) const;
  long long notes_out() const;
  long long skipped_late() const;
  long long performer_tokens() const;
  long long predictions() const;
  int current_key();  // 0-11 major, 12-23 minor, -1 none

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The tests' stand-in model: cadenza.predictor.FakePredictor's default rule,
// bit for bit ("the token after the last one, cyclically").
std::unique_ptr<Predictor> make_fake_predictor(int vocab_size, int window = 50);

}  // namespace cadenza
