/* Cadenza's engine, C API (for ctypes and for C hosts).  See engine.hpp for
 * the meanings; every function catches C++ exceptions: errors come back as
 * a negative return value and, where a buffer is given, a message. */
#ifndef CADENZA_ENGINE_H
#define CADENZA_ENGINE_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 4: cadenza_engine_prepare. */
#define CADENZA_ENGINE_API_VERSION 4
/* Prediction latencies kept for cadenza_engine_latencies (the Python engine's LATENCY_SAMPLES). */
#define CADENZA_LATENCY_SAMPLES 4096
#define CADENZA_MAX_EVENTS 4096

typedef struct cadenza_engine cadenza_engine;
typedef struct cadenza_predictor cadenza_predictor;

/* Same layout as cadenza::Event. */
typedef struct {
  double time;
  uint8_t data[3];
  uint8_t size;
} cadenza_event;

/* LiveConfig's musical settings.  Enumerations:
 * mode 0 call-response, 1 accompany, 2 continue; rhythm 0 grid, 1 mirror;
 * grid 0 "1/4", 1 "1/8", 2 "1/16", 3 "1/4t", 4 "1/8t", 5 "1/16t";
 * clock 0 internal, 1 midi; key 0 off, 1 call, 2 auto, 3 named (key_tonic 0-11, key_minor);
 * cc: temperature, mode, enabled, panic, tempo, key_strength (-1: unmapped). */
typedef struct {
  int32_t mode, rhythm;
  double bpm;
  int32_t grid, clock, clock_window;
  double chord_window_ms, pause_beats;
  int32_t answer_bars, max_answer_notes;
  double temperature;
  int32_t top_k;
  double top_p;
  int32_t loop_guard;
  uint64_t seed;
  int32_t channel;
  double gate;
  int32_t octave, register_follow, key, key_tonic, key_minor;
  double key_strength, key_balance;
  int32_t velocity;
  int32_t cc[6];
  double continuity; /* 0 (off) .. 1 */
  double texture;    /* 0 (off) .. 1: the chords' share put back after the steering */
  double key_spread; /* 0 (off) .. 1: key "call": the key's classes added to the call's shares */
} cadenza_settings;

typedef struct {
  int64_t notes_out, skipped_late, performer_tokens, predictions;
  int32_t sounding, mode, enabled, key;
  double bpm, temperature;
  int64_t stops;
  double key_strength;
} cadenza_stats;

/* A model the engine calls back (``user`` is passed through). */
typedef struct {
  int32_t vocab_size, window;
  void (*reset)(void* user, const int32_t* primer, int32_t count);
  void (*feed)(void* user, int32_t index);
  const double* (*distribution)(void* user); /* NULL: the model failed */
  void* user;
} cadenza_predictor_callbacks;

int32_t cadenza_engine_api_version(void);
void cadenza_settings_default(cadenza_settings* out);

cadenza_predictor* cadenza_fake_predictor_new(int32_t vocab_size, int32_t window);
cadenza_predictor* cadenza_callback_predictor_new(const cadenza_predictor_callbacks* callbacks);
/* The native model step (native.bin, docs/native.md) made from its weights
 * file: NULL on error, with the reason (naming the file) in ``error``. */
cadenza_predictor* cadenza_native_predictor_new(const char* weights_path, char* error, int32_t error_size);
/* The same step on the file's int8 section (NULL and a message when it has none). */
cadenza_predictor* cadenza_native_int8_predictor_new(const char* weights_path, char* error,
                                                     int32_t error_size);
void cadenza_predictor_free(cadenza_predictor* predictor);

/* NULL on error, with the reason in ``error``.  The predictor must outlive the engine. */
cadenza_engine* cadenza_engine_new(cadenza_predictor* predictor, const char* const* vocabulary,
                                   int32_t vocab_size, const int32_t* primer, int32_t primer_count,
                                   const cadenza_settings* settings, double start_time,
                                   double lookahead, char* error, int32_t error_size);
void cadenza_engine_free(cadenza_engine* engine);

/* Event calls: the count written to ``out``; -1 when ``capacity`` was short
 * (give CADENZA_MAX_EVENTS), -2 when the model failed. */
int32_t cadenza_engine_on_message(cadenza_engine* e, const uint8_t* bytes, int32_t size, double now,
                                  cadenza_event* out, int32_t capacity);
/* A master's clock tick that arrived at ``now``, which happened at
 * ``master_time`` on the master's own time line (pass ``now`` when there is
 * no other).  Produces no events: the music moves on in advance. */
int32_t cadenza_engine_clock_tick(cadenza_engine* e, double now, double master_time);
int32_t cadenza_engine_advance(cadenza_engine* e, double now, cadenza_event* out, int32_t capacity);
int32_t cadenza_engine_stop(cadenza_engine* e, double now, cadenza_event* out, int32_t capacity);
int32_t cadenza_engine_panic(cadenza_engine* e, double now, cadenza_event* out, int32_t capacity);
/* The model work the next choice needs, done now (Engine::prepare): call it
 * when idle, before the next deadline.  Changes no event.  0, or -2 when the
 * model failed. */
int32_t cadenza_engine_prepare(cadenza_engine* e);
/* 1 and ``*deadline`` set, or 0: nothing pending. */
int32_t cadenza_engine_next_deadline(cadenza_engine* e, double* deadline);
void cadenza_engine_release_performer(cadenza_engine* e, double now, int32_t channel);
int32_t cadenza_engine_reload(cadenza_engine* e, const cadenza_settings* settings, char* error,
                              int32_t error_size);
int32_t cadenza_engine_prime(cadenza_engine* e, const int32_t* indices, int32_t count, int32_t reset,
                             char* error, int32_t error_size);
void cadenza_engine_set_tempo(cadenza_engine* e, double bpm, double now);
void cadenza_engine_locate(cadenza_engine* e, double beat, double now);

int32_t cadenza_engine_beat_at(cadenza_engine* e, double time, double* beat);
int32_t cadenza_engine_time_at(cadenza_engine* e, double beat, double* time);
/* (channel << 8 | note) of the notes sounding / the keys held; returns the full count. */
int32_t cadenza_engine_sounding(cadenza_engine* e, int32_t* out, int32_t capacity);
int32_t cadenza_engine_held(cadenza_engine* e, int32_t* out, int32_t capacity);
int32_t cadenza_engine_window(cadenza_engine* e, int32_t* out, int32_t capacity);
int32_t cadenza_engine_window_capacity(cadenza_engine* e);
void cadenza_engine_stats(cadenza_engine* e, cadenza_stats* out);
/* The last CADENZA_LATENCY_SAMPLES prediction latencies in seconds, oldest
 * first: each on_message, clock_tick or advance call that ran the model, timed
 * by the C API (steady clock) and divided by the predictions it made.  Returns
 * how many were written. */
int32_t cadenza_engine_latencies(cadenza_engine* e, double* out, int32_t capacity);

/* Test hooks: the numerics the identity rests on, for comparison with numpy. */
void cadenza_debug_random(uint64_t seed, double* out, int32_t n);
void cadenza_debug_choice(uint64_t seed, const double* p, int32_t n, int32_t draws, int64_t* out);
double cadenza_debug_pairwise_sum(const double* a, int32_t n);
/* The engine's own exp and log (cadenza/portable_math.py), elementwise. */
void cadenza_debug_exp(const double* in, double* out, int32_t n);
void cadenza_debug_log(const double* in, double* out, int32_t n);
void cadenza_debug_profiles(double* out /* 24 x 12 */);
int32_t cadenza_debug_estimate_key(const double* counts /* 12 */);
int32_t cadenza_debug_filter(const double* probs, int32_t n, double temperature, int32_t top_k,
                             double top_p, double* out);
/* A token's pitch classes as bits (-1: not of the scheme); ``midi``: a note's number, else -1. */
int32_t cadenza_debug_token(const char* token, int32_t* midi);
int32_t cadenza_debug_chord_token(int32_t mask, char* out, int32_t size);

#ifdef __cplusplus
}

#include <memory>
namespace cadenza {
class Predictor;
}
/* For another native library (the model step): its C++ predictor behind the C
 * API's handle, so Python can pass it to cadenza_engine_new.  The handle owns it
 * (cadenza_predictor_free). */
cadenza_predictor* cadenza_predictor_from_cpp(std::unique_ptr<cadenza::Predictor> model);
#endif
#endif
