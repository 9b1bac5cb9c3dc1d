#include "transport.hpp"

#include <cmath>

namespace cadenza_plugin {

TransportChange TransportTracker::update(const HostPosition& now, uint32_t frames, double rate) {
    const bool was_rolling = rolling_;
    TransportChange change = TransportChange::None;
    skipped_ = 0;
    if (!now.rolling) {
        rolling_ = false;
        return was_rolling ? TransportChange::Stopped : TransportChange::None;
    }
    if (!was_rolling) {
        unsettled_ = false;
        change = TransportChange::Started;
        beat_ = now.beat;
    } else {
        const double per_frame = bpm_ / (60.0 * rate);
        const double expected = beat_ + frames_ * per_frame;
        const uint64_t ahead = now.frame > next_frame_ ? now.frame - next_frame_ : 0;
        const bool frame_follows = now.frame + kFrameJumpTolerance >= next_frame_ &&
                                   now.frame <= next_frame_ + kFrameJumpTolerance;
        const uint64_t off = ahead > 0 ? ahead : next_frame_ - now.frame;
        const bool beat_follows =
            !(trust_beat_ && std::fabs(now.beat - expected) > kBeatJumpTolerance);
        if (frame_follows && beat_follows) {
            beat_ = expected;
            if (now.bpm != bpm_) {
                change = TransportChange::Tempo;
            }
            unsettled_ = false;
        } else if (!frame_follows && beat_follows && !unsettled_ && off <= frames) {
            // A frame up to one block off ours, once: JACK's stutter (see the
            // header) or the first block after lost cycles.  Keep our clock and
            // see which timeline the next block is on.
            beat_ = expected;
            unsettled_ = true;
            if (now.bpm != bpm_) {
                change = TransportChange::Tempo;
            }
            rolling_ = true;
            bpm_ = now.bpm;
            frames_ = frames;
            next_frame_ += frames;
            return change;
        } else if (!frame_follows && ahead > 0 && ahead <= kMaxSkipFrames &&
                   (!trust_beat_ ||
                    std::fabs(now.beat - (expected + ahead * per_frame)) <= kBeatJumpTolerance)) {
            change = TransportChange::Skipped;
            skipped_ = ahead;
            beat_ = expected + ahead * per_frame;
        } else {
            change = TransportChange::Jumped;
            beat_ = now.beat;
        }
    }
    if (change != TransportChange::None && change != TransportChange::Tempo) {
        unsettled_ = false;
    }
    rolling_ = true;
    bpm_ = now.bpm;
    frames_ = frames;
    next_frame_ = now.frame + frames;
    return change;
}

}  // namespace cadenza_plugin
