// Cadenza as a MIDI-effect plugin: the performer's notes in, the performer's
// notes (by default) and Cadenza's answers out, placed to the frame on the
// host's grid.  One DPF class serves LV2, CLAP and VST3.
//
// run() follows the host's transport: the engine hears and answers only while
// the transport rolls (see docs/plugin.md for why a stopped transport is
// silent).  Every answer note still sounding is released at frame 0 of the
// block in which the transport stops, jumps or loops, the plugin is bypassed,
// disabled or panicked, or the model changes; after a deactivate, in the first
// block after the next activate (deactivate itself has no output buffer).
#include <atomic>
#include <cmath>
#include <cstring>
#include <string>

#include "DistrhoPlugin.hpp"
#include "DistrhoPluginUtils.hpp"
#include "engine_adapter.hpp"
#include "engine_slot.hpp"
#include "note_ledger.hpp"
#include "parameters.hpp"
#include "transport.hpp"

START_NAMESPACE_DISTRHO

using namespace cadenza_plugin;

namespace {

// Events one block may write: the host's input (DPF passes at most 512),
// the engine's answers, and a release of every note on every channel.
constexpr uint32_t kMaxOutEvents = 512 + kMaxEngineEvents + kChannels * kPitches;
constexpr const char* kModelStateKey = "model";
// The model step's precision: "fp32" (the default) or "int8" (the file's int8
// step: about half the CPU, its own answers).  A state, not a parameter: a
// change loads the model again, off the audio thread.
constexpr const char* kPrecisionStateKey = "precision";
enum StateIndex : uint32_t { kModelState, kPrecisionState, kStateCount };

struct OutEvent {
    uint32_t frame;
    uint8_t data[3];
    uint8_t size;
};

std::string dirname_of(const std::string& path) {
    // Windows hosts give paths with backslashes (and accept '/' after them).
    const std::size_t slash = path.find_last_of("/\\");
    return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

bool is_file(const std::string& path) {
    FILE* file = std::fopen(path.c_str(), "rb");
    if (file != nullptr) {
        std::fclose(file);
    }
    return file != nullptr;
}

// Where the build puts the model in each format's bundle: LV2 <bundle>/resources,
// VST3 <bundle>/Contents/Resources, CLAP (one file) cadenza-resources beside it.
std::string bundled_model_path(const char* bundle) {
    if (bundle == nullptr) {
        return kBundledModelFile;
    }
    const std::string root(bundle);
    const std::string candidates[] = {
        root + "/resources/" + kBundledModelFile,
        root + "/Contents/Resources/" + kBundledModelFile,
        dirname_of(root) + "/cadenza-resources/" + kBundledModelFile,
    };
    for (const std::string& candidate : candidates) {
        if (is_file(candidate)) {
            return candidate;
        }
    }
    return candidates[0];
}

}  // namespace

class CadenzaPlugin : public Plugin {
  public:
    // LV2's beat between position messages is DPF's extrapolation: see transport.hpp.
    CadenzaPlugin()
        : Plugin(kParamCount, 0, kStateCount),
          transport_(std::strcmp(getPluginFormatName(), "LV2") != 0) {
        for (uint32_t i = 0; i < kParamCount; ++i) {
            params_[i] = param_spec(i).def;
        }
        settings_ = settings_from(params_);
        if (!isDummyInstance()) {
            load_model();
        }
    }

  protected:
    const char* getLabel() const override { return "Cadenza"; }
    const char* getDescription() const override {
        return "A live improviser: answers the performer's phrases on the host's grid.";
    }
    const char* getMaker() const override { return "Cadenza"; }
    const char* getHomePage() const override { return "urn:cadenza:improviser"; }
    const char* getLicense() const override { return "MIT"; }
    uint32_t getVersion() const override { return d_version(0, 1, 0); }
    int64_t getUniqueId() const override { return d_cconst('C', 'd', 'n', 'z'); }

    void initParameter(uint32_t index, Parameter& parameter) override {
        const ParamSpec& spec = param_spec(index);
        parameter.hints = spec.hints;
        parameter.name = spec.name;
        parameter.symbol = spec.symbol;
        parameter.ranges.min = spec.min;
        parameter.ranges.max = spec.max;
        parameter.ranges.def = spec.def;
        if (index == kBypass) {
            parameter.initDesignation(kParameterDesignationBypass);
        }
        if (spec.labels != nullptr) {
            const int count = static_cast<int>(spec.max - spec.min) + 1;
            parameter.enumValues.count = static_cast<uint8_t>(count);
            parameter.enumValues.restrictedMode = true;
            parameter.enumValues.values = new ParameterEnumerationValue[count];
            for (int i = 0; i < count; ++i) {
                parameter.enumValues.values[i].value = spec.min + static_cast<float>(i);
                parameter.enumValues.values[i].label = spec.labels[i];
            }
        }
    }

    void initState(uint32_t index, State& state) override {
        if (index == kPrecisionState) {
            state.hints = kStateIsHostWritable;
            state.key = kPrecisionStateKey;
            state.defaultValue = "fp32";
            state.label = "Model step";
            state.description = "fp32, or int8: the model's int8 step (about half the CPU; "
                                "the model must carry int8 weights).";
            return;
        }
        state.hints = kStateIsFilenamePath;
        state.key = kModelStateKey;
        state.defaultValue = "";
        state.label = "Model";
        state.description = "A Cadenza model file; empty: the bundled model.";
    }

    float getParameterValue(uint32_t index) const override {
        if (index == kModelStatus) {
            return static_cast<float>(model_status_.load(std::memory_order_relaxed));
        }
        return params_[index];
    }

    // Called on the audio thread (or with it stopped): no allocation here.
    void setParameterValue(uint32_t index, float value) override {
        if (index >= kParamCount || index == kModelStatus) {
            return;
        }
        params_[index] = value;
        const Settings from_params = settings_from(params_);
        // A parameter the host sets wins over an earlier CC for that setting only.
        switch (index) {
            case kTemperature: settings_.temperature = from_params.temperature; break;
            case kMode: settings_.mode = from_params.mode; break;
            case kEnabled: settings_.enabled = from_params.enabled; break;
            case kKeyStrength: settings_.key_strength = from_params.key_strength; break;
            default: {
                const Settings keep = settings_;
                settings_ = from_params;
                settings_.temperature = keep.temperature;
                settings_.mode = keep.mode;
                settings_.enabled = keep.enabled;
                settings_.key_strength = keep.key_strength;
            }
        }
        settings_dirty_ = true;
    }

    // Off the audio thread (the host's state restore, or LV2's worker).
    // The two are set one at a time (a restore sets both): each loads the
    // model with the other's current value.
    void setState(const char* key, const char* value) override {
        if (std::strcmp(key, kModelStateKey) == 0) {
            model_value_ = value == nullptr ? "" : value;
            load_model();
        } else if (std::strcmp(key, kPrecisionStateKey) == 0) {
            const std::string precision = value == nullptr ? "" : value;
            if (precision != "fp32" && precision != "int8" && !precision.empty()) {
                d_stderr("Cadenza: precision must be fp32 or int8, not \"%s\": kept %s",
                         precision.c_str(), int8_ ? "int8" : "fp32");
                model_status_.store(static_cast<int>(LoadError::Unreadable), std::memory_order_relaxed);
                return;
            }
            const bool int8 = precision == "int8";
            if (int8 == int8_) {
                return;  // the engine playing has it already (a restore, the default at start)
            }
            int8_ = int8;
            load_model();
        }
    }

    void activate() override {
        clock_frames_ = 0;
        transport_.reset();
        if (EngineAdapter* engine = slot_.current()) {
            engine->stop(now_seconds());
        }
    }

    void deactivate() override {
        // No output buffer here: the notes still sounding go out first thing
        // after the next activate.
        release_on_next_run_ = answers_.any();
        slot_.collect();
    }

    void run(const float**, float**, uint32_t frames, const MidiEvent* events,
             uint32_t count) override {
        out_count_ = 0;
        const double rate = getSampleRate();
        const bool bypassed = params_[kBypass] >= 0.5f;

        if (release_on_next_run_) {
            release_answers();
            release_on_next_run_ = false;
        }

        const TimePosition& time = getTimePosition();
        const HostPosition position = host_position(time);
        const TransportChange change = transport_.update(position, frames, rate);
        // Cycles the host lost: the music went on, so the engine's clock does too.
        clock_frames_ += transport_.skipped();
        const uint64_t start = clock_frames_;
        const double now = static_cast<double>(start) / rate;

        const bool swapped = slot_.take_offer();
        EngineAdapter* engine = slot_.current();
        if (swapped) {
            release_answers();
            settings_dirty_ = true;
        }
        if (engine != nullptr && settings_dirty_) {
            engine->apply(settings_);
        }
        settings_dirty_ = false;

        if (change == TransportChange::Stopped || change == TransportChange::Jumped ||
            (bypassed && !was_bypassed_) || (!settings_.enabled && was_enabled_)) {
            release_answers();
            if (engine != nullptr) {
                engine->stop(now_seconds());
            }
        }
        if (engine != nullptr && transport_.rolling()) {
            if (swapped || change == TransportChange::Started || change == TransportChange::Jumped) {
                engine->set_tempo(transport_.bpm(), now);
                engine->locate(transport_.beat(), now);
            } else if (change == TransportChange::Tempo) {
                engine->set_tempo(transport_.bpm(), now);
            }
        }
        was_bypassed_ = bypassed;
        was_enabled_ = settings_.enabled;

        const bool listening = engine != nullptr && transport_.rolling() && !bypassed;
        for (uint32_t i = 0; i < count; ++i) {
            const MidiEvent& event = events[i];
            if (event.size > MidiEvent::kDataSize) {
                continue;  // SysEx: not Cadenza's
            }
            const uint32_t frame = event.frame < frames ? event.frame : frames - 1;
            if (bypassed) {
                emit(frame, event.data, static_cast<uint8_t>(event.size));
                continue;
            }
            if (handle_control(frame, event.data, event.size, engine)) {
                continue;
            }
            if (listening) {
                drain(engine, static_cast<double>(start + frame) / rate, start, frames, rate);
            }
            forward(frame, event.data, static_cast<uint8_t>(event.size));
            if (listening && settings_.enabled) {
                const std::size_t n = engine->on_message(
                    event.data, static_cast<uint8_t>(event.size),
                    static_cast<double>(start + frame) / rate, due_, kMaxEngineEvents);
                emit_engine(n, start, frames, rate);
            }
        }
        if (listening) {
            drain(engine, (static_cast<double>(start + frames) - 0.5) / rate, start, frames, rate);
        }
        write_out();
        clock_frames_ += frames;
    }

  private:
    static HostPosition host_position(const TimePosition& time) {
        HostPosition position{false, time.frame, 0.0, 0.0};
        if (!time.playing || !time.bbt.valid || time.bbt.beatsPerMinute <= 0.0 ||
            time.bbt.ticksPerBeat <= 0.0) {
            return position;
        }
        position.rolling = true;
        position.bpm = time.bbt.beatsPerMinute;
        position.beat = static_cast<double>(time.bbt.bar - 1) * time.bbt.beatsPerBar +
                        static_cast<double>(time.bbt.beat - 1) +
                        time.bbt.tick / time.bbt.ticksPerBeat;
        return position;
    }

    // The daemon's CC map: a mapped controller steers Cadenza and goes no further.
    bool handle_control(uint32_t frame, const uint8_t* data, uint32_t size, EngineAdapter* engine) {
        if (size < 3 || (data[0] & 0xF0) != 0xB0) {
            return false;
        }
        switch (cc_control(data[1])) {
            case CcControl::None: return false;
            case CcControl::Temperature: settings_.temperature = cc_temperature(data[2]); break;
            case CcControl::Mode: settings_.mode = static_cast<int>(cc_mode(data[2])); break;
            case CcControl::KeyStrength: settings_.key_strength = cc_key_strength(data[2]); break;
            case CcControl::Enabled: settings_.enabled = cc_switch(data[2]); break;
            case CcControl::Tempo: return true;  // the host owns the tempo
            case CcControl::Panic:
                if (cc_switch(data[2])) {
                    release_answers(frame);
                    if (engine != nullptr) {
                        engine->stop(now_seconds());
                    }
                }
                return true;
        }
        if (engine != nullptr) {
            engine->apply(settings_);
        }
        if (!settings_.enabled && was_enabled_) {
            release_answers(frame);
            if (engine != nullptr) {
                engine->stop(now_seconds());
            }
        }
        was_enabled_ = settings_.enabled;
        return true;
    }

    // The performer's note goes on when pass-through is on; a release of a note
    // that went on always goes, so turning pass-through off never leaves one hanging.
    void forward(uint32_t frame, const uint8_t* data, uint8_t size) {
        const uint8_t kind = data[0] & 0xF0;
        const bool release = size >= 3 && (kind == 0x80 || (kind == 0x90 && data[2] == 0));
        if (params_[kPassThrough] >= 0.5f ||
            (release && passed_.sounding(data[0] & 0x0F, data[1] & 0x7F))) {
            emit(frame, data, size);
            passed_.track(data, size);
        }
    }

    // The engine's events due before `until`.
    void drain(EngineAdapter* engine, double until, uint64_t start, uint32_t frames, double rate) {
        emit_engine(engine->advance(until, due_, kMaxEngineEvents), start, frames, rate);
    }

    // Each of the engine's first `n` events in due_, at the frame its time rounds to.
    void emit_engine(std::size_t n, uint64_t start, uint32_t frames, double rate) {
        for (std::size_t i = 0; i < n; ++i) {
            const int64_t absolute = std::llround(due_[i].time * rate);
            int64_t frame = absolute - static_cast<int64_t>(start);
            frame = frame < 0 ? 0 : (frame >= frames ? frames - 1 : frame);
            emit(static_cast<uint32_t>(frame), due_[i].data, due_[i].size);
            answers_.track(due_[i].data, due_[i].size);
        }
    }

    double now_seconds() const { return static_cast<double>(clock_frames_) / getSampleRate(); }

    void release_answers(uint32_t frame = 0) {
        answers_.release_all([this, frame](uint8_t status, uint8_t pitch) {
            const uint8_t off[3] = {status, pitch, 0};
            emit(frame, off, 3);
        });
    }

    void emit(uint32_t frame, const uint8_t* data, uint8_t size) {
        if (out_count_ == kMaxOutEvents) {
            return;
        }
        OutEvent& out = out_[out_count_++];
        out.frame = frame;
        out.size = size;
        std::memcpy(out.data, data, size < 3 ? size : 3);
    }

    // In frame order, keeping the order of events on the same frame.
    void write_out() {
        for (uint32_t i = 1; i < out_count_; ++i) {
            const OutEvent moving = out_[i];
            uint32_t j = i;
            while (j > 0 && out_[j - 1].frame > moving.frame) {
                out_[j] = out_[j - 1];
                --j;
            }
            out_[j] = moving;
        }
        MidiEvent event;
        for (uint32_t i = 0; i < out_count_; ++i) {
            event.frame = out_[i].frame;
            event.size = out_[i].size;
            std::memcpy(event.data, out_[i].data, 3);
            event.data[3] = 0;
            event.dataExt = nullptr;
            if (!writeMidiEvent(event)) {
                break;
            }
        }
    }

    // Off the audio thread.  A model that cannot be used is refused: the
    // engine playing now keeps playing, and the status parameter says why.
    void load_model() {
        const std::string path =
            model_value_.empty() ? bundled_model_path(getBundlePath()) : model_value_;
        std::string why;
        LoadError error = LoadError::None;
        std::unique_ptr<EngineAdapter> engine = EngineAdapter::load(path, int8_, why, error);
        if (!engine) {
            d_stderr("Cadenza: %s", why.c_str());
            model_status_.store(static_cast<int>(error), std::memory_order_relaxed);
            return;
        }
        model_status_.store(0, std::memory_order_relaxed);
        slot_.offer(std::move(engine));
    }

    float params_[kParamCount] = {};
    Settings settings_;
    bool settings_dirty_ = true;
    bool was_bypassed_ = false;
    bool was_enabled_ = true;
    bool release_on_next_run_ = false;
    uint64_t clock_frames_ = 0;
    std::atomic<int> model_status_{0};
    // The model state's value and the precision: set and read off the audio thread only.
    std::string model_value_;
    bool int8_ = false;
    EngineSlot slot_;
    TransportTracker transport_;
    NoteLedger answers_;
    NoteLedger passed_;
    MidiOut due_[kMaxEngineEvents] = {};
    OutEvent out_[kMaxOutEvents] = {};
    uint32_t out_count_ = 0;

    DISTRHO_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR(CadenzaPlugin)
};

Plugin* createPlugin() { return new CadenzaPlugin(); }

END_NAMESPACE_DISTRHO
