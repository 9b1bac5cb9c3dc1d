"""JackLag's arithmetic, on a stand-in for libjack (no server needed)."""

from __future__ import annotations

import ctypes
import sys

from cadenza.live.midi.jack_time import JackLag

RATE = 48000


class FakeJack:
    """jack_get_cycle_times and jack_transport_query, from plain numbers."""

    def __init__(self) -> None:
        self.timer = 0  # JACK's frame timer (it jumps on after an xrun)
        self.transport = 0  # the transport's frame (only the frames processed)
        self.rolling = True

    def jack_get_cycle_times(self, _client, frames, usecs, _next, _period) -> int:
        frames._obj.value = self.timer % (1 << 32)
        usecs._obj.value = 0
        return 0

    def jack_transport_query(self, _client, position) -> int:
        ctypes.memmove(ctypes.addressof(position) + 20,
                       (self.transport % (1 << 32)).to_bytes(4, sys.byteorder), 4)
        return 1 if self.rolling else 0


def opened(fake: FakeJack) -> JackLag:
    lag = JackLag()
    lag._lib, lag._client, lag._rate = fake, 1, float(RATE)
    return lag


def test_a_late_cycle_is_lag():
    fake = FakeJack()
    lag = opened(fake)
    assert lag.lag(10.0) == 0.0
    fake.timer = fake.transport = RATE  # a second of frames in a second and 30 ms
    assert abs(lag.lag(11.030) - 0.030) < 1e-9


def test_what_the_timer_gains_over_a_rolling_transport_is_lag():
    fake = FakeJack()
    lag = opened(fake)
    lag.lag(0.0)
    # An xrun: JACK moves its timer on by three periods it never processed.
    fake.timer, fake.transport = RATE + 192, RATE
    assert abs(lag.lag(1.004) - 0.004) < 1e-9
    fake.timer, fake.transport = 2 * RATE + 192, 2 * RATE
    assert abs(lag.lag(2.004) - 0.004) < 1e-9  # counted once, kept


def test_a_locate_or_a_stopped_transport_is_no_stall():
    fake = FakeJack()
    lag = opened(fake)
    lag.lag(0.0)
    fake.timer, fake.transport = RATE, 10 * RATE  # located ahead while rolling
    assert abs(lag.lag(1.0)) < 1e-9
    fake.timer, fake.transport = 2 * RATE, 0  # a loop back to the start
    assert abs(lag.lag(2.0)) < 1e-9
    fake.rolling = False
    fake.timer = 3 * RATE + 960  # stopped: the transport says nothing
    assert abs(lag.lag(3.02)) < 1e-9


def test_the_frame_timer_wraps():
    fake = FakeJack()
    fake.timer = fake.transport = (1 << 32) - RATE // 2
    lag = opened(fake)
    lag.lag(0.0)
    fake.timer += RATE
    fake.transport += RATE
    assert abs(lag.lag(1.0)) < 1e-9


def test_closed_it_is_zero():
    assert JackLag().lag(5.0) == 0.0


def test_a_burst_shares_one_reading_for_at_most_a_period():
    """An event within BURST_SECONDS of the one before is placed on the cycle
    read last (a storm costs libjack nothing more), for at most a period;
    an event after a pause is read afresh."""
    from cadenza.live.midi.jack_time import BURST_SECONDS

    fake = FakeJack()
    lag = opened(fake)
    calls = []

    def cycle_times(client, frames, usecs, _next, period):
        calls.append(1)
        period._obj.value = 64 / RATE * 1e6  # a 64-frame period, in microseconds
        return FakeJack.jack_get_cycle_times(fake, client, frames, usecs, _next, period)

    fake.jack_get_cycle_times = cycle_times
    lag.lag(10.0)
    fake.timer = fake.transport = 480  # a cycle began at 10.010 on the master's line
    assert abs(lag.lag(10.012) - 0.002) < 1e-9 and len(calls) == 2  # after a pause: read
    step = BURST_SECONDS / 2
    now = 10.012
    while now + step - 10.012 < 64 / RATE:  # a storm, for a period: one reading
        now += step
        assert abs(lag.lag(now) - (now - 10.010)) < 1e-9
    assert len(calls) == 2
    fake.timer = fake.transport = 544  # the next period
    now += step
    lag.lag(now)
    assert len(calls) == 3  # a period after the reading, the burst reads again
    assert abs(lag.lag(now + 0.005) - (now + 0.005 - 10.0 - 544 / RATE)) < 1e-9
    assert len(calls) == 4  # after a pause: read afresh
