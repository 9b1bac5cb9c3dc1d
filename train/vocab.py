"""The vocabulary: the tokens frequent enough to learn, in a fixed order.

Tokens occurring fewer than ``min_count`` times over all pieces are dropped
from every piece (the original's "frequency" rule).  The order is by count,
most frequent first, ties broken by the token string, so the same data
always gives the same indices, whatever order the files were read in.
``Vocabulary.shuffled`` permutes that order with a seed: the original
numbered its tokens in Python ``set`` order, an arbitrary one, and its
network read the number itself.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cadenza.bundle import write_json_atomic
from cadenza.errors import DataError
from cadenza.tokens import SCHEME_VERSION


@dataclass(frozen=True)
class Vocabulary:
    tokens: tuple[str, ...]
    counts: tuple[int, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Frozen, so the lookup table is set once, the dataclass way around.
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.tokens)})

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._index

    def index(self, token: str) -> int:
        return self._index[token]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Indices of the tokens in the vocabulary; the others are dropped."""
        index = self._index
        return [index[t] for t in tokens if t in index]

    def decode(self, indices: Iterable[int]) -> list[str]:
        return [self.tokens[i] for i in indices]

    def to_json(self) -> dict:
        return {
            "token_scheme": SCHEME_VERSION,
            "vocabulary": list(self.tokens),
            "counts": list(self.counts),
        }

    def shuffled(self, seed: int) -> Vocabulary:
        """The same tokens and counts in an order drawn with ``seed`` (the same
        seed and tokens always give the same order)."""
        order = np.random.default_rng(seed).permutation(len(self.tokens))
        return Vocabulary(tuple(self.tokens[i] for i in order),
                          tuple(self.counts[i] for i in order))

    def save(self, path: Path) -> None:
        write_json_atomic(path, self.to_json())


def build_vocabulary(sequences: Iterable[Sequence[str]], min_count: int) -> Vocabulary:
    """Count tokens over ``sequences`` and keep those seen at least ``min_count`` times."""
    counts = Counter(token for sequence in sequences for token in sequence)
    kept = sorted(
        ((token, n) for token, n in counts.items() if n >= min_count),
        key=lambda item: (-item[1], item[0]),
    )
    if not kept:
        most = max(counts.values(), default=0)
        raise DataError(
            f"no token occurs min_count={min_count} times (the most frequent occurs "
            f"{most} times); lower [data] min_count or add data"
        )
    return Vocabulary(tuple(t for t, _ in kept), tuple(n for _, n in kept))


def load_vocabulary(path: Path) -> Vocabulary:
    """Read a ``vocab.json`` written by ``Vocabulary.save``."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise DataError(f"{path}: vocabulary file not found") from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: cannot read the vocabulary: {err}") from err
    if not isinstance(doc, dict) or not isinstance(doc.get("vocabulary"), list):
        raise DataError(f"{path}: not a vocabulary file (no 'vocabulary' list)")
    if doc.get("token_scheme") != SCHEME_VERSION:
        raise DataError(
            f"{path}: token scheme {doc.get('token_scheme')!r} is not this Cadenza's "
            f"({SCHEME_VERSION})"
        )
    tokens = tuple(str(t) for t in doc["vocabulary"])
    counts = tuple(int(n) for n in doc.get("counts", [0] * len(tokens)))
    if len(counts) != len(tokens) or len(set(tokens)) != len(tokens):
        raise DataError(f"{path}: vocabulary and counts disagree or repeat a token")
    return Vocabulary(tokens, counts)
