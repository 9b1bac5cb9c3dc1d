"""Training in every key: transposition, the split before augmentation, strided windows."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from cadenza.config import ALL_SHIFTS, Config, TrainConfig, load_config, transpose_shifts
from cadenza.errors import ConfigError
from cadenza.tokens import chord_pitch_classes, is_chord, name_to_midi
from cadenza.train.transpose import Transposer, augment
from cadenza.train.windows import build_windows, choose_test_pieces, window_starts

# -- the setting ------------------------------------------------------------------


def test_transpose_names_its_shifts():
    assert transpose_shifts("none") == (0,)
    assert transpose_shifts("all") == ALL_SHIFTS
    assert len(ALL_SHIFTS) == 12 and 0 in ALL_SHIFTS
    assert {s % 12 for s in ALL_SHIFTS} == set(range(12))  # every key once
    assert transpose_shifts("-3..3") == (-3, -2, -1, 0, 1, 2, 3)
    assert transpose_shifts(" 2..2 ") == (2,)


@pytest.mark.parametrize("value", ["some", "3", "3..-3", "-12..0", "1..x", ".."])
def test_a_bad_transpose_is_a_config_error_naming_it(value):
    with pytest.raises(ConfigError, match=r"\[train\] transpose"):
        load_config(None, overrides={"train": {"transpose": value, "split": "pieces"}})


def test_transpose_needs_the_pieces_split():
    with pytest.raises(ConfigError, match="split = 'pieces'"):
        load_config(None, overrides={"train": {"transpose": "all", "split": "windows"}})
    config = load_config(None, overrides={"train": {"transpose": "all", "split": "pieces"}})
    assert config.train.transpose == "all"


def test_stride_defaults_to_the_presets_own():
    assert TrainConfig(preset="seed").window_stride(50) == 1
    assert TrainConfig(preset="default").window_stride(50) == 50
    assert TrainConfig(preset="default", stride=7).window_stride(50) == 7
    with pytest.raises(ConfigError, match=r"\[train\] stride"):
        load_config(None, overrides={"train": {"stride": -1}})


# -- moving tokens ----------------------------------------------------------------


def test_notes_move_by_name_and_chords_rotate_into_normal_order():
    move = Transposer()
    assert move.token("C4", 2) == "D4"
    assert move.token("B3", 1) == "C4"
    assert move.token("E-5", -3) == "C5"
    assert move.token("0.4.7", 2) == "2.6.9"
    assert move.token("11.2.6", 1) == "0.3.7"  # B minor up a semitone is C minor
    assert move.token("G9", 1) is None  # MIDI 128 does not exist
    assert move.sequence(["C4", "G9", "0.4.7"], 1) == ["C#4", "1.5.8"]


def test_every_token_moves_the_right_distance():
    rng = random.Random(3)
    move = Transposer()
    for _ in range(300):
        shift = rng.randint(-11, 11)
        if rng.random() < 0.5:
            midi = rng.randint(21, 108)
            from cadenza.tokens import midi_to_name

            moved = move.token(midi_to_name(midi), shift)
            assert name_to_midi(moved) == midi + shift
        else:
            from cadenza.tokens import chord_token

            classes = set(rng.sample(range(12), rng.randint(2, 5)))
            moved = move.token(chord_token(classes), shift)
            assert is_chord(moved)
            assert set(chord_pitch_classes(moved)) == {(pc + shift) % 12 for pc in classes}


def test_held_out_pieces_get_no_shifted_copy():
    pieces = [[["C4", "E4"]], [["D4"]], [["0.4.7", "G4"]]]
    entries, owners = augment(pieces, (-1, 0, 1), held_out=[1])
    assert owners == [0, 0, 0, 1, 2, 2, 2]
    assert entries[3] == [["D4"]]  # the held-out piece, as it was
    assert entries[0] == [["B3", "E-4"]] and entries[2] == [["C#4", "F4"]]
    assert entries[4] == [["11.3.6", "F#4"]]


# -- windows and the split --------------------------------------------------------


def test_strided_windows_cover_the_end_of_each_sequence():
    assert window_starts(120, 50, 50).tolist() == [0, 50, 69]
    assert window_starts(101, 50, 50).tolist() == [0, 50]
    assert window_starts(60, 50, 1).tolist() == list(range(10))
    assert window_starts(50, 50, 50).size == 0  # no target after the window
    windows = build_windows([[list(range(120))]], 50, stride=50)
    targets = windows.chunks(np.arange(len(windows)))[:, 1:]
    assert set(range(1, 120)) == set(targets.ravel().tolist())  # every token a target


def test_copies_of_a_piece_are_windows_of_that_piece():
    windows = build_windows([[list(range(60))], [list(range(60))], [list(range(70))]], 50,
                            stride=5, piece_ids=[0, 0, 1])
    assert windows.piece_count == 2
    assert np.bincount(windows.pieces).tolist() == [6, 5]  # starts 0, 5, 9 twice; 0, 5, 10, 15, 19


def test_test_pieces_are_chosen_from_sizes_near_the_fraction():
    sizes = [100] * 10
    chosen = choose_test_pieces(sizes, 0.2, seed=42)
    assert len(chosen) == 2
    assert chosen == choose_test_pieces(sizes, 0.2, seed=42)


# -- the whole data preparation on real MIDI files --------------------------------


def _write_pieces(folder: Path, count: int, length: int) -> None:
    from cadenza.train.generate import write_midi

    rng = random.Random(1)
    notes = ["C4", "D4", "E4", "F4", "G4", "A4", "B4", "C5", "0.4.7", "7.11.2"]
    folder.mkdir()
    for number in range(count):
        write_midi([rng.choice(notes) for _ in range(length)], folder / f"p{number}.mid")


def test_prepare_data_holds_out_before_transposing_and_counts_the_vocabulary_after(tmp_path):
    pytest.importorskip("symusic")
    from cadenza.train.training import prepare_data

    _write_pieces(tmp_path / "midi", count=6, length=80)
    base = Config().replace("data", sources=[str(tmp_path / "midi")], min_count=1, window=8,
                            cache_dir=str(tmp_path / "cache"))
    plain = prepare_data(base.replace("train", split="pieces", test_fraction=0.34))
    config = base.replace("train", split="pieces", test_fraction=0.34, transpose="all")
    data = prepare_data(config, cache_dir=tmp_path / "cache")
    # The same pieces are held out with or without the copies.
    assert data.split.test_pieces == plain.split.test_pieces
    held = set(data.split.test_pieces)
    assert held and not held & set(data.windows.pieces[data.split.train].tolist())
    # The vocabulary has the moved tokens: the major triad in all 12 keys
    # (both chords written are major triads), the notes in every key.
    from cadenza.tokens import chord_token

    assert {chord_token({r, r + 4, r + 7}) for r in range(12)} <= set(data.vocab.tokens)
    assert len(data.vocab) > 3 * len(plain.vocab)
    # Held-out windows are the pieces as written: only the original notes.
    original = set(plain.vocab.tokens)
    test_tokens = set(data.vocab.decode(np.unique(data.windows.inputs(data.split.test))))
    assert test_tokens <= original
    # Stride = window: each training token is a target about once.
    assert data.windows.window == 8
    train_rows = data.windows.chunks(data.split.train)
    pieces_trained = 6 - len(held)
    assert train_rows.shape[0] <= pieces_trained * 12 * (80 // 8 + 1)


def test_a_resume_may_change_export_and_live_settings_but_not_training_ones():
    from cadenza.train.resume import resume_fingerprint

    base = Config()
    same = resume_fingerprint(base, "digest")
    assert resume_fingerprint(base.replace("export", notice="CC BY-SA"), "digest") == same
    assert resume_fingerprint(base.replace("live", bpm=90), "digest") == same
    assert resume_fingerprint(base.replace("train", epochs=3), "digest") == same
    assert resume_fingerprint(base.replace("train", stride=5), "digest") != same
    assert resume_fingerprint(base, "other data") != same


def test_a_run_saved_with_export_and_live_in_its_fingerprint_still_resumes(tmp_path):
    from cadenza.train.resume import LAST_MODEL_FILE, ResumeState, resume_fingerprint

    now = resume_fingerprint(Config(), "digest")
    older = {**now, "config": {**now["config"], "export": {"opset": 99}, "live": {"bpm": 1}}}
    ResumeState.write(tmp_path, 3, 1.5, 2, older)
    (tmp_path / LAST_MODEL_FILE).write_bytes(b"model")
    state = ResumeState.read(tmp_path, now)
    assert state is not None and state.epochs == 3 and state.best_epoch == 2


def test_a_run_saved_before_a_setting_existed_resumes_at_its_default_and_not_otherwise(tmp_path):
    from cadenza.train.resume import LAST_MODEL_FILE, ResumeState, resume_fingerprint

    now = resume_fingerprint(Config(), "digest")
    train = {k: v for k, v in now["config"]["train"].items() if k != "recurrent_activation"}
    older = {**now, "config": {**now["config"], "train": train}}
    ResumeState.write(tmp_path, 3, 1.5, 2, older)
    (tmp_path / LAST_MODEL_FILE).write_bytes(b"model")
    assert ResumeState.read(tmp_path, now).epochs == 3
    other = resume_fingerprint(Config().replace("train", recurrent_activation="hard_sigmoid"),
                               "digest")
    with pytest.raises(ConfigError, match=r"\[train\] recurrent_activation"):
        ResumeState.read(tmp_path, other)


def test_prepare_data_numbers_the_tokens_in_a_seeded_order_when_asked(tmp_path):
    pytest.importorskip("symusic")
    from cadenza.train.training import prepare_data

    _write_pieces(tmp_path / "midi", count=3, length=60)
    base = Config().replace("data", sources=[str(tmp_path / "midi")], min_count=1, window=8,
                            cache_dir=str(tmp_path / "cache"))
    plain = prepare_data(base)
    shuffled = prepare_data(base.replace("train", vocab_order="shuffled"))
    assert shuffled.vocab == plain.vocab.shuffled(base.train.seed)
    # The same windows, each token under its new number.
    assert np.array_equal(
        np.asarray(shuffled.vocab.decode(shuffled.windows.inputs(shuffled.split.test).ravel())),
        np.asarray(plain.vocab.decode(plain.windows.inputs(plain.split.test).ravel())))
