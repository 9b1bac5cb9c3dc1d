// The engine: setup, time, and the music (live/engine.py's seams).
#include <algorithm>
#include <stdexcept>

#include "cadenza/engine.hpp"
#include "controls.hpp"
#include "engine_impl.hpp"

namespace cadenza {

using eng::Slot;

namespace {

constexpr double GRID_STEP[] = {1.0, 0.5, 0.25, 2.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0};

int checked_window(const Predictor& p) {
  const int w = p.window() > 0 ? p.window() : 50;  // context.DEFAULT_WINDOW
  if (w > MAX_WINDOW) throw std::invalid_argument("model window " + std::to_string(w) + " above MAX_WINDOW");
  return w;
}

const std::vector<std::string>& checked_vocab(const std::vector<std::string>& v, const Predictor& p) {
  if (static_cast<int>(v.size()) > MAX_VOCAB) throw std::invalid_argument("vocabulary above MAX_VOCAB");
  if (static_cast<int>(v.size()) != p.vocab_size()) {
    throw std::invalid_argument("vocabulary has " + std::to_string(v.size()) + " tokens, the model " +
                                std::to_string(p.vocab_size()));
  }
  return v;
}

}  // namespace

std::string check_settings(const Settings& s) {
  const int mode = static_cast<int>(s.mode), grid = static_cast<int>(s.grid);
  if (mode < 0 || mode > 2) return "mode: must be call-response, accompany or continue";
  if (s.rhythm != Rhythm::Grid && s.rhythm != Rhythm::Mirror) return "rhythm: must be grid or mirror";
  if (!(s.bpm >= 20.0 && s.bpm <= 400.0)) return "bpm: must be between 20 and 400";
  if (grid < 0 || grid > 5) return "grid: unknown";
  if (s.clock != ClockSource::Internal && s.clock != ClockSource::Midi) return "clock: must be internal or midi";
  if (s.clock_window < 2 || s.clock_window > 960) return "clock_window: must be between 2 and 960 ticks";
  if (!(s.chord_window_ms >= 0.0 && s.chord_window_ms <= 500.0)) return "chord_window_ms: must be between 0 and 500";
  if (!(s.pause_beats > 0)) return "pause_beats: must be positive";
  if (s.answer_bars < 0) return "answer_bars: must be 0 or more";
  if (s.max_answer_notes < 1 || s.max_answer_notes > MAX_PLAN) {
    return "max_answer_notes: must be 1.." + std::to_string(MAX_PLAN);
  }
  if (!(s.temperature >= 0)) return "temperature: must be 0 (argmax) or more";
  if (s.top_k < 0) return "top_k: must be 0 (off) or more";
  if (!(s.top_p > 0.0 && s.top_p <= 1.0)) return "top_p: must be in (0, 1]";
  if (s.loop_guard < 0) return "loop_guard: must be 0 (off) or more";
  if (s.loop_guard > MAX_WINDOW) return "loop_guard: above MAX_WINDOW";
  if (s.channel < 1 || s.channel > 16) return "channel: must be a MIDI channel 1..16";
  if (!(s.gate > 0.0 && s.gate <= 1.0)) return "gate: must be in (0, 1]";
  if (s.octave < -1 || s.octave > 8) return "octave: must be -1 or 0..8";
  const int key = static_cast<int>(s.key);
  if (key < 0 || key > 3) return "key: must be off, call, auto or named";
  if (s.key == KeyMode::Named && (s.key_tonic < 0 || s.key_tonic > 11)) return "key_tonic: must be 0..11";
  if (!(s.key_strength >= 0.0 && s.key_strength <= 1.0)) return "key_strength: must be between 0 and 1";
  if (!(s.key_balance >= 0.0 && s.key_balance <= 10.0)) return "key_balance: must be between 0 and 10";
  if (!(s.key_spread >= 0.0 && s.key_spread <= 1.0)) return "key_spread: must be between 0 (off) and 1";
  if (!(s.continuity >= 0.0 && s.continuity <= 1.0)) return "continuity: must be between 0 (off) and 1";
  if (!(s.texture >= 0.0 && s.texture <= 1.0)) return "texture: must be between 0 (off) and 1";
  if (s.velocity < 0 || s.velocity > 127) return "velocity: must be 0 or 1..127";
  const int cc[] = {s.cc.temperature, s.cc.mode, s.cc.enabled, s.cc.panic, s.cc.tempo, s.cc.key_strength};
  for (int i = 0; i < 6; ++i) {
    if (cc[i] < -1 || cc[i] > 127) return "cc: a controller number must be 0..127 (or -1: unmapped)";
    for (int j = 0; j < i; ++j) {
      if (cc[i] >= 0 && cc[i] == cc[j]) return "cc: a controller is given to more than one control";
    }
  }
  return {};
}

Engine::Impl::Impl(Predictor& p, const std::vector<std::string>& vocabulary,
                   const std::vector<int32_t>& primer, const Settings& s, double start,
                   double ahead)
    : predictor(p),
      lookahead(ahead),
      vocab(checked_vocab(vocabulary, p)),
      context(p, vocab, checked_window(p)),
      now_(start),
      start_time(start) {
  if (!(ahead >= 0)) throw std::invalid_argument("lookahead must be 0 or more seconds");
  const std::string problem = check_settings(s);
  if (!problem.empty()) throw std::invalid_argument("settings: " + problem);
  for (int32_t index : primer) {
    if (index < 0 || index >= vocab.size()) throw std::invalid_argument("primer index out of the vocabulary");
  }
  apply_settings(s, true);
  reset_phrase();
  // bundle_primer: its last ``capacity`` tokens
  const int count = static_cast<int>(primer.size());
  const int from = count > context.capacity() ? count - context.capacity() : 0;
  context.prime(primer.data() + from, count - from, true);
}

void Engine::Impl::apply_settings(const Settings& s, bool first) {
  const Settings old = settings;
  settings = s;
  mode = s.mode;
  temperature = s.temperature;
  context.key.configure(static_cast<eng::KeySetting>(static_cast<int>(s.key)),
                        s.key_tonic + (s.key_minor ? 12 : 0), s.key_strength, s.key_balance,
                        s.key_spread);
  context.continuity.strength = s.continuity;
  context.texture.strength = s.texture;
  step = GRID_STEP[static_cast<int>(s.grid)];
  channel = s.channel - 1;
  grouper.window = s.chord_window_ms / 1000.0;
  if (first || old.seed != s.seed) context.sampler.reseed(s.seed);
  update_sampling();
  if (first || old.clock != s.clock || old.clock_window != s.clock_window) {
    if (s.clock == ClockSource::Midi) {
      midi_clock = true;
      midi_follower = eng::MidiClockFollower(s.bpm, s.clock_window);
    } else {
      midi_clock = false;
      internal_clock = eng::InternalClock(s.bpm, first ? start_time : now_);
    }
    if (!first) reset_phrase();
  } else if (s.clock == ClockSource::Internal && old.bpm != s.bpm) {
    internal_clock.set_bpm(s.bpm, now_);
  }
}

void Engine::Impl::update_sampling() {
  context.sampler.settings =
      eng::SamplingSettings{temperature, settings.top_k, settings.top_p, settings.loop_guard};
}

void Engine::Impl::reset_phrase() {
  const std::optional<double> b = beat(now_);
  // ``beat or 0.0``: None and either zero give 0.0
  phrase.reset(b && *b != 0.0 ? *b : 0.0);
  reg.new_phrase();
}

std::optional<double> Engine::Impl::beat(double time) const {
  if (midi_clock) return midi_follower.beat_at(time);
  return internal_clock.beat_at(time);
}

std::optional<double> Engine::Impl::time_of(double b) const {
  if (midi_clock) return midi_follower.time_at(b);
  return internal_clock.time_at(b);
}

std::optional<Slot> Engine::Impl::next_slot() const {
  const bool running = midi_clock ? midi_follower.running : true;
  if (!enabled || !running) return std::nullopt;
  return phrase.next_slot(mode, step, settings.pause_beats,
                          performer.held_count > 0 || grouper.pending().has_value(),
                          performer.held_count > 0);
}

void Engine::Impl::build_answer(double start) {
  const eng::AnswerShape shape{settings.rhythm, settings.answer_bars, settings.max_answer_notes,
                               settings.velocity == 0};
  const int n = eng::plan_answer(phrase.call, phrase.call_count, start, step, shape, phrase.plan);
  phrase.call_count = 0;
  phrase.plan_start = 0;
  phrase.plan_count = n;
  reg.new_phrase();
}

int Engine::Impl::velocity_for(int slot_velocity) const {
  if (settings.velocity) return settings.velocity;
  if (slot_velocity >= 0) return slot_velocity;
  return performer.velocity();
}

void Engine::Impl::play(const Slot& slot, double on_time) {
  const int index = context.choose();
  context.push(index, false);
  const int velocity = velocity_for(slot.velocity);
  const double length = std::max(slot.length - step * (1.0 - settings.gate), 1e-3);
  std::optional<double> off = time_of(slot.beat + length);
  double off_time = off && !(*off <= on_time) ? *off : on_time + 1e-3;
  const bool answer = mode == Mode::CallResponse;
  int notes[eng::MAX_CHORD_CLASSES];
  const int centre = performer.centre(settings.octave);
  const int count = reg.place(vocab.info(index), centre, settings.register_follow, notes);
  for (int i = 0; i < count; ++i) {
    voices.start(channel, notes[i], velocity, on_time, slot.beat, off_time, answer, out);
    ++notes_out;
  }
}

void Engine::Impl::advance(double now) {
  tick_now(now);
  if (auto closed = grouper.flush(now)) take_group(*closed);
  const double horizon = now + lookahead;
  while (true) {
    const std::optional<Slot> slot = next_slot();
    if (!slot) break;
    const std::optional<double> on_time = time_of(slot->beat);
    // As next_deadline reckons it (on_time - lookahead): a deadline handed
    // out is then always reached, whatever the rounding.
    if (!on_time || *on_time - lookahead > now) break;
    if (slot->start_marker) {
      build_answer(slot->beat);
      if (!phrase.plan_count) break;
      continue;
    }
    if (phrase.plan_count) phrase.plan_pop();
    phrase.last_slot_beat = slot->beat;
    if (*on_time < now - MAX_LATE) {
      ++skipped;
      continue;
    }
    voices.release_due(*on_time, out);
    play(*slot, *on_time);
  }
  voices.release_due(horizon, out);
}

std::optional<double> Engine::Impl::next_deadline() const {
  std::optional<double> best = grouper.deadline();
  auto consider = [&best](double t) {
    if (!best || t < *best) best = t;
  };
  if (const std::optional<Slot> slot = next_slot()) {
    if (const std::optional<double> on_time = time_of(slot->beat)) consider(*on_time - lookahead);
  }
  if (const std::optional<double> end = voices.next_end()) consider(*end - lookahead);
  return best;
}

}  // namespace cadenza
