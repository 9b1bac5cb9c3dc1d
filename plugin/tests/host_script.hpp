// The script the test hosts (clap_host.cpp, vst3_host.cpp) play, read from
// stdin.  Frames are absolute, counted from the first block:
//   rate R | bpm B | block N | frames TOTAL
//   param ID VALUE            set before the first block (CLAP host only)
//   midi FRAME HEX            e.g. "midi 0 903c5a"
//   locate FRAME BEAT         from the block holding FRAME the song is at BEAT
//   stop FRAME                the transport stops from the block holding FRAME
//   normalized ID VALUE       parameter ID (plugin/parameters.hpp) set to VALUE in 0..1
//                             in the first block (VST3 host only: VST3 sends normalized values)
//   state_in HEX              the plugin state loaded before activate
//   state_out                 the state saved after the last block, printed
#pragma once

#include <cstdint>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace host_script {

struct Script {
    double rate = 48000.0, bpm = 120.0;
    uint32_t block = 64;
    uint64_t frames = 0;
    std::vector<std::pair<uint32_t, double>> params;
    std::vector<std::pair<uint32_t, double>> normalized;
    std::multimap<uint64_t, std::vector<uint8_t>> midi;
    std::map<uint64_t, double> locates;
    uint64_t stop_at = UINT64_MAX;
    std::string state_in;  // bytes, decoded from the script's hex
    bool state_out = false;
};

inline std::vector<uint8_t> from_hex(const std::string& hex) {
    std::vector<uint8_t> bytes;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        bytes.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    return bytes;
}

inline Script read_script(std::istream& in) {
    Script s;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string word;
        words >> word;
        if (word == "rate") words >> s.rate;
        else if (word == "bpm") words >> s.bpm;
        else if (word == "block") words >> s.block;
        else if (word == "frames") words >> s.frames;
        else if (word == "param") {
            uint32_t id; double value;
            words >> id >> value;
            s.params.emplace_back(id, value);
        } else if (word == "normalized") {
            uint32_t id; double value;
            words >> id >> value;
            s.normalized.emplace_back(id, value);
        } else if (word == "midi") {
            uint64_t frame; std::string hex;
            words >> frame >> hex;
            s.midi.emplace(frame, from_hex(hex));
        } else if (word == "locate") {
            uint64_t frame; double beat;
            words >> frame >> beat;
            s.locates[frame] = beat;
        } else if (word == "stop") {
            words >> s.stop_at;
        } else if (word == "state_in") {
            std::string hex;
            words >> hex;
            const std::vector<uint8_t> bytes = from_hex(hex);
            s.state_in.assign(bytes.begin(), bytes.end());
        } else if (word == "state_out") {
            s.state_out = true;
        }
    }
    return s;
}

}  // namespace host_script
