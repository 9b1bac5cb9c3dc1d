// The C API over cadenza::Engine: no exception crosses it.
#include <chrono>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cadenza/cadenza_engine.h"
#include "cadenza/engine.hpp"
#include "cadenza/model.hpp"
#include "key.hpp"
#include "numeric.hpp"
#include "portable_math.hpp"
#include "rng.hpp"
#include "sampling.hpp"
#include "tokens.hpp"

static_assert(sizeof(cadenza_event) == sizeof(cadenza::Event), "event layouts differ");
static_assert(CADENZA_MAX_EVENTS == cadenza::MAX_EVENTS, "event capacities differ");

struct cadenza_predictor {
  std::unique_ptr<cadenza::Predictor> model;
};

// The engine is pure (no clocks), so the prediction latencies the daemon's
// stats line reports are timed here, around the calls that ran the model: each
// such call's time divided by the predictions it made.  Only the C API (the
// Python daemon's way in) times anything; a plugin using cadenza::Engine
// directly reads no clock.
constexpr int kLatencySamples = CADENZA_LATENCY_SAMPLES;

struct LatencyLog {
  std::vector<double> seconds = std::vector<double>(kLatencySamples);
  int next = 0, count = 0;

  void record(double value) {
    seconds[static_cast<size_t>(next)] = value;
    next = (next + 1) % kLatencySamples;
    if (count < kLatencySamples) ++count;
  }
  int copy_out(double* out, int capacity) const {  // oldest first
    const int n = count < capacity ? count : capacity;
    const int first = (next - n + kLatencySamples) % kLatencySamples;
    for (int i = 0; i < n; ++i) out[i] = seconds[static_cast<size_t>((first + i) % kLatencySamples)];
    return n;
  }
};

struct cadenza_engine {
  std::unique_ptr<cadenza::Engine> engine;
  LatencyLog latencies;
};

namespace {

struct ModelFailed : std::runtime_error {
  ModelFailed() : std::runtime_error("the model gave no distribution") {}
};

class CallbackPredictor final : public cadenza::Predictor {
 public:
  explicit CallbackPredictor(const cadenza_predictor_callbacks& cb) : cb_(cb) {}
  int vocab_size() const override { return cb_.vocab_size; }
  int window() const override { return cb_.window; }
  void reset(const int32_t* primer, int count) override { cb_.reset(cb_.user, primer, count); }
  void feed(int32_t index) override { cb_.feed(cb_.user, index); }
  const double* distribution() override {
    const double* p = cb_.distribution(cb_.user);
    if (!p) throw ModelFailed();
    return p;
  }

 private:
  cadenza_predictor_callbacks cb_;
};

void write_error(char* error, int32_t size, const char* text) {
  if (!error || size <= 0) return;
  std::strncpy(error, text, static_cast<size_t>(size) - 1);
  error[size - 1] = '\0';
}

cadenza::Settings from_c(const cadenza_settings& c) {
  cadenza::Settings s;
  s.mode = static_cast<cadenza::Mode>(c.mode);
  s.rhythm = static_cast<cadenza::Rhythm>(c.rhythm);
  s.bpm = c.bpm;
  s.grid = static_cast<cadenza::Grid>(c.grid);
  s.clock = static_cast<cadenza::ClockSource>(c.clock);
  s.clock_window = c.clock_window;
  s.chord_window_ms = c.chord_window_ms;
  s.pause_beats = c.pause_beats;
  s.answer_bars = c.answer_bars;
  s.max_answer_notes = c.max_answer_notes;
  s.temperature = c.temperature;
  s.top_k = c.top_k;
  s.top_p = c.top_p;
  s.loop_guard = c.loop_guard;
  s.seed = c.seed;
  s.channel = c.channel;
  s.gate = c.gate;
  s.octave = c.octave;
  s.register_follow = c.register_follow != 0;
  s.key = static_cast<cadenza::KeyMode>(c.key);
  s.key_tonic = c.key_tonic;
  s.key_minor = c.key_minor != 0;
  s.key_strength = c.key_strength;
  s.key_balance = c.key_balance;
  s.velocity = c.velocity;
  s.cc = cadenza::CcMap{c.cc[0], c.cc[1], c.cc[2], c.cc[3], c.cc[4], c.cc[5]};
  s.continuity = c.continuity;
  s.texture = c.texture;
  s.key_spread = c.key_spread;
  return s;
}

template <typename F>
int32_t guarded(F f) {
  try {
    return f();
  } catch (const ModelFailed&) {
    return -2;
  } catch (...) {
    return -3;
  }
}

cadenza::Event* as_events(cadenza_event* out) { return reinterpret_cast<cadenza::Event*>(out); }

// ``call`` on ``e``, with its time logged per prediction when it predicted.
template <typename F>
int32_t timed(cadenza_engine* e, F call) {
  const long long before = e->engine->predictions();
  const auto began = std::chrono::steady_clock::now();
  const int32_t result = guarded(call);
  const long long made = e->engine->predictions() - before;
  if (made > 0) {
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - began;
    e->latencies.record(took.count() / static_cast<double>(made));
  }
  return result;
}

}  // namespace

extern "C" {

int32_t cadenza_engine_api_version(void) { return CADENZA_ENGINE_API_VERSION; }

void cadenza_settings_default(cadenza_settings* out) {
  const cadenza::Settings s;
  out->mode = static_cast<int32_t>(s.mode);
  out->rhythm = static_cast<int32_t>(s.rhythm);
  out->bpm = s.bpm;
  out->grid = static_cast<int32_t>(s.grid);
  out->clock = static_cast<int32_t>(s.clock);
  out->clock_window = s.clock_window;
  out->chord_window_ms = s.chord_window_ms;
  out->pause_beats = s.pause_beats;
  out->answer_bars = s.answer_bars;
  out->max_answer_notes = s.max_answer_notes;
  out->temperature = s.temperature;
  out->top_k = s.top_k;
  out->top_p = s.top_p;
  out->loop_guard = s.loop_guard;
  out->seed = s.seed;
  out->channel = s.channel;
  out->gate = s.gate;
  out->octave = s.octave;
  out->register_follow = s.register_follow;
  out->key = static_cast<int32_t>(s.key);
  out->key_tonic = s.key_tonic;
  out->key_minor = s.key_minor;
  out->key_strength = s.key_strength;
  out->key_balance = s.key_balance;
  out->velocity = s.velocity;
  const int32_t cc[6] = {s.cc.temperature, s.cc.mode, s.cc.enabled, s.cc.panic, s.cc.tempo, s.cc.key_strength};
  std::memcpy(out->cc, cc, sizeof cc);
  out->continuity = s.continuity;
  out->texture = s.texture;
  out->key_spread = s.key_spread;
}

cadenza_predictor* cadenza_fake_predictor_new(int32_t vocab_size, int32_t window) {
  if (vocab_size < 1) return nullptr;
  try {
    return new cadenza_predictor{cadenza::make_fake_predictor(vocab_size, window)};
  } catch (...) {
    return nullptr;
  }
}

cadenza_predictor* cadenza_callback_predictor_new(const cadenza_predictor_callbacks* cb) {
  if (!cb || !cb->reset || !cb->feed || !cb->distribution || cb->vocab_size < 1) return nullptr;
  try {
    return new cadenza_predictor{std::make_unique<CallbackPredictor>(*cb)};
  } catch (...) {
    return nullptr;
  }
}

void cadenza_predictor_free(cadenza_predictor* predictor) { delete predictor; }

}  // extern "C"

cadenza_predictor* cadenza_predictor_from_cpp(std::unique_ptr<cadenza::Predictor> model) {
  if (!model) return nullptr;
  return new cadenza_predictor{std::move(model)};
}

extern "C" {

namespace {

cadenza_predictor* native_predictor(const char* weights_path, bool int8, char* error,
                                    int32_t error_size) {
  try {
    if (!weights_path) throw std::invalid_argument("missing weights path");
    std::shared_ptr<const cadenza::Weights> weights = cadenza::Weights::load(weights_path);
    return new cadenza_predictor{
        std::make_unique<cadenza::NativeStreamPredictor>(std::move(weights), int8)};
  } catch (const std::exception& err) {
    write_error(error, error_size, err.what());
  } catch (...) {
    write_error(error, error_size, "unknown error");
  }
  return nullptr;
}

}  // namespace

cadenza_predictor* cadenza_native_predictor_new(const char* weights_path, char* error, int32_t error_size) {
  return native_predictor(weights_path, false, error, error_size);
}

cadenza_predictor* cadenza_native_int8_predictor_new(const char* weights_path, char* error,
                                                     int32_t error_size) {
  return native_predictor(weights_path, true, error, error_size);
}

cadenza_engine* cadenza_engine_new(cadenza_predictor* predictor, const char* const* vocabulary,
                                   int32_t vocab_size, const int32_t* primer, int32_t primer_count,
                                   const cadenza_settings* settings, double start_time,
                                   double lookahead, char* error, int32_t error_size) {
  try {
    if (!predictor || !vocabulary || !settings || vocab_size < 1) throw std::invalid_argument("missing argument");
    std::vector<std::string> vocab(vocabulary, vocabulary + vocab_size);
    std::vector<int32_t> start(primer, primer + (primer ? primer_count : 0));
    return new cadenza_engine{std::make_unique<cadenza::Engine>(*predictor->model, vocab, start,
                                                                from_c(*settings), start_time, lookahead),
                              LatencyLog{}};
  } catch (const std::exception& err) {
    write_error(error, error_size, err.what());
  } catch (...) {
    write_error(error, error_size, "unknown error");
  }
  return nullptr;
}

void cadenza_engine_free(cadenza_engine* engine) { delete engine; }

int32_t cadenza_engine_on_message(cadenza_engine* e, const uint8_t* bytes, int32_t size, double now,
                                  cadenza_event* out, int32_t capacity) {
  return timed(e, [&] { return e->engine->on_message(bytes, size, now, as_events(out), capacity); });
}

int32_t cadenza_engine_clock_tick(cadenza_engine* e, double now, double master_time) {
  return timed(e, [&] {
    e->engine->clock_tick(now, master_time);
    return 0;
  });
}

int32_t cadenza_engine_advance(cadenza_engine* e, double now, cadenza_event* out, int32_t capacity) {
  return timed(e, [&] { return e->engine->advance(now, as_events(out), capacity); });
}

int32_t cadenza_engine_stop(cadenza_engine* e, double now, cadenza_event* out, int32_t capacity) {
  return guarded([&] { return e->engine->stop(now, as_events(out), capacity); });
}

int32_t cadenza_engine_panic(cadenza_engine* e, double now, cadenza_event* out, int32_t capacity) {
  return guarded([&] { return e->engine->panic(now, as_events(out), capacity); });
}

int32_t cadenza_engine_prepare(cadenza_engine* e) {
  // Not timed: it makes no prediction (the latencies are per choice).
  return guarded([&] {
    e->engine->prepare();
    return 0;
  });
}

int32_t cadenza_engine_next_deadline(cadenza_engine* e, double* deadline) {
  const auto d = e->engine->next_deadline();
  if (!d) return 0;
  *deadline = *d;
  return 1;
}

void cadenza_engine_release_performer(cadenza_engine* e, double now, int32_t channel) {
  e->engine->release_performer(now, channel);
}

int32_t cadenza_engine_reload(cadenza_engine* e, const cadenza_settings* settings, char* error,
                              int32_t error_size) {
  try {
    e->engine->reload(from_c(*settings));
    return 0;
  } catch (const std::exception& err) {
    write_error(error, error_size, err.what());
    return -1;
  }
}

int32_t cadenza_engine_prime(cadenza_engine* e, const int32_t* indices, int32_t count, int32_t reset,
                             char* error, int32_t error_size) {
  try {
    e->engine->prime(indices, count, reset != 0);
    return 0;
  } catch (const std::exception& err) {
    write_error(error, error_size, err.what());
    return -1;
  }
}

void cadenza_engine_set_tempo(cadenza_engine* e, double bpm, double now) { e->engine->set_tempo(bpm, now); }

void cadenza_engine_locate(cadenza_engine* e, double beat, double now) { e->engine->locate(beat, now); }

int32_t cadenza_engine_beat_at(cadenza_engine* e, double time, double* beat) {
  const auto b = e->engine->beat_at(time);
  if (!b) return 0;
  *beat = *b;
  return 1;
}

int32_t cadenza_engine_time_at(cadenza_engine* e, double beat, double* time) {
  const auto t = e->engine->time_at(beat);
  if (!t) return 0;
  *time = *t;
  return 1;
}

int32_t cadenza_engine_sounding(cadenza_engine* e, int32_t* out, int32_t capacity) {
  return e->engine->sounding_notes(out, capacity);
}

int32_t cadenza_engine_held(cadenza_engine* e, int32_t* out, int32_t capacity) {
  return e->engine->held_keys(out, capacity);
}

int32_t cadenza_engine_window(cadenza_engine* e, int32_t* out, int32_t capacity) {
  return e->engine->window(out, capacity);
}

int32_t cadenza_engine_window_capacity(cadenza_engine* e) { return e->engine->window_capacity(); }

void cadenza_engine_stats(cadenza_engine* e, cadenza_stats* out) {
  cadenza::Engine& g = *e->engine;
  out->notes_out = g.notes_out();
  out->skipped_late = g.skipped_late();
  out->performer_tokens = g.performer_tokens();
  out->predictions = g.predictions();
  out->sounding = g.sounding();
  out->mode = static_cast<int32_t>(g.mode());
  out->enabled = g.enabled();
  out->key = g.current_key();
  out->bpm = g.bpm();
  out->temperature = g.temperature();
  out->stops = g.stops();
  out->key_strength = g.key_strength();
}

int32_t cadenza_engine_latencies(cadenza_engine* e, double* out, int32_t capacity) {
  return e->latencies.copy_out(out, capacity < 0 ? 0 : capacity);
}

void cadenza_debug_random(uint64_t seed, double* out, int32_t n) {
  cadenza::eng::Pcg64 rng(seed);
  for (int32_t i = 0; i < n; ++i) out[i] = rng.random();
}

void cadenza_debug_choice(uint64_t seed, const double* p, int32_t n, int32_t draws, int64_t* out) {
  cadenza::eng::Pcg64 rng(seed);
  std::vector<double> cdf(static_cast<size_t>(n));
  for (int32_t i = 0; i < draws; ++i) out[i] = cadenza::eng::choice(rng, p, n, cdf.data());
}

double cadenza_debug_pairwise_sum(const double* a, int32_t n) { return cadenza::eng::pairwise_sum(a, n); }

void cadenza_debug_exp(const double* in, double* out, int32_t n) {
  std::memcpy(out, in, sizeof(double) * static_cast<size_t>(n));
  cadenza::eng::exp_in_place(out, n);
}

void cadenza_debug_log(const double* in, double* out, int32_t n) {
  std::memcpy(out, in, sizeof(double) * static_cast<size_t>(n));
  cadenza::eng::log_in_place(out, n);
}

void cadenza_debug_profiles(double* out) {
  const auto& rows = cadenza::eng::scoring_profiles();
  for (int k = 0; k < cadenza::eng::KEY_COUNT; ++k) {
    for (int j = 0; j < 12; ++j) out[k * 12 + j] = rows[k][j];
  }
}

int32_t cadenza_debug_estimate_key(const double* counts) { return cadenza::eng::estimate_key(counts); }

int32_t cadenza_debug_filter(const double* probs, int32_t n, double temperature, int32_t top_k,
                             double top_p, double* out) {
  cadenza::eng::Sampler sampler(n, 1);
  sampler.settings = cadenza::eng::SamplingSettings{temperature, top_k, top_p, 0};
  const double* f = sampler.filter(probs);
  std::memcpy(out, f, sizeof(double) * static_cast<size_t>(n));
  return n;
}

int32_t cadenza_debug_token(const char* token, int32_t* midi) {
  cadenza::eng::TokenInfo info;
  std::string why;
  if (!cadenza::eng::parse_token(token, info, why)) return -1;
  *midi = info.chord ? -1 : info.midi;
  return info.mask;
}

int32_t cadenza_debug_chord_token(int32_t mask, char* out, int32_t size) {
  if (mask <= 0 || mask >= 4096) return -1;
  const std::string token = cadenza::eng::chord_token(static_cast<uint16_t>(mask));
  write_error(out, size, token.c_str());
  return static_cast<int32_t>(token.size());
}

}  // extern "C"
