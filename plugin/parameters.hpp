// The plugin's parameters: the daemon's [live] settings under the daemon's
// names, ranges and defaults (cadenza/config.py LiveConfig, config.toml),
// plus the plugin's own (pass-through, bypass, and the model status it reports).
#pragma once

#include <cstdint>

#include "engine_adapter.hpp"

namespace cadenza_plugin {

enum ParamId : uint32_t {
    kMode = 0,
    kRhythm,
    kGrid,
    kTemperature,
    kTopP,
    kKey,
    kKeyStrength,
    kKeyBalance,
    kRegister,
    kOctave,
    kPauseBeats,
    kChannel,
    kGate,
    kEnabled,
    kSeed,
    kPassThrough,
    kBypass,
    kModelStatus,  // output: 0 playing, 1 model missing, 2 model refused
    kContinuity,   // new parameters go last, so the earlier ones keep their indices
    kKeySpread,
    kTexture,
    kParamCount
};

struct ParamSpec {
    const char* symbol;
    const char* name;
    float min, max, def;
    uint32_t hints;
    const char* const* labels;  // enumeration labels (min..max), or nullptr
};

const ParamSpec& param_spec(uint32_t index);

// The engine's settings from the parameter values (indexed by ParamId).
Settings settings_from(const float* values);

// The daemon's default CC map ([live.cc]): what a controller steers.
enum class CcControl : uint8_t { None, Temperature, Mode, Enabled, Panic, Tempo, KeyStrength };
CcControl cc_control(uint8_t controller);

// What a CC value means, as live/controls.py reads it.
float cc_temperature(uint8_t value);
float cc_mode(uint8_t value);
bool cc_switch(uint8_t value);
float cc_key_strength(uint8_t value);

}  // namespace cadenza_plugin
