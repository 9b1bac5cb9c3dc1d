// The plugin's engine: the native core (native/): cadenza::Engine, note for
// note the Python engine, on the native model step (NativeStreamPredictor)
// with the weights file bundled beside the plugin.  Built instead of the
// stand-in (engine_adapter.cpp) wherever native/ has both (plugin/Makefile).
//
// The model step runs on a worker thread ahead of the engine's asks
// (predict_worker.hpp); the notes are the same as inline, bit for bit.
// CADENZA_PLUGIN_INLINE_PREDICT=1 in the environment at load makes every
// prediction inline instead (the tests' reference).  CADENZA_PLUGIN_PREDICT_STATS=1
// prints, when an engine is freed, how its predictions were served (stderr).
//
// The engine is driven with no lookahead: a note is chosen when the plugin
// asks for the block that holds it, so what it is chosen from (the performer's
// notes so far) is the same at every block size.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <optional>
#include <vector>

#include "cadenza/engine.hpp"
#include "cadenza/model.hpp"
#include "cadenza/weights.hpp"
#include "engine_adapter.hpp"
#include "predict_worker.hpp"

namespace cadenza_plugin {

namespace {

// The major and minor keys' places in the key parameter (parameters.cpp).
constexpr int kFirstMajor = 3;
constexpr int kFirstMinor = 15;

cadenza::Settings native_settings(const Settings& s, double bpm) {
    cadenza::Settings n;
    n.mode = static_cast<cadenza::Mode>(s.mode);
    n.rhythm = static_cast<cadenza::Rhythm>(s.rhythm);
    n.grid = static_cast<cadenza::Grid>(s.grid);
    n.bpm = bpm;
    n.clock = cadenza::ClockSource::Internal;  // the host's transport drives it
    n.pause_beats = s.pause_beats;
    n.temperature = s.temperature;
    n.top_p = s.top_p;
    n.seed = s.seed;
    n.channel = s.channel;
    n.gate = s.gate;
    n.octave = s.octave;
    n.register_follow = s.register_mode == 0;
    if (s.key >= kFirstMinor) {
        n.key = cadenza::KeyMode::Named;
        n.key_tonic = s.key - kFirstMinor;
        n.key_minor = true;
    } else if (s.key >= kFirstMajor) {
        n.key = cadenza::KeyMode::Named;
        n.key_tonic = s.key - kFirstMajor;
    } else {
        n.key = static_cast<cadenza::KeyMode>(s.key);  // 0 off, 1 call, 2 auto
    }
    n.key_strength = s.key_strength;
    n.key_balance = s.key_balance;
    n.continuity = s.continuity;
    n.key_spread = s.key_spread;
    n.texture = s.texture;
    // The plugin reads the CC map itself (parameters.cpp) and keeps mapped CCs from the engine.
    n.cc = {-1, -1, -1, -1, -1, -1};
    return n;
}

// The window's start as the daemon's (live/context.py ModelContext.bundle_primer
// on a runner): the seed preset's left-fill, its last `window` tokens; the
// default preset has none, and its window starts empty.  Not the weights'
// `primer`: starting from it gives other answers than `cadenza simulate`.
std::vector<int32_t> bundle_primer(const cadenza::Weights& weights) {
    const std::vector<int32_t>& fill = weights.fill;
    const std::size_t keep = std::min(fill.size(), static_cast<std::size_t>(weights.window));
    return std::vector<int32_t>(fill.end() - static_cast<std::ptrdiff_t>(keep), fill.end());
}

bool env_set(const char* name) {
    const char* value = std::getenv(name);
    return value != nullptr && value[0] != '\0' && std::strcmp(value, "0") != 0;
}

}  // namespace

struct EngineAdapter::Impl {
    ~Impl() {
        engine.reset();  // before the predictor it holds a reference to
        if (predictor && env_set("CADENZA_PLUGIN_PREDICT_STATS")) {
            const PredictionWorker::Stats& s = predictor->stats();
            std::fprintf(stderr,
                         "cadenza-predict: asked %llu ready %llu inline_steps %llu donations %llu\n",
                         static_cast<unsigned long long>(s.asked),
                         static_cast<unsigned long long>(s.ready),
                         static_cast<unsigned long long>(s.inline_steps),
                         static_cast<unsigned long long>(s.donations));
        }
    }

    std::shared_ptr<const cadenza::Weights> weights;
    std::unique_ptr<PredictionWorker> predictor;
    std::unique_ptr<cadenza::Engine> engine;
    cadenza::Event events[cadenza::MAX_EVENTS];
    Settings settings;
    double bpm = 120.0;

    std::size_t copy_out(cadenza::EventCount n, MidiOut* out, std::size_t capacity) const {
        std::size_t written = 0;
        for (int i = 0; i < n && written < capacity; ++i) {
            const cadenza::Event& e = events[i];
            out[written++] = {e.time, {e.data[0], e.data[1], e.data[2]}, e.size};
        }
        return written;
    }
};

EngineAdapter::EngineAdapter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EngineAdapter::~EngineAdapter() = default;

std::unique_ptr<EngineAdapter> EngineAdapter::load(const std::string& path, bool int8,
                                                   std::string& why, LoadError& error) {
    if (FILE* file = std::fopen(path.c_str(), "rb")) {
        std::fclose(file);
    } else {
        why = "model file not found or unreadable: " + path;
        error = LoadError::Missing;
        return nullptr;
    }
    try {
        auto impl = std::make_unique<Impl>();
        impl->weights = cadenza::Weights::load(path);
        if (int8 && !impl->weights->int8) {
            why = path + ": this model has no int8 step (its native weights carry no int8 "
                         "section): choose precision fp32, or export the model again";
            error = LoadError::Unreadable;
            return nullptr;
        }
        impl->predictor = std::make_unique<PredictionWorker>(impl->weights, int8);
        impl->engine = std::make_unique<cadenza::Engine>(
            *impl->predictor, impl->weights->vocabulary, bundle_primer(*impl->weights),
            native_settings(impl->settings, impl->bpm), 0.0, /*lookahead=*/0.0);
        // Here, off the audio thread: the engine is freed off it too, which joins the worker.
        impl->predictor->start(!env_set("CADENZA_PLUGIN_INLINE_PREDICT"));
        error = LoadError::None;
        return std::unique_ptr<EngineAdapter>(new EngineAdapter(std::move(impl)));
    } catch (const std::exception& err) {
        why = path + ": not a usable Cadenza model: " + err.what();
        error = LoadError::Unreadable;
        return nullptr;
    }
}

void EngineAdapter::apply(const Settings& settings) noexcept {
    impl_->settings = settings;
    try {
        // reload allocates nothing; it throws only on settings the parameter ranges rule out.
        impl_->engine->reload(native_settings(settings, impl_->bpm));
    } catch (...) {
    }
}

std::size_t EngineAdapter::on_message(const uint8_t* data, uint8_t size, double now,
                                      MidiOut* out, std::size_t capacity) noexcept {
    const cadenza::EventCount n = impl_->engine->on_message(data, size, now, impl_->events,
                                                            cadenza::MAX_EVENTS);
    return impl_->copy_out(n, out, capacity);
}

std::size_t EngineAdapter::advance(double until, MidiOut* out, std::size_t capacity) noexcept {
    // The engine plays what is due at or before its `now`; the plugin wants what is due before.
    const double now = std::nextafter(until, -std::numeric_limits<double>::infinity());
    // Deadline by deadline, as `cadenza simulate` drives it: advanced once to
    // the end of a block longer than MAX_LATE (2400 frames at 48 kHz), the
    // engine would take the block's early steps for late ones and skip them,
    // so an offline render's large blocks would play fewer notes.
    std::size_t written = 0;
    for (int step = 0; step < kMaxDeadlinesPerBlock; ++step) {
        const std::optional<double> deadline = impl_->engine->next_deadline();
        if (!deadline || *deadline > now) {
            break;
        }
        const cadenza::EventCount n = impl_->engine->advance(*deadline, impl_->events, cadenza::MAX_EVENTS);
        written += impl_->copy_out(n, out + written, capacity - written);
    }
    return written;
}

void EngineAdapter::set_tempo(double bpm, double now) noexcept {
    impl_->bpm = bpm;
    impl_->engine->set_tempo(bpm, now);
}

void EngineAdapter::locate(double beat, double now) noexcept { impl_->engine->locate(beat, now); }

void EngineAdapter::stop(double now) noexcept {
    // Its releases are not needed: the plugin releases from its own ledger.
    impl_->engine->stop(now, impl_->events, cadenza::MAX_EVENTS);
}

}  // namespace cadenza_plugin
