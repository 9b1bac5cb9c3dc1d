// Reads the host's transport block by block and says what changed: started,
// stopped, jumped (a relocation or a loop), or a new tempo.
//
// A jump is told by the frame alone: a transport frame that does not follow on
// from the last block's by more than kFrameJumpTolerance.  The beat is taken
// from the host only where the transport starts or jumps, and carried forward
// at the host's tempo in between, because the beat a host reports between
// jumps cannot be trusted to the frame: DPF 1.6's LV2 wrapper, when the host
// sends time:Position only on changes (jalv does), extrapolates the beat in
// single precision and adds each bar one block early (a false 4-beat jump a
// bar); hosts that round frames to beats or back add their own jitter.
#pragma once

#include <cstdint>

namespace cadenza_plugin {

// Frames a host's transport frame may be off the expected one before it is a
// jump (hosts that derive frames from beats round them).
inline constexpr uint64_t kFrameJumpTolerance = 2;

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
