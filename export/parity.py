"""Parity: the exported graphs must give the Keras model's answers.

Three comparisons on the held-out windows, each logged as one table line:
Keras against the window graph, Keras against the stream graph (fed the same
tokens one at a time from zero state), and the stream graph against the
window graph on the last step.  Each must stay within the tolerance and pick
the same argmax; any failure is an ``ExportError``.

An argmax "mismatch" where the reference's two best tokens are closer than
``TIE`` is a tie that float rounding may break either way, not a conversion
error; ties are counted and reported, not fatal.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from cadenza.errors import ExportError

log = logging.getLogger(__name__)

TIE = 1e-6


@dataclass(frozen=True)
class Comparison:
    name: str
    windows: int
    max_abs_diff: float
    argmax_equal: int
    argmax_ties: int
    tolerance: float

    @property
    def passed(self) -> bool:
        return (
            self.max_abs_diff < self.tolerance
            and self.argmax_equal + self.argmax_ties == self.windows
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"passed": self.passed}


def compare(name: str, reference: np.ndarray, candidate: np.ndarray, tolerance: float) -> Comparison:
    """Compare two [n, V] probability arrays."""
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if reference.shape != candidate.shape:
        raise ExportError(f"parity {name}: shapes differ, {reference.shape} vs {candidate.shape}")
    best_ref = reference.argmax(axis=1)
    best_cand = candidate.argmax(axis=1)
    equal = best_ref == best_cand
    rows = np.arange(len(reference))
    gap = reference[rows, best_ref] - reference[rows, best_cand]
    ties = int(np.count_nonzero(~equal & (gap < TIE)))
    return Comparison(
        name=name,
        windows=len(reference),
        max_abs_diff=float(np.abs(reference - candidate).max()) if reference.size else 0.0,
        argmax_equal=int(np.count_nonzero(equal)),
        argmax_ties=ties,
        tolerance=tolerance,
    )


HEADER = f"{'parity':<18} {'windows':>7} {'max |dp|':>10} {'argmax':>11} {'ties':>4} {'limit':>8}  result"


def table_line(c: Comparison) -> str:
    argmax = f"{c.argmax_equal}/{c.windows}"
    return (
        f"{c.name:<18} {c.windows:>7} {c.max_abs_diff:>10.2e} {argmax:>11} "
        f"{c.argmax_ties:>4} {c.tolerance:>8.0e}  {'ok' if c.passed else 'FAILED'}"
    )


def check_parity(
    keras_probs: np.ndarray,
    window_probs: np.ndarray,
    stream_probs: np.ndarray,
    tolerance: float,
) -> dict[str, Any]:
    """Log the parity table; raise ``ExportError`` when any comparison fails."""
    comparisons = [
        compare("keras vs window", keras_probs, window_probs, tolerance),
        compare("keras vs stream", keras_probs, stream_probs, tolerance),
        compare("window vs stream", window_probs, stream_probs, tolerance),
    ]
    log.info("%s", HEADER)
    for c in comparisons:
        log.info("%s", table_line(c))
    failed = [c for c in comparisons if not c.passed]
    if failed:
        worst = "; ".join(
            f"{c.name}: max |dp| {c.max_abs_diff:.2e} (limit {c.tolerance:.0e}), "
            f"argmax differs on {c.windows - c.argmax_equal - c.argmax_ties} of {c.windows}"
            for c in failed
        )
        raise ExportError(f"parity check failed, the exported graphs do not match Keras: {worst}")
    return {
        "tolerance": tolerance,
        "windows": comparisons[0].windows,
        "comparisons": {c.name.replace(" ", "_"): c.as_dict() for c in comparisons},
    }
