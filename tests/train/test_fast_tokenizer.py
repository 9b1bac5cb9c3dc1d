"""The fast MIDI tokenizer gives music21's tokens: token for token, on real and built files.

music21 is the reference and is slow (seconds a piece), so its tokens for
the real files are computed once per session, two files at a time, through
the session's parse cache; the built files are tiny.  The full comparison
on every file is ``scripts/compare_tokenizers.py`` (docs/training.md).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from cadenza import cli
from cadenza.config import DataConfig, load_config
from cadenza.errors import ConfigError
from tests.conftest import SHARED
from tests.support import midi_corruptions as bad

pytest.importorskip("music21")
pytest.importorskip("symusic")

from cadenza.train.corpus import load_corpus  # noqa: E402
from cadenza.train.fastmidi import Unsupported, fast_sequences  # noqa: E402
from cadenza.train.midifile import check_midi  # noqa: E402
from cadenza.train.parse import ParseSettings, parse_file  # noqa: E402

PIANO_MIDI = SHARED / "data" / "piano-midi"
# Files kept for one regression each (SOURCE.md beside them says which).
FIXTURES = SHARED / "data" / "fixtures"
# A chord re-struck with its note-offs after the note-ons, at one tick: zero long.
RAVEL = FIXTURES / "ravel_miroirs_1.mid"
# Short pieces of several kinds: 3/4 and 2/4, three tracks, voices, ties,
# overlapping re-struck notes, an upper-case .MID.
SAMPLE = (
    "albeniz/alb_esp2.mid",
    "beeth/beethoven_les_adieux_2.mid",
    "beeth/elise.mid",
    "borodin/bor_ps6.mid",
    "brahms/BR_IM6.MID",
    "burgm/burg_perlen.mid",
    "chopin/chpn-p13.mid",
)


def _real_files(seed_mozart_dir: Path) -> list[Path]:
    files = sorted(seed_mozart_dir.glob("*.mid"))
    sample = [PIANO_MIDI / name for name in SAMPLE] + [RAVEL]
    return files + [p for p in sample if p.is_file()]


@pytest.fixture(scope="session")
def music21_tokens(seed_mozart_dir, cache_dir) -> dict[str, list[list[str]]]:
    files = _real_files(seed_mozart_dir)
    config = DataConfig(sources=tuple(str(p) for p in files), workers=2, tokenizer="music21")
    corpus = load_corpus(config, cache_dir=cache_dir)
    assert corpus.skipped == []
    return {piece.path: piece.sequences for piece in corpus.pieces}


def test_real_files_give_music21s_tokens_token_for_token(music21_tokens):
    assert len(music21_tokens) >= 3
    for path, expected in music21_tokens.items():
        # fast_sequences itself, so that a fall back to music21 cannot pass for a match
        got = fast_sequences(check_midi(Path(path).read_bytes()))
        assert got == expected, path


def test_seed_mozart_facts_hold_on_the_fast_path(seed_mozart_dir):
    counts = {p.name: sum(map(len, fast_sequences(check_midi(p.read_bytes()))))
              for p in sorted(seed_mozart_dir.glob("*.mid"))}
    assert counts == {"mz_311_1.mid": 2601, "mz_311_3.mid": 2856, "mz_545_1.mid": 2428}


def test_a_chord_released_where_it_is_struck_again_keeps_music21s_count():
    if not RAVEL.is_file():
        pytest.skip(f"fixture not found at {RAVEL}")
    # Around quarter 235.5 a chord is struck again with its note-offs right
    # after the note-ons: music21 makes it zero long, and the F4 struck with
    # it, which lasts, a note of its own.
    assert sum(map(len, fast_sequences(check_midi(RAVEL.read_bytes())))) == 1594


# -- built files: each of music21's steps, compared live -----------------------------


def _ev(delta: int, *data: int) -> bytes:
    return bad.vlq(delta) + bytes(data)


def _track(events: list[bytes], name: bytes = b"Piano right", program: int | None = 0) -> bytes:
    head = bad.meta(0x03, name) + (_ev(0, 0xC0, program) if program is not None else b"")
    return bad.chunk(b"MTrk", head + b"".join(events) + bad.END_OF_TRACK)


def _notes(*notes: tuple[int, int, int]) -> list[bytes]:
    """(on tick, off tick, pitch) notes as events in time order, note-offs first at a tick."""
    events = sorted([(on, 1, 0x90, p, 80) for on, _, p in notes]
                    + [(off, 0, 0x80, p, 0) for _, off, p in notes])
    out, now = [], 0
    for tick, _, status, pitch, velocity in events:
        out.append(_ev(tick - now, status, pitch, velocity))
        now = tick
    return out


Q = bad.DIVISION
BUILT = {
    # a bass note held under short chords: same onset, other end, so voices
    "voices": [_track(_notes((0, 4 * Q, 36), (0, Q, 60), (0, Q, 64), (Q, 2 * Q, 62),
                             (Q, 2 * Q, 65), (2 * Q, 3 * Q, 67)))],
    # notes and a chord across barlines, one over two of them
    "ties": [_track(_notes((3 * Q, 5 * Q, 60), (3 * Q + Q // 2, 13 * Q, 64),
                           (6 * Q, 9 * Q, 67), (6 * Q, 9 * Q, 71)))],
    # off-grid onsets and durations: quantized to 1/4 or 1/3 of a quarter
    "quantize": [_track(_notes((10, 170, 60), (170, 330, 62), (330, 490, 64),
                               (500, 610, 65), (615, 955, 67), (960, 1000, 69)))],
    # a key struck again while it still sounds: music21 ends both at the first off
    "re-struck": [_track([_ev(0, 0x90, 60, 80), _ev(Q // 2, 0x90, 60, 80),
                          _ev(Q // 2, 0x80, 60, 0), _ev(Q, 0x80, 60, 0),
                          _ev(0, 0x90, 62, 80), _ev(Q, 0x80, 62, 0)])],
    # two hands: the tracks' notes merge by offset, a tied piece among them
    "two hands": [_track(_notes((0, 2 * Q, 72), (2 * Q, 4 * Q + Q // 2, 74),
                                (5 * Q, 6 * Q, 76))),
                  _track(_notes((Q, 2 * Q, 48), (3 * Q, 5 * Q, 50), (5 * Q, 6 * Q, 52)),
                         name=b"Piano left")],
    # struck again while sounding, each note-off right after its note-on at one
    # tick: music21 ends the new notes there; with the off first, they last
    "released at the strike": [_track([
        _ev(0, 0x90, 60, 80), _ev(0, 0x90, 64, 80), _ev(0, 0x90, 67, 80),
        _ev(Q, 0x90, 60, 80), _ev(0, 0x90, 64, 80), _ev(0, 0x90, 72, 80), _ev(0, 0x90, 67, 80),
        _ev(0, 0x90, 60, 0), _ev(0, 0x80, 67, 0), _ev(0, 0x90, 64, 0),
        _ev(Q // 2, 0x80, 60, 0), _ev(0, 0x80, 64, 0), _ev(0, 0x80, 67, 0), _ev(0, 0x80, 72, 0),
        _ev(Q // 2, 0x90, 62, 80), _ev(Q, 0x80, 62, 0),
        _ev(0, 0x90, 62, 80), _ev(Q, 0x80, 62, 0)])],
    # no program change: the track's name decides; "Piano left" is a part of its own
    "no program": [_track(_notes((0, Q, 72), (2 * Q, 3 * Q, 74))),
                   _track(_notes((Q, 2 * Q, 48)), name=b"Piano left", program=None)],
}


@pytest.mark.parametrize("case", sorted(BUILT))
def test_built_files_give_music21s_tokens(tmp_path, case):
    path = tmp_path / f"{case.replace(' ', '-')}.mid"
    tracks = BUILT[case]
    path.write_bytes(bad.midi_file(tracks, fmt=1))
    expected = parse_file(path, ParseSettings(tokenizer="music21"))
    assert fast_sequences(check_midi(path.read_bytes())) == expected


def test_a_chord_cut_at_a_barline_between_two_hands(tmp_path):
    # music21 may keep a measure's end time from before it cut a chord there
    # (docs/training.md); here nothing had cached it, so the bar stays 4/4.
    path = tmp_path / "cut-chord.mid"
    path.write_bytes(bad.midi_file([
        _track(_notes((0, 2 * Q, 72), (2 * Q, 4 * Q + Q // 2, 74), (2 * Q, 4 * Q + Q // 2, 77),
                      (5 * Q, 6 * Q, 76))),
        _track(_notes((Q, 2 * Q, 48), (3 * Q, 5 * Q, 50), (5 * Q, 6 * Q, 52)),
               name=b"Piano left")]))
    expected = parse_file(path, ParseSettings(tokenizer="music21"))
    assert fast_sequences(check_midi(path.read_bytes())) == expected


def test_a_stale_measure_end_moves_the_later_measures(tmp_path):
    # A tempo change where the last note ends, on a barline: music21 caches
    # every measure's end; the chord cut at the first barline leaves its
    # measure 4.5 long, so the right hand's later notes sort after the left's.
    tempo = bad.chunk(b"MTrk", bad.meta(0x51, (500000).to_bytes(3, "big"))
                      + bad.meta(0x51, (400000).to_bytes(3, "big"), delta=8 * Q) + bad.END_OF_TRACK)
    path = tmp_path / "stale.mid"
    path.write_bytes(bad.midi_file([
        tempo,
        _track(_notes((0, 2 * Q, 72), (2 * Q, 4 * Q + Q // 2, 74), (2 * Q, 4 * Q + Q // 2, 77),
                      (5 * Q, 8 * Q, 76))),
        _track(_notes((Q, 2 * Q, 48), (3 * Q, 5 * Q, 50), (5 * Q, 8 * Q, 52)),
               name=b"Piano left")]))
    expected = parse_file(path, ParseSettings(tokenizer="music21"))
    assert fast_sequences(check_midi(path.read_bytes())) == expected


def _tempos(*ticks: int) -> bytes:
    """A conductor track with a tempo change at each tick."""
    events, now = [], 0
    for number, tick in enumerate(ticks):
        events.append(bad.meta(0x51, (500000 + 1000 * number).to_bytes(3, "big"), delta=tick - now))
        now = tick
    return bad.chunk(b"MTrk", b"".join(events) + bad.END_OF_TRACK)


# A voice's end time is stale only if music21 had cached it before makeTies
# cut a chord in it (docs/training.md).  In each case a chord in a voice
# crosses a barline, and the left hand shows where the next measure starts.
_LEFT = _track(_notes((4 * Q, 5 * Q, 48), (5 * Q, 6 * Q, 50), (6 * Q, 7 * Q, 52)),
               name=b"Piano left")
# A bass held under two notes makes voices; the chord, last, takes the first voice.
_CHORD_LAST = _track(_notes((0, 3 * Q, 60), (0, Q, 64), (Q, 2 * Q, 67), (3 * Q, 5 * Q, 72),
                            (3 * Q, 5 * Q, 76), (5 * Q, 6 * Q, 79)))
# Voices in the first two measures; a note of the first crosses into the second.
_PIECE_INTO_VOICES = _track(_notes(
    (0, 3 * Q, 60), (0, Q, 64), (Q, 2 * Q, 67), (3 * Q, 5 * Q, 69),
    (4 * Q, 7 * Q, 62), (4 * Q, 5 * Q, 65), (7 * Q, 9 * Q, 72), (7 * Q, 9 * Q, 76),
    (9 * Q, 10 * Q, 79)))
_PIECE_LEFT = _track(_notes((8 * Q, 9 * Q, 48), (9 * Q, 10 * Q, 50), (10 * Q, 11 * Q, 52)),
                     name=b"Piano left")
VOICE_CACHES = {
    # makeVoices asks each voice for its end time until one is free, and
    # inserting clears it: the voice given the last note is not cached (a
    # tempo change inside the measure keeps the measure from asking).
    "last voice filled, uncached": [_tempos(0, 2 * Q, 6 * Q), _CHORD_LAST, _LEFT],
    # with nothing after the measure's start but its notes, inserting the
    # second voice asks the measure, which caches the first voice
    "first voice of a quiet measure, cached": [_CHORD_LAST, _LEFT],
    # a piece landing outside a measure's voices asks the measure, which
    # caches every voice there
    "a piece arrives beside the voices": [_tempos(0, 2 * Q, 6 * Q), _PIECE_INTO_VOICES,
                                           _PIECE_LEFT],
}


@pytest.mark.parametrize("case", sorted(VOICE_CACHES))
def test_a_voice_end_is_stale_only_where_music21_had_cached_it(tmp_path, case):
    path = tmp_path / "voices.mid"
    path.write_bytes(bad.midi_file(VOICE_CACHES[case]))
    expected = parse_file(path, ParseSettings(tokenizer="music21"))
    assert fast_sequences(check_midi(path.read_bytes())) == expected

_THIRD = Q // 3
_LEFT_LATER = _track(_notes((4 * Q, 5 * Q, 48), (5 * Q, 6 * Q, 50), (6 * Q, 8 * Q, 52)),
                     name=b"Piano left")


def _chord_at_thirds(thirds: int) -> bytes:
    """A note up to a chord that begins in thirds and crosses the first barline."""
    at = thirds * _THIRD
    return _track(_notes((0, at, 60), (at, 5 * Q, 72), (at, 5 * Q, 76), (5 * Q, 8 * Q, 79)))


def _voice_chord_at_thirds(thirds: int) -> bytes:
    """The same in the first of two voices, which a later note leaves cached."""
    at = thirds * _THIRD
    return _track(_notes((0, at, 60), (0, Q, 64), (at, 5 * Q, 72), (at, 5 * Q, 76),
                         (7 * Q // 2, 4 * Q, 67), (5 * Q, 6 * Q, 79)))


# music21's Stream.insert compares an offset made a float with the stream's
# exact end: an element in thirds that begins where the stream ends seems to
# begin before it when the float is the smaller (8/3), and the stream is
# marked unsorted; makeTies then sorts it, which clears its cached end, so
# the chord's cut leaves no stale end.  When the float is the larger
# (10/3), the stream stays sorted and the end stays stale.
FLOAT_OFFSETS = {
    # every measure cached: the last note ends on a barline, a tempo change there
    "a measure, float below": [_tempos(0, 8 * Q), _chord_at_thirds(8), _LEFT_LATER],
    "a measure, float above": [_tempos(0, 8 * Q), _chord_at_thirds(10), _LEFT_LATER],
    "a voice, float below": [_tempos(0, 2 * Q, 6 * Q), _voice_chord_at_thirds(8), _LEFT],
    "a voice, float above": [_tempos(0, 2 * Q, 6 * Q), _voice_chord_at_thirds(10), _LEFT],
}


@pytest.mark.parametrize("case", sorted(FLOAT_OFFSETS))
def test_an_offset_in_thirds_can_leave_a_stream_unsorted(tmp_path, case):
    path = tmp_path / "thirds.mid"
    path.write_bytes(bad.midi_file(FLOAT_OFFSETS[case]))
    expected = parse_file(path, ParseSettings(tokenizer="music21"))
    assert fast_sequences(check_midi(path.read_bytes())) == expected


def test_a_chord_cut_twice_leaves_its_first_measure_stale(tmp_path):
    # Across two barlines: the chord's first measure keeps its end from
    # before the cut (9 quarters), the piece's measure received it (no stale
    # end), so the right hand's last note sorts after the left's.
    path = tmp_path / "twice.mid"
    path.write_bytes(bad.midi_file([
        _tempos(0, 12 * Q),
        _track(_notes((0, 3 * Q, 60), (3 * Q, 9 * Q, 72), (3 * Q, 9 * Q, 76), (9 * Q, 12 * Q, 79))),
        _track(_notes((8 * Q, 9 * Q, 48), (9 * Q, 10 * Q, 50), (10 * Q, 12 * Q, 52)),
               name=b"Piano left")]))
    expected = parse_file(path, ParseSettings(tokenizer="music21"))
    assert expected == [["C4", "0.4", "C3", "0.4", "D3", "E3", "0.4", "G5"]]
    assert fast_sequences(check_midi(path.read_bytes())) == expected

def test_a_file_it_cannot_vouch_for_is_read_by_music21(tmp_path, caplog):
    # Program 41 (violin) under a piano's name: music21's rules there are not reproduced.
    path = tmp_path / "violin.mid"
    path.write_bytes(bad.midi_file([_track(_notes((0, Q, 60), (Q, 2 * Q, 62)), program=40)]))
    with pytest.raises(Unsupported, match="program 41 is no piano"):
        fast_sequences(check_midi(path.read_bytes()))
    assert parse_file(path, ParseSettings()) == parse_file(path, ParseSettings(tokenizer="music21"))


# -- the cache key, the setting, the command --------------------------------------------


def test_the_cache_key_records_the_tokenizer(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("good.mid", "type2.mid"):
        (folder / name).write_bytes(bad.CASES[name].build())
    assert ParseSettings().fingerprint() != ParseSettings(tokenizer="music21").fingerprint()
    cache = tmp_path / "cache"
    fast = load_corpus(DataConfig(sources=(str(folder),), workers=1), cache_dir=cache)
    reference = load_corpus(DataConfig(sources=(str(folder),), workers=1, tokenizer="music21"),
                            cache_dir=cache)
    assert (fast.parsed, reference.parsed, reference.cached) == (2, 2, 0)
    assert [p.sequences for p in fast.pieces] == [p.sequences for p in reference.pieces]
    assert fast.digest != reference.digest
    entries = [json.loads(p.read_text()) for p in (cache / "tokens").rglob("*.json")]
    assert sorted(e["tokenizer"] for e in entries) == ["fast", "fast", "music21", "music21"]
    again = load_corpus(DataConfig(sources=(str(folder),), workers=1), cache_dir=cache)
    assert (again.parsed, again.cached) == (0, 2)


def test_an_unknown_tokenizer_is_refused(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[data]\ntokenizer = "fastest"\n')
    with pytest.raises(ConfigError, match=r"\[data\] tokenizer = 'fastest': must be one of"):
        load_config(config)


def test_the_tokens_command_writes_every_file_in_order_and_warms_the_cache(
    tmp_path, caplog, monkeypatch
):
    # A cache of its own: CI points $CADENZA_CACHE_DIR at one shared by every
    # test, where these built files may already be.
    monkeypatch.delenv("CADENZA_CACHE_DIR", raising=False)
    folder = tmp_path / "data"
    folder.mkdir()
    names = ["good.mid", "no-notes.mid", "truncated.mid", "type2.mid"]
    for name in names:
        (folder / name).write_bytes(bad.CASES[name].build())
    config = tmp_path / "config.toml"
    config.write_text(f"[data]\ncache_dir = {json.dumps(str(tmp_path / 'cache'))}\nworkers = 1\n")
    out = tmp_path / "tokens.json"

    def run(*options: str) -> dict:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="cadenza.train.tokens_cmd"):
            code = cli.main(["--config", str(config), "tokens", "--data", str(folder),
                             "--json", str(out), *options])
        assert code == 0
        return json.loads(out.read_text())

    document = run()
    assert list(document) == [str(folder / name) for name in names]
    assert document[str(folder / "good.mid")] == list(bad.MELODY_TOKENS)
    assert document[str(folder / "type2.mid")] == {
        "sequences": [list(bad.MELODY_TOKENS), list(bad.PATTERN_TOKENS)]}
    assert "no notes or chords" in document[str(folder / "no-notes.mid")]["error"]
    assert "truncated" in document[str(folder / "truncated.mid")]["error"]
    assert "0 files from the cache" in caplog.text and "parsing took" in caplog.text
    assert run() == document
    assert "4 files from the cache" in caplog.text
    assert run("--no-cache", "--tokenizer", "music21") == document
    assert "0 files from the cache" in caplog.text and "music21 tokenizer" in caplog.text
