// A minimal VST3 host for the plugin's tests, on the VST3 interfaces DPF
// bundles (travesty, plain C structs of function pointers).  It loads a
// .vst3 module, makes the audio processor, activates its event buses and
// plays a script (host_script.hpp) block by block with the host's process
// context (project time in samples and quarters, tempo, 4/4), printing every
// note the plugin sends as MIDI with its absolute frame.  Parameters go in
// as the script's `normalized` lines, in the first block at offset 0, as a
// host's automation does.
//
// The state: `state_in` is given to the component before it is activated,
// and with `state_out` the state it saves after the run is printed.
//
// Output: "ev FRAME HEX" lines, then "state HEX" (with state_out), then "ok".
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "host_script.hpp"
#include "shared_library.hpp"
#include "travesty/audio_processor.h"
#include "travesty/bstream.h"
#include "travesty/component.h"
#include "travesty/events.h"
#include "travesty/factory.h"

namespace {

using host_script::Script;

// The host's side of an event list: an object whose first member points to
// the FUnknown + IEventList function table, as VST3 objects are laid out.
struct EventList {
    const v3_event_list_cpp* table;
    std::vector<v3_event> events;
    uint64_t block_start = 0;
};

v3_result V3_API list_query(void* self, const v3_tuid, void** obj) {
    *obj = self;
    return V3_OK;
}
uint32_t V3_API list_ref(void*) { return 1; }
uint32_t V3_API list_unref(void*) { return 1; }
uint32_t V3_API list_count(void* self) {
    return static_cast<uint32_t>(static_cast<EventList*>(self)->events.size());
}
v3_result V3_API list_get(void* self, int32_t index, v3_event* event) {
    auto* list = static_cast<EventList*>(self);
    if (index < 0 || static_cast<std::size_t>(index) >= list->events.size()) return V3_INVALID_ARG;
    *event = list->events[static_cast<std::size_t>(index)];
    return V3_OK;
}
// The plugin's output: printed at once, as MIDI.
v3_result V3_API list_add(void* self, v3_event* event) {
    const auto* list = static_cast<EventList*>(self);
    const unsigned long long frame = list->block_start + static_cast<uint64_t>(event->sample_offset);
    if (event->type == V3_EVENT_NOTE_ON) {
        std::printf("ev %llu %02x%02x%02x\n", frame, 0x90 | event->note_on.channel,
                    event->note_on.pitch, static_cast<int>(std::lround(event->note_on.velocity * 127)));
    } else if (event->type == V3_EVENT_NOTE_OFF) {
        std::printf("ev %llu %02x%02x%02x\n", frame, 0x80 | event->note_off.channel,
                    event->note_off.pitch,
                    static_cast<int>(std::lround(event->note_off.velocity * 127)));
    }
    return V3_OK;
}

v3_event_list_cpp make_table() {
    v3_event_list_cpp table{};
    table.query_interface = list_query;
    table.ref = list_ref;
    table.unref = list_unref;
    table.list.get_event_count = list_count;
    table.list.get_event = list_get;
    table.list.add_event = list_add;
    return table;
}

// DPF's VST3 parameter ids: its internal ones first (with MIDI input, 130
// MIDI CC parameters for each of 16 channels; no UI, latency or programs
// here), then the plugin's, in order (DistrhoPluginVST.hpp).
constexpr v3_param_id kFirstPluginParamId = 130 * 16;

// The host's parameter changes: one queue per parameter the script sets, a
// single point at offset 0 (first block only); the plugin's output values
// (DPF reports its output parameters through them) taken and dropped.
struct ParamQueue {
    const v3_param_value_queue_cpp* table;
    v3_param_id id = 0;
    double value = 0.0;
};
struct ParamChanges {
    const v3_param_changes_cpp* table;
    ParamQueue* sink;                 // where output values go
    std::vector<ParamQueue>* queues;  // input: the changes this block carries
};

v3_param_id V3_API queue_id(void* self) { return static_cast<ParamQueue*>(self)->id; }
int32_t V3_API queue_count(void*) { return 1; }
v3_result V3_API queue_get(void* self, int32_t index, int32_t* offset, double* value) {
    if (index != 0) return V3_INVALID_ARG;
    *offset = 0;
    *value = static_cast<ParamQueue*>(self)->value;
    return V3_OK;
}
v3_result V3_API queue_add(void*, int32_t, double, int32_t* index) {
    *index = 0;
    return V3_OK;
}
int32_t V3_API changes_count(void* self) {
    const auto* changes = static_cast<ParamChanges*>(self);
    return changes->queues ? static_cast<int32_t>(changes->queues->size()) : 0;
}
v3_param_value_queue** V3_API changes_get(void* self, int32_t index) {
    auto* changes = static_cast<ParamChanges*>(self);
    if (!changes->queues || index < 0 || static_cast<std::size_t>(index) >= changes->queues->size()) {
        return nullptr;
    }
    return reinterpret_cast<v3_param_value_queue**>(&(*changes->queues)[static_cast<std::size_t>(index)]);
}
v3_param_value_queue** V3_API changes_add(void* self, v3_param_id*, int32_t* index) {
    *index = 0;
    return reinterpret_cast<v3_param_value_queue**>(static_cast<ParamChanges*>(self)->sink);
}

v3_param_value_queue_cpp make_queue_table() {
    v3_param_value_queue_cpp table{};
    table.query_interface = list_query;
    table.ref = list_ref;
    table.unref = list_unref;
    table.queue.get_param_id = queue_id;
    table.queue.get_point_count = queue_count;
    table.queue.get_point = queue_get;
    table.queue.add_point = queue_add;
    return table;
}

v3_param_changes_cpp make_changes_table() {
    v3_param_changes_cpp table{};
    table.query_interface = list_query;
    table.ref = list_ref;
    table.unref = list_unref;
    table.changes.get_param_count = changes_count;
    table.changes.get_param_data = changes_get;
    table.changes.add_param_data = changes_add;
    return table;
}

// A byte stream over memory, for the component's state (IBStream).
struct StreamTable {
    v3_funknown unknown;
    v3_bstream stream;
};
struct Stream {
    const StreamTable* table;
    std::string bytes;
    std::size_t at = 0;
};
v3_result V3_API stream_read(void* self, void* buffer, int32_t size, int32_t* done) {
    auto* s = static_cast<Stream*>(self);
    const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(size), s->bytes.size() - s->at);
    std::memcpy(buffer, s->bytes.data() + s->at, n);
    s->at += n;
    if (done != nullptr) *done = static_cast<int32_t>(n);
    return V3_OK;
}
v3_result V3_API stream_write(void* self, void* buffer, int32_t size, int32_t* done) {
    auto* s = static_cast<Stream*>(self);
    s->bytes.append(static_cast<const char*>(buffer), static_cast<std::size_t>(size));
    s->at = s->bytes.size();
    if (done != nullptr) *done = size;
    return V3_OK;
}
v3_result V3_API stream_seek(void* self, int64_t pos, int32_t mode, int64_t* result) {
    auto* s = static_cast<Stream*>(self);
    const int64_t base = mode == V3_SEEK_SET ? 0 : mode == V3_SEEK_CUR ? static_cast<int64_t>(s->at)
                                                                      : static_cast<int64_t>(s->bytes.size());
    const int64_t to = std::max<int64_t>(0, std::min<int64_t>(base + pos, static_cast<int64_t>(s->bytes.size())));
    s->at = static_cast<std::size_t>(to);
    if (result != nullptr) *result = to;
    return V3_OK;
}
v3_result V3_API stream_tell(void* self, int64_t* pos) {
    *pos = static_cast<int64_t>(static_cast<Stream*>(self)->at);
    return V3_OK;
}
const StreamTable kStreamTable = {{list_query, list_ref, list_unref},
                                  {stream_read, stream_write, stream_seek, stream_tell}};

// A MIDI note message as a VST3 note event (the velocity placed so that the
// plugin's float-to-MIDI truncation gives it back).
bool to_event(const std::vector<uint8_t>& midi, int32_t offset, v3_event& event) {
    std::memset(&event, 0, sizeof event);
    event.sample_offset = offset;
    const uint8_t kind = midi[0] & 0xF0;
    const float velocity = (static_cast<float>(midi[2]) + 0.5f) / 127.0f;
    if (kind == 0x90 && midi[2] > 0) {
        event.type = V3_EVENT_NOTE_ON;
        event.note_on = {static_cast<int16_t>(midi[0] & 0x0F), midi[1], 0.0f, velocity, 0, -1};
    } else if (kind == 0x80 || kind == 0x90) {
        event.type = V3_EVENT_NOTE_OFF;
        event.note_off = {static_cast<int16_t>(midi[0] & 0x0F), midi[1], velocity, -1, 0.0f};
    } else {
        return false;
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s PLUGIN.vst3/Contents/ARCH/NAME.so < script\n", argv[0]);
        return 2;
    }
    std::string why;
    void* module = shared_library::open(argv[1], why);
    if (module == nullptr) {
        std::fprintf(stderr, "cannot load %s: %s\n", argv[1], why.c_str());
        return 1;
    }
    // The module's entry: ModuleEntry(handle) on Linux, InitDll() on Windows.
    using FactoryFn = v3_plugin_factory** (*)();
    auto get_factory = reinterpret_cast<FactoryFn>(shared_library::symbol(module, "GetPluginFactory"));
#ifdef _WIN32
    using EntryFn = bool (*)();
    auto entry = reinterpret_cast<EntryFn>(shared_library::symbol(module, "InitDll"));
    const bool entered = entry != nullptr && entry();
#else
    using EntryFn = bool (*)(void*);
    auto entry = reinterpret_cast<EntryFn>(shared_library::symbol(module, "ModuleEntry"));
    const bool entered = entry != nullptr && entry(module);
#endif
    if (get_factory == nullptr || !entered) {
        std::fprintf(stderr, "%s: no module entry or GetPluginFactory, or the entry failed\n", argv[1]);
        return 1;
    }
    v3_plugin_factory** factory = get_factory();
    v3_tuid class_id{};
    bool found = false;
    for (int32_t i = 0, n = v3_cpp_obj(factory)->num_classes(factory); i < n && !found; ++i) {
        v3_class_info info{};
        v3_cpp_obj(factory)->get_class_info(factory, i, &info);
        if (std::strcmp(info.category, "Audio Module Class") == 0) {
            std::memcpy(class_id, info.class_id, sizeof class_id);
            found = true;
        }
    }
    v3_component** component = nullptr;
    if (!found || v3_cpp_obj(factory)->create_instance(factory, class_id, v3_component_iid,
                                                       reinterpret_cast<void**>(&component)) != V3_OK) {
        std::fprintf(stderr, "%s: no audio module to create\n", argv[1]);
        return 1;
    }
    v3_audio_processor** processor = nullptr;
    if (v3_cpp_obj_initialize(component, nullptr) != V3_OK ||
        v3_cpp_obj_query_interface(component, v3_audio_processor_iid, &processor) != V3_OK) {
        std::fprintf(stderr, "initialize or the audio processor failed\n");
        return 1;
    }
    const Script script = host_script::read_script(std::cin);
    auto* comp = v3_cpp_obj(component);
    if (!script.state_in.empty()) {
        Stream in{&kStreamTable, script.state_in, 0};
        if (comp->set_state(component, reinterpret_cast<v3_bstream**>(&in)) != V3_OK) {
            std::fprintf(stderr, "set_state failed\n");
            return 1;
        }
    }
    comp->activate_bus(component, V3_EVENT, V3_INPUT, 0, true);
    comp->activate_bus(component, V3_EVENT, V3_OUTPUT, 0, true);
    v3_process_setup setup{V3_REALTIME, V3_SAMPLE_32, static_cast<int32_t>(script.block), script.rate};
    auto* proc = v3_cpp_obj(processor);
    if (proc->setup_processing(processor, &setup) != V3_OK || comp->set_active(component, true) != V3_OK) {
        std::fprintf(stderr, "setup_processing or set_active failed\n");
        return 1;
    }
    proc->set_processing(processor, true);

    const v3_event_list_cpp table = make_table();
    EventList in{&table, {}, 0};
    EventList out{&table, {}, 0};
    const v3_param_value_queue_cpp queue_table = make_queue_table();
    const v3_param_changes_cpp changes_table = make_changes_table();
    ParamQueue sink{&queue_table};
    std::vector<ParamQueue> first_block, none;
    for (const auto& [id, value] : script.normalized) {
        first_block.push_back({&queue_table, kFirstPluginParamId + id, value});
    }
    ParamChanges params_in{&changes_table, &sink, &first_block};
    ParamChanges params_out{&changes_table, &sink, nullptr};
    double beat = 0.0;
    bool playing = true;
    for (uint64_t start = 0; start < script.frames; start += script.block) {
        const uint32_t frames =
            static_cast<uint32_t>(std::min<uint64_t>(script.block, script.frames - start));
        for (const auto& [frame, target] : script.locates) {
            if (frame >= start && frame < start + frames) beat = target;
        }
        if (script.stop_at >= start && script.stop_at < start + frames) playing = false;

        v3_process_context context{};
        context.state = V3_PROCESS_CTX_PROJECT_TIME_VALID | V3_PROCESS_CTX_TEMPO_VALID |
                        V3_PROCESS_CTX_TIME_SIG_VALID | V3_PROCESS_CTX_CONT_TIME_VALID |
                        (playing ? V3_PROCESS_CTX_PLAYING : 0);
        context.sample_rate = script.rate;
        // The project time follows the song position (a loop moves it back);
        // the continuous time is the host's running count.
        context.project_time_in_samples = std::llround(beat * 60.0 / script.bpm * script.rate);
        context.continuous_time_in_samples = static_cast<int64_t>(start);
        context.project_time_quarters = beat;
        context.bpm = script.bpm;
        context.time_sig_numerator = 4;
        context.time_sig_denom = 4;

        in.events.clear();
        for (auto it = script.midi.lower_bound(start); it != script.midi.end() && it->first < start + frames;
             ++it) {
            v3_event event;
            if (to_event(it->second, static_cast<int32_t>(it->first - start), event)) {
                in.events.push_back(event);
            }
        }
        out.block_start = start;
        v3_process_data data{};
        data.process_mode = V3_REALTIME;
        data.symbolic_sample_size = V3_SAMPLE_32;
        data.nframes = static_cast<int32_t>(frames);
        // An object pointer is the address of its first member, the table pointer.
        data.input_events = reinterpret_cast<v3_event_list**>(&in);
        data.output_events = reinterpret_cast<v3_event_list**>(&out);
        params_in.queues = start == 0 ? &first_block : &none;
        data.input_params = reinterpret_cast<v3_param_changes**>(&params_in);
        data.output_params = reinterpret_cast<v3_param_changes**>(&params_out);
        data.ctx = &context;
        proc->process(processor, &data);
        if (playing) beat += frames * script.bpm / (60.0 * script.rate);
    }
    proc->set_processing(processor, false);
    comp->set_active(component, false);
    if (script.state_out) {
        Stream out_state{&kStreamTable, {}, 0};
        if (comp->get_state(component, reinterpret_cast<v3_bstream**>(&out_state)) != V3_OK) {
            std::fprintf(stderr, "get_state failed\n");
            return 1;
        }
        std::printf("state ");
        for (unsigned char c : out_state.bytes) std::printf("%02x", c);
        std::printf("\n");
    }
    v3_cpp_obj_unref(processor);
    v3_cpp_obj_terminate(component);
    v3_cpp_obj_unref(component);
    std::printf("ok\n");
    return 0;
}
