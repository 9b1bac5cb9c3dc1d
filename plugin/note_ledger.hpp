// Which notes a stream has left sounding, per channel and pitch, so that
// every one of them can be released at once, in the block where it must be.
#pragma once

#include <cstdint>
#include <cstring>

namespace cadenza_plugin {

inline constexpr int kChannels = 16;
inline constexpr int kPitches = 128;

class NoteLedger {
  public:
    // Note-on with velocity 0 is a release, as everywhere in Cadenza.
    void track(const uint8_t* data, uint32_t size) {
        if (size < 3) {
            return;
        }
        const uint8_t kind = data[0] & 0xF0;
        const int channel = data[0] & 0x0F;
        const int pitch = data[1] & 0x7F;
        if (kind == 0x90 && data[2] > 0) {
            on_[channel][pitch] = 1;
        } else if (kind == 0x80 || kind == 0x90) {
            on_[channel][pitch] = 0;
        }
    }
    bool sounding(int channel, int pitch) const { return on_[channel][pitch] != 0; }
    bool any() const {
        for (const auto& row : on_) {
            for (uint8_t on : row) {
                if (on) {
                    return true;
                }
            }
        }
        return false;
    }
    // Calls emit(status, pitch) for each sounding note and forgets them all.
    template <typename Emit>
    void release_all(Emit&& emit) {
        for (int channel = 0; channel < kChannels; ++channel) {
            for (int pitch = 0; pitch < kPitches; ++pitch) {
                if (on_[channel][pitch]) {
                    emit(static_cast<uint8_t>(0x80 | channel), static_cast<uint8_t>(pitch));
                    on_[channel][pitch] = 0;
                }
            }
        }
    }
    void clear() { std::memset(on_, 0, sizeof on_); }

  private:
    uint8_t on_[kChannels][kPitches] = {};
};

}  // namespace cadenza_plugin
