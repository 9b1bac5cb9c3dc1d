"""Windows of tokens, the train/test splits, and the arrays each preset trains on.

A window is ``window`` consecutive tokens of one sequence and its target is
the token that follows; windows start at every position (stride 1) and never
cross from one sequence (or piece) into the next.  All presets are judged on
the same held-out windows: "the next token after these ``window`` tokens".

Splits:

* ``windows`` (the original's): all windows shuffled with
  ``np.random.default_rng(seed).permutation``; the first ``ceil(fraction*n)``
  are held out.  Neighbouring windows overlap, so test targets sit inside
  training windows: the split leaks, by design, to compare with the seed.
* ``pieces`` (the honest one): whole files are held out.  The files are put
  in a seeded random order and, walking that order, a file joins the test
  set whenever it brings the held-out windows closer to ``fraction`` of all
  windows.  At least one file is held out and at least one kept.

The held-out windows are listed in a seeded shuffled order (for the
``windows`` split, the permutation's own order), so the first few come from
all over the data; ``heldout.json`` keeps the first 2048 of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cadenza.errors import DataError

HELDOUT_LIMIT = 2048


@dataclass(frozen=True)
class WindowSet:
    """Every window of a corpus, stored as start offsets into one token array."""

    tokens: np.ndarray  # int32, every sequence's indices back to back
    starts: np.ndarray  # int64, where each window begins in ``tokens``
    pieces: np.ndarray  # int32, the piece (file) each window belongs to
    window: int
    piece_count: int

    def __len__(self) -> int:
        return int(self.starts.size)

    def _rows(self, which: np.ndarray, width: int) -> np.ndarray:
        offsets = self.starts[np.asarray(which, dtype=np.int64)][:, None] + np.arange(width)
        return self.tokens[offsets]

    def inputs(self, which: np.ndarray) -> np.ndarray:
        """The ``window`` tokens of each chosen window, shape (n, window)."""
        return self._rows(which, self.window)

    def targets(self, which: np.ndarray) -> np.ndarray:
        """The token after each chosen window, shape (n,)."""
        return self.tokens[self.starts[np.asarray(which, dtype=np.int64)] + self.window]

    def chunks(self, which: np.ndarray) -> np.ndarray:
        """Each window with its target, shape (n, window + 1): many-to-many training rows."""
        return self._rows(which, self.window + 1)


def window_starts(length: int, window: int, stride: int = 1) -> np.ndarray:
    """Where the windows of one sequence of ``length`` tokens begin.

    Every ``stride`` tokens from the first; with a stride above 1 one more
    window ends exactly at the sequence's end, so its last tokens are
    targets too (that window overlaps the one before it).
    """
    count = max(0, length - window)
    starts = np.arange(0, count, stride, dtype=np.int64)
    if count and starts[-1] != count - 1:
        starts = np.append(starts, count - 1)
    return starts


def build_windows(
    pieces: Sequence[Sequence[Sequence[int]]],
    window: int,
    *,
    stride: int = 1,
    piece_ids: Sequence[int] | None = None,
) -> WindowSet:
    """Windows of every sequence of every piece (pieces are lists of index sequences).

    ``piece_ids`` names the piece each entry is a copy of (a transposed copy
    is the same piece); by default entry ``n`` is piece ``n``.
    """
    if stride < 1:
        raise ValueError(f"stride must be at least 1, not {stride}")
    ids = list(piece_ids) if piece_ids is not None else list(range(len(pieces)))
    if len(ids) != len(pieces):
        raise ValueError("piece_ids must name one piece per entry")
    flat: list[np.ndarray] = []
    starts: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    offset = 0
    for number, sequences in zip(ids, pieces, strict=True):
        for sequence in sequences:
            array = np.asarray(sequence, dtype=np.int32)
            begins = window_starts(array.size, window, stride)
            flat.append(array)
            starts.append(offset + begins)
            owners.append(np.full(begins.size, number, dtype=np.int32))
            offset += array.size
    if offset == 0 or not any(s.size for s in starts):
        raise DataError(
            f"no sequence is longer than the window ({window} tokens) after dropping rare "
            "tokens; add data or lower [data] min_count or window"
        )
    return WindowSet(
        tokens=np.concatenate(flat),
        starts=np.concatenate(starts),
        pieces=np.concatenate(owners),
        window=window,
        piece_count=max(ids, default=-1) + 1,
    )


@dataclass(frozen=True)
class Split:
    kind: str
    train: np.ndarray  # window numbers to train on
    test: np.ndarray  # held-out window numbers, in the held-out order
    test_pieces: tuple[int, ...] = ()


def split_windows(windows: WindowSet, fraction: float, seed: int) -> Split:
    """The original's split: shuffle every window, hold out the first ceil(fraction*n)."""
    count = len(windows)
    order = np.random.default_rng(seed=seed).permutation(count)
    held = math.ceil(fraction * count)
    if held >= count:
        raise DataError(f"only {count} windows: too few to hold out {fraction:.0%} and train")
    return Split("windows", train=order[held:], test=order[:held])


def choose_test_pieces(sizes: Sequence[int], fraction: float, seed: int) -> tuple[int, ...]:
    """The pieces to hold out, about ``fraction`` of all windows (``sizes``: each piece's count).

    Chosen on the pieces as they are, before any shifted copy exists, so the
    choice does not depend on the augmentation.
    """
    per_piece = np.asarray(sizes, dtype=np.int64)
    usable = [int(p) for p in np.flatnonzero(per_piece)]
    if len(usable) < 2:
        raise DataError(
            "split = 'pieces' needs at least two pieces with windows; "
            f"the data has {len(usable)}: add files or use split = 'windows'"
        )
    rng = np.random.default_rng(seed=seed)
    target = fraction * int(per_piece.sum())
    chosen: list[int] = []
    total = 0
    for piece in rng.permutation(usable):
        size = int(per_piece[piece])
        if abs(total + size - target) < abs(total - target):
            chosen.append(int(piece))
            total += size
    if not chosen:
        # Every piece alone overshoots by more than the target: take the smallest.
        chosen = [min(usable, key=lambda p: (per_piece[p], p))]
    if len(chosen) == len(usable):
        chosen.pop()
    return tuple(sorted(chosen))


def split_pieces(windows: WindowSet, fraction: float, seed: int) -> Split:
    """Hold out whole pieces, about ``fraction`` of the windows (see the module)."""
    per_piece = np.bincount(windows.pieces, minlength=windows.piece_count)
    return split_held_out(windows, choose_test_pieces(per_piece, fraction, seed), seed)


def split_held_out(windows: WindowSet, chosen: Sequence[int], seed: int) -> Split:
    """The ``pieces`` split with the held-out pieces already chosen."""
    # Its own stream (seed + 1): the held-out order does not depend on how
    # many draws choosing the pieces took.
    rng = np.random.default_rng(seed=seed + 1)
    held = np.isin(windows.pieces, list(chosen))
    test = np.flatnonzero(held)
    return Split(
        "pieces",
        train=np.flatnonzero(~held),
        test=test[rng.permutation(test.size)],
        test_pieces=tuple(sorted(chosen)),
    )


def make_split(windows: WindowSet, kind: str, fraction: float, seed: int) -> Split:
    if kind == "windows":
        return split_windows(windows, fraction, seed)
    if kind == "pieces":
        return split_pieces(windows, fraction, seed)
    raise DataError(f"unknown split {kind!r} (known: windows, pieces)")


def scalar_inputs(indices: np.ndarray, scale: float) -> np.ndarray:
    """The seed's input encoding: each index divided by ``scale``, one feature per step."""
    return (np.asarray(indices, dtype=np.float32) / np.float32(scale))[..., None]


def heldout_document(windows: WindowSet, split: Split, limit: int = HELDOUT_LIMIT) -> dict:
    """The first ``limit`` held-out windows and targets, for export checks and primers."""
    which = split.test[:limit]
    return {
        "window": windows.window,
        "split": split.kind,
        "windows": windows.inputs(which).tolist(),
        "targets": windows.targets(which).tolist(),
    }
