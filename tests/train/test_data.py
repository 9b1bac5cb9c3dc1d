"""Data in: parsing (the seed's facts), the cache, bad files, vocabulary, windows, splits."""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from cadenza.config import DataConfig
from cadenza.errors import DataError
from cadenza.tokens import is_chord, midi_to_name, name_to_midi
from cadenza.train.generate import write_midi
from cadenza.train.vocab import build_vocabulary, load_vocabulary
from cadenza.train.windows import (
    build_windows,
    heldout_document,
    make_split,
    scalar_inputs,
    split_pieces,
    split_windows,
)

pytest.importorskip("music21")

from cadenza.train.corpus import load_corpus  # noqa: E402  (needs music21 installed)

SEED_FACTS = {"mz_311_1.mid": 2601, "mz_311_3.mid": 2856, "mz_545_1.mid": 2428}


@pytest.fixture(scope="session")
def mozart(seed_mozart_dir, cache_dir):
    """seed-mozart parsed once per session (two parser processes when not cached)."""
    config = DataConfig(sources=(str(seed_mozart_dir),), workers=2)
    return load_corpus(config, cache_dir=cache_dir)


def _all_sequences(corpus):
    return [s for piece in corpus.pieces for s in piece.sequences]


# -- the seed's facts -------------------------------------------------------------


def test_seed_mozart_tokens_per_piece(mozart):
    assert {Path(p.path).name: p.token_count for p in mozart.pieces} == SEED_FACTS
    assert all(len(p.sequences) == 1 for p in mozart.pieces)  # the piano parts, joined
    assert mozart.skipped == []


def test_seed_mozart_vocabulary_windows_and_split(mozart):
    sequences = _all_sequences(mozart)
    assert len({t for s in sequences for t in s}) == 147
    vocab = build_vocabulary(sequences, min_count=50)
    assert len(vocab) == 32
    assert min(vocab.counts) >= 50
    windows = build_windows([[vocab.encode(s) for s in p.sequences] for p in mozart.pieces], 50)
    assert len(windows) == 6356
    split = split_windows(windows, 0.2, seed=42)
    assert (split.train.size, split.test.size) == (5084, 1272)
    assert np.intersect1d(split.train, split.test).size == 0


def test_midi_notes_keep_music21_spelling_which_equals_midi_to_name(mozart):
    notes = {t for s in _all_sequences(mozart) for t in s if not is_chord(t)}
    assert len(notes) >= 40
    assert all(midi_to_name(name_to_midi(t)) == t for t in notes)


def test_second_load_parses_nothing(mozart, seed_mozart_dir, cache_dir, caplog):
    config = DataConfig(sources=(str(seed_mozart_dir),), workers=2)
    with caplog.at_level(logging.INFO, logger="cadenza.train.corpus"):
        again = load_corpus(config, cache_dir=cache_dir)
    assert (again.parsed, again.cached) == (0, 3)
    assert "all 3 files came from the parse cache" in caplog.text
    assert "used 3 files, skipped 0" in caplog.text
    assert again.digest == mozart.digest
    assert [p.sequences for p in again.pieces] == [p.sequences for p in mozart.pieces]


# -- tiny corpora written by the tests ----------------------------------------------

MELODY = ["C4", "E4", "G4", "0.4.7", "A4", "F4", "D4", "2.5.9", "B3", "G3", "7.11.2", "C5"]


def _write_corpus(folder: Path, count: int = 3, length: int = 40, seed: int = 0) -> list[Path]:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(count):
        tokens = [rng.choice(MELODY) for _ in range(length)]
        path = folder / f"piece{number}.mid"
        write_midi(tokens, path)
        paths.append(path)
    return paths


def _write_bad_files(folder: Path, good: Path) -> dict[str, str]:
    """One of each kind of bad file; returns name -> words its skip reason must contain."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.mid").write_bytes(b"")
    data = good.read_bytes()
    (folder / "truncated.mid").write_bytes(data[: len(data) // 2])
    (folder / "notes.mid").write_text("these are my notes, not a MIDI file\n")
    corrupt = bytearray(data)
    corrupt[22:60] = b"\xff" * 38  # inside the first track's events
    (folder / "corrupt.midi").write_bytes(bytes(corrupt))
    return {
        "empty.mid": "empty file",
        "truncated.mid": "truncated",
        "notes.mid": "not a MIDI file",
        "corrupt.midi": "corrupt",
    }


def test_written_midi_parses_back_to_the_same_tokens(tmp_path, cache_dir):
    tokens = MELODY * 2
    write_midi(tokens, tmp_path / "song" / "a.mid")
    corpus = load_corpus(DataConfig(sources=(str(tmp_path / "song"),), workers=1),
                         cache_dir=tmp_path / "cache")
    assert corpus.pieces[0].sequences == [tokens]


def test_bad_files_are_skipped_named_and_counted(tmp_path, caplog):
    good = _write_corpus(tmp_path / "data", count=2)
    expected = _write_bad_files(tmp_path / "data" / "sub", good[0])
    config = DataConfig(sources=(str(tmp_path / "data"),), workers=1)
    with caplog.at_level(logging.INFO, logger="cadenza.train.corpus"):
        corpus = load_corpus(config, cache_dir=tmp_path / "cache")
    assert [Path(p.path).name for p in corpus.pieces] == ["piece0.mid", "piece1.mid"]
    reasons = {Path(s["file"]).name: s["reason"] for s in corpus.skipped}
    assert set(reasons) == set(expected)
    for name, words in expected.items():
        assert words in reasons[name], (name, reasons[name])
        assert any(name in r.getMessage() and r.levelno == logging.WARNING
                   for r in caplog.records), name
    assert "used 2 files, skipped 4" in caplog.text


def test_bad_files_are_skipped_from_the_cache_too(tmp_path, caplog):
    good = _write_corpus(tmp_path / "data", count=1)
    _write_bad_files(tmp_path / "data", good[0])
    config = DataConfig(sources=(str(tmp_path / "data"),), workers=1)
    load_corpus(config, cache_dir=tmp_path / "cache")
    with caplog.at_level(logging.INFO, logger="cadenza.train.corpus"):
        again = load_corpus(config, cache_dir=tmp_path / "cache")
    assert again.parsed == 0 and len(again.skipped) == 4
    assert "truncated.mid" in caplog.text


def test_a_source_of_only_bad_files_is_a_clear_error(tmp_path):
    good = _write_corpus(tmp_path / "good", count=1)
    _write_bad_files(tmp_path / "bad", good[0])
    config = DataConfig(sources=(str(tmp_path / "good"), str(tmp_path / "bad")), workers=1)
    with pytest.raises(DataError) as caught:
        load_corpus(config, cache_dir=tmp_path / "cache")
    message = str(caught.value)
    assert f"data source {tmp_path / 'bad'}: no usable file" in message
    assert "empty.mid (empty file)" in message


@pytest.mark.parametrize("make", ["missing", "no-midi", "not-midi-file", "corpus"])
def test_sources_that_name_nothing_are_errors(tmp_path, make):
    if make == "missing":
        source = str(tmp_path / "nowhere")
    elif make == "no-midi":
        (tmp_path / "docs").mkdir()
        (tmp_path / "docs" / "readme.txt").write_text("hello")
        source = str(tmp_path / "docs")
    elif make == "not-midi-file":
        source = str(tmp_path / "song.wav")
        Path(source).write_bytes(b"RIFF")
    else:
        source = "music21:no_such_composer_anywhere"
    with pytest.raises(DataError, match=f"data source {source}"):
        load_corpus(DataConfig(sources=(source,), workers=1), cache_dir=tmp_path / "cache")


def test_the_cache_is_keyed_by_content_and_settings(tmp_path):
    paths = _write_corpus(tmp_path / "data", count=2)
    cache = tmp_path / "cache"
    config = DataConfig(sources=(str(tmp_path / "data"),), workers=1)
    first = load_corpus(config, cache_dir=cache)
    assert (first.parsed, first.cached) == (2, 0)
    write_midi(["C4", "D4"] * 30, paths[1])  # edit one file
    second = load_corpus(config, cache_dir=cache)
    assert (second.parsed, second.cached) == (1, 1)
    assert second.digest != first.digest
    third = load_corpus(DataConfig(sources=config.sources, workers=1, chordify=False),
                        cache_dir=cache)
    assert third.parsed == 2  # other parser settings: other keys
    # A damaged entry is parsed again, not trusted.
    for entry in (cache / "tokens").rglob("*.json"):
        entry.write_text("{not json")
    fourth = load_corpus(config, cache_dir=cache)
    assert fourth.parsed == 2 and fourth.digest == second.digest


def test_cache_dir_comes_from_the_environment_first(tmp_path, monkeypatch):
    from cadenza.train.cache import resolve_cache_dir

    monkeypatch.setenv("CADENZA_CACHE_DIR", str(tmp_path / "env"))
    assert resolve_cache_dir("~/elsewhere") == tmp_path / "env"
    monkeypatch.delenv("CADENZA_CACHE_DIR")
    assert resolve_cache_dir("~/elsewhere") == Path("~/elsewhere").expanduser()


def test_max_files_limits_each_source(tmp_path):
    _write_corpus(tmp_path / "a", count=3)
    _write_corpus(tmp_path / "b", count=2, seed=1)
    config = DataConfig(sources=(str(tmp_path / "a"), str(tmp_path / "b")), workers=1,
                        max_files=1)
    corpus = load_corpus(config, cache_dir=tmp_path / "cache")
    assert [Path(p.path).parent.name + "/" + Path(p.path).name for p in corpus.pieces] == [
        "a/piece0.mid", "b/piece0.mid"]


def test_chorales_give_one_sequence_per_part_and_a_chordified_one(cache_dir):
    config = DataConfig(sources=("music21:bach",), max_files=2, workers=1)
    corpus = load_corpus(config, cache_dir=cache_dir)
    from music21 import converter

    for piece in corpus.pieces:
        parts = len(converter.parse(piece.path).parts)
        assert len(piece.sequences) == parts + 1
        *voices, chordified = piece.sequences
        assert not any(is_chord(t) for voice in voices for t in voice)
        assert sum(is_chord(t) for t in chordified) > len(chordified) / 2
        # Scores are respelled as MIDI input is: D-4 becomes C#4.
        notes = {t for s in piece.sequences for t in s if not is_chord(t)}
        assert all(midi_to_name(name_to_midi(t)) == t for t in notes)


# -- vocabulary ---------------------------------------------------------------------


def test_vocabulary_order_is_by_count_then_token_whatever_the_input_order(tmp_path):
    sequences = [list("abcabcaab"), list("ddxbb"), list("cz")]
    vocab = build_vocabulary(sequences, min_count=2)
    assert vocab.tokens == ("b", "a", "c", "d")  # b:5, a:4, c:3, d:2; x and z dropped
    assert vocab.counts == (5, 4, 3, 2)
    shuffled = [list(reversed(s)) for s in reversed(sequences)]
    assert build_vocabulary(shuffled, min_count=2) == vocab
    assert vocab.encode(list("xbzd")) == [0, 3]
    vocab.save(tmp_path / "vocab.json")
    doc = json.loads((tmp_path / "vocab.json").read_text())
    assert doc == {"token_scheme": 1, "vocabulary": ["b", "a", "c", "d"], "counts": [5, 4, 3, 2]}
    assert load_vocabulary(tmp_path / "vocab.json") == vocab


def test_a_shuffled_vocabulary_is_a_seeded_permutation_of_the_count_order():
    vocab = build_vocabulary([list("abcdefgh" * 3) + list("aab")], min_count=1)
    first, again, other = vocab.shuffled(42), vocab.shuffled(42), vocab.shuffled(7)
    assert first == again  # the same seed, the same order: reproducible
    assert first.tokens != vocab.tokens and other.tokens != first.tokens
    pairs = sorted(zip(first.tokens, first.counts, strict=True))
    assert pairs == sorted(zip(vocab.tokens, vocab.counts, strict=True))
    assert first.encode(["a", "b"]) == [first.tokens.index("a"), first.tokens.index("b")]


def test_vocabulary_is_deterministic_across_runs(mozart):
    sequences = _all_sequences(mozart)
    first = build_vocabulary(sequences, 50)
    shuffled = sequences[:]
    random.Random(7).shuffle(shuffled)
    assert build_vocabulary(shuffled, 50).tokens == first.tokens


def test_a_min_count_nothing_reaches_is_an_error():
    with pytest.raises(DataError, match="min_count=10"):
        build_vocabulary([["C4"] * 3], min_count=10)


def test_a_damaged_vocabulary_file_is_named(tmp_path):
    path = tmp_path / "vocab.json"
    path.write_text('{"token_scheme": 99, "vocabulary": ["C4"]}')
    with pytest.raises(DataError, match="vocab.json: token scheme 99"):
        load_vocabulary(path)


# -- windows and splits -------------------------------------------------------------


def _synthetic(lengths_per_piece, window):
    value = iter(range(10_000))
    pieces = [[[next(value) for _ in range(n)] for n in lengths] for lengths in lengths_per_piece]
    return pieces, build_windows(pieces, window)


def test_windows_stay_inside_each_sequence():
    pieces, windows = _synthetic([[8, 5], [3], [6]], window=4)
    assert len(windows) == 4 + 1 + 0 + 2
    everything = np.arange(len(windows))
    inputs, targets = windows.inputs(everything), windows.targets(everything)
    for row, target in zip(inputs, targets, strict=True):
        # consecutive numbers mean the window never crossed a sequence boundary
        assert list(row) + [target] == list(range(row[0], row[0] + 5))
    assert list(windows.pieces) == [0, 0, 0, 0, 0, 2, 2]
    assert np.array_equal(windows.chunks(everything)[:, :-1], inputs)
    assert np.array_equal(windows.chunks(everything)[:, -1], targets)


def test_window_split_sizes_and_determinism():
    _, windows = _synthetic([[60] * 3], window=10)
    split = split_windows(windows, 0.2, seed=42)
    assert (split.train.size, split.test.size) == (120, 30)
    again = split_windows(windows, 0.2, seed=42)
    assert np.array_equal(split.test, again.test) and np.array_equal(split.train, again.train)
    assert not np.array_equal(split_windows(windows, 0.2, seed=1).test, split.test)
    assert sorted(np.concatenate([split.train, split.test])) == list(range(150))


def test_piece_split_holds_out_whole_pieces_near_the_fraction():
    _, windows = _synthetic([[30 + 7 * i] for i in range(12)], window=10)
    split = split_pieces(windows, 0.2, seed=42)
    held = set(windows.pieces[split.test])
    assert held == set(split.test_pieces)
    assert held.isdisjoint(set(windows.pieces[split.train]))
    assert abs(split.test.size / len(windows) - 0.2) < 0.08
    assert np.array_equal(split_pieces(windows, 0.2, seed=42).test, split.test)
    assert split.test.size + split.train.size == len(windows)


def test_piece_split_needs_two_pieces():
    _, windows = _synthetic([[80]], window=10)
    with pytest.raises(DataError, match="at least two pieces"):
        make_split(windows, "pieces", 0.2, seed=42)


def test_heldout_document_lists_the_test_windows_in_order():
    _, windows = _synthetic([[40, 40]], window=10)
    split = split_windows(windows, 0.5, seed=42)
    doc = heldout_document(windows, split, limit=7)
    assert len(doc["windows"]) == len(doc["targets"]) == 7
    assert doc["windows"][0] == windows.inputs(split.test[:1])[0].tolist()
    assert doc["targets"] == windows.targets(split.test[:7]).tolist()


def test_scalar_inputs_divide_by_the_vocabulary_size():
    x = scalar_inputs(np.array([[0, 16, 31]]), 32)
    assert x.shape == (1, 3, 1) and x.dtype == np.float32
    assert x[0, :, 0].tolist() == [0.0, 0.5, 31 / 32]


def test_token_counts_of_a_written_corpus_match(tmp_path):
    _write_corpus(tmp_path / "d", count=2, length=30)
    corpus = load_corpus(DataConfig(sources=(str(tmp_path / "d"),), workers=1),
                         cache_dir=tmp_path / "cache")
    counts = Counter(t for s in _all_sequences(corpus) for t in s)
    assert sum(counts.values()) == 60 and set(counts) <= set(MELODY)
