// The one place the plugin meets the engine.  Everything the plugin knows of
// the engine goes through this class, so wiring the native engine in is a
// change to engine_adapter.cpp alone.
//
// Threads: load() runs off the audio thread (it reads a file); every other
// member runs on the audio thread and must not allocate, lock or block.
// Time is in seconds on the plugin's own running clock (frames since
// activate / sample rate); beats are the host's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace cadenza_plugin {

// The daemon's max_answer_notes: the longest call the stand-in remembers.
inline constexpr std::size_t kMaxCallNotes = 64;
// Events one engine call may hand back (an answer's notes due at once, a chord's releases).
inline constexpr std::size_t kMaxEngineEvents = 512;
// The engine's deadlines one advance() steps through (a block is advanced
// deadline by deadline); more than any block holds at the finest grid, and a
// bound on the audio thread's work should the engine keep asking.
inline constexpr int kMaxDeadlinesPerBlock = 1024;
// The file the build puts in each bundle's resources folder.
inline constexpr const char* kBundledModelFile = "cadenza.model";

struct MidiOut {
    double time;  // seconds on the plugin clock
    uint8_t data[3];
    uint8_t size;
};

enum class LoadError : uint8_t { None = 0, Missing = 1, Unreadable = 2 };

// The parameters as plain numbers: what the audio thread can hand the engine
// without allocating.  key: 0 off, 1 call, 2 auto, 3..14 C..B major, 15..26 C..B minor.
struct Settings {
    int mode = 0;            // index into call-response, accompany, continue
    int rhythm = 0;          // grid, mirror
    int grid = 1;            // 1/4, 1/8, 1/16, 1/4t, 1/8t, 1/16t
    double grid_beats = 0.5;
    double temperature = 1.4;
    double top_p = 1.0;
    int key = 1;
    double key_strength = 0.7;
    double key_balance = 4.0;
    double continuity = 0.8;
    double key_spread = 0.08;
    double texture = 0.0;
    int register_mode = 0;   // follow, model
    int octave = -1;
    double pause_beats = 2.0;
    int channel = 1;         // 1..16
    double gate = 0.9;
    bool enabled = true;
    uint32_t seed = 0;
};

class EngineAdapter {
  public:
    // Reads and checks the model at `path` (off the audio thread); `int8`:
    // run its int8 step (the file must carry one).  On failure returns
    // nullptr, sets `why` to a message naming the file and `error` to its kind.
    static std::unique_ptr<EngineAdapter> load(const std::string& path, bool int8, std::string& why,
                                               LoadError& error);
    ~EngineAdapter();
    EngineAdapter(const EngineAdapter&) = delete;
    EngineAdapter& operator=(const EngineAdapter&) = delete;

    // Audio thread from here on.
    void apply(const Settings& settings) noexcept;
    // The performer's message; events it causes at once go to `out` (returns how many).
    std::size_t on_message(const uint8_t* data, uint8_t size, double now, MidiOut* out,
                           std::size_t capacity) noexcept;
    // Events due strictly before `until`, in time order; returns how many were written.
    std::size_t advance(double until, MidiOut* out, std::size_t capacity) noexcept;
    void set_tempo(double bpm, double now) noexcept;
    void locate(double beat, double now) noexcept;
    // Forgets the phrase and whatever was scheduled; the plugin releases sounding notes itself.
    void stop(double now) noexcept;

    struct Impl;

  private:
    explicit EngineAdapter(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace cadenza_plugin
