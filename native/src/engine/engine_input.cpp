// The engine's input side: performer notes, CCs, a clock master's messages,
// stop and panic (live/engine.py's on_message, _control, _clock_message, stop, panic).
#include <stdexcept>

#include "controls.hpp"
#include "engine_impl.hpp"

namespace cadenza {

namespace {
constexpr int ALL_SOUND_OFF = 120;
constexpr int ALL_NOTES_OFF = 123;
}  // namespace

void Engine::Impl::on_message(const uint8_t* bytes, int size, double now) {
  tick_now(now);
  if (size < 1) return;
  const uint8_t status = bytes[0];
  const int kind = status & 0xF0;
  const int ch = status & 0x0F;
  if (status < 0xF0) {
    if (size < 3) return;
    const int a = bytes[1] & 0x7F, b = bytes[2] & 0x7F;
    if (kind == 0x90 && b > 0) {
      performer_on(ch, a, b, now);
    } else if (kind == 0x80 || kind == 0x90) {
      performer_off(ch, a, now);
    } else if (kind == 0xB0) {
      control(ch, a, b, now);
    }
    return;
  }
  if (status == 0xF8 || status == 0xFA || status == 0xFB || status == 0xFC || status == 0xF2) {
    clock_message(status, bytes, size, now);
  }
}

void Engine::Impl::performer_on(int ch, int note, int velocity, double now) {
  if (auto closed = grouper.note_on(note, velocity, now)) take_group(*closed);
  const std::optional<double> b = beat(now);
  const bool paused = performer.held_count == 0 &&
                      (!phrase.activity_beat || !b || *b >= *phrase.activity_beat + settings.pause_beats);
  if (paused) {
    phrase.phrase_onset_beat = b;
    performer.new_phrase();
  }
  performer.press(ch, note);
  if (b) phrase.activity_beat = b;
  if (mode == Mode::CallResponse) {
    interrupt(now, b);
    extend_call(note, velocity, b);
  }
}

void Engine::Impl::extend_call(int note, int velocity, std::optional<double> b) {
  // A note that joined the open chord group extends the newest call entry.
  const auto& group = grouper.pending();
  if (group && group->count > 1 && phrase.call_count) {
    eng::CallNote& last = phrase.call[phrase.call_count - 1];
    last.add(note);
    last.velocity = velocity > last.velocity ? velocity : last.velocity;
    return;
  }
  eng::CallNote entry;
  entry.beat = b ? *b : phrase.resume_beat;
  entry.velocity = velocity;
  entry.add(note);
  phrase.call[phrase.call_count++] = entry;
  if (phrase.call_count > MAX_CALL) {
    for (int i = 1; i < phrase.call_count; ++i) phrase.call[i - 1] = phrase.call[i];
    --phrase.call_count;
  }
}

void Engine::Impl::performer_off(int ch, int note, double now) {
  if (!performer.release(ch, note)) return;
  const std::optional<double> b = beat(now);
  if (b) phrase.activity_beat = b;
  for (int i = phrase.call_count - 1; i >= 0; --i) {
    eng::CallNote& entry = phrase.call[i];
    if (entry.holds(note)) {
      entry.discard(note);
      if (entry.empty() && b) entry.end_beat = b;
      break;
    }
  }
}

void Engine::Impl::take_group(const eng::NoteGroup& group) {
  const int index = vocab.index_of_notes(group.notes);
  context.push(index, true);
  ++performer_tokens;
  performer.onset(group.velocity);
}

void Engine::Impl::interrupt(double now, std::optional<double> b) {
  if (!phrase.plan_count && !voices.answering()) return;
  phrase.plan_start = phrase.plan_count = 0;
  voices.cut_answers([&](std::optional<double> on_beat) {
    // The next grid line after both the interruption and the note's own onset.
    std::optional<double> latest = b;
    if (on_beat && (!latest || *on_beat > *latest)) latest = on_beat;
    if (!latest) return now;
    const std::optional<double> at = time_of(eng::step_after(*latest, step));
    return at ? *at : now;
  });
}

void Engine::Impl::control(int ch, int number, int value, double now) {
  if (number == ALL_SOUND_OFF || number == ALL_NOTES_OFF) release_performer(now, ch);
  const CcMap& cc = settings.cc;
  if (number == cc.temperature) {
    temperature = eng::temperature_from(value);
    update_sampling();
  } else if (number == cc.mode) {
    const Mode m = eng::mode_from(value);
    if (m != mode) {
      stop(now);
      mode = m;
      reset_phrase();
    }
  } else if (number == cc.enabled) {
    const bool on = eng::switch_from(value);
    if (on != enabled) {
      if (!on) stop(now);
      enabled = on;
      reset_phrase();
    }
  } else if (number == cc.panic) {
    if (eng::switch_from(value)) panic(now);
  } else if (number == cc.tempo) {
    if (!midi_clock) internal_clock.set_bpm(eng::tempo_from(value), now);
  } else if (number == cc.key_strength) {
    context.key.strength = eng::strength_from(value);
  }
}

void Engine::Impl::release_performer(double now, int ch) {
  for (int c = 0; c < 16; ++c) {
    if (ch >= 0 && c != ch) continue;
    for (int note = 0; note < 128; ++note) {
      if (performer.held[c][note]) performer_off(c, note, now);
    }
  }
}

void Engine::Impl::clock_tick(double now, double master_time) {
  tick_now(now);
  if (midi_clock) midi_follower.tick(now, master_time);
}

void Engine::Impl::clock_message(uint8_t status, const uint8_t* bytes, int size, double now) {
  if (!midi_clock) return;  // internal clock: a master's clock is not ours to follow
  eng::MidiClockFollower& clock = midi_follower;
  switch (status) {
    case 0xF8:
      clock.tick(now, now);
      break;
    case 0xFA:
      stop(now);
      clock.start();
      reset_phrase();
      phrase.resume_beat = 0.0;
      break;
    case 0xFB:
      stop(now);
      clock.continue_(now);
      reset_phrase();
      phrase.resume_beat = static_cast<double>(clock.position_ticks()) / eng::TICKS_PER_BEAT;
      break;
    case 0xFC:
      clock.stop(now);
      stop(now);
      break;
    case 0xF2:
      if (size >= 3) clock.song_position((bytes[1] & 0x7F) | ((bytes[2] & 0x7F) << 7));
      break;
    default:
      break;
  }
}

void Engine::Impl::stop(double now) {
  tick_now(now);
  ++stops;
  voices.release_all(now, out);
  if (auto closed = grouper.close()) take_group(*closed);
  reset_phrase();
}

void Engine::Impl::panic(double now) {
  stop(now);
  out.control(now, channel, ALL_NOTES_OFF, 0);
  out.control(now, channel, ALL_SOUND_OFF, 0);
}

// ------------------------------------------------------------------ the API

Engine::Engine(Predictor& predictor, const std::vector<std::string>& vocabulary,
               const std::vector<int32_t>& primer, const Settings& settings, double start_time,
               double lookahead)
    : impl_(std::make_unique<Impl>(predictor, vocabulary, primer, settings, start_time, lookahead)) {}

Engine::~Engine() = default;

EventCount Engine::on_message(const uint8_t* bytes, int size, double now, Event* out, int capacity) {
  impl_->on_message(bytes, size, now);
  return impl_->out.emit(out, capacity);
}

void Engine::clock_tick(double now, double master_time) { impl_->clock_tick(now, master_time); }
void Engine::clock_tick(double now) { impl_->clock_tick(now, now); }

EventCount Engine::advance(double now, Event* out, int capacity) {
  impl_->advance(now);
  return impl_->out.emit(out, capacity);
}

std::optional<double> Engine::next_deadline() { return impl_->next_deadline(); }

void Engine::prepare() { impl_->context.prepare(); }

EventCount Engine::stop(double now, Event* out, int capacity) {
  impl_->stop(now);
  return impl_->out.emit(out, capacity);
}

EventCount Engine::panic(double now, Event* out, int capacity) {
  impl_->panic(now);
  return impl_->out.emit(out, capacity);
}

void Engine::release_performer(double now, int channel) { impl_->release_performer(now, channel); }

void Engine::reload(const Settings& settings) {
  const std::string problem = check_settings(settings);
  if (!problem.empty()) throw std::invalid_argument("settings: " + problem);
  const Mode old_mode = impl_->mode;
  impl_->apply_settings(settings, false);
  if (settings.mode != old_mode) impl_->reset_phrase();
}

void Engine::prime(const int32_t* indices, int count, bool reset) {
  for (int i = 0; i < count; ++i) {
    if (indices[i] < 0 || indices[i] >= impl_->vocab.size()) throw std::invalid_argument("token index out of the vocabulary");
  }
  impl_->context.prime(indices, count, reset);
}

void Engine::set_tempo(double bpm, double now) {
  if (!impl_->midi_clock) impl_->internal_clock.set_bpm(bpm, now);
}

void Engine::locate(double beat, double now) {
  impl_->tick_now(now);
  if (!impl_->midi_clock) impl_->internal_clock.locate(beat, now);
  impl_->reset_phrase();
}

double Engine::bpm() const { return impl_->midi_clock ? impl_->midi_follower.bpm() : impl_->internal_clock.bpm(); }
Mode Engine::mode() const { return impl_->mode; }
long long Engine::stops() const { return impl_->stops; }
double Engine::key_strength() const { return impl_->context.key.strength; }
bool Engine::enabled() const { return impl_->enabled; }
double Engine::temperature() const { return impl_->temperature; }
std::optional<double> Engine::beat_at(double time) const { return impl_->beat(time); }
int Engine::window_capacity() const { return impl_->context.capacity(); }
int Engine::window(int32_t* out, int capacity) const {
  const int n = impl_->context.size();
  for (int i = 0; i < n && i < capacity; ++i) out[i] = impl_->context.at(i);
  return n;
}
int Engine::sounding() const { return impl_->voices.size(); }
int Engine::sounding_notes(int32_t* out, int capacity) const {
  const int n = impl_->voices.size();
  for (int i = 0; i < n && i < capacity; ++i) {
    out[i] = impl_->voices.at(i).channel << 8 | impl_->voices.at(i).note;
  }
  return n;
}
int Engine::held_keys(int32_t* out, int capacity) const {
  int n = 0;
  for (int c = 0; c < 16; ++c) {
    for (int note = 0; note < 128; ++note) {
      if (!impl_->performer.held[c][note]) continue;
      if (n < capacity) out[n] = c << 8 | note;
      ++n;
    }
  }
  return n;
}
std::optional<double> Engine::time_at(double beat) const { return impl_->time_of(beat); }
long long Engine::notes_out() const { return impl_->notes_out; }
long long Engine::skipped_late() const { return impl_->skipped; }
long long Engine::performer_tokens() const { return impl_->performer_tokens; }
long long Engine::predictions() const { return impl_->context.predictions; }
int Engine::current_key() { return impl_->context.key.current_key(); }

}  // namespace cadenza
