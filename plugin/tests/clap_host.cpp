// A small CLAP host for the plugin's tests, on the CLAP headers DPF bundles.
// It loads a .clap file, plays a script read from stdin block by block (MIDI
// events, parameter values, the host's transport: tempo, song position in
// beats, play/stop, relocations) and prints every MIDI event the plugin
// sends, with its absolute frame.
//
// The script's lines: host_script.hpp.  Output: "ev FRAME HEX" lines, then
// "param ID VALUE" for every parameter, "status S" (the model status
// parameter) and, with state_out, "state HEX" (the state the plugin saves).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "clap/entry.h"
#include "clap/ext/params.h"
#include "clap/ext/state.h"
#include "clap/plugin-factory.h"
#include "clap/plugin.h"
#include "clap/process.h"
#include "host_script.hpp"
#include "shared_library.hpp"

namespace {

using host_script::Script;

constexpr uint32_t kModelStatusParam = 17;  // plugin/parameters.hpp ParamId::kModelStatus
constexpr std::size_t kMaxInEvents = 1024;

struct InEvents {
    clap_input_events_t list;
    std::vector<const clap_event_header_t*> events;
};

uint32_t in_size(const clap_input_events_t* list) {
    return static_cast<uint32_t>(static_cast<const InEvents*>(list->ctx)->events.size());
}
const clap_event_header_t* in_get(const clap_input_events_t* list, uint32_t index) {
    return static_cast<const InEvents*>(list->ctx)->events[index];
}

struct OutEvents {
    clap_output_events_t list;
    uint64_t block_start;
};

bool out_push(const clap_output_events_t* list, const clap_event_header_t* event) {
    const auto* out = static_cast<const OutEvents*>(list->ctx);
    if (event->type == CLAP_EVENT_MIDI && event->space_id == CLAP_CORE_EVENT_SPACE_ID) {
        const auto* midi = reinterpret_cast<const clap_event_midi_t*>(event);
        std::printf("ev %llu %02x%02x%02x\n",
                    static_cast<unsigned long long>(out->block_start + event->time),
                    midi->data[0], midi->data[1], midi->data[2]);
    }
    return true;
}

// The state streams: the whole state in memory.
struct ReadStream {
    clap_istream_t stream;
    const std::string* bytes;
    std::size_t at;
};
int64_t read_bytes(const clap_istream_t* stream, void* buffer, uint64_t size) {
    auto* in = static_cast<ReadStream*>(stream->ctx);
    const std::size_t n = std::min<std::size_t>(size, in->bytes->size() - in->at);
    std::memcpy(buffer, in->bytes->data() + in->at, n);
    in->at += n;
    return static_cast<int64_t>(n);
}
int64_t write_bytes(const clap_ostream_t* stream, const void* buffer, uint64_t size) {
    static_cast<std::string*>(stream->ctx)->append(static_cast<const char*>(buffer), size);
    return static_cast<int64_t>(size);
}

const void* host_extension(const clap_host_t*, const char*) { return nullptr; }
void host_request(const clap_host_t*) {}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s PLUGIN.clap < script\n", argv[0]);
        return 2;
    }
    std::string why;
    void* library = shared_library::open(argv[1], why);
    if (library == nullptr) {
        std::fprintf(stderr, "cannot load %s: %s\n", argv[1], why.c_str());
        return 1;
    }
    const auto* entry =
        static_cast<const clap_plugin_entry_t*>(shared_library::symbol(library, "clap_entry"));
    if (entry == nullptr || !entry->init(argv[1])) {
        std::fprintf(stderr, "%s: no clap_entry, or its init failed\n", argv[1]);
        return 1;
    }
    const auto* factory =
        static_cast<const clap_plugin_factory_t*>(entry->get_factory(CLAP_PLUGIN_FACTORY_ID));
    const clap_plugin_descriptor_t* descriptor = factory->get_plugin_descriptor(factory, 0);
    clap_host_t host = {CLAP_VERSION, nullptr, "cadenza-test-host", "cadenza", "", "1",
                        host_extension, host_request, host_request, host_request};
    const clap_plugin_t* plugin = factory->create_plugin(factory, &host, descriptor->id);
    if (plugin == nullptr || !plugin->init(plugin)) {
        std::fprintf(stderr, "%s: cannot create %s\n", argv[1], descriptor->id);
        return 1;
    }
    const Script script = host_script::read_script(std::cin);
    const auto* state = static_cast<const clap_plugin_state_t*>(plugin->get_extension(plugin, CLAP_EXT_STATE));
    if (!script.state_in.empty()) {
        ReadStream in{{nullptr, read_bytes}, &script.state_in, 0};
        in.stream.ctx = &in;
        if (state == nullptr || !state->load(plugin, &in.stream)) {
            std::fprintf(stderr, "state load failed\n");
            return 1;
        }
    }
    if (!plugin->activate(plugin, script.rate, 1, script.block) || !plugin->start_processing(plugin)) {
        std::fprintf(stderr, "activate/start_processing failed\n");
        return 1;
    }

    std::vector<clap_event_param_value_t> param_events;
    for (const auto& [id, value] : script.params) {
        param_events.push_back({{sizeof(clap_event_param_value_t), 0, CLAP_CORE_EVENT_SPACE_ID,
                                 CLAP_EVENT_PARAM_VALUE, 0},
                                id, nullptr, -1, -1, -1, -1, value});
    }
    InEvents in{{nullptr, in_size, in_get}, {}};
    in.list.ctx = &in;
    OutEvents out{{nullptr, out_push}, 0};
    out.list.ctx = &out;
    std::vector<clap_event_midi_t> midi_events;
    midi_events.reserve(kMaxInEvents);

    double beat = 0.0;
    bool playing = true;
    for (uint64_t start = 0; start < script.frames; start += script.block) {
        const uint32_t frames =
            static_cast<uint32_t>(std::min<uint64_t>(script.block, script.frames - start));
        for (const auto& [frame, target] : script.locates) {
            if (frame >= start && frame < start + frames) beat = target;
        }
        if (script.stop_at >= start && script.stop_at < start + frames) playing = false;

        clap_event_transport_t transport{};
        transport.header = {sizeof transport, 0, CLAP_CORE_EVENT_SPACE_ID, CLAP_EVENT_TRANSPORT, 0};
        transport.flags = CLAP_TRANSPORT_HAS_TEMPO | CLAP_TRANSPORT_HAS_BEATS_TIMELINE |
                          CLAP_TRANSPORT_HAS_TIME_SIGNATURE | (playing ? CLAP_TRANSPORT_IS_PLAYING : 0);
        transport.song_pos_beats = std::llround(beat * static_cast<double>(CLAP_BEATTIME_FACTOR));
        transport.tempo = script.bpm;
        transport.tsig_num = 4;
        transport.tsig_denom = 4;
        transport.bar_number = static_cast<int32_t>(std::floor(beat / 4.0));

        in.events.clear();
        midi_events.clear();
        if (start == 0) {
            for (const auto& event : param_events) in.events.push_back(&event.header);
        }
        for (auto it = script.midi.lower_bound(start); it != script.midi.end() && it->first < start + frames;
             ++it) {
            clap_event_midi_t midi{{sizeof(clap_event_midi_t), static_cast<uint32_t>(it->first - start),
                                    CLAP_CORE_EVENT_SPACE_ID, CLAP_EVENT_MIDI, 0},
                                   0, {it->second[0], it->second[1], it->second[2]}};
            midi_events.push_back(midi);
        }
        for (const auto& midi : midi_events) in.events.push_back(&midi.header);

        out.block_start = start;
        clap_process_t process{static_cast<int64_t>(start), frames, &transport, nullptr, nullptr, 0, 0,
                               &in.list, &out.list};
        plugin->process(plugin, &process);
        if (playing) beat += frames * script.bpm / (60.0 * script.rate);
    }

    double status = -1.0;
    if (const auto* params = static_cast<const clap_plugin_params_t*>(
            plugin->get_extension(plugin, CLAP_EXT_PARAMS))) {
        for (uint32_t i = 0; i < params->count(plugin); ++i) {
            clap_param_info_t info{};
            double value = 0.0;
            if (params->get_info(plugin, i, &info) && params->get_value(plugin, info.id, &value)) {
                std::printf("param %u %.9g\n", info.id, value);
            }
        }
        params->get_value(plugin, kModelStatusParam, &status);
    }
    std::printf("status %g\n", status);
    if (script.state_out) {
        std::string saved;
        clap_ostream_t out_stream{&saved, write_bytes};
        if (state == nullptr || !state->save(plugin, &out_stream)) {
            std::fprintf(stderr, "state save failed\n");
            return 1;
        }
        std::printf("state ");
        for (unsigned char c : saved) std::printf("%02x", c);
        std::printf("\n");
    }
    plugin->stop_processing(plugin);
    plugin->deactivate(plugin);
    plugin->destroy(plugin);
    entry->deinit();
    shared_library::close(library);
    return 0;
}
