// The engine's hot path, timed and checked for allocations and locks.
//   cadenza_engine_bench VOCAB_FILE [NOTES [WEIGHTS [int8]]]
// VOCAB_FILE: one token a line (the bundled model's vocabulary).  The model is
// the fake predictor, or with WEIGHTS (a native.bin of that vocabulary) the
// native model step, fp32 or int8.  Prints one JSON object.  Run under
// LD_PRELOAD=libcadenza_alloc_counter.so to count malloc/free/mutex locks.
//
// Timed: the whole step at a deadline with the model's forward inside it
// (step_*: no prepare before it), the same step after prepare() (as the
// daemon calls it in the idle time before the deadline: step_prepared_*),
// and the performer's keys (input_*), each followed by prepare() (prepare_*;
// prepare_owed_*: those that had model steps owed, the native model only).
// noise_*: the machine's own interruptions of a spinning thread over one
// second after the run (see machine_noise), to read the p99s against.
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "cadenza/engine.hpp"
#include "cadenza/model.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using ArmFn = void (*)();
using DisarmFn = long (*)(long*);

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  return v[i];
}

// What the machine takes from a thread that never blocks: spin on the clock
// and count the gaps between readings.  On a virtual machine these (the
// hypervisor, the kernel's tick) decide a step's p99, not the step's code.
struct Noise {
  double gaps_over_15us_per_s = 0.0;
  double gaps_over_40us_per_s = 0.0;
  double share_lost = 0.0;  // of the time, in gaps over 5 us
};

Noise machine_noise(double seconds) {
  Noise noise;
  const auto start = Clock::now();
  auto last = start;
  long over15 = 0, over40 = 0;
  double lost_us = 0.0;
  while (true) {
    const auto t = Clock::now();
    const double gap = std::chrono::duration<double, std::micro>(t - last).count();
    last = t;
    if (gap > 5.0) lost_us += gap;
    over15 += gap > 15.0;
    over40 += gap > 40.0;
    if (std::chrono::duration<double>(t - start).count() >= seconds) break;
  }
  noise.gaps_over_15us_per_s = static_cast<double>(over15) / seconds;
  noise.gaps_over_40us_per_s = static_cast<double>(over40) / seconds;
  noise.share_lost = lost_us / (seconds * 1e6);
  return noise;
}

constexpr double NOISE_SECONDS = 1.0;

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s VOCAB_FILE [NOTES]\n", argv[0]);
    return 2;
  }
  std::vector<std::string> vocab;
  std::ifstream in(argv[1]);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) vocab.push_back(line);
  }
  if (vocab.empty()) {
    std::fprintf(stderr, "%s: no tokens\n", argv[1]);
    return 2;
  }
  const int notes = argc > 2 ? std::atoi(argv[2]) : 20000;
  auto arm = reinterpret_cast<ArmFn>(dlsym(RTLD_DEFAULT, "cadenza_alloc_arm"));
  auto disarm = reinterpret_cast<DisarmFn>(dlsym(RTLD_DEFAULT, "cadenza_alloc_disarm"));

  // The counter must see what it is there to see: one malloc and one free.
  long self_check = -1;
  if (arm && disarm) {
    arm();
    void* volatile probe = std::malloc(64);
    std::free(probe);
    self_check = disarm(nullptr);
  }

  // Made (and allocating) before the counter is armed, as a plugin makes it at load.
  std::unique_ptr<cadenza::Predictor> model;
  const bool int8 = argc > 4 && std::string(argv[4]) == "int8";
  if (argc > 3) {
    try {
      auto weights = cadenza::Weights::load(argv[3]);
      weights->check_vocabulary(vocab);
      model = std::make_unique<cadenza::NativeStreamPredictor>(weights, int8);
    } catch (const cadenza::WeightsError& err) {
      std::fprintf(stderr, "%s\n", err.what());
      return 2;
    }
  } else {
    model = cadenza::make_fake_predictor(static_cast<int>(vocab.size()), 50);
  }
  cadenza::Settings settings;  // the shipped defaults: key "call", temperature 1.4
  settings.mode = cadenza::Mode::Continue;
  cadenza::Engine engine(*model, vocab, {}, settings, 0.0);
  // The native step's steps owed (it is lazy), to tell a prepare that did work.
  const auto* lazy = dynamic_cast<const cadenza::NativeStreamPredictor*>(model.get());
  std::vector<cadenza::Event> out(cadenza::MAX_EVENTS);

  // A call first, so key "call" and the register have something to work on.
  const uint8_t phrase[] = {60, 64, 67, 72, 71, 67, 65, 62};
  double now = 0.0;
  for (uint8_t note : phrase) {
    const uint8_t on[3] = {0x90, note, 90}, off[3] = {0x80, note, 0};
    engine.on_message(on, 3, now, out.data(), cadenza::MAX_EVENTS);
    engine.on_message(off, 3, now + 0.1, out.data(), cadenza::MAX_EVENTS);
    now += 0.25;
  }

  std::vector<double> step_us, input_us, step_prepared_us, prepare_us, prepare_owed_us, prepare_step_us;
  long allocations = 0, counts[5] = {0, 0, 0, 0, 0};
  long steps_with_note = 0, steps_prepared_with_note = 0;
  long armed_calls = 0;
  // One engine call, armed (counted) and timed in microseconds.
  auto timed = [&](auto&& call) {
    if (arm) arm();
    ++armed_calls;
    const auto t0 = Clock::now();
    call();
    const auto t1 = Clock::now();
    if (disarm) {
      long c[5];
      allocations += disarm(c);
      for (int k = 0; k < 5; ++k) counts[k] += c[k];
    }
    return std::chrono::duration<double, std::micro>(t1 - t0).count();
  };
  for (int i = 0; i < notes; ++i) {
    const auto deadline = engine.next_deadline();
    if (!deadline) break;
    now = *deadline;
    if (arm) arm();
    ++armed_calls;
    const auto t0 = Clock::now();
    const int n = engine.advance(now, out.data(), cadenza::MAX_EVENTS);
    const auto t1 = Clock::now();
    if (disarm) {
      long c[5];
      allocations += disarm(c);
      for (int k = 0; k < 5; ++k) counts[k] += c[k];
    }
    bool played = false;
    for (int k = 0; k < n; ++k) played = played || (out[static_cast<size_t>(k)].data[0] & 0xF0) == 0x90;
    if (played) {
      ++steps_with_note;
      step_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
  }
  // CADENZA_BENCH_TRACE=FILE: every timed step (us), one a line, in order,
  // to see where the slow ones fall.
  if (const char* trace = std::getenv("CADENZA_BENCH_TRACE")) {
    if (std::FILE* f = std::fopen(trace, "w")) {
      for (double us : step_us) std::fprintf(f, "%.3f\n", us);
      std::fclose(f);
    }
  }
  // The same steps with prepare() after each, as the daemon calls it in the
  // idle time before the next deadline: the step at a deadline is then the
  // engine's own work; what prepare took (the model's forward, moved there) is
  // prepare_step_us, counted where it had steps owed (every one with the fake).
  engine.prepare();
  for (int i = 0; i < notes; ++i) {
    const auto deadline = engine.next_deadline();
    if (!deadline) break;
    now = *deadline;
    int n = 0;
    const double took = timed([&] { n = engine.advance(now, out.data(), cadenza::MAX_EVENTS); });
    bool played = false;
    for (int k = 0; k < n; ++k) played = played || (out[static_cast<size_t>(k)].data[0] & 0xF0) == 0x90;
    if (played) {
      ++steps_prepared_with_note;
      step_prepared_us.push_back(took);
    }
    const bool owed = lazy == nullptr || lazy->pending() > 0;
    const double prepared = timed([&] { engine.prepare(); });
    if (owed) prepare_step_us.push_back(prepared);
  }
  // Events that need no prediction: a performer's key going down and up
  // (accompany would predict; continue keeps playing: the input path alone),
  // each followed by prepare(), as the daemon calls it after input.
  long prepares_owed = 0;
  for (int i = 0; i < notes; ++i) {
    const uint8_t note = static_cast<uint8_t>(48 + i % 24);
    const uint8_t on[3] = {0x90, note, 80}, off[3] = {0x80, note, 0};
    for (const uint8_t* message : {on, off}) {
      input_us.push_back(timed([&] { engine.on_message(message, 3, now, out.data(), cadenza::MAX_EVENTS); }));
      const bool owed = lazy != nullptr && lazy->pending() > 0;
      const double took = timed([&] { engine.prepare(); });
      prepare_us.push_back(took);
      if (owed) {
        ++prepares_owed;
        prepare_owed_us.push_back(took);
      }
    }
    now += 0.001;
  }
  // Everything else a session does, counted too: call-response answers with
  // chords, interruptions, CCs, mirror rhythm via reload, stop and panic.
  cadenza::Settings answer_settings;
  answer_settings.rhythm = cadenza::Rhythm::Mirror;
  answer_settings.key = cadenza::KeyMode::Auto;
  engine.reload(cadenza::Settings{});
  long mixed_calls = 0;
  auto counted = [&](auto&& call) {
    if (arm) arm();
    call();
    if (disarm) {
      long c[5];
      allocations += disarm(c);
      for (int k = 0; k < 5; ++k) counts[k] += c[k];
    }
    ++mixed_calls;
    ++armed_calls;
  };
  for (int round = 0; round < 200; ++round) {
    if (round == 100) engine.reload(answer_settings);
    for (int k = 0; k < 6; ++k) {
      const uint8_t pitch = static_cast<uint8_t>(55 + (round * 5 + k * 3) % 30);
      const uint8_t chord_note = static_cast<uint8_t>(pitch + 4);
      const uint8_t on[3] = {0x90, pitch, 90}, on2[3] = {0x90, chord_note, 70};
      const uint8_t off[3] = {0x80, pitch, 0}, off2[3] = {0x80, chord_note, 0};
      counted([&] { engine.on_message(on, 3, now, out.data(), cadenza::MAX_EVENTS); });
      if (k % 2) counted([&] { engine.on_message(on2, 3, now + 0.005, out.data(), cadenza::MAX_EVENTS); });
      counted([&] { engine.prepare(); });
      now += 0.2;
      counted([&] { engine.on_message(off, 3, now, out.data(), cadenza::MAX_EVENTS); });
      counted([&] { engine.on_message(off2, 3, now, out.data(), cadenza::MAX_EVENTS); });
      now += 0.05;
    }
    const uint8_t temperature_cc[3] = {0xB0, 21, static_cast<uint8_t>(round % 128)};
    counted([&] { engine.on_message(temperature_cc, 3, now, out.data(), cadenza::MAX_EVENTS); });
    const double until = now + 1.5 + (round % 3);
    while (true) {
      const auto deadline = engine.next_deadline();
      if (!deadline || *deadline > until) break;
      now = std::max(now, *deadline);
      counted([&] { engine.advance(now, out.data(), cadenza::MAX_EVENTS); });
      if (round % 2) counted([&] { engine.prepare(); });  // prepared, and not, alike
    }
    if (round % 7 == 0) counted([&] { engine.stop(now, out.data(), cadenza::MAX_EVENTS); });
    if (round % 11 == 0) counted([&] { engine.panic(now, out.data(), cadenza::MAX_EVENTS); });
  }
  const Noise noise = machine_noise(NOISE_SECONDS);
  std::printf(
      "{\"model\": \"%s\", \"vocab\": %zu, \"steps_with_prediction\": %ld, \"step_p50_us\": %.3f, \"step_p99_us\": %.3f, "
      "\"step_max_us\": %.3f, \"steps_prepared_with_prediction\": %ld, \"step_prepared_p50_us\": %.3f, "
      "\"step_prepared_p99_us\": %.3f, \"step_prepared_max_us\": %.3f, \"prepare_after_step_p50_us\": %.3f, "
      "\"prepare_after_step_p99_us\": %.3f, \"input_events\": %zu, \"input_p50_us\": %.3f, \"input_p99_us\": %.3f, "
      "\"input_max_us\": %.3f, \"prepare_p50_us\": %.3f, \"prepare_p99_us\": %.3f, \"prepares_owed\": %ld, "
      "\"prepare_owed_p50_us\": %.3f, \"prepare_owed_p99_us\": %.3f, "
      "\"counter_loaded\": %s, \"malloc\": %ld, \"calloc\": %ld, \"realloc\": %ld, \"free\": %ld, "
      "\"mutex_lock\": %ld, \"allocations_and_locks\": %ld, \"counter_self_check\": %ld, \"mixed_calls_counted\": %ld, \"calls_counted\": %ld, "
      "\"noise_gaps_over_15us_per_s\": %.1f, \"noise_gaps_over_40us_per_s\": %.1f, \"noise_share_lost\": %.4f}\n",
      argc > 3 ? (int8 ? "native int8" : "native fp32") : "fake", vocab.size(), steps_with_note, percentile(step_us, 0.5), percentile(step_us, 0.99),
      percentile(step_us, 1.0), steps_prepared_with_note, percentile(step_prepared_us, 0.5),
      percentile(step_prepared_us, 0.99), percentile(step_prepared_us, 1.0), percentile(prepare_step_us, 0.5),
      percentile(prepare_step_us, 0.99), input_us.size(), percentile(input_us, 0.5), percentile(input_us, 0.99),
      percentile(input_us, 1.0), percentile(prepare_us, 0.5), percentile(prepare_us, 0.99), prepares_owed,
      percentile(prepare_owed_us, 0.5), percentile(prepare_owed_us, 0.99),
      arm ? "true" : "false", counts[0], counts[1], counts[2], counts[3], counts[4], allocations, self_check, mixed_calls, armed_calls,
      noise.gaps_over_15us_per_s, noise.gaps_over_40us_per_s, noise.share_lost);
  return 0;
}
