"""Next-token accuracy and loss of a model on pieces, tokenized as the engine hears them.

Each onset of a piece (``live.calls``: the engine's chord window over every
track but channel 10) becomes the token the engine would push into its
window: ``VocabMap.index_of_notes``, so a note or chord the vocabulary lacks
is mapped to its nearest token exactly as it is live (the share of onsets
whose own token is in the vocabulary is reported beside the figures).

A token is predicted from the ``window`` tokens before it, from the model's
zero state, through ``cadenza.batch.predict_windows``: the measure training
reports (``test_accuracy``, ``test_loss`` in the bundle), so the two can be
read side by side, and one that the streaming runner also meets live, whose
context is bounded to whole windows.  A piece's first ``window`` onsets are
context only.  At most ``max_positions`` evenly spaced tokens of a piece are
scored, so a long piece does not outweigh the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from cadenza.batch import predict_windows
from cadenza.live.engine.vocab_map import VocabMap
from cadenza.live.offline.calls import Piece
from cadenza.runtime import StreamRunner, WindowRunner
from cadenza.tokens import notes_token

log = logging.getLogger(__name__)

FLOOR = 1e-12  # probability floor: a zero would make the loss infinite
BATCH = 512  # windows per predict_windows call


def piece_tokens(piece: Piece, vocab: VocabMap) -> tuple[list[int], int]:
    """The piece's token indices, and how many onsets had their own token in the vocabulary."""
    indices = [vocab.index_of_notes(onset.notes) for onset in piece.onsets]
    exact = sum(1 for onset in piece.onsets if notes_token(onset.notes) in vocab)
    return indices, exact


def scored_positions(length: int, window: int, max_positions: int) -> np.ndarray:
    """Positions of the tokens scored in a piece of ``length`` tokens."""
    if length <= window:
        return np.zeros(0, dtype=int)
    positions = np.arange(window, length)
    if len(positions) > max_positions:
        positions = np.unique(np.linspace(window, length - 1, max_positions).round().astype(int))
    return positions


def next_token_figures(
    predictor: StreamRunner | WindowRunner, pieces: Sequence[Piece], max_positions: int
) -> dict:
    vocab = VocabMap(predictor.vocabulary)
    window = int(predictor.window)
    windows: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    onsets = exact = scored_pieces = 0
    for piece in pieces:
        tokens, in_vocab = piece_tokens(piece, vocab)
        onsets += len(tokens)
        exact += in_vocab
        positions = scored_positions(len(tokens), window, max_positions)
        if len(positions):
            sequence = np.asarray(tokens, dtype=np.int64)
            windows.append(np.stack([sequence[p - window : p] for p in positions]))
            targets.append(sequence[positions])
            scored_pieces += 1
    hits, losses = 0, []
    if windows:
        all_windows, all_targets = np.concatenate(windows), np.concatenate(targets)
        # Pieces share batches: a runner's cost is per batch far more than per row.
        for begin in range(0, len(all_targets), BATCH):
            chunk = all_targets[begin : begin + BATCH]
            probs = predict_windows(predictor, all_windows[begin : begin + BATCH])
            probs = probs.astype(np.float64)
            chosen = probs[np.arange(len(chunk)), chunk] / probs.sum(axis=1)
            hits += int((probs.argmax(axis=1) == chunk).sum())
            losses.extend((-np.log(np.maximum(chosen, FLOOR))).tolist())
    scored = len(losses)
    if not scored:
        log.warning("no piece is longer than the model's window of %d onsets: "
                    "no next-token figures", window)
    return {
        "pieces": scored_pieces,
        "tokens": scored,
        "accuracy": round(hits / scored, 6) if scored else None,
        "loss": round(float(np.mean(losses)), 6) if scored else None,
        "onsets": onsets,
        "in_vocabulary": round(exact / onsets, 6) if onsets else None,
        "window": window,
        "max_tokens_per_piece": max_positions,
    }
