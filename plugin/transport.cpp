#include "transport.hpp"

#include <cmath>


namespace cadenza_plugin {

TransportChange TransportTracker::update(const HostPosition& now, uint32_t frames, double rate) {
    const bool was_rolling = rolling_;
    TransportChange change = TransportChange::None;
    if (!now.rolling) {
        rolling_ = false;
        return was_rolling ? TransportChange::Stopped : TransportChange::None;
    }
    if (!was_rolling) {
        change = TransportChange::Started;
        beat_ = now.beat;
    } else {
        const double expected = beat_ + frames_ * bpm_ / (60.0 * rate);
        const uint64_t off = now.frame > next_frame_ ? now.frame - next_frame_
                                                     : next_frame_ - now.frame;
        if (off > kFrameJumpTolerance ||
            (trust_beat_ && std::fabs(now.beat - expected) > kBeatJumpTolerance)) {
            change = TransportChange::Jumped;
            beat_ = now.beat;
        } else {
            beat_ = expected;
            if (now.bpm != bpm_) {
                change = TransportChange::Tempo;
            }
        }
    }
    rolling_ = true;
    bpm_ = now.bpm;
    frames_ = frames;
    next_frame_ = now.frame + frames;
    return change;
}

}  // namespace cadenza_plugin
