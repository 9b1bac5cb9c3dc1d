// Reads the host's transport block by block and says what changed: started,
// stopped, jumped (a relocation or a loop), skipped (the transport ran on
// through cycles the host lost, as JACK's does in an xrun), or a new tempo.
//
// A skip is a frame up to kMaxSkipFrames ahead of the expected one (with,
// where the beat is trusted, the host's beat where that many frames more would
// put it): the music went on, so the phrase is kept and the plugin's clock
// moves on by the frames skipped.  Under LV2 the beat is not trusted even
// then: JACK's own timebase example (jack_transport) counts its beats by the
// cycles it is called for, so through lost cycles its beat falls behind the
// transport frame; the frame is the transport's time.
// A frame up to one block off ours is first taken as noise: our clock goes on
// and the next block decides.  If it is back on our timeline, nothing
// happened; if it goes on from the host's odd frame, that block is a skip (or
// a jump, if behind).  Why: JACK's transport, when a client's cycle runs late
// (jalv on a loaded jackd -d dummy, as the jalv test found with a trace of
// every block), can hand a client the next cycle's frame and then the same
// frame again (30592, 30720, 30720, 30784): read at once, that is a skip of
// one period and then a jump back, and a jump drops the phrase and re-anchors
// to jack_transport's beat, which lags its frame (it counts whole ticks per
// cycle).  The cost: after cycles truly lost, notes due in the first block
// after them come up to a block late.
// A jump is a transport frame that does not follow on from the last block's
// by more than kFrameJumpTolerance, or, where the host's beat can be trusted
// (`trust_beat`), a beat more than kBeatJumpTolerance off the expected one.
// The beat is taken from the host only where the transport starts or jumps,
// and carried forward at the host's tempo in between.  Why two rules:
// - DPF 1.6's CLAP wrapper reports the host's steady sample count as the
//   frame, which runs on through a loop; only the beat (exact, CLAP's 31-bit
//   fixed point) shows the jump.
// - DPF 1.6's LV2 wrapper, when the host sends time:Position only on changes
//   (jalv does), extrapolates the beat in single precision and adds each bar
//   one block early (a false 4-beat jump a bar); there the frame, which it
//   carries on exactly, is the one to trust.
#pragma once

#include <cstdint>

namespace cadenza_plugin {

// Frames a host's transport frame may be off the expected one before it is a
// jump (hosts that derive frames from beats round them).
inline constexpr uint64_t kFrameJumpTolerance = 2;
// Beats a trusted host beat may be off ours before it is a jump (more than a
// tempo ramp's block-by-block rounding, less than any loop a host offers).
inline constexpr double kBeatJumpTolerance = 1.0 / 64.0;
// The longest run of lost cycles taken as a skip rather than a jump (0.17 s at 48 kHz).
inline constexpr uint64_t kMaxSkipFrames = 8192;

struct HostPosition {
    bool rolling;     // playing, with a valid bar/beat position and tempo
    uint64_t frame;
    double beat;      // beats since the start of bar 1
    double bpm;
};

enum class TransportChange : uint8_t { None, Started, Stopped, Jumped, Skipped, Tempo };

class TransportTracker {
  public:
    explicit TransportTracker(bool trust_beat) : trust_beat_(trust_beat) {}
    // What happened between the last block and this one, whose position is `now`.
    TransportChange update(const HostPosition& now, uint32_t frames, double rate);
    void reset() { rolling_ = false; }
    bool rolling() const { return rolling_; }
    double beat() const { return beat_; }  // at this block's start
    double bpm() const { return bpm_; }
    uint64_t skipped() const { return skipped_; }  // frames, when the change is Skipped

  private:
    bool trust_beat_;
    bool rolling_ = false;
    uint64_t next_frame_ = 0;
    double beat_ = 0.0;
    double bpm_ = 120.0;
    uint32_t frames_ = 0;
    uint64_t skipped_ = 0;
    bool unsettled_ = false;  // the last block's frame was off ours and not yet acted on
};

}  // namespace cadenza_plugin
