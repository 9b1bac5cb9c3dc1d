// TEMPORARY STAND-IN ENGINE.  Until the native engine (native/) can be linked,
// this file answers with a simple deterministic rule so that the plugin's
// timing, state, transport and real-time behaviour can be built and tested:
// after the performer pauses for `pause_beats`, the call's pitches are played
// back in order, one per grid step from the first grid line after the pause.
// It is not music and reads no model weights: load() only checks that the
// file exists and carries the stand-in's header line.  Replacing this file's
// body with calls into cadenza::Engine is the whole of the wiring (see
// docs/plugin.md, "Wiring the native engine").
#include "engine_adapter.hpp"

#include <cmath>
#include <cstring>
#include <fstream>

namespace cadenza_plugin {

namespace {

constexpr const char* kStandInHeader = "CADENZA-STANDIN-MODEL 1";
constexpr int kPitches = 128;

struct Scheduled {
    double beat;
    uint8_t data[3];
};

}  // namespace

struct EngineAdapter::Impl {
    Settings settings;
    double bpm = 120.0;
    double beat0 = 0.0;  // the beat at time t0
    double t0 = 0.0;

    // The call being played: its pitches and velocities in order.
    uint8_t call_pitch[kMaxCallNotes] = {};
    uint8_t call_velocity[kMaxCallNotes] = {};
    std::size_t call_count = 0;
    int held[kPitches] = {};
    int held_total = 0;
    double answer_beat = -1.0;  // when the pause is over; < 0: nothing to answer

    // The answer, in beat order, and how much of it has gone out.
    Scheduled queue[kMaxEngineEvents] = {};
    std::size_t queue_count = 0;
    std::size_t queue_next = 0;

    double beat_at(double t) const { return beat0 + (t - t0) * bpm / 60.0; }
    double time_at(double beat) const { return t0 + (beat - beat0) * 60.0 / bpm; }

    void forget() {
        call_count = 0;
        std::memset(held, 0, sizeof held);
        held_total = 0;
        answer_beat = -1.0;
        queue_count = queue_next = 0;
    }

    void schedule_answer() {
        const double grid = settings.grid_beats;
        const double first = std::ceil(answer_beat / grid - 1e-9) * grid;
        const uint8_t status_on = static_cast<uint8_t>(0x90 | (settings.channel - 1));
        const uint8_t status_off = static_cast<uint8_t>(0x80 | (settings.channel - 1));
        queue_count = queue_next = 0;
        // Note-on i at first + i*grid, its note-off gate*grid later: with gate <= 1
        // each note-off comes before the next note-on, so the queue stays in order.
        for (std::size_t i = 0; i < call_count; ++i) {
            const double on = first + static_cast<double>(i) * grid;
            queue[queue_count++] = {on, {status_on, call_pitch[i], call_velocity[i]}};
            queue[queue_count++] = {on + settings.gate * grid, {status_off, call_pitch[i], 0}};
        }
        call_count = 0;
        answer_beat = -1.0;
    }
};

EngineAdapter::EngineAdapter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EngineAdapter::~EngineAdapter() = default;

std::unique_ptr<EngineAdapter> EngineAdapter::load(const std::string& path, bool /*int8*/,
                                                   std::string& why, LoadError& error) {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        why = "model file not found or unreadable: " + path;
        error = LoadError::Missing;
        return nullptr;
    }
    std::string header;
    std::getline(file, header);
    if (header != kStandInHeader) {
        why = path + ": not a Cadenza model (unknown header)";
        error = LoadError::Unreadable;
        return nullptr;
    }
    error = LoadError::None;
    return std::unique_ptr<EngineAdapter>(new EngineAdapter(std::make_unique<Impl>()));
}

void EngineAdapter::apply(const Settings& settings) noexcept { impl_->settings = settings; }

std::size_t EngineAdapter::on_message(const uint8_t* data, uint8_t size, double now, MidiOut*,
                                      std::size_t) noexcept {
    Impl& s = *impl_;
    if (size < 3) {
        return 0;
    }
    const uint8_t kind = data[0] & 0xF0;
    const uint8_t pitch = data[1] & 0x7F;
    if (kind == 0x90 && data[2] > 0) {
        if (s.queue_next < s.queue_count) {
            s.queue_count = s.queue_next = 0;  // a new call cuts the answer short
        }
        if (s.call_count < kMaxCallNotes) {
            s.call_pitch[s.call_count] = pitch;
            s.call_velocity[s.call_count] = data[2];
            ++s.call_count;
        }
        ++s.held[pitch];
        ++s.held_total;
        s.answer_beat = -1.0;
    } else if ((kind == 0x80 || kind == 0x90) && s.held[pitch] > 0) {
        --s.held[pitch];
        --s.held_total;
        if (s.held_total == 0 && s.call_count > 0 && s.settings.enabled) {
            s.answer_beat = s.beat_at(now) + s.settings.pause_beats;
        }
    }
    return 0;
}

std::size_t EngineAdapter::advance(double until, MidiOut* out, std::size_t capacity) noexcept {
    Impl& s = *impl_;
    if (s.answer_beat >= 0.0 && s.time_at(s.answer_beat) < until) {
        s.schedule_answer();
    }
    std::size_t written = 0;
    while (written < capacity && s.queue_next < s.queue_count) {
        const Scheduled& next = s.queue[s.queue_next];
        const double when = s.time_at(next.beat);
        if (when >= until) {
            break;
        }
        out[written++] = {when, {next.data[0], next.data[1], next.data[2]}, 3};
        ++s.queue_next;
    }
    return written;
}

void EngineAdapter::set_tempo(double bpm, double now) noexcept {
    Impl& s = *impl_;
    s.beat0 = s.beat_at(now);
    s.t0 = now;
    s.bpm = bpm;
}

void EngineAdapter::locate(double beat, double now) noexcept {
    Impl& s = *impl_;
    s.forget();
    s.beat0 = beat;
    s.t0 = now;
}

void EngineAdapter::stop(double) noexcept { impl_->forget(); }

}  // namespace cadenza_plugin
