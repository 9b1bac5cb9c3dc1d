"""The engine on explicit time: grouping, window, the modes, controls, stopping.

A ``FakePredictor`` whose favourite next token is "the one after the last"
makes every answer predictable: after index i come i+1, i+2, ...
"""

from __future__ import annotations

import mido
import numpy as np
import pytest

from cadenza.live.engine.engine import Engine, Event
from cadenza.live.offline.simulate import drive
from cadenza.tokens import midi_to_name
from testing.fake_predictor import FakePredictor
from tests.support.live_settings import mechanical

VOCAB = [midi_to_name(m) for m in range(48, 84)] + ["0.4.7", "2.7.11"]
C4 = 60


def make(vocab=VOCAB, rule=None, start_time=0.0, **settings) -> Engine:
    return Engine(FakePredictor(vocab, rule), mechanical(**settings), start_time=start_time)


def on(note: int, velocity: int = 80, channel: int = 0) -> mido.Message:
    return mido.Message("note_on", note=note, velocity=velocity, channel=channel)


def off(note: int, channel: int = 0) -> mido.Message:
    return mido.Message("note_off", note=note, channel=channel)


def cc(control: int, value: int) -> mido.Message:
    return mido.Message("control_change", control=control, value=value)


def run(engine: Engine, timed, end=None) -> list[Event]:
    """Drive the engine through ``timed`` messages; every event it returns."""
    events: list[Event] = []
    for _, _, out in drive(engine, sorted(timed, key=lambda m: m[0]), end=end):
        events.extend(out)
    return events


def note_ons(events):
    return [(e.time, e.message.note) for e in events if e.message.type == "note_on"]


def note_offs(events):
    return [(e.time, e.message.note) for e in events if e.message.type == "note_off"]


def phrase(notes, start=0.0, step=0.25, length=0.2, velocity=80):
    """Single notes one ``step`` apart (seconds), each held ``length``."""
    timed = []
    for i, n in enumerate(notes):
        timed.append((start + i * step, on(n, velocity)))
        timed.append((start + i * step + length, off(n)))
    return timed


# -- chord grouping and the window -------------------------------------------


def test_notes_within_the_chord_window_become_one_chord_token():
    engine = make()
    run(engine, [(0.0, on(60)), (0.012, on(64)), (0.030, on(67))])  # the edge counts
    assert engine.window == ("0.4.7",)


def test_notes_further_apart_are_separate_tokens():
    engine = make()
    run(engine, [(0.0, on(60)), (0.031, on(64))])
    assert engine.window == ("C4", "E4")


def test_zero_chord_window_still_groups_notes_at_the_same_instant():
    engine = make(chord_window_ms=0.0)
    run(engine, [(1.0, on(60)), (1.0, on(64)), (1.0, on(67)), (1.001, on(72))])
    assert engine.window == ("0.4.7", "C5")


def test_group_closes_on_its_deadline():
    engine = make()
    engine.on_message(on(60), 0.0)
    assert engine.next_deadline() == pytest.approx(0.030)
    engine.advance(0.029)
    assert engine.window == ()
    engine.advance(0.030)
    assert engine.window == ("C4",)


def test_out_of_vocabulary_input_enters_the_window_mapped():
    engine = make()
    run(engine, [(0.0, on(96)), (0.5, on(61)), (0.51, on(65)), (0.52, on(68))])
    # C7 -> the nearest C (C5 is the highest C); C# F G# is not a known chord,
    # none keeps two of its classes, so its top note G#4.
    assert engine.window == ("C5", "G#4")


def test_the_window_keeps_the_last_tokens_of_both_voices():
    class Small(FakePredictor):
        window = 4

    engine = Engine(Small(VOCAB), mechanical())
    run(engine, phrase([60, 62, 64]))  # answered with 3 notes: F4 F#4 G4
    assert engine.window == ("E4", "F4", "F#4", "G4")
    assert engine.predictor.history[-6:] == [VOCAB.index(t) for t in
                                             ("C4", "D4", "E4", "F4", "F#4", "G4")]


def test_window_starts_from_the_runners_fill():
    class Filled(FakePredictor):
        window = 3
        fill = (5, 6, 7)

    predictor = Filled(VOCAB)
    engine = Engine(predictor, mechanical())
    assert engine.window == tuple(VOCAB[i] for i in (5, 6, 7))
    assert predictor.history == [5, 6, 7]  # reset(primer) was called with the fill
    engine.prime(["C4"])
    assert engine.window == (VOCAB[6], VOCAB[7], "C4")


# -- call and response ----------------------------------------------------------


def test_call_response_answers_after_the_pause_on_the_grid():
    engine = make(bpm=120.0, grid="1/8", pause_beats=2.0, gate=0.9)
    events = run(engine, phrase([60, 62, 64], step=0.25, length=0.2))
    # Last release at 0.7 s (beat 1.4); + 2 beats = beat 3.4 -> first eighth at beat 3.5.
    ons = note_ons(events)
    assert [t for t, _ in ons] == pytest.approx([1.75, 2.0, 2.25])
    assert [n for _, n in ons] == [65, 66, 67]  # after E4 come F4, F#4, G4
    assert [t for t, _ in note_offs(events)] == pytest.approx([1.75 + 0.225, 2.225, 2.475])
    assert engine.sounding == frozenset()


def test_no_answer_while_a_key_is_held():
    engine = make()
    events = run(engine, [(0.0, on(60))], end=30.0)
    assert note_ons(events) == []
    assert engine.next_deadline() is None  # waiting for the performer, not polling


def test_answer_bars_sets_the_length():
    engine = make(answer_bars=1, grid="1/16")
    events = run(engine, phrase([60]))
    assert len(note_ons(events)) == 16


def test_max_answer_notes_caps_the_answer():
    engine = make(max_answer_notes=2)
    events = run(engine, phrase([60, 62, 64, 65, 67]))
    assert len(note_ons(events)) == 2


def test_performer_returning_stops_the_answer_within_one_grid_step():
    engine = make(bpm=120.0, grid="1/8", answer_bars=4)
    timed = phrase([60, 62]) + [(3.1, on(72)), (3.3, off(72))]
    events = run(engine, timed)
    answer = [(t, n) for t, n in note_ons(events) if t < 3.1 + engine.lookahead]
    later = [(t, n) for t, n in note_ons(events) if 3.1 + engine.lookahead < t < 3.3 + 1.0]
    assert answer and not later  # nothing new after the interruption (until the next answer)
    cut_off = max(t for t, _ in note_offs(events) if t < 3.3 + 1.0)
    assert cut_off <= 3.1 + 0.25 + 1e-9  # released within one eighth at 120 BPM
    assert engine.sounding == frozenset()


def test_interrupted_answer_leads_to_an_answer_to_the_new_call():
    engine = make(bpm=120.0, answer_bars=4)
    timed = phrase([60, 62]) + phrase([72, 74], start=3.1)
    events = run(engine, timed)
    after = sorted({t for t, _ in note_ons(events) if t > 3.5})  # chords: one onset
    # The new call ends at 3.55 s (beat 7.1); the answer starts at beat 9.5.
    assert after and after[0] == pytest.approx(4.75)
    assert len(after) == 32  # answer_bars=4 of eighths


def test_mirror_rhythm_reuses_the_calls_onsets_and_lengths():
    engine = make(bpm=60.0, grid="1/8", rhythm="mirror", gate=1.0, velocity=0)
    # quarter, eighth, eighth, half (at 60 BPM a beat is a second), slightly off the grid
    timed = [
        (0.00, on(60, 100)), (0.98, off(60)),
        (1.02, on(62, 60)), (1.49, off(62)),
        (1.51, on(64, 70)), (1.99, off(64)),
        (2.00, on(65, 90)), (4.01, off(65)),
    ]
    events = run(engine, timed)
    ons = [(e.time, e.message.velocity) for e in events if e.message.type == "note_on"]
    start = ons[0][0]
    assert start == pytest.approx(6.5)  # release at beat 4.01 + 2 -> beat 6.01 -> 6.5
    assert [t - start for t, _ in ons] == pytest.approx([0.0, 1.0, 1.5, 2.0])
    assert [v for _, v in ons] == [100, 60, 70, 90]  # the call's dynamics too
    offs = [t - start for t, _ in note_offs(events)]
    assert offs == pytest.approx([1.0, 1.5, 2.0, 4.0])


# -- accompany and continue --------------------------------------------------------


def test_accompany_plays_every_step_while_the_performer_plays():
    engine = make(mode="accompany", bpm=120.0, grid="1/8", pause_beats=1.0)
    timed = phrase([60, 64, 67, 72], start=0.1, step=0.5, length=0.4)
    events = run(engine, timed)
    ons = [t for t, _ in note_ons(events)]
    # First step after the first onset (beat 0.2) is beat 0.5; the last release is at
    # 2.0 s = beat 4, so steps continue while beat < 5.
    assert ons == pytest.approx([0.25 * k for k in range(1, 10)])
    # Conditioned on both voices: the window interleaves performer and Cadenza tokens.
    assert "C4" in engine.window and "C5" in engine.window and len(engine.window) == 13


def test_continue_plays_alone_from_the_seed_forever():
    engine = make(mode="continue", bpm=120.0, grid="1/4", start_time=10.0)
    engine.prime(["C4"])
    events = run(engine, [], end=10.0 + 4.0)
    ons = note_ons(events)
    assert [t for t, _ in ons] == pytest.approx([10.0 + 0.5 * k for k in range(9)])
    assert [n for _, n in ons][:3] == [61, 62, 63]
    assert engine.next_deadline() is not None  # it would go on


def test_continue_ignores_the_performer_but_listens():
    engine = make(mode="continue", bpm=120.0, grid="1/4")
    events = run(engine, [(0.6, on(72)), (0.7, off(72))], end=1.6)
    assert [t for t, _ in note_ons(events)] == pytest.approx([0.0, 0.5, 1.0, 1.5])
    assert "C5" in engine.window


# -- output: voicing, velocity, channel ------------------------------------------------


def test_chords_are_voiced_near_the_performers_register():
    chord_next = ["A4", "0.4.7"]  # after A4 the fake predicts 0.4.7
    engine = make(vocab=chord_next)
    events = run(engine, phrase([81, 81, 81]))  # A5: mapped to A4, register ~A5
    first = note_ons(events)[0][0]
    chord = sorted(n for t, n in note_ons(events) if t == first)
    assert chord == [72, 76, 79]  # C5 E5 G5: centred near A5 (81)


def test_fixed_octave_voicing():
    engine = make(vocab=["A4", "0.4.7"], octave=2)
    events = run(engine, phrase([81]))
    assert sorted(n for _, n in note_ons(events)) == [36, 40, 43]  # C2 E2 G2 around F#2


def test_velocity_follows_the_performer_or_is_fixed():
    engine = make()
    events = run(engine, phrase([60, 62], velocity=40) + phrase([64, 65], start=0.5, velocity=100))
    assert {e.message.velocity for e in events if e.message.type == "note_on"} == {70}
    engine = make(velocity=111, channel=10)
    events = run(engine, phrase([60]))
    assert all(e.message.velocity == 111 for e in events if e.message.type == "note_on")
    assert {e.message.channel for e in events} == {9}


def test_loop_guard_keeps_argmax_from_repeating_one_token():
    always_c4 = lambda history: np.linspace(1.0, 0.1, len(VOCAB))  # noqa: E731
    engine = make(rule=always_c4, answer_bars=2, loop_guard=2)
    events = run(engine, phrase([60]))
    notes = [n for _, n in note_ons(events)]
    assert len(notes) == 16 and len(set(notes)) > 1
    for i in range(len(notes) - 2):
        assert not notes[i] == notes[i + 1] == notes[i + 2]


# -- controls ----------------------------------------------------------------------------


CCS = {"temperature": 21, "mode": 22, "enabled": 23, "panic": 24, "tempo": 25}


def test_cc_temperature_and_mode():
    engine = make(cc=CCS)
    engine.on_message(cc(21, 127), 0.0)
    assert engine.temperature == pytest.approx(2.0)
    engine.on_message(cc(21, 0), 0.0)
    assert engine.temperature == 0.0
    engine.on_message(cc(22, 64), 0.0)
    assert engine.mode == "accompany"
    engine.on_message(cc(22, 127), 0.0)
    assert engine.mode == "continue"
    engine.on_message(cc(22, 0), 0.0)
    assert engine.mode == "call-response"


def test_cc_enabled_off_releases_and_silences():
    engine = make(mode="continue", cc=CCS, grid="1/4", gate=1.0)
    events = engine.advance(0.0)
    assert note_ons(events) and engine.sounding
    out = engine.on_message(cc(23, 0), 0.1)
    assert note_offs(out) and not engine.sounding
    assert engine.next_deadline() is None
    assert run(engine, [], end=5.0) == []
    engine.on_message(cc(23, 127), 5.0)
    assert note_ons(engine.advance(engine.next_deadline()))  # plays again from the next step


def test_cc_panic_releases_then_all_notes_off_and_all_sound_off():
    engine = make(mode="continue", cc=CCS, channel=3, gate=1.0)
    engine.advance(0.0)
    sounding = engine.sounding
    out = engine.on_message(cc(24, 127), 0.1)
    kinds = [(e.message.type, getattr(e.message, "control", None)) for e in out]
    assert kinds[: len(sounding)] == [("note_off", None)] * len(sounding)
    assert kinds[len(sounding):] == [("control_change", 123), ("control_change", 120)]
    assert all(e.message.channel == 2 and e.time == 0.1 for e in out)
    assert engine.sounding == frozenset()


def test_cc_tempo_changes_the_internal_clock():
    engine = make(mode="continue", cc=CCS, grid="1/4")
    engine.on_message(cc(25, 127), 0.0)  # 240 BPM
    assert engine.bpm == pytest.approx(240.0)
    events = run(engine, [], end=1.0)
    assert [t for t, _ in note_ons(events)] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    engine.on_message(cc(25, 0), 1.0)
    assert engine.bpm == pytest.approx(40.0)


def test_unmapped_controllers_are_ignored():
    engine = make(cc=CCS)
    assert engine.on_message(cc(7, 0), 0.0) == []
    assert engine.mode == "call-response" and engine.enabled


# -- stop, panic, reload, stats ------------------------------------------------------------


def test_stop_releases_sounding_notes_now():
    engine = make(mode="continue", grid="1/4")
    engine.advance(0.0)
    assert len(engine.sounding) == 1
    out = engine.stop(0.3)
    assert [(e.time, e.message.type) for e in out] == [(0.3, "note_off")]
    assert engine.sounding == frozenset()


def test_stop_releases_notes_handed_out_ahead_at_their_onset():
    engine = make(mode="continue", grid="1/4")
    engine.advance(0.0)
    ahead = engine.advance(0.49)  # the note at 0.5 comes out inside the lookahead
    assert [t for t, _ in note_ons(ahead)] == [0.5]
    out = engine.stop(0.485)
    assert [(e.time, e.message.note) for e in out] == note_ons(ahead)
    assert engine.sounding == frozenset()


def test_reload_keeps_the_window_and_sounding_notes():
    engine = make(mode="continue", grid="1/4", gate=1.0)
    engine.advance(0.0)
    window, sounding = engine.window, engine.sounding
    engine.reload(mechanical(mode="continue", grid="1/4", bpm=60.0, gate=1.0))
    assert engine.window == window and engine.sounding == sounding
    assert engine.bpm == 60.0
    events = run(engine, [], end=2.0)
    assert [t for t, _ in note_ons(events)] == pytest.approx([1.0, 2.0])  # beat 1 at 60 BPM


def test_stats_count_predictions_and_latency():
    engine = make()
    run(engine, phrase([60, 62, 64]))
    stats = engine.stats()
    assert stats["predictions"] == 3 and len(stats["latencies"]) == 3
    assert stats["performer_tokens"] == 3 and stats["notes_out"] == 3
    assert 0 <= stats["latency_p50"] <= stats["latency_max"]


def test_event_order_is_by_time_only():
    a = Event(1.0, mido.Message("note_on", note=60))
    b = Event(1.0, mido.Message("note_off", note=10))
    assert not a < b and not b < a and Event(0.5, a.message) < a
