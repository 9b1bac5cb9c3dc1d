"""The pure improviser: timestamped MIDI and clock ticks in, timestamped MIDI out.

No ports, threads, wall clock, JACK or file I/O here: every call carries its
time, already on the engine's clock.  Nothing in this package imports from
``cadenza.live.midi``, ``cadenza.live.daemon`` or ``cadenza.live.offline``
(``tests/core/test_layout.py`` checks it).
"""
