#include "parameters.hpp"

#include <cmath>

#include "DistrhoPlugin.hpp"

namespace cadenza_plugin {

namespace {

constexpr const char* kModes[] = {"call-response", "accompany", "continue"};
constexpr const char* kRhythms[] = {"grid", "mirror"};
constexpr const char* kGrids[] = {"1/4", "1/8", "1/16", "1/4t", "1/8t", "1/16t"};
constexpr double kGridBeats[] = {1.0, 0.5, 0.25, 2.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0};
constexpr const char* kKeys[] = {
    "off", "call", "auto",
    "C major", "C# major", "D major", "E- major", "E major", "F major",
    "F# major", "G major", "G# major", "A major", "B- major", "B major",
    "C minor", "C# minor", "D minor", "E- minor", "E minor", "F minor",
    "F# minor", "G minor", "G# minor", "A minor", "B- minor", "B minor",
};
constexpr const char* kRegisters[] = {"follow", "model"};
constexpr const char* kStatus[] = {"playing", "model missing", "model refused"};

// The largest seed a float parameter holds exactly.
constexpr float kMaxSeed = 16777215.0f;
// live/controls.py: CC 127 means this temperature; a switch is on from 64.
constexpr float kTemperatureCcMax = 2.0f;
constexpr uint8_t kSwitchOn = 64;
constexpr double kDecimals = 1e6;

using namespace DISTRHO;
constexpr uint32_t kAuto = kParameterIsAutomatable;
constexpr uint32_t kEnum = kParameterIsAutomatable | kParameterIsInteger;
constexpr uint32_t kBool = kParameterIsAutomatable | kParameterIsBoolean | kParameterIsInteger;

const ParamSpec kSpecs[kParamCount] = {
    {"mode", "Mode", 0, 2, 0, kEnum, kModes},
    {"rhythm", "Rhythm", 0, 1, 0, kEnum, kRhythms},
    {"grid", "Grid", 0, 5, 1, kEnum, kGrids},
    {"temperature", "Temperature", 0.0f, kTemperatureCcMax, 1.4f, kAuto, nullptr},
    {"top_p", "Top-p", 0.01f, 1.0f, 1.0f, kAuto, nullptr},
    {"key", "Key", 0, 26, 1, kEnum, kKeys},
    {"key_strength", "Key strength", 0.0f, 1.0f, 0.7f, kAuto, nullptr},
    {"key_balance", "Key balance", 0.0f, 10.0f, 4.0f, kAuto, nullptr},
    {"register", "Register", 0, 1, 0, kEnum, kRegisters},
    {"octave", "Octave", -1, 8, -1, kEnum, nullptr},
    {"pause_beats", "Pause beats", 0.25f, 16.0f, 2.0f, kAuto, nullptr},
    {"channel", "Channel", 1, 16, 1, kEnum, nullptr},
    {"gate", "Gate", 0.05f, 1.0f, 0.9f, kAuto, nullptr},
    {"enabled", "Enabled", 0, 1, 1, kBool, nullptr},
    {"seed", "Seed", 0, kMaxSeed, 0, kEnum, nullptr},
    {"pass_through", "Pass-through", 0, 1, 1, kBool, nullptr},
    {"bypass", "Bypass", 0, 1, 0, kBool, nullptr},
    {"model_status", "Model status", 0, 2, 0, kParameterIsOutput | kParameterIsInteger, kStatus},
    {"continuity", "Continuity", 0.0f, 1.0f, 0.8f, kAuto, nullptr},
    {"key_spread", "Key spread", 0.0f, 1.0f, 0.08f, kAuto, nullptr},
    {"texture", "Texture", 0.0f, 1.0f, 0.0f, kAuto, nullptr},
};

// A float parameter as the decimal it stands for (to a float's precision):
// 0.7f is the daemon's 0.7, so the engine gets the settings the daemon would.
double as_decimal(float value) { return std::round(static_cast<double>(value) * kDecimals) / kDecimals; }

int as_index(float value, int low, int high) {
    const int index = static_cast<int>(value + (value >= 0 ? 0.5f : -0.5f));
    return index < low ? low : (index > high ? high : index);
}

}  // namespace

const ParamSpec& param_spec(uint32_t index) { return kSpecs[index]; }

Settings settings_from(const float* values) {
    Settings s;
    s.mode = as_index(values[kMode], 0, 2);
    s.rhythm = as_index(values[kRhythm], 0, 1);
    s.grid = as_index(values[kGrid], 0, 5);
    s.grid_beats = kGridBeats[s.grid];
    s.temperature = as_decimal(values[kTemperature]);
    s.top_p = as_decimal(values[kTopP]);
    s.key = as_index(values[kKey], 0, 26);
    s.key_strength = as_decimal(values[kKeyStrength]);
    s.key_balance = as_decimal(values[kKeyBalance]);
    s.continuity = as_decimal(values[kContinuity]);
    s.key_spread = as_decimal(values[kKeySpread]);
    s.texture = as_decimal(values[kTexture]);
    s.register_mode = as_index(values[kRegister], 0, 1);
    s.octave = as_index(values[kOctave], -1, 8);
    s.pause_beats = as_decimal(values[kPauseBeats]);
    s.channel = as_index(values[kChannel], 1, 16);
    s.gate = as_decimal(values[kGate]);
    s.enabled = values[kEnabled] >= 0.5f;
    s.seed = static_cast<uint32_t>(as_index(values[kSeed], 0, static_cast<int>(kMaxSeed)));
    return s;
}

CcControl cc_control(uint8_t controller) {
    switch (controller) {
        case 21: return CcControl::Temperature;
        case 22: return CcControl::Mode;
        case 23: return CcControl::Enabled;
        case 24: return CcControl::Panic;
        case 25: return CcControl::Tempo;
        case 26: return CcControl::KeyStrength;
        default: return CcControl::None;
    }
}

float cc_temperature(uint8_t value) { return kTemperatureCcMax * value / 127.0f; }
// Three equal bands of 0..127, in the order of the modes.
float cc_mode(uint8_t value) { return static_cast<float>(value * 3 / 128); }
bool cc_switch(uint8_t value) { return value >= kSwitchOn; }
float cc_key_strength(uint8_t value) { return value / 127.0f; }

}  // namespace cadenza_plugin
