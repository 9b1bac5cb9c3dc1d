"""Recording round trip: save, read back with mido, same notes, same times, same tempo."""

from __future__ import annotations

import mido
import pytest

from cadenza.live.daemon.recorder import Recorder


def notes_in_seconds(path):
    """(track name, seconds, type, note) for every note message, via mido's own timing."""
    midi = mido.MidiFile(path)
    out = []
    for track in midi.tracks:
        name = next((m.name for m in track if m.type == "track_name"), "")
        tick = 0
        for message in track:
            tick += message.time
            if message.type in ("note_on", "note_off"):
                out.append((name, tick, message.type, message.note))
    tempo_map = [(0, 500000)]
    tick = 0
    for message in midi.tracks[0]:
        tick += message.time
        if message.type == "set_tempo":
            tempo_map.append((tick, message.tempo))

    def seconds(at):
        total, previous_tick, tempo = 0.0, 0, tempo_map[0][1]
        for change_tick, change_tempo in tempo_map[1:]:
            if change_tick >= at:
                break
            total += mido.tick2second(change_tick - previous_tick, midi.ticks_per_beat, tempo)
            previous_tick, tempo = change_tick, change_tempo
        return total + mido.tick2second(at - previous_tick, midi.ticks_per_beat, tempo)

    return midi, [(name, seconds(t), kind, note) for name, t, kind, note in out]


def test_round_trip_with_a_tempo_change(tmp_path):
    recorder = Recorder(120.0, start_time=100.0)
    recorder.add(100.0, mido.Message("note_on", note=60, velocity=90), "performer")
    recorder.add(100.5, mido.Message("note_off", note=60), "performer")
    recorder.add(100.0, mido.Message("clock"), "performer")  # real-time bytes are not recorded
    recorder.add_tempo(101.0, 60.0)
    recorder.add(101.0, mido.Message("note_on", note=72, velocity=70, channel=1), "cadenza")
    recorder.add(102.5, mido.Message("note_off", note=72, channel=1), "cadenza")
    path = recorder.save(tmp_path / "duet.mid")
    midi, notes = notes_in_seconds(path)
    assert midi.type == 1
    assert [next(m.name for m in t if m.type == "track_name") for t in midi.tracks] == [
        "Tempo", "Performer", "Cadenza"]
    expected = [("Performer", 0.0, "note_on", 60), ("Performer", 0.5, "note_off", 60),
                ("Cadenza", 1.0, "note_on", 72), ("Cadenza", 2.5, "note_off", 72)]
    assert [(n, k, p) for n, _, k, p in notes] == [(n, k, p) for n, _, k, p in expected]
    assert [t for _, t, _, _ in notes] == pytest.approx([t for _, t, _, _ in expected], abs=1e-3)
    tempos = [mido.tempo2bpm(m.tempo) for m in midi.tracks[0] if m.type == "set_tempo"]
    assert tempos == pytest.approx([120.0, 60.0])
    # mido's own playback timing agrees: the file lasts 2.5 s
    assert midi.length == pytest.approx(2.5, abs=1e-3)


def test_equal_times_keep_the_order_they_were_added(tmp_path):
    recorder = Recorder(100.0)
    recorder.add(1.0, mido.Message("note_on", note=60, velocity=80), "cadenza")
    recorder.add(2.0, mido.Message("note_off", note=60), "cadenza")
    recorder.add(2.0, mido.Message("note_on", note=60, velocity=80), "cadenza")
    recorder.add(3.0, mido.Message("note_off", note=60), "cadenza")
    _, notes = notes_in_seconds(recorder.save(tmp_path / "a.mid"))
    assert [k for _, _, k, _ in notes] == ["note_on", "note_off", "note_on", "note_off"]


def test_hanging_notes_are_closed_at_the_end(tmp_path):
    recorder = Recorder(120.0)
    recorder.add(0.0, mido.Message("note_on", note=60, velocity=80), "performer")
    recorder.add(1.0, mido.Message("note_on", note=62, velocity=80), "performer")
    _, notes = notes_in_seconds(recorder.save(tmp_path / "b.mid"))
    offs = [(t, p) for _, t, k, p in notes if k == "note_off"]
    assert offs == [(pytest.approx(1.0), 60), (pytest.approx(1.0), 62)]


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="tempo"):
        Recorder(0.0)
    with pytest.raises(ValueError, match="track"):
        Recorder(120.0).add(0.0, mido.Message("note_on"), "drums")
    from cadenza.errors import MidiFileError

    (tmp_path / "file").write_text("")
    with pytest.raises(MidiFileError, match="cannot write"):
        Recorder(120.0).save(tmp_path / "file" / "x.mid")
