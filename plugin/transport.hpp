// Reads the host's transport block by block and says what changed: started,
// stopped, jumped (a relocation or a loop), or a new tempo.  The beat it keeps
// is its own, carried forward from the last jump at the host's tempo, so the
// rounding in a host's (or DPF's) block-by-block extrapolation never moves
// the grid; a frame that does not follow on, or a beat more than
// kBeatJumpTolerance off, is a jump.
#pragma once

#include <cstdint>

namespace cadenza_plugin {

// Beats a host's position may wander from ours before it counts as a jump.
inline constexpr double kBeatJumpTolerance = 1.0 / 64.0;

struct HostPosition {
    bool rolling;     // playing, with a valid bar/beat position and tempo
    uint64_t frame;
    double beat;      // beats since the start of bar 1
    double bpm;
};

enum class TransportChange : uint8_t { None, Started, Stopped, Jumped, Tempo };

class TransportTracker {
  public:
    // What happened between the last block and this one, whose position is `now`.
    TransportChange update(const HostPosition& now, uint32_t frames, double rate);
    void reset() { rolling_ = false; }
    bool rolling() const { return rolling_; }
    double beat() const { return beat_; }  // at this block's start
    double bpm() const { return bpm_; }

  private:
    bool rolling_ = false;
    uint64_t next_frame_ = 0;
    double beat_ = 0.0;
    double bpm_ = 120.0;
    uint32_t frames_ = 0;
};

}  // namespace cadenza_plugin
