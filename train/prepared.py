"""The data of a training run: parsed, held out, transposed, counted, cut into windows, split.

``prepare_data`` does it all before TensorFlow loads; ``model_inputs`` and
``training_arrays`` turn the windows into what the preset's model reads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cadenza.config import Config, transpose_shifts
from cadenza.train.corpus import Corpus, load_corpus
from cadenza.train.presets import SEED_INPUT_SCALE
from cadenza.train.transpose import augment
from cadenza.train.vocab import Vocabulary, build_vocabulary
from cadenza.train.windows import (
    Split,
    WindowSet,
    build_windows,
    choose_test_pieces,
    make_split,
    scalar_inputs,
    split_held_out,
)

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    corpus: Corpus
    vocab: Vocabulary
    windows: WindowSet
    split: Split


def prepare_data(config: Config, cache_dir: Path | None = None) -> PreparedData:
    """Parse the sources, hold out pieces, add shifted copies, build the vocabulary,
    cut windows and split them.

    The held-out pieces are chosen first, on the pieces as they are; only
    the others get shifted copies (``[train] transpose``), and the
    vocabulary is counted after that, over what will be trained and judged.
    """
    settings = config.train
    window = config.data.window
    corpus = load_corpus(config.data, cache_dir=cache_dir)
    sequences = [piece.sequences for piece in corpus.pieces]
    held: tuple[int, ...] = ()
    if settings.split == "pieces":
        sizes = [sum(max(0, len(s) - window) for s in piece) for piece in sequences]
        held = choose_test_pieces(sizes, settings.test_fraction, settings.seed)
    shifts = transpose_shifts(settings.transpose)
    entries, owners = augment(sequences, shifts, held)
    if len(shifts) > 1:
        log.info("transposed the %d training pieces by %d..%d semitones: %d copies",
                 len(sequences) - len(held), shifts[0], shifts[-1], len(entries) - len(held))
    vocab = build_vocabulary((s for entry in entries for s in entry), config.data.min_count)
    if settings.vocab_order == "shuffled":
        vocab = vocab.shuffled(settings.seed)
    distinct = len({t for entry in entries for s in entry for t in s})
    log.info("vocabulary: %d of %d distinct tokens occur at least %d times",
             len(vocab), distinct, config.data.min_count)
    encoded = [[vocab.encode(s) for s in entry] for entry in entries]
    stride = settings.window_stride(window)
    windows = build_windows(encoded, window, stride=stride, piece_ids=owners)
    if settings.split == "pieces":
        split = split_held_out(windows, held, settings.seed)
    else:
        split = make_split(windows, settings.split, settings.test_fraction, settings.seed)
    log.info("%d windows of %d, every %d tokens: %d to train, %d held out (split by %s)",
             len(windows), windows.window, stride, split.train.size, split.test.size, split.kind)
    return PreparedData(corpus, vocab, windows, split)


def predictions_per_epoch(preset: str, data: PreparedData) -> int:
    """How many next-token targets one epoch trains on."""
    rows = int(data.split.train.size)
    return rows if preset == "seed" else rows * data.windows.window


def model_inputs(preset: str, windows: WindowSet, which: np.ndarray, vocab_size: int) -> np.ndarray:
    """What the preset's model reads for the chosen windows."""
    tokens = windows.inputs(which)
    # The original fed the raw index as one float feature (not index / V).
    return scalar_inputs(tokens, SEED_INPUT_SCALE) if preset == "seed" else tokens


def training_arrays(preset: str, data: PreparedData) -> tuple[np.ndarray, np.ndarray]:
    which = data.split.train
    if preset == "seed":
        return model_inputs(preset, data.windows, which, len(data.vocab)), data.windows.targets(which)
    # Many-to-many: every position of the window predicts its next token;
    # the chunk is exactly the window plus its target, so the training rows
    # are the same windows as the seed's, with 50 targets each.
    chunks = data.windows.chunks(which)
    return chunks[:, :-1], chunks[:, 1:]
