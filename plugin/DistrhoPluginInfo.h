// What DPF needs to know about Cadenza at compile time: a MIDI effect with no
// audio ports, the host's time position, and one state (the model's path).
#ifndef DISTRHO_PLUGIN_INFO_H_INCLUDED
#define DISTRHO_PLUGIN_INFO_H_INCLUDED

#define DISTRHO_PLUGIN_BRAND "Cadenza"
#define DISTRHO_PLUGIN_NAME  "Cadenza"
#define DISTRHO_PLUGIN_URI   "urn:cadenza:improviser"
#define DISTRHO_PLUGIN_CLAP_ID "org.cadenza.improviser"

#define DISTRHO_PLUGIN_BRAND_ID  Cdnz
#define DISTRHO_PLUGIN_UNIQUE_ID Impr

#define DISTRHO_PLUGIN_HAS_UI         0
#define DISTRHO_PLUGIN_IS_RT_SAFE     1
#define DISTRHO_PLUGIN_IS_SYNTH       0
#define DISTRHO_PLUGIN_NUM_INPUTS     0
#define DISTRHO_PLUGIN_NUM_OUTPUTS    0
#define DISTRHO_PLUGIN_WANT_MIDI_INPUT  1
#define DISTRHO_PLUGIN_WANT_MIDI_OUTPUT 1
#define DISTRHO_PLUGIN_WANT_TIMEPOS   1
#define DISTRHO_PLUGIN_WANT_STATE     1

#define DISTRHO_PLUGIN_LV2_CATEGORY    "lv2:MIDIPlugin"
#define DISTRHO_PLUGIN_VST3_CATEGORIES "Fx|Generator"
#define DISTRHO_PLUGIN_CLAP_FEATURES   "note-effect"

#endif
