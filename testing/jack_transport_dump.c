/* jack_transport_dump: MIDI events placed on JACK transport's time line.
 *
 * jack_midi_dump -a stamps each event with the frames its own client has
 * processed; a cycle that client misses (an xrun) is never counted, so on
 * a noisy machine its clock falls behind the transport a period at a time,
 * and a judge that numbers a master's ticks by their gaps on it numbers
 * them wrong.  A master such as jack_midi_clock places tick k at transport
 * frame k * interval, so the transport's frame is the master's own time
 * line: this client writes it beside each event, and a judge reads each
 * tick's number (and where a note fell against the master's grid) from it
 * directly.
 *
 * Output, one line per event: "TRANSPORT_FRAME OFFSET ROLLING CYCLE_USECS: HEX.."
 * (TRANSPORT_FRAME: the cycle's transport frame plus the event's OFFSET;
 * ROLLING: 1 while the transport rolled; CYCLE_USECS: when the cycle that
 * delivered it began, in jack_get_time()'s microseconds, CLOCK_MONOTONIC on
 * Linux: a judge compares it with when the event was sent, and the cycle
 * times with the transport's frames tell it how far JACK had stalled).
 * Events are handed from the process callback to the main thread through a
 * lock-free ring buffer; when the ring is full an event is counted, not
 * written, and the count is printed on exit.
 *
 * Usage: jack_transport_dump CLIENT_NAME   (input port CLIENT_NAME:input)
 */

#define _DEFAULT_SOURCE /* usleep */
#include <jack/jack.h>
#include <jack/midiport.h>
#include <jack/ringbuffer.h>
#include <jack/transport.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum { MAX_EVENT_BYTES = 16, RING_RECORDS = 8192 };

struct record {
    uint32_t transport_frame;
    uint64_t cycle_usecs;
    uint16_t offset;
    uint8_t rolling;
    uint8_t size;
    uint8_t bytes[MAX_EVENT_BYTES];
};

static jack_client_t *client;
static jack_port_t *input_port;
static jack_ringbuffer_t *ring;
static volatile sig_atomic_t running = 1;
static volatile uint32_t dropped;

static int process(jack_nframes_t nframes, void *arg) {
    (void)arg;
    jack_position_t position;
    jack_transport_state_t state = jack_transport_query(client, &position);
    jack_nframes_t cycle_frames;
    jack_time_t cycle_usecs, next_usecs;
    float period_usecs;
    if (jack_get_cycle_times(client, &cycle_frames, &cycle_usecs, &next_usecs, &period_usecs) != 0)
        cycle_usecs = 0;
    void *buffer = jack_port_get_buffer(input_port, nframes);
    uint32_t count = jack_midi_get_event_count(buffer);
    for (uint32_t i = 0; i < count; ++i) {
        jack_midi_event_t event;
        if (jack_midi_event_get(&event, buffer, i) != 0) continue;
        struct record r;
        memset(&r, 0, sizeof r);
        r.transport_frame = position.frame + event.time;
        r.offset = (uint16_t)event.time;
        r.cycle_usecs = cycle_usecs;
        r.rolling = state == JackTransportRolling;
        r.size = event.size < MAX_EVENT_BYTES ? (uint8_t)event.size : MAX_EVENT_BYTES;
        memcpy(r.bytes, event.buffer, r.size);
        if (jack_ringbuffer_write_space(ring) < sizeof r) {
            ++dropped;
            continue;
        }
        jack_ringbuffer_write(ring, (const char *)&r, sizeof r);
    }
    return 0;
}

static void stop(int signal_number) {
    (void)signal_number;
    running = 0;
}

static void drain(void) {
    struct record r;
    while (jack_ringbuffer_read_space(ring) >= sizeof r) {
        jack_ringbuffer_read(ring, (char *)&r, sizeof r);
        printf("%u %u %u %llu:", r.transport_frame, (unsigned)r.offset, (unsigned)r.rolling,
               (unsigned long long)r.cycle_usecs);
        for (unsigned i = 0; i < r.size; ++i) printf(" %02x", r.bytes[i]);
        printf("\n");
    }
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s CLIENT_NAME\n", argv[0]);
        return 2;
    }
    jack_status_t status;
    client = jack_client_open(argv[1], JackNoStartServer, &status);
    if (client == NULL) {
        fprintf(stderr, "jack_transport_dump: cannot open a JACK client (status 0x%x)\n",
                (unsigned)status);
        return 1;
    }
    ring = jack_ringbuffer_create(RING_RECORDS * sizeof(struct record));
    input_port = jack_port_register(client, "input", JACK_DEFAULT_MIDI_TYPE, JackPortIsInput, 0);
    if (ring == NULL || input_port == NULL) {
        fprintf(stderr, "jack_transport_dump: cannot create the ring or the input port\n");
        return 1;
    }
    jack_ringbuffer_mlock(ring);
    signal(SIGINT, stop);
    signal(SIGTERM, stop);
    jack_set_process_callback(client, process, NULL);
    if (jack_activate(client) != 0) {
        fprintf(stderr, "jack_transport_dump: cannot activate the client\n");
        return 1;
    }
    while (running) {
        drain();
        usleep(2000);
    }
    jack_deactivate(client);
    drain();
    if (dropped) fprintf(stderr, "jack_transport_dump: %u events dropped (ring full)\n", dropped);
    jack_client_close(client);
    jack_ringbuffer_free(ring);
    return 0;
}
