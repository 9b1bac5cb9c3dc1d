"""Musical keys: estimating one from pitch-class counts, and which pitch classes it holds.

The estimate is the Krumhansl-Kessler key-finding method: the correlation of
a passage's 12 pitch-class counts with each of the 24 rotated major and minor
key profiles; the best correlation names the key.  A minor key holds its
natural and its harmonic notes (the raised seventh), as the music does.
Shared by the live engine (key awareness) and ``cadenza evaluate`` (key fit).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from cadenza.errors import ConfigError

# Krumhansl & Kessler (1982), probe-tone ratings for C major and C minor.
MAJOR_PROFILE = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
MINOR_PROFILE = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10, 11)  # natural minor plus the harmonic seventh
TONIC_NAMES = ("C", "C#", "D", "E-", "E", "F", "F#", "G", "G#", "A", "B-", "B")
_SPELLINGS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_KEY_RE = re.compile(r"^\s*([A-Ga-g])([#b\-]?)\s+(major|minor)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Key:
    tonic: int  # pitch class 0..11
    mode: str  # "major" or "minor"

    @property
    def pitch_classes(self) -> frozenset[int]:
        scale = MAJOR_SCALE if self.mode == "major" else MINOR_SCALE
        return frozenset((self.tonic + step) % 12 for step in scale)

    def __str__(self) -> str:
        return f"{TONIC_NAMES[self.tonic]} {self.mode}"


def parse_key(text: str) -> Key:
    """``"D major"``, ``"f# minor"``, ``"Bb major"``, ``"E- minor"`` -> a Key."""
    match = _KEY_RE.match(text)
    if not match:
        raise ConfigError(f"key {text!r}: expected a tonic and a mode, like 'D major' or 'F# minor'")
    letter, accidental, mode = match.groups()
    tonic = _SPELLINGS[letter.upper()] + {"#": 1, "b": -1, "-": -1, "": 0}[accidental]
    return Key(tonic % 12, mode.lower())


def pitch_class_counts(midis: Iterable[int], weights: Iterable[float] | None = None) -> np.ndarray:
    """12 bins of how often (or, with ``weights``, how long) each pitch class sounds."""
    counts = np.zeros(12)
    midis = list(midis)
    for midi, weight in zip(midis, weights if weights is not None else [1.0] * len(midis),
                            strict=True):
        counts[int(midi) % 12] += weight
    return counts


def estimate_key(counts: Iterable[float]) -> Key | None:
    """The key whose profile correlates best with ``counts``; None with no notes,
    or with counts so flat (one pitch class, or all alike) that no key stands out."""
    counts = np.asarray(list(counts), dtype=float)
    if counts.shape != (12,):
        raise ValueError(f"need 12 pitch-class counts, got {counts.shape}")
    if counts.sum() <= 0 or np.ptp(counts) == 0:
        return None
    best: tuple[float, Key] | None = None
    for mode, profile in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
        for tonic in range(12):
            rotated = np.roll(profile, tonic)
            score = float(np.corrcoef(counts, rotated)[0, 1])
            if best is None or score > best[0]:
                best = (score, Key(tonic, mode))
    return best[1] if best else None
