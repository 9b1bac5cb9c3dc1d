"""``cadenza evaluate``: calls cut from pieces, answered by the real engine on
the bundled model (real onnxruntime), scored beside the baselines."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import mido
import numpy as np
import pytest

from cadenza.bundle import bundled_model_path, read_bundle
from cadenza.cli import main
from cadenza.config import LiveConfig
from cadenza.errors import DataError
from cadenza.live.offline.calls import (
    call_messages,
    call_starts,
    cut_calls,
    find_midi_files,
    note_messages,
    onset_notes,
    read_piece,
)
from cadenza.live.offline.evaluate import (
    MEASURES,
    ROWS,
    answer_call,
    evaluate_calls,
    other_call_index,
    silence_limit,
)
from cadenza.live.offline.evaluate_cmd import COLUMNS, held_out_files
from cadenza.live.offline.nexttoken import scored_positions
from cadenza.live.offline.simulate import read_performance
from cadenza.tokens import midi_to_name
from testing.fake_predictor import FakePredictor
from tests.support.live_settings import mechanical

REPO = Path(__file__).resolve().parents[2]
TPB = 480
SCALES = {"d": [62, 64, 66, 67, 69, 71, 73, 74], "g": [55, 57, 59, 60, 62, 64, 66, 67],
          "f": [53, 55, 57, 58, 60, 62, 64, 65]}


def write_piece(path: Path, scale: list[int], onsets: int = 70, rest_at: int | None = None) -> Path:
    """A two-hand piece: a melody on channel 1, a chord every fourth onset on
    channel 2 (its notes 10 ms apart, as hands play them), a drum on channel 10,
    and the tempo set to 100 BPM."""
    midi = mido.MidiFile(ticks_per_beat=TPB)
    events: list[tuple[int, mido.Message]] = []
    step = TPB // 2
    for i in range(onsets):
        at = i * step + (TPB * 4 if rest_at is not None and i >= rest_at else 0)
        note = scale[(i * 3 + i // 5) % len(scale)] + 12
        events.append((at, mido.Message("note_on", channel=0, note=note, velocity=70)))
        events.append((at + step - 10, mido.Message("note_off", channel=0, note=note)))
        if i % 4 == 0:
            for k, chord_note in enumerate((scale[0], scale[2], scale[4])):
                start = at + k * 10  # 10 ticks at 100 BPM: 12.5 ms
                events.append((start, mido.Message("note_on", channel=1, note=chord_note,
                                                   velocity=60)))
                events.append((at + 2 * step, mido.Message("note_off", channel=1, note=chord_note)))
        events.append((at, mido.Message("note_on", channel=9, note=36, velocity=90)))
        events.append((at + 20, mido.Message("note_off", channel=9, note=36)))
    events.sort(key=lambda e: (e[0], e[1].type == "note_on"))
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100))])
    now = 0
    for at, message in events:
        track.append(message.copy(time=at - now))
        now = at
    midi.tracks.append(track)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.save(path)
    return path


@pytest.fixture(scope="module")
def pieces(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pieces")
    write_piece(root / "b" / "g_major.mid", SCALES["g"])
    write_piece(root / "a_d_major.MID", SCALES["d"])  # upper case, as piano-midi has
    write_piece(root / "c_f_major.midi", SCALES["f"], onsets=75)
    return root


def evaluate(tmp_path, data, *extra) -> tuple[int, dict | None]:
    out = tmp_path / "report.json"
    out.unlink(missing_ok=True)
    argv = ["evaluate", "--data", *map(str, data), "--json", str(out), "--call-onsets", "8",
            "--calls-per-piece", "2", "--max-tokens", "10", *extra]
    code = main(argv)
    return code, json.loads(out.read_text()) if out.exists() else None


# -- cutting calls -----------------------------------------------------------


def test_folders_are_searched_recursively_in_order(pieces, tmp_path):
    files = find_midi_files([pieces])
    assert [f.relative_to(pieces).as_posix() for f in files] == [
        "a_d_major.MID", "b/g_major.mid", "c_f_major.midi"]
    with pytest.raises(DataError, match="no such MIDI file or folder"):
        find_midi_files([tmp_path / "nowhere"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .mid or .midi files"):
        find_midi_files([tmp_path / "empty"])


def test_notes_are_read_as_mido_merges_the_tracks(pieces):
    path = pieces / "b" / "g_major.mid"
    expected = [(t, m.type == "note_on" and m.velocity > 0, m.channel, m.note, m.velocity)
                for t, m in read_performance(path).messages
                if m.type in ("note_on", "note_off") and m.channel != 9]
    mine = note_messages(path)
    assert [m[1:] for m in mine] == [m[1:] for m in expected]
    assert np.allclose([m[0] for m in mine], [m[0] for m in expected])


def test_onsets_group_a_chord_and_leave_out_the_drums(pieces):
    piece = read_piece(pieces / "a_d_major.MID", chord_window_ms=30.0)
    assert len(piece.onsets) == 70  # one per melody step: the rolled chord is one onset
    first = piece.onsets[0]
    assert first.notes == (62, 66, 69, 74)  # chord low to high, melody on top; no drum 36
    assert all(36 not in onset.notes for onset in piece.onsets)
    assert first.ends[0] == pytest.approx(2 * 0.3)  # 100 BPM: an eighth is 0.3 s
    assert len(read_piece(pieces / "a_d_major.MID", chord_window_ms=5.0).onsets) > 70


def test_calls_are_evenly_spaced_and_followed_by_what_the_piece_played():
    assert call_starts(70, 8, 2) == [14, 40]
    assert call_starts(70, 8, 1) == [27]
    assert call_starts(15, 8, 3) == []  # no room for a call and its continuation
    assert call_starts(16, 8, 3) == [0]


def test_a_call_is_played_with_its_silences_cut_and_its_held_notes_kept(tmp_path):
    path = write_piece(tmp_path / "rest.mid", SCALES["d"], onsets=40, rest_at=8)
    piece = read_piece(path, 30.0)
    limit = 0.5
    (call,) = cut_calls(piece, 8, 1, limit)
    assert call.start == 12
    assert call.continuation[0] is piece.onsets[20]
    assert onset_notes(call.onsets) == [n for o in piece.onsets[12:20] for n in o.notes]
    assert call.messages[0][0] == 0.0
    # Across the four-beat rest of the piece, the call's silence is at most ``limit``.
    rest = cut_calls(read_piece(path, 30.0), 8, 3, limit)[0]
    assert rest.start <= 7 < rest.start + 8
    times = [t for t, _ in rest.messages]
    assert max(np.diff(times)) <= limit + 1e-9
    original = rest.onsets[-1].time - rest.onsets[0].time
    assert times[-1] < original  # shortened
    # Notes held over the continuation's first onset are released there.
    messages = call_messages(piece.onsets[0:1], piece.onsets[1].time, limit)
    assert [m.type for _, m in messages].count("note_off") == len(piece.onsets[0].notes)
    assert max(t for t, _ in messages) == pytest.approx(piece.onsets[1].time - piece.onsets[0].time)


# -- answering and scoring ---------------------------------------------------


def test_the_engine_answers_once_after_the_whole_call(pieces):
    vocab = [midi_to_name(m) for m in range(40, 90)]
    piece = read_piece(pieces / "b" / "g_major.mid", 30.0)
    # The model's own octave: the fake's line is checked note for note.
    settings = mechanical(register="model")
    (call,) = cut_calls(piece, 8, 1, silence_limit(settings))
    answer = answer_call(FakePredictor(vocab), settings, call)
    assert len(answer) == 8  # the grid rhythm: one answer onset per call onset
    # The fake model plays "the token after the last": a line rising a semitone
    # a step from the call's last onset (a chord maps to its top note).
    tops = [notes[-1] for notes in answer]
    assert tops[0] == call.onsets[-1].notes[-1] + 1
    assert list(np.diff(tops)) == [1] * 7


def _swung_piece(path: Path) -> Path:
    """A melody in quarter, eighth, eighth at 120 BPM: onsets on the engine's 1/8 grid."""
    midi = mido.MidiFile(ticks_per_beat=TPB)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120))])
    for i in range(60):
        length = TPB if i % 3 == 0 else TPB // 2
        track.append(mido.Message("note_on", note=60 + (i * 5) % 12, velocity=70, time=0))
        track.append(mido.Message("note_off", note=60 + (i * 5) % 12, time=length))
    midi.tracks.append(track)
    midi.save(path)
    return path


def test_the_rhythm_distance_tells_grid_from_mirror(tmp_path):
    piece = read_piece(_swung_piece(tmp_path / "swung.mid"), 30.0)
    vocab = [midi_to_name(m) for m in range(40, 90)]
    figures = {}
    for rhythm in ("grid", "mirror"):
        settings = mechanical(rhythm=rhythm)
        calls = cut_calls(piece, 9, 2, silence_limit(settings))
        scored = evaluate_calls(FakePredictor(vocab), settings, calls, seed=0)
        figures[rhythm] = [s.figures for s in scored]
    for call, grid, mirror in zip(calls, figures["grid"], figures["mirror"], strict=True):
        assert grid["continuation"]["rhythm_distance"] == 0.0
        # grid: every interval an eighth, where some of the piece's are quarters,
        # each a doubling off
        intervals = np.diff([onset.time for onset in call.continuation])
        quarters = np.mean(intervals > 0.4)
        assert 0.2 < quarters < 0.4
        assert grid["cadenza"]["rhythm_distance"] == pytest.approx(quarters, abs=0.02)
        # mirror: the call's own quarter, eighth, eighth, as the piece goes on
        assert mirror["cadenza"]["rhythm_distance"] < 0.05
        assert grid["markov"]["rhythm_distance"] is None  # a baseline has no rhythm
        # the same pitches either way: only the rhythm moved
        for key in ("pitch_class_match", "top_step", "leap_share"):
            assert grid["cadenza"][key] == mirror["cadenza"][key]


def test_another_pieces_call_is_the_same_ordinal_in_the_next_piece(pieces):
    settings = LiveConfig()
    calls = []
    for path in find_midi_files([pieces]):
        calls += cut_calls(read_piece(path, 30.0), 8, 2, silence_limit(settings))
    assert other_call_index(calls) == [2, 3, 4, 5, 0, 1]
    assert other_call_index(calls[:2]) == [None, None]  # one piece: no other call
    scored = evaluate_calls(FakePredictor([midi_to_name(m) for m in range(40, 90)]), settings,
                            calls[:2], seed=0)
    assert all("other_call" not in s.answers for s in scored)


def test_next_token_positions_are_bounded_and_spread():
    assert list(scored_positions(50, 50, 10)) == []
    assert list(scored_positions(55, 50, 10)) == [50, 51, 52, 53, 54]
    spread = scored_positions(1050, 50, 5)
    assert list(spread) == [50, 300, 550, 799, 1049]


def test_the_table_shows_every_measure():
    assert tuple(key for key, _, _ in COLUMNS) == MEASURES


# -- the command, end to end -------------------------------------------------


def test_evaluate_on_the_bundled_model(pieces, tmp_path, capsys):
    code, report = evaluate(tmp_path, [pieces], "--per-call")
    assert code == 0
    rows = {row["row"]: row for row in report["rows"]}
    assert list(rows) == [name for name, _ in ROWS]
    assert report["evaluation"]["calls"] == 6
    assert all(row["calls"] == 6 for row in rows.values())
    assert rows["continuation"]["pitch_class_match"] == pytest.approx(1.0)
    for row in rows.values():
        for key in ("key_fit", "pitch_class_match", "variety", "trigram_copy"):
            assert 0.0 <= row[key] <= 1.0, (row["row"], key)
        assert row["register_distance"] >= 0
    # the baselines draw as many notes as the piece really played next
    assert rows["markov"]["notes"] == rows["random"]["notes"] == rows["continuation"]["notes"]
    assert rows["cadenza"]["notes"] > 0
    # how the lines move, beside the piece's own: one note per onset for a baseline
    assert rows["continuation"]["onsets"] == 8 and rows["continuation"]["rhythm_distance"] == 0
    assert rows["markov"]["onsets"] == rows["markov"]["notes"]
    assert rows["markov"]["rhythm_distance"] is None and rows["cadenza"]["rhythm_distance"] > 0
    for row in rows.values():
        assert row["top_step"] >= 0 and 0.0 <= row["leap_share"] <= 1.0
    assert report["model"]["path"] == str(bundled_model_path())
    assert report["model"]["graph"] == "stream"
    assert report["settings"]["mode"] == "call-response"
    assert [Path(f["file"]).name for f in report["files"]] == [
        "a_d_major.MID", "g_major.mid", "c_f_major.midi"]
    nt = report["next_token"]
    assert nt["pieces"] == 3 and nt["tokens"] == 30 and 0.0 <= nt["accuracy"] <= 1.0
    assert nt["loss"] > 0 and 0.0 < nt["in_vocabulary"] <= 1.0
    assert len(report["per_call"]) == 6
    assert report["versions"]["onnxruntime"]
    out = capsys.readouterr().out
    assert all(label in out for _, label in ROWS) and "pc match" in out and "top step" in out


def test_the_same_seed_gives_the_same_json(pieces, tmp_path):
    sampling = ("--set", "temperature=1.0", "--set", "top_p=0.9")
    _, first = evaluate(tmp_path, [pieces], "--seed", "3", *sampling)
    _, again = evaluate(tmp_path, [pieces], "--seed", "3", *sampling)
    _, other = evaluate(tmp_path, [pieces], "--seed", "4", *sampling)
    assert first == again
    assert first["rows"] != other["rows"]
    assert first["settings"]["temperature"] == 1.0 and first["settings"]["top_p"] == 0.9


@pytest.mark.parametrize(
    ("assignment", "message"),
    [("nonsense=1", "unknown key"), ("temperature=hot", "expected a number"),
     ("top_p=0", "must be in (0, 1]"), ("temperature", "expected KEY=VALUE")],
)
def test_a_bad_setting_is_a_config_error(pieces, tmp_path, caplog, assignment, message):
    code, report = evaluate(tmp_path, [pieces], "--set", assignment)
    assert code == 2 and report is None
    assert message in caplog.text


def test_bad_files_are_skipped_and_no_usable_piece_is_an_error(pieces, tmp_path, caplog):
    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01")
    with caplog.at_level(logging.WARNING):
        code, report = evaluate(tmp_path, [pieces / "a_d_major.MID", broken])
    assert code == 0
    assert report["skipped"][0]["file"] == str(broken)
    assert "broken.mid" in caplog.text
    short = write_piece(tmp_path / "short.mid", SCALES["d"], onsets=10)
    caplog.clear()
    code, report = evaluate(tmp_path, [short, broken])
    assert code == 1 and report is None
    assert "need 16 onsets" in caplog.text
    code, _ = evaluate(tmp_path, [tmp_path / "notes.txt"])
    assert code == 1


def test_held_out_keeps_only_the_pieces_training_held_out(pieces, tmp_path, caplog):
    bundle = read_bundle(bundled_model_path())
    files = find_midi_files([pieces])

    def with_held(names):
        manifest = json.loads(json.dumps(bundle.manifest))
        manifest["training"]["report"]["test_pieces"] = names
        return replace(bundle, manifest=manifest)

    kept = held_out_files(files, with_held(["/elsewhere/g_major.mid", "/x/other.mid"]))
    assert [f.name for f in kept] == ["g_major.mid"]
    with pytest.raises(DataError, match="none of the 3 data files"):
        held_out_files(files, with_held(["/x/other.mid"]))
    with pytest.raises(DataError, match="records no held-out pieces"):
        held_out_files(files, with_held([]))
    # End to end, on a copy of the bundled model whose report names one piece.
    copy = tmp_path / "model"
    shutil.copytree(bundled_model_path(), copy)
    manifest = json.loads((copy / "model.json").read_text())
    manifest["training"]["report"]["test_pieces"] = ["/data/c_f_major.midi"]
    (copy / "model.json").write_text(json.dumps(manifest))
    code, report = evaluate(tmp_path, [pieces], "--model", str(copy), "--held-out")
    assert code == 0
    assert [Path(f["file"]).name for f in report["files"]] == ["c_f_major.midi"]
    assert report["evaluation"]["held_out"] is True
    assert all(row["calls"] == 2 for row in report["rows"] if row["row"] != "other_call")
    # The bundled model was trained on Bach chorales: none of these is among them.
    code, _ = evaluate(tmp_path, [pieces], "--held-out")
    assert code == 1 and "held out in training" in caplog.text


# -- scripts/tune_live.py ----------------------------------------------------


def test_tune_live_scores_each_point_once_and_resumes(pieces, tmp_path, caplog, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("tune_live", REPO / "scripts" / "tune_live.py")
    tune = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tune)
    argv = ["--data", str(pieces), "--out", str(tmp_path / "tune"), "--call-onsets", "8",
            "--calls-per-piece", "1", "--max-tokens", "5", "--grid", "temperature=0,1.0",
            "--grid", "rhythm=mirror", "--set", "top_p=0.9"]
    assert tune.main(argv) == 0
    written = sorted(p.name for p in (tmp_path / "tune").glob("*.json"))
    assert written == ["summary.json", "temperature-0__rhythm-mirror.json",
                       "temperature-1.0__rhythm-mirror.json"]
    report = json.loads((tmp_path / "tune" / "temperature-1.0__rhythm-mirror.json").read_text())
    assert report["settings"]["temperature"] == 1.0 and report["settings"]["top_p"] == 0.9
    assert report["settings"]["rhythm"] == "mirror"
    summary = json.loads((tmp_path / "tune" / "summary.json").read_text())
    assert len(summary["points"]) == 2
    assert all(0 <= p["other_call_pitch_class_match"] <= 1 for p in summary["points"])
    assert [b["row"] for b in summary["baselines"]] == ["continuation", "markov", "random"]
    assert "temperature-0__rhythm-mirror" in capsys.readouterr().out
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert tune.main(argv) == 0
    assert caplog.text.count("done before") == 2 and "answered" not in caplog.text
    assert tune.main([*argv, "--grid", "bpm=90,100"]) == 2  # fixed for a search


def _tune_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("tune_live", REPO / "scripts" / "tune_live.py")
    tune = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tune)
    return tune


def test_tune_live_ranks_by_match_among_the_points_that_move_like_the_music():
    tune = _tune_module()
    continuation = {"top_step": 7.4, "leap_share": 0.31}
    good = {"top_step": 8.3, "leap_share": 0.35, "trigram_copy": 0.1, "variety": 0.4}
    assert tune.misses(good, continuation) == []
    assert tune.misses({**good, "top_step": 8.5, "leap_share": 0.37}, continuation) == [
        "step", "leaps"]
    assert tune.misses({**good, "trigram_copy": 0.31, "variety": 0.34}, continuation) == [
        "copy", "distinct"]
    assert tune.misses({**good, "top_step": None}, continuation) == ["step"]

    def report(match: float, **row) -> dict:
        return {"rows": [{"row": "continuation", "label": "", **continuation},
                         {"row": "cadenza", "label": "", "calls": 1, "notes": 1.0,
                          "pitch_class_match": match, **{**good, **row}}]}

    rows = tune.summary_rows({"jumpy": ({}, report(0.80, top_step=10.0)),
                              "calm": ({}, report(0.70)), "calmer": ({}, report(0.75))})
    assert [r["name"] for r in rows] == ["calmer", "calm", "jumpy"]
    assert rows[-1]["misses"] == ["step"]


def test_judge_summary_means_the_seeds_and_checks_every_target(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("judge_summary",
                                                  REPO / "scripts" / "judge_summary.py")
    judge = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(judge)
    piece = {"notes": 30.0, "onsets": 16.0, "key_fit": 0.85, "pitch_class_match": 1.0,
             "register_distance": 4.0, "variety": 0.5, "trigram_copy": 0.1, "top_step": 7.0,
             "leap_share": 0.3, "rhythm_distance": 0.0}
    markov = {**piece, "key_fit": 0.9, "pitch_class_match": 0.72, "top_step": 10.0,
              "leap_share": 0.5, "rhythm_distance": None}
    for seed, (match, rhythm) in enumerate([(0.75, 0.9), (0.77, 0.7)]):
        for name in ("rhythm-grid", "rhythm-mirror"):
            cadenza = {**piece, "key_fit": 0.92, "pitch_class_match": match, "top_step": 7.5,
                       "leap_share": 0.28, "rhythm_distance": rhythm if name == "rhythm-grid"
                       else rhythm / 2}
            folder = tmp_path / f"report-half-seed{seed}"
            folder.mkdir(exist_ok=True)
            (folder / f"{name}.json").write_text(json.dumps({"settings": {}, "rows": [
                {"row": "continuation", **piece}, {"row": "cadenza", **cadenza},
                {"row": "markov", **markov}]}))
    result = judge.summarise_set(tmp_path, "report-half")
    assert result["seeds"] == 2
    assert result["means"]["cadenza"]["pitch_class_match"] == pytest.approx(0.76)
    assert result["rhythm_grid"] == pytest.approx(0.8)
    assert result["rhythm_mirror"] == pytest.approx(0.4)
    assert result["targets"] == {
        "pc match >= Markov + 0.04": True, "key fit >= Markov": True, "step within 1.0": True,
        "leaps within 0.05": True, "copy <= 0.30": True, "distinct >= 0.35": True}
    assert judge.summarise_set(tmp_path, "music21-corpus-piano") is None


def test_the_tune_and_report_parts_are_the_two_halves_of_the_files():
    from cadenza.live.offline.evaluate_cmd import part_of

    files = [Path(f"{name}.mid") for name in "abcde"]
    tune, report = part_of(files, "tune"), part_of(files, "report")
    assert [f.stem for f in tune] == ["a", "c", "e"] and [f.stem for f in report] == ["b", "d"]
    assert part_of(files, "all") == files
    with pytest.raises(DataError, match="no report half"):
        part_of(files[:1], "report")
